//! The one allocator setting Splat changes, for the long-running `splat serve`.
//!
//! mimalloc (every binary's allocator) gives memory it has freed back to the system only after its
//! `purge_delay` (1 s in v3), and then only when the thread that freed it next allocates. Beside the
//! daily retention run's compaction, which frees tens of MB a second on threads that then sit idle, that
//! held `splat serve` at 181 MB where it needs 146 MB with the delay at 0 (BENCHMARKS.md, "The orphan sweep
//! a folder at a time"). mimalloc reads its options from the environment once, as the process starts and
//! before `main`; the only other way to set one is a C call, and the workspace forbids `unsafe`. So serve
//! starts itself again, once, with the option in its environment: the same process id, arguments and
//! standard streams, a few milliseconds later.

/// The variable mimalloc reads its purge delay (milliseconds) from.
pub const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

/// The environment value serve runs with when nobody set one: freed memory goes back at once.
const PROMPT: &str = "0";

/// Replaces this process with itself under `MIMALLOC_PURGE_DELAY=0` unless the variable is already set
/// (by whoever started Splat, whose choice stands, or by this function before the restart). Returns only
/// when nothing needs doing or the restart could not happen; then Splat runs on with the defaults.
pub fn purge_freed_memory_promptly() {
    if std::env::var_os(PURGE_DELAY).is_some() {
        return;
    }
    if let Err(error) = restart_with(PURGE_DELAY, PROMPT) {
        tracing::warn!(%error, "could not restart with {PURGE_DELAY}={PROMPT}; freed memory is returned after mimalloc's delay");
    }
}

#[cfg(unix)]
fn restart_with(key: &str, value: &str) -> std::io::Result<()> {
    use std::ffi::OsString;
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let mut args = std::env::args_os();
    let name = args.next().unwrap_or_else(|| OsString::from(&exe));
    // `exec` returns only on failure.
    Err(std::process::Command::new(exe)
        .arg0(name)
        .args(args)
        .env(key, value)
        .exec())
}

#[cfg(not(unix))]
fn restart_with(_key: &str, _value: &str) -> std::io::Result<()> {
    Ok(())
}
