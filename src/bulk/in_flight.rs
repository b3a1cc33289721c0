//! The batches of an import on their way to the database: up to two at once, so the next
//! batch is written while the one before it commits (PostgreSQL) or is synced (SQLite). Each
//! commits after the one before it, with the job's counts that follow both, so the counts
//! always say exactly what is stored; a batch whose predecessor failed is rolled back.

use crate::error::Error;
use crate::store::import::{ImportRow, Stored, Turn};
use crate::store::jobs::Counts;
use crate::store::TenantStore;
use entity::usage::Entity as UsageTable;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Batches written at once: the one committing and the next.
const DEPTH: usize = 2;

pub struct InFlight {
    store: TenantStore,
    job: String,
    /// Each batch's task, oldest first: it answers the counts after the batch once durable.
    tasks: VecDeque<JoinHandle<Result<Counts, Error>>>,
    /// Where the next batch learns how far the last one sent is.
    turn: Turn,
    /// The ids (and former ids) of the rows of the last batch sent.
    last_ids: Arc<HashSet<String>>,
    /// The counts after the last batch that is done.
    done: Counts,
}

impl InFlight {
    /// Batches of `job` stored as `store`'s rows, the first after `counts`.
    pub fn new(store: TenantStore, job: &str, counts: Counts) -> InFlight {
        let (written, written_turn) = oneshot::channel();
        let (committed, committed_turn) = oneshot::channel();
        let _ = (written.send(()), committed.send(counts.clone()));
        InFlight {
            store,
            job: job.to_string(),
            tasks: VecDeque::new(),
            turn: Turn {
                written: written_turn,
                committed: committed_turn,
            },
            last_ids: Arc::new(HashSet::new()),
            done: counts,
        }
    }

    /// Sends a batch: `rows` to store, and `counts(before, stored)` the job's counts after it.
    /// Waits first for the oldest batch when `DEPTH` are on their way, and answers the counts
    /// of the batches done meanwhile: (before them, after them).
    pub async fn send<F>(
        &mut self,
        rows: Vec<ImportRow>,
        counts: F,
    ) -> Result<Option<(Counts, Counts)>, Error>
    where
        F: Fn(&Counts, &Stored) -> Counts + Send + Sync + 'static,
    {
        let done = if self.tasks.len() >= DEPTH {
            Some(self.next_done().await?)
        } else {
            None
        };
        let ids: HashSet<String> = rows.iter().flat_map(ImportRow::ids).cloned().collect();
        let earlier = std::mem::replace(&mut self.last_ids, Arc::new(ids));
        let (written, written_turn) = oneshot::channel();
        let (sender, committed_turn) = oneshot::channel();
        let next_turn = Turn {
            written: written_turn,
            committed: committed_turn,
        };
        let turn = std::mem::replace(&mut self.turn, next_turn);
        let (store, job) = (self.store.clone(), self.job.clone());
        self.tasks.push_back(tokio::spawn(async move {
            let committed = store
                .import_batch::<UsageTable, _>(job, earlier, rows, turn, written, counts)
                .await?;
            // The next batch may commit now; this one is answered once durable. A failure
            // drops the sender, and the next batch rolls back.
            let _ = sender.send(committed.committed().clone());
            committed.durable().await
        }));
        Ok(done)
    }

    /// Waits for every batch sent; answers the counts before and after them.
    pub async fn finish(mut self) -> Result<(Counts, Counts), Error> {
        let before = self.done.clone();
        while !self.tasks.is_empty() {
            self.next_done().await?;
        }
        Ok((before, self.done))
    }

    /// Waits for the oldest batch; answers the counts before and after it.
    async fn next_done(&mut self) -> Result<(Counts, Counts), Error> {
        let Some(task) = self.tasks.pop_front() else {
            return Err(Error::Internal("no import batch is on its way".into()));
        };
        let counts = task
            .await
            .map_err(|e| Error::Internal(format!("an import batch stopped: {e}")))??;
        let before = std::mem::replace(&mut self.done, counts.clone());
        Ok((before, counts))
    }
}
