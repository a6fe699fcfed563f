//! The thread that unpacks large bodies (inflating, framing, checking them): off the runtime's workers, where
//! milliseconds of inflating would hold up every connection on that worker.
//!
//! One thread, not the blocking pool: the memory budget bounds what requests hold at once, but each thread's
//! allocator keeps the pages it freed for its own next allocations. With 24 gzip bombs at once and a 64 MiB
//! budget, the blocking pool's threads (one per bomb) took the process 190 to 240 MiB up; this one thread,
//! 76 MiB. Jobs run in arrival order, and a bomb holds the thread only while it inflates within the budget.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle};

static UNPACKER: OnceLock<Handle> = OnceLock::new();

/// Runs `job` on the unpacking thread and waits for it; `None` if the thread is gone (it never stops).
pub(crate) async fn unpack<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let handle = UNPACKER.get_or_init(start);
    handle.spawn(async move { job() }).await.ok()
}

fn start() -> Handle {
    let runtime = Builder::new_current_thread()
        .build()
        .expect("a runtime without I/O or timers builds");
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("splat-unpack".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .expect("spawning the unpacking thread");
    handle
}
