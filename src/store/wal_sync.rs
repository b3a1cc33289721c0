//! SQLite: the writer's commits made durable beside it, and reads that wait for that.
//!
//! With `synchronous=FULL` SQLite syncs the WAL inside every COMMIT, holding the one write
//! lock, so the next batch cannot start before the disk has answered: under load a fifth of
//! the writer's time went to waiting for it. So the writer's own connection commits with
//! `synchronous=NORMAL` (the WAL frames are written, not yet synced), and this stage, on a
//! thread of its own, syncs the WAL file and only then answers the batch's callers. The next
//! batch runs while the disk works; one sync covers every batch committed meanwhile; and no
//! caller hears of a write before it would survive a power loss.
//!
//! A batch is visible to other connections from its COMMIT, before its sync. So that no
//! client is shown a write a power loss could still take back, the reads of what the writer
//! writes wait ([`Durability::settled`]) until every batch begun before them is synced: a
//! moment under writes, nothing when there are none.

use super::writer::Answer;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::{watch, Notify};

/// How far the writer's batches are: begun, and synced to disk.
pub struct Durability {
    begun: AtomicU64,
    synced: watch::Sender<u64>,
    /// A sync failed: what the WAL holds is no longer known to be on disk, so no write is
    /// taken any more (as PostgreSQL stops on a failed fsync) until the server restarts and
    /// SQLite recovers from what the disk has.
    failed: AtomicBool,
}

impl Durability {
    pub fn new() -> Arc<Durability> {
        Arc::new(Durability {
            begun: AtomicU64::new(0),
            synced: watch::Sender::new(0),
            failed: AtomicBool::new(false),
        })
    }

    /// Numbers the writer's next batch; called before it writes anything.
    pub fn begin(&self) -> u64 {
        self.begun.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Completes once every batch begun so far is synced. A read that calls it after its
    /// query cannot have seen a batch begun later: a batch is begun before it commits.
    pub async fn settled(&self) {
        let target = self.begun.load(Ordering::SeqCst);
        if *self.synced.borrow() >= target {
            return;
        }
        let mut synced = self.synced.subscribe();
        // Fails only when the sender is gone, which it is not while `self` lives.
        let _ = synced.wait_for(|synced| *synced >= target).await;
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }
}

/// A committed batch (or one that failed and wrote nothing: no answers) waiting for its sync.
pub struct Committed {
    pub number: u64,
    pub answers: Vec<Answer>,
}

/// Makes what was written to the WAL durable.
pub type Sync = Box<dyn FnMut() -> std::io::Result<()> + Send>;

/// Syncs the WAL file at `path` (`fdatasync`). It is opened afresh each time, so the sync is
/// always of the file SQLite writes now. A missing file is nothing to sync: SQLite removes
/// the WAL only after checkpointing it into the database file and syncing that.
pub fn wal_file(path: PathBuf) -> Sync {
    Box::new(move || match std::fs::File::open(&path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    })
}

/// What the stage tells once batches are synced: the delivery worker, the checkpointer.
pub struct Synced {
    pub changes: Arc<Notify>,
    pub commits: Arc<AtomicU64>,
}

/// Starts the stage's thread; it ends when the returned sender is dropped, after answering
/// what it was sent.
pub fn start(
    mut sync: Sync,
    durability: Arc<Durability>,
    synced: Synced,
) -> std::io::Result<mpsc::Sender<Committed>> {
    let (sender, receiver) = mpsc::channel::<Committed>();
    std::thread::Builder::new()
        .name("tmf635-wal-sync".into())
        .spawn(move || {
            while let Ok(first) = receiver.recv() {
                let mut batches = vec![first];
                batches.extend(receiver.try_iter());
                let last = batches.last().map_or(0, |b| b.number);
                let answered = batches.iter().any(|b| !b.answers.is_empty());
                if answered && !durability.failed() {
                    if let Err(e) = sync() {
                        tracing::error!(
                            error = %e,
                            "syncing the WAL failed: writes are refused until a restart"
                        );
                        durability.failed.store(true, Ordering::SeqCst);
                    }
                }
                // After a failed sync the answers are dropped: their callers are told the
                // write was not committed, which is all that can be said of it.
                if !durability.failed() {
                    for answer in batches.into_iter().flat_map(|b| b.answers) {
                        answer();
                    }
                }
                durability.synced.send_replace(last);
                synced.commits.fetch_add(1, Ordering::Relaxed);
                synced.changes.notify_one();
            }
        })?;
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stage(sync: Sync) -> (Arc<Durability>, mpsc::Sender<Committed>) {
        let durability = Durability::new();
        let synced = Synced {
            changes: Arc::new(Notify::new()),
            commits: Arc::new(AtomicU64::new(0)),
        };
        let sender = start(sync, durability.clone(), synced).expect("thread");
        (durability, sender)
    }

    /// A sync that waits for a go from the test; tells the test when it is reached.
    fn gated() -> (Sync, mpsc::Receiver<()>, mpsc::Sender<std::io::Result<()>>) {
        let (reached, reached_rx) = mpsc::channel();
        let (go, go_rx) = mpsc::channel::<std::io::Result<()>>();
        let sync: Sync = Box::new(move || {
            let _ = reached.send(());
            go_rx.recv().unwrap_or(Ok(()))
        });
        (sync, reached_rx, go)
    }

    /// Hands the stage one committed batch of one write; counts the answers given to it.
    fn commit_one(durability: &Durability, sender: &mpsc::Sender<Committed>) -> Arc<AtomicU64> {
        let told = Arc::new(AtomicU64::new(0));
        let answered = told.clone();
        let answer: Answer = Box::new(move || {
            answered.fetch_add(1, Ordering::SeqCst);
        });
        let number = durability.begin();
        sender
            .send(Committed {
                number,
                answers: vec![answer],
            })
            .expect("stage");
        told
    }

    #[tokio::test]
    async fn callers_and_reads_wait_for_the_sync() {
        let (sync, reached, go) = gated();
        let (durability, sender) = stage(sync);
        let told = commit_one(&durability, &sender);
        reached.recv().expect("the sync is reached");
        // Committed, not synced: the caller is not answered and a read does not settle.
        let read = tokio::time::timeout(Duration::from_millis(100), durability.settled()).await;
        assert!(read.is_err(), "a read settled before the sync");
        assert_eq!(told.load(Ordering::SeqCst), 0);
        go.send(Ok(())).expect("go");
        tokio::time::timeout(Duration::from_secs(5), durability.settled())
            .await
            .expect("settles after the sync");
        assert_eq!(told.load(Ordering::SeqCst), 1);
        assert!(!durability.failed());
    }

    #[tokio::test]
    async fn a_failed_sync_answers_no_one_and_refuses_writes() {
        let (sync, reached, go) = gated();
        let (durability, sender) = stage(sync);
        let told = commit_one(&durability, &sender);
        reached.recv().expect("the sync is reached");
        go.send(Err(std::io::Error::other("disk gone")))
            .expect("go");
        tokio::time::timeout(Duration::from_secs(5), durability.settled())
            .await
            .expect("reads are not held forever");
        assert_eq!(told.load(Ordering::SeqCst), 0);
        assert!(durability.failed());
    }

    #[tokio::test]
    async fn a_read_with_nothing_in_flight_settles_at_once() {
        let (durability, _sender) = stage(Box::new(|| Ok(())));
        tokio::time::timeout(Duration::from_millis(100), durability.settled())
            .await
            .expect("settled");
    }
}
