//! SQLite WAL checkpoints beside the writer.
//!
//! By default SQLite checkpoints (copies the WAL back into the database file and fsyncs it)
//! inside the commit that crosses 1,000 WAL pages, so every few batches the single writer
//! stalls for it. Here automatic checkpoints are off (`wal_autocheckpoint=0`) and this task
//! runs a PASSIVE checkpoint, which never blocks the writer or readers, shortly after the
//! writer's commits and once a second in any case.
//! Durability does not depend on it: a commit is durable once its WAL frames are synced
//! (`wal_sync`), and SQLite syncs the WAL before a checkpoint copies frames out of it.
//! Under a steady stream of writes the WAL would still grow without end; `bound_wal` is the
//! writer's share in keeping it bounded.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::path::Path;
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

/// Size of the WAL file past which the writer checkpoints it itself, between two batches:
/// large enough that under a full load of writes the pause (the writes of that moment wait
/// for it) is rare, small enough that recovering the WAL after a crash is quick.
pub(super) const WAL_BOUND: u64 = 512 << 20;

/// Keeps the WAL from growing without end under a steady stream of writes. The checkpoints of
/// the task above copy the WAL into the database file, but SQLite starts the WAL over only
/// when a write transaction begins with all of it copied, which under back-to-back batches
/// never happens. So once the file passes `WAL_BOUND`, the writer copies what is left itself
/// (most of it is copied already), and its next batch starts the WAL over, writing it again
/// from the top. Writes wait for that copy.
pub async fn bound_wal(writer: &DatabaseConnection, wal: &Path) {
    checkpoint_past(writer, wal, WAL_BOUND).await;
}

/// The size of the file at `path`; 0 when there is none.
fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

async fn checkpoint_past(writer: &DatabaseConnection, wal: &Path, bound: u64) {
    let size = file_size(wal);
    if size <= bound {
        return;
    }
    let started = std::time::Instant::now();
    match writer
        .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
        .await
    {
        Ok(_) => tracing::debug!(
            wal_bytes = size,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "WAL checkpointed by the writer"
        ),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint by the writer failed; retrying later"),
    }
}

/// Counts the writer's commits for the checkpointer.
pub fn counter() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Database;

    async fn write_rows(db: &DatabaseConnection, n: usize) {
        for _ in 0..n {
            db.execute_unprepared("INSERT INTO t (v) VALUES (randomblob(3000))")
                .await
                .expect("insert");
        }
    }

    #[tokio::test]
    async fn the_writer_starts_a_large_wal_over() {
        let dir = std::env::temp_dir().join(format!("tmf635-wal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        let role = super::super::Role::SqliteWriter;
        let options = super::super::options(&url, 1, role);
        let db = Database::connect(options).await.expect("connect");
        // Truncated to its frames when it starts over, so its size shows when it does.
        db.execute_unprepared("PRAGMA journal_size_limit = 0; CREATE TABLE t (v BLOB)")
            .await
            .expect("setup");
        let wal = dir.join("t.db-wal");
        write_rows(&db, 200).await;
        let grown = file_size(&wal);
        // Under the bound nothing happens, and with no checkpoint the WAL only grows.
        checkpoint_past(&db, &wal, grown).await;
        write_rows(&db, 1).await;
        assert!(file_size(&wal) > grown, "the WAL started over by itself");
        checkpoint_past(&db, &wal, 64 * 1024).await;
        write_rows(&db, 1).await;
        let after = file_size(&wal);
        assert!(
            after < grown / 10,
            "WAL of {after} bytes after, {grown} before"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
