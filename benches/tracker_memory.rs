//! Memory of delivery tracking: 100,000 (receiver, stream) pairs, split between receivers in
//! several ways (1,000 receivers × 100 streams is a fan-out of 100 senders to 1,000 listeners;
//! 100,000 × 1 is 100,000 echo clients). Each shape runs in a child process of its own, so that
//! its resident memory starts from a clean heap.
//!
//! The heap is counted by a global allocator that wraps the system one (bytes asked for, live and
//! at the peak, and the number of allocations); VmRSS from /proc/self/status before and after is
//! the cross-check, malloc's own overhead included.
//!
//! `cargo bench --bench tracker_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use volley::client::tracking::Tracker;
use volley::metrics::gaps::SeqWindow;

/// (receivers, streams per receiver): 100,000 streams each.
const SHAPES: [(usize, u32); 5] = [
    (1_000, 100),
    (100_000, 1),
    (10_000, 10),
    (100, 1_000),
    (885, 113),
];
/// Deliveries per stream, every 100th number missing.
const EVENTS: u64 = 300;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            added(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            added(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            added(new_size);
        }
        new
    }
}

fn added(size: usize) {
    ALLOCATIONS.fetch_add(1, Relaxed);
    let live = LIVE.fetch_add(size, Relaxed) + size;
    PEAK.fetch_max(live, Relaxed);
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn vm_rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// One shape, in this (child) process: prints a line of figures.
fn measure(receivers: usize, streams: u32) {
    // The trackers themselves live inline in each client's session: allocated before measuring.
    let mut trackers: Vec<Tracker> = (0..receivers).map(|_| Tracker::default()).collect();
    let (live_before, allocations_before) = (LIVE.load(Relaxed), ALLOCATIONS.load(Relaxed));
    PEAK.store(live_before, Relaxed);
    let rss_before = vm_rss_kib();
    for seq in 0..EVENTS {
        if seq % 100 == 99 {
            continue;
        }
        for tracker in &mut trackers {
            if streams == 1 {
                // An echo client's own stream.
                black_box(tracker.deliver(7, 0, seq, true));
            } else {
                for source in 0..streams {
                    black_box(tracker.deliver(source, 1, 1_000 + seq, false));
                }
            }
        }
    }
    let rss_after = vm_rss_kib();
    let heap = LIVE.load(Relaxed) - live_before;
    let peak = PEAK.load(Relaxed) - live_before;
    let allocations = ALLOCATIONS.load(Relaxed) - allocations_before;
    let total = receivers * streams as usize;
    let inline = receivers * size_of::<Tracker>();
    println!(
        "| {receivers} × {streams} | {:.1} B | {:.2} MB | {:.2} MB | {:.1} B | {:.2} MB | {allocations} |",
        heap as f64 / total as f64,
        heap as f64 / 1e6,
        peak as f64 / 1e6,
        (rss_after - rss_before) as f64 * 1024.0 / total as f64,
        (rss_after - rss_before) as f64 * 1024.0 / 1e6,
    );
    eprintln!(
        "  ({receivers} × {streams}: trackers inline in sessions {inline} B, {:.1} B per stream)",
        inline as f64 / total as f64
    );
    black_box(&trackers);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--shape") {
        let receivers = args[at + 1].parse().expect("receivers");
        let streams = args[at + 2].parse().expect("streams");
        measure(receivers, streams);
        return;
    }
    println!(
        "size_of: SeqWindow {} B, Tracker {} B (inline in the session); {EVENTS} deliveries per \
         stream, every 100th missing",
        size_of::<SeqWindow>(),
        size_of::<Tracker>()
    );
    println!(
        "| receivers × streams | heap per stream | heap | heap peak | RSS per stream | RSS | allocations |"
    );
    println!("|---|---|---|---|---|---|---|");
    let me = std::env::current_exe().expect("current exe");
    for (receivers, streams) in SHAPES {
        let status = Command::new(&me)
            .args(["--shape", &receivers.to_string(), &streams.to_string()])
            .status()
            .expect("child");
        assert!(status.success(), "{receivers} × {streams}: {status}");
    }
}
