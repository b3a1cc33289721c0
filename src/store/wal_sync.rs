//! SQLite: the writer's commits made durable beside it.
//!
//! With `synchronous=FULL` SQLite syncs the WAL inside COMMIT while holding the one write
//! lock, so the next batch cannot start before the disk has answered. Instead the writer's
//! connection commits with `synchronous=NORMAL` (the WAL frames written, not yet synced), and
//! this stage, on a thread of its own, syncs the WAL file and only then answers the batch's
//! callers: the next batch runs while the disk works, one sync covers every batch committed
//! meanwhile, and no caller hears of a write before it would survive a power loss. This is
//! SQLite's own WAL file synced with `fdatasync`, nothing of SQLite's is replaced.
//!
//! A batch is visible to other connections from its COMMIT, before its sync; reads wait for
//! it through [`Durability::settled`] (see `pool`).
//!
//! The file is opened once and kept: a write-back error is reported to the descriptors open
//! when it happens, so a descriptor opened afresh for each sync could miss one. SQLite keeps
//! the same file (it removes the WAL only when the last connection closes, and the writer's
//! stays open); should the path name another file all the same, or any sync fail, what the
//! WAL holds is no longer known to be on disk, and the process ends without answering
//! (as the writer does on a failed commit).

use super::writer::{end_process, Answer};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::{watch, Notify};

/// How far the writer's batches are: begun, and synced to disk.
pub struct Durability {
    begun: AtomicU64,
    synced: watch::Sender<u64>,
}

impl Durability {
    pub fn new() -> Arc<Durability> {
        Arc::new(Durability {
            begun: AtomicU64::new(0),
            synced: watch::Sender::new(0),
        })
    }

    /// Numbers the writer's next batch; called before the batch writes anything.
    pub fn begin(&self) -> u64 {
        self.begun.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Completes once every batch begun so far is synced. Called after a read, it covers
    /// every batch the read can have seen: a batch is begun before it commits.
    pub async fn settled(&self) {
        let target = self.begun.load(Ordering::SeqCst);
        if *self.synced.borrow() >= target {
            return;
        }
        let mut synced = self.synced.subscribe();
        // Fails only when the sender is gone, which it is not while `self` lives.
        let _ = synced.wait_for(|synced| *synced >= target).await;
    }
}

/// A batch the writer has finished, waiting for its sync: committed (its answers to give
/// once synced), or failed and rolled back (nothing to sync; its callers were told).
pub struct Finished {
    pub number: u64,
    pub committed: bool,
    pub answers: Vec<Answer>,
}

/// SQLite's WAL file, open for syncing.
pub struct WalFile {
    path: PathBuf,
    file: File,
    identity: (u64, u64),
}

impl WalFile {
    /// Opens the WAL at `path`, which SQLite has created (the writer's connection is open).
    pub fn open(path: &Path) -> std::io::Result<WalFile> {
        let file = File::open(path)?;
        let metadata = file.metadata()?;
        Ok(WalFile {
            path: path.to_path_buf(),
            file,
            identity: (metadata.dev(), metadata.ino()),
        })
    }

    /// Syncs the descriptor opened at start. A path that now names another file means SQLite
    /// may be writing elsewhere, so that is a failure; a path that names nothing (the
    /// directory was removed under a running server) still leaves SQLite writing to the file
    /// this descriptor holds, so syncing it is the truth about those writes.
    fn sync(&self) -> std::io::Result<()> {
        match std::fs::metadata(&self.path) {
            Ok(now) if (now.dev(), now.ino()) != self.identity => {
                return Err(std::io::Error::other(format!(
                    "{} is no longer the file opened at start",
                    self.path.display()
                )));
            }
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        self.file.sync_data()
    }
}

/// What the stage tells once batches are synced: the delivery worker, the checkpointer.
pub struct Synced {
    pub changes: Arc<Notify>,
    pub commits: Arc<AtomicU64>,
    /// Observes how long each sync takes.
    pub seconds: prometheus_client::metrics::histogram::Histogram,
}

/// Test-only: the number of WAL syncs the stage makes before it treats the next one as a
/// failure of the disk (and so ends the process). Read once, at start; never set it outside
/// tests.
const FAIL_SYNC_AFTER: &str = "TMF635_TEST_FAIL_SYNC_AFTER";

/// Test-only: milliseconds the stage waits before each WAL sync, as a slow disk would, so a
/// test can see what waits for the sync. Read once, at start; never set it outside tests.
const SYNC_DELAY_MS: &str = "TMF635_TEST_SYNC_DELAY_MS";

/// Starts the stage's thread; it ends when the returned sender is dropped, after answering
/// what it was sent.
pub fn start(
    wal: WalFile,
    durability: Arc<Durability>,
    synced: Synced,
) -> std::io::Result<mpsc::Sender<Finished>> {
    let mut syncs_before_failure: Option<u64> = std::env::var(FAIL_SYNC_AFTER)
        .ok()
        .and_then(|n| n.trim().parse().ok());
    let sync_delay = std::env::var(SYNC_DELAY_MS)
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .map(std::time::Duration::from_millis);
    let (sender, receiver) = mpsc::channel::<Finished>();
    std::thread::Builder::new()
        .name("tmf635-wal-sync".into())
        .spawn(move || {
            while let Ok(first) = receiver.recv() {
                let mut batches = vec![first];
                batches.extend(receiver.try_iter());
                if batches.iter().any(|b| b.committed) {
                    if syncs_before_failure == Some(0) {
                        end_process(&format!("a WAL sync failed as {FAIL_SYNC_AFTER} asked"));
                    }
                    if let Some(delay) = sync_delay {
                        std::thread::sleep(delay);
                    }
                    let started = std::time::Instant::now();
                    if let Err(e) = wal.sync() {
                        end_process(&format!("syncing the WAL failed: {e}"));
                    }
                    synced.seconds.observe(started.elapsed().as_secs_f64());
                    syncs_before_failure = syncs_before_failure.map(|n| n - 1);
                }
                // Counted and marked synced before the answers, so whoever an answer wakes
                // finds the mark and the count already there.
                let last = batches.last().map_or(0, |b| b.number);
                durability.synced.send_replace(last);
                synced.commits.fetch_add(1, Ordering::Relaxed);
                synced.changes.notify_one();
                for answer in batches.into_iter().flat_map(|b| b.answers) {
                    answer();
                }
            }
        })?;
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn reads_settle_only_once_what_was_begun_is_synced() {
        let durability = Durability::new();
        tokio::time::timeout(Duration::from_secs(1), durability.settled())
            .await
            .expect("nothing begun: settled at once");
        let first = durability.begin();
        let second = durability.begin();
        let waiting = tokio::time::timeout(Duration::from_millis(50), durability.settled());
        assert!(waiting.await.is_err(), "settled before any sync");
        durability.synced.send_replace(first);
        let waiting = tokio::time::timeout(Duration::from_millis(50), durability.settled());
        assert!(
            waiting.await.is_err(),
            "settled with the second batch unsynced"
        );
        durability.synced.send_replace(second);
        tokio::time::timeout(Duration::from_secs(1), durability.settled())
            .await
            .expect("settled once both are synced");
    }

    #[tokio::test]
    async fn answers_wait_for_the_sync_of_their_batch() {
        let dir = std::env::temp_dir().join(format!("tmf635-wal-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let path = dir.join("db-wal");
        std::fs::write(&path, b"frames").expect("a file to sync");
        let durability = Durability::new();
        let synced = Synced {
            changes: Arc::new(Notify::new()),
            commits: Arc::new(AtomicU64::new(0)),
            seconds: crate::store::WriterMetrics::new().sync,
        };
        let commits = synced.commits.clone();
        let stage = start(
            WalFile::open(&path).expect("open"),
            durability.clone(),
            synced,
        )
        .expect("the stage starts");
        let (told, answered) = tokio::sync::oneshot::channel();
        let number = durability.begin();
        let answer: Answer = Box::new(move || {
            let _ = told.send(());
        });
        stage
            .send(Finished {
                number,
                committed: true,
                answers: vec![answer],
            })
            .expect("the stage takes it");
        tokio::time::timeout(Duration::from_secs(5), answered)
            .await
            .expect("answered")
            .expect("the answer was given, not dropped");
        tokio::time::timeout(Duration::from_secs(5), durability.settled())
            .await
            .expect("settled");
        assert_eq!(commits.load(Ordering::Relaxed), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
