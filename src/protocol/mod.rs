//! Pure codecs: bytes in, values out. Nothing here touches a socket or a clock.

pub mod cookie;
pub mod engineio;
pub mod http1;
pub mod pointer;
pub mod socketio;
pub mod stamp;
pub mod wsframe;
