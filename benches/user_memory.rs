//! Memory of a user's own values: 100,000 users, each with a row of a data set and four short
//! values captured the way a run captures them (from an HTTP body, an ack, an event: JSON
//! pointers read by `capture_all`). The heap is counted by a global allocator that wraps the
//! system one; malloc's own overhead per allocation is estimated from glibc's chunk rounding
//! (16-byte granules, 8 bytes of header, 32 bytes at least). The inline part is `User`'s size in
//! the boxed session (`size_of`, printed by the client's own test).
//!
//! `cargo bench --bench user_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use volley::scenario::template::UserValues;
use volley::scenario::{Plan, Source, capture_all};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// Bytes glibc would take for the live allocations (chunks rounded up).
static CHUNKS: AtomicUsize = AtomicUsize::new(0);

fn chunk(size: usize) -> usize {
    (size + 8).div_ceil(16).max(2) * 16
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
            CHUNKS.fetch_add(chunk(layout.size()), Relaxed);
            ALLOCATIONS.fetch_add(1, Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
        CHUNKS.fetch_sub(chunk(layout.size()), Relaxed);
        ALLOCATIONS.fetch_sub(1, Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const USERS: usize = 100_000;

const SCENARIO: &str = r#"
name = "captures"
target = "ws://127.0.0.1:9"
protocol = "socketio"
duration = "1s"

[[group]]
name = "g"
clients = 1
on_connect = [
  { emit = "login", ack = true, capture = { token = "/token", session = "/session" } },
  { wait_for = "welcome", capture = { room = "/room", user = "/user" } },
]
"#;

fn main() {
    let source = Source {
        path: "captures.toml".into(),
        text: SCENARIO.into(),
    };
    let plan = Plan::compile(source.parse().unwrap(), &source).unwrap();
    let steps = &plan.groups[0].on_connect;
    let (
        volley::scenario::Action::Emit { ack: Some(ack), .. },
        volley::scenario::Action::WaitFor { captures, .. },
    ) = (&steps[0].action, &steps[1].action)
    else {
        panic!("the scenario's steps");
    };
    let before = (
        LIVE.load(Relaxed),
        CHUNKS.load(Relaxed),
        ALLOCATIONS.load(Relaxed),
    );
    let mut users: Vec<UserValues> = Vec::with_capacity(USERS);
    let reserved = (
        LIVE.load(Relaxed),
        CHUNKS.load(Relaxed),
        ALLOCATIONS.load(Relaxed),
    );
    for i in 0..USERS {
        let mut values = UserValues {
            rows: vec![i as u32],
            vars: vec![None; plan.vars.len()],
        };
        // An ack's arguments, then an event's array: short values, as a login gives them.
        let ack_args = format!(r#"[{{"token":"t{i:08x}","session":"s{i:06}"}}]"#);
        capture_all(
            &ack.captures,
            &plan.vars,
            &mut values,
            ack_args.as_bytes(),
            None,
        )
        .unwrap();
        let event = format!(
            r#"["welcome",{{"room":"lobby-{}","user":"user{i}"}}]"#,
            i % 10
        );
        capture_all(captures, &plan.vars, &mut values, event.as_bytes(), None).unwrap();
        users.push(values);
    }
    let after = (
        LIVE.load(Relaxed),
        CHUNKS.load(Relaxed),
        ALLOCATIONS.load(Relaxed),
    );
    black_box(&users);
    let inline = std::mem::size_of::<UserValues>();
    let heap = (after.0 - reserved.0) as f64 / USERS as f64;
    let chunks = (after.1 - reserved.1) as f64 / USERS as f64;
    let allocations = (after.2 - reserved.2) as f64 / USERS as f64;
    assert_eq!(reserved.0 - before.0, USERS * inline);
    println!(
        "{USERS} users, 4 captured values each ({}): inline {inline} B (UserValues) + heap {heap:.1} B asked in {allocations:.1} allocations = {:.1} B; with malloc's chunks {:.1} B per user",
        plan.vars.join(", "),
        inline as f64 + heap,
        inline as f64 + chunks,
    );
    let per_user = inline as f64 + chunks;
    if per_user > 512.0 {
        eprintln!("over the budget: {per_user:.1} B per user > 512 B");
        std::process::exit(1);
    }
}
