//! Giving freed memory back to the system after idle connections released their buffers.
//!
//! glibc keeps what a program frees resident and returns only the top of its heap, so after a
//! burst of senders who then stay connected and idle, the released buffers of every connection
//! would keep the process at the burst's high-water mark. `malloc_trim` hands the free pages back
//! (1,000 idle connections after a burst: about 7.5 → 5.5 KiB each, see BENCHMARKS.md).

use std::time::Duration;

use tokio::sync::Notify;

/// Rung by every release; the trimmer waits on it, so an idle gateway never wakes for it.
static RELEASED: Notify = Notify::const_new();

/// Time for a burst of releases to finish before one trim covers them all; also the least time
/// between two trims (a trim walks the whole heap).
const SETTLE: Duration = Duration::from_millis(250);

/// Says that a connection freed its buffers.
pub fn note_release() {
    RELEASED.notify_one();
}

/// Trims the heap `SETTLE` after connections released buffers, forever.
pub async fn return_released_memory() {
    trim_after_releases(&RELEASED, trim).await
}

/// One `trim` per burst of `released` notifications, `SETTLE` after it starts.
async fn trim_after_releases(released: &Notify, trim: impl Fn()) {
    loop {
        released.notified().await;
        tokio::time::sleep(SETTLE).await;
        trim();
    }
}

/// The crate's one `unsafe` block.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: `malloc_trim` takes no pointers and has no preconditions; glibc documents it as
    // safe to call from any thread at any time (MT-Safe).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other C libraries (musl in the static image) have no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_releases_is_trimmed_after_it_settles_and_quiet_costs_nothing() {
        let released = Notify::new();
        let trims = std::cell::Cell::new(0);
        let trimmer = trim_after_releases(&released, || trims.set(trims.get() + 1));
        let releases = async {
            for _ in 0..100 {
                released.notify_one();
            }
            tokio::time::sleep(SETTLE / 2).await;
            assert_eq!(trims.get(), 0, "no trim while the burst settles");
            tokio::time::sleep(SETTLE * 3).await;
            // One trim for the releases the trimmer was woken by, at most one more for those that
            // came while it slept: never one per release.
            let after_burst = trims.get();
            assert!((1..=2).contains(&after_burst), "{after_burst} trims for one burst");
            tokio::time::sleep(SETTLE * 20).await;
            assert_eq!(trims.get(), after_burst, "no trim without a release");
            released.notify_one();
            tokio::time::sleep(SETTLE * 2).await;
            assert_eq!(trims.get(), after_burst + 1, "a later release is trimmed too");
        };
        tokio::select! {
            () = trimmer => unreachable!("the trimmer runs forever"),
            () = releases => {}
        }
    }
}
