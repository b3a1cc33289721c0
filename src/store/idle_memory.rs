//! What the SQLite writer gives back when it has had nothing to do for a while.
//!
//! After a load, an idle server kept ~100 MB: the writer's 32 MiB page cache stays full, and
//! SQLite allocates through the C library's malloc, which keeps what is freed (the rest of
//! the server allocates through jemalloc, which returns idle pages by itself). Released, the
//! idle server is at ~50 MB (BENCHMARKS.md, session 14).

use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long the writer waits for work before it lets go of its memory.
const IDLE_AFTER: Duration = Duration::from_secs(30);

/// Waits for up to `limit` items of `queue` into `batch`, as `recv_many` does. `release`, the
/// SQLite writer's connection, gives back its memory once the wait passes `IDLE_AFTER`.
pub(super) async fn recv_many<T>(
    queue: &mut mpsc::Receiver<T>,
    batch: &mut Vec<T>,
    limit: usize,
    release: Option<&DatabaseConnection>,
) -> usize {
    let Some(db) = release else {
        return queue.recv_many(batch, limit).await;
    };
    // recv_many is cancel safe: a timed-out wait has taken nothing from the queue.
    match tokio::time::timeout(IDLE_AFTER, queue.recv_many(batch, limit)).await {
        Ok(received) => received,
        Err(_idle) => {
            release_memory(db).await;
            queue.recv_many(batch, limit).await
        }
    }
}

/// Frees SQLite's page cache on `db` and hands what glibc's malloc holds free back to the
/// system.
async fn release_memory(db: &DatabaseConnection) {
    if let Err(e) = db.execute_unprepared("PRAGMA shrink_memory").await {
        tracing::warn!(error = %e, "the idle writer could not release its page cache");
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only returns free memory of glibc's heaps to the system; it
        // may be called from any thread at any time.
        let _trimmed = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
    tracing::debug!("idle: the writer's page cache is released");
}
