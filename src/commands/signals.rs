//! Ctrl-C and SIGTERM, as the commands stop on them: the first one stops gracefully (the run
//! drains, closes and writes its results), a second one exits at once.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Ctrl-C (SIGINT) and SIGTERM, registered before anything starts so that no early signal is
/// missed (a signal arriving before registration would kill the process with its default action).
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    pub fn install() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    pub async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    /// Resolves on the first signal; a second one exits the process at once (130).
    pub async fn first_then_exit(mut self) {
        self.next().await;
        tokio::spawn(async move {
            self.next().await;
            eprintln!("interrupted again: exiting without waiting for the drain");
            std::process::exit(130);
        });
    }
}
