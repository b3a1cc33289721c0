//! SQLite WAL checkpoints beside the writer.
//!
//! By default SQLite checkpoints (copies the WAL back into the database file and fsyncs it)
//! inside the commit that crosses 1,000 WAL pages, so every few batches the single writer
//! stalls for it. Here automatic checkpoints are off (`wal_autocheckpoint=0`) and this task
//! runs a PASSIVE checkpoint, which never blocks the writer or readers, shortly after the
//! writer's commits and once a second in any case.
//! Durability does not depend on it: a commit is durable once its WAL frames are synced.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the WAL is checkpointed while the writer commits.
const INTERVAL: Duration = Duration::from_millis(250);
/// Every this many intervals it is checkpointed anyway: some writes do not go through the
/// writer (subscriptions, delivery records, received events), and the WAL must not grow
/// without bound on their account.
const ANYWAY_EVERY: u32 = 4;

/// Starts the task; it ends when the writer that owns `commits` has ended.
pub fn start(db: DatabaseConnection, commits: Weak<AtomicU64>) {
    tokio::spawn(async move {
        let (mut seen, mut ticks) = (0, 0u32);
        loop {
            tokio::time::sleep(INTERVAL).await;
            let Some(count) = commits.upgrade().map(|c| c.load(Ordering::Relaxed)) else {
                return;
            };
            ticks = ticks.wrapping_add(1);
            if count == seen && ticks % ANYWAY_EVERY != 0 {
                continue;
            }
            seen = count;
            if let Err(e) = db
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await
            {
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying later");
            }
        }
    });
}

/// Counts the writer's commits for the checkpointer.
pub fn counter() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(0))
}
