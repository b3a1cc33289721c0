//! How the writer commits a batch of queued writes: inserts alone are sent whole, all or
//! nothing; jobs each in a savepoint, with the inserts after them; and when a batch of inserts
//! fails as a whole, each insert again alone, so only a faulty one fails.

use super::{answer_with, begin, Answer, Inserted, Job, NewResource, Writer};
use crate::error::Error;
use crate::store::insert::{insert_statements, one_call, Undo};
use crate::store::lost_session;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr, TransactionTrait};

impl Writer {
    /// Runs the batch in one transaction and commits it; pushes each caller's answer, to be
    /// given once it is committed.
    pub(super) async fn commit_batch(
        &mut self,
        jobs: Vec<Job>,
        inserts: Vec<(NewResource, Inserted)>,
        answers: &mut Vec<Answer>,
    ) -> Result<(), DbErr> {
        if jobs.is_empty() {
            // The usual batch: inserts only, sent whole, no savepoint around them.
            if self.commit_inserts(&inserts).await? {
                answers.extend(inserts.into_iter().map(inserted));
                return Ok(());
            }
            // The batch failed as a whole: each alone now, so only the faulty ones fail.
            let txn = begin(&self.db).await?;
            self.insert_each(&txn, inserts, answers).await?;
            return txn.commit().await;
        }
        let txn = begin(&self.db).await?;
        for job in jobs {
            answers.push(job(&txn).await);
        }
        self.insert_isolated(&txn, inserts, answers).await?;
        txn.commit().await
    }

    /// Inserts a batch of new resources alone, all or nothing, in as few round trips as the
    /// backend allows: on SQLite BEGIN, every INSERT (`INSERT OR ROLLBACK`: a failure undoes
    /// the whole batch, so SQLite keeps no statement journal) and COMMIT in one call; on
    /// PostgreSQL one statement, atomic on its own. False when it failed and nothing is
    /// committed.
    async fn commit_inserts(&mut self, inserts: &[(NewResource, Inserted)]) -> Result<bool, DbErr> {
        let backend = self.db.get_database_backend();
        let undo = Undo::Transaction;
        let mut statements = insert_statements(backend, inserts.iter().map(|(r, _)| r), undo);
        let outcome = match backend {
            DatabaseBackend::Sqlite => {
                let outcome = self
                    .db
                    .execute(one_call("BEGIN", statements, "COMMIT"))
                    .await;
                if outcome.is_err() {
                    // Fails harmlessly when what failed was BEGIN itself.
                    let _ = self.db.execute_unprepared("ROLLBACK").await;
                }
                outcome.map(|_| ())
            }
            _ if statements.len() == 1 => match statements.pop() {
                Some(statement) => self.db.execute(statement).await.map(|_| ()),
                None => Ok(()),
            },
            _ => {
                let txn = begin(&self.db).await?;
                let mut outcome = Ok(());
                for statement in statements {
                    outcome = txn.execute(statement).await.map(|_| ());
                    if outcome.is_err() {
                        break;
                    }
                }
                match outcome {
                    Ok(()) => txn.commit().await,
                    Err(e) => {
                        txn.rollback().await?;
                        Err(e)
                    }
                }
            }
        };
        match outcome {
            Ok(()) => Ok(true),
            Err(e) => {
                self.end_if_disk_failed(&e);
                // A lost session is noticed, so that the one-by-one retry of the batch gets a
                // connection checked first (see `lost_session`).
                lost_session::noticed(&e);
                Ok(false)
            }
        }
    }

    /// Inserts `resources` together; if that fails, each alone, so only the faulty ones fail.
    /// Pushes each caller's answer. Errs only when the transaction itself is broken.
    async fn insert_isolated(
        &self,
        txn: &DatabaseTransaction,
        resources: Vec<(NewResource, Inserted)>,
        answers: &mut Vec<Answer>,
    ) -> Result<(), DbErr> {
        if resources.is_empty() {
            return Ok(());
        }
        match self
            .try_insert(txn, resources.iter().map(|(r, _)| r))
            .await?
        {
            Ok(()) => {
                answers.extend(resources.into_iter().map(inserted));
                Ok(())
            }
            Err(_) => self.insert_each(txn, resources, answers).await,
        }
    }

    /// Inserts each of `resources` in a savepoint of its own; pushes each caller's answer.
    async fn insert_each(
        &self,
        txn: &DatabaseTransaction,
        resources: Vec<(NewResource, Inserted)>,
        answers: &mut Vec<Answer>,
    ) -> Result<(), DbErr> {
        for (resource, answer) in resources {
            let result = self
                .try_insert(txn, std::iter::once(&resource))
                .await?
                .map(|()| resource)
                .map_err(Error::Database);
            answers.push(answer_with(answer, result));
        }
        Ok(())
    }

    /// Inserts the rows of `resources` in a savepoint: all of them, or (the inner error) none.
    /// The outer error means the transaction is broken.
    async fn try_insert<'r>(
        &self,
        txn: &DatabaseTransaction,
        resources: impl Iterator<Item = &'r NewResource>,
    ) -> Result<Result<(), DbErr>, DbErr> {
        let savepoint = txn.begin().await?;
        match insert_rows(&savepoint, resources).await {
            Ok(()) => {
                savepoint.commit().await?;
                Ok(Ok(()))
            }
            Err(e) => {
                self.end_if_disk_failed(&e);
                savepoint.rollback().await?;
                Ok(Err(e))
            }
        }
    }
}

/// The answer of an insert that went in.
fn inserted((resource, answer): (NewResource, Inserted)) -> Answer {
    answer_with(answer, Ok(resource))
}

/// Inserts the rows of `resources` (see `insert_statements`) in the caller's transaction.
async fn insert_rows<'r, C: ConnectionTrait>(
    db: &C,
    resources: impl Iterator<Item = &'r NewResource>,
) -> Result<(), DbErr> {
    let statements = insert_statements(db.get_database_backend(), resources, Undo::Statement);
    for statement in statements {
        db.execute(statement).await?;
    }
    Ok(())
}
