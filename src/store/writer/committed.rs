//! What a write alone hands back at its commit, before it is durable.

use crate::error::Error;
use tokio::sync::oneshot;

/// The outcome of a committed write whose WAL may not be synced yet. `committed` may steer
/// the caller's next write (an import's next batch goes to the writer while this one's WAL
/// is synced), but only `durable` hands the outcome out for anything else: answering a
/// client, ending a job.
#[must_use = "a commit is durable only once `durable` says so"]
pub struct Committed<R> {
    value: R,
    /// Fired once the WAL holding the commit is synced; `None` when it was at its commit.
    synced: Option<oneshot::Receiver<()>>,
}

impl<R> Committed<R> {
    /// A commit that was durable when it was answered (PostgreSQL, SQLite without a file).
    pub fn durable_now(value: R) -> Committed<R> {
        Committed {
            value,
            synced: None,
        }
    }

    pub(super) fn syncing(value: R, synced: oneshot::Receiver<()>) -> Committed<R> {
        Committed {
            value,
            synced: Some(synced),
        }
    }

    /// What was committed, before it is durable.
    pub fn committed(&self) -> &R {
        &self.value
    }

    /// The outcome, once it is durable. An error only if the sync stage stopped without
    /// syncing it, which ends the process.
    pub async fn durable(self) -> Result<R, Error> {
        if let Some(synced) = self.synced {
            synced
                .await
                .map_err(|_| Error::Internal("the write's WAL was not synced".into()))?;
        }
        Ok(self.value)
    }
}
