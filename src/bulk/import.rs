//! Import jobs: the body is spooled to disk (`spool`), the job recorded, and a task reads the
//! file (`read`, on a blocking thread) and stores its rows in batches of
//! `TMF635_IMPORT_BATCH_ROWS`, each batch in one transaction with its events and the job's
//! counts. A sweeper takes over jobs whose runner stopped: resumed after their last stored
//! batch where their body is on this machine, failed with their counts elsewhere.

use super::in_flight::InFlight;
use super::read::{self, Item, Reading};
use super::row::{error_json, RowError};
use super::{spool, Format};
use crate::config::Config;
use crate::error::Error;
use crate::store::import::{ImportRow, Stored};
use crate::store::jobs::{self, Counts};
use crate::store::{Store, Tenant, TenantStore};
use chrono::{DateTime, Utc};
use entity::bulk_job::Model as Job;
use entity::usage::Entity as UsageTable;
use poem::http::StatusCode;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

/// Errors a job keeps (the first ones); the counts go on.
pub const MAX_ERRORS: usize = 100;

/// A batch is stored at least this often while rows arrive, so the job's heartbeat is fresh
/// even when rows come slowly.
const HEARTBEAT: Duration = Duration::from_secs(1);

pub struct ImportSettings {
    pub spool_dir: PathBuf,
    pub max_import_bytes: u64,
    pub batch_rows: usize,
    pub order_rows: u64,
    pub max_row_bytes: usize,
    pub stale: Duration,
}

impl ImportSettings {
    pub fn new(config: &Config) -> ImportSettings {
        ImportSettings {
            spool_dir: config
                .import_spool_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir),
            max_import_bytes: config.max_import_bytes,
            batch_rows: config.import_batch_rows.max(1),
            order_rows: config.import_order_rows,
            max_row_bytes: config.max_body_bytes,
            stale: Duration::from_millis(config.import_stale_ms.max(100)),
        }
    }
}

/// The imports of this instance.
#[derive(Clone)]
pub struct Imports {
    store: Store,
    settings: Arc<ImportSettings>,
    /// One permit per import running or waiting here.
    slots: Arc<Semaphore>,
}

impl Imports {
    pub fn new(store: Store, config: &Config) -> Imports {
        Imports {
            store,
            settings: Arc::new(ImportSettings::new(config)),
            slots: Arc::new(Semaphore::new(config.max_import_jobs.max(1))),
        }
    }

    /// Spools `body`, records the job as `tenant`'s and starts it; answers the job as recorded.
    pub async fn start(
        &self,
        tenant: &TenantStore,
        format: Format,
        body: poem::Body,
        href_prefix: String,
    ) -> poem::Result<Job> {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            return Err(poem::Error::from_string(
                "as many imports as allowed are running in this instance; try again later",
                StatusCode::SERVICE_UNAVAILABLE,
            ));
        };
        let mut job = jobs::new_job(jobs::IMPORT, jobs::NOT_STARTED, format.content_type());
        job.href_prefix = Some(href_prefix);
        job.order_rows = Some(i64::try_from(self.settings.order_rows).unwrap_or(i64::MAX));
        let dir = &self.settings.spool_dir;
        let path = spool::receive(body, dir, &job.id, self.settings.max_import_bytes).await?;
        let job = match tenant.create_job(job).await {
            Ok(job) => job,
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(e.into());
            }
        };
        tokio::spawn(self.clone().run(job.clone(), false, permit));
        Ok(job)
    }

    /// Runs `job` to its end: a new one, or one `resumed` from the stale state it was read in.
    async fn run(self, job: Job, resumed: bool, _permit: OwnedSemaphorePermit) {
        let seen = resumed.then_some(job.updated_at);
        let Ok(Some(heartbeat)) = self.store.claim_job(&job.id, &job.status, seen).await else {
            return;
        };
        let mut counts = Counts::of(&job);
        counts.heartbeat = heartbeat;
        let path = spool::path(&self.settings.spool_dir, &job.id);
        let (status, message, heartbeat) = match self.import(&job, counts, path.clone()).await {
            Ok((None, heartbeat)) => (jobs::SUCCEEDED, None, heartbeat),
            Ok((Some(fatal), heartbeat)) => (jobs::FAILED, Some(fatal), heartbeat),
            Err(e) => {
                // Left running: the sweeper resumes it after its last stored batch (or
                // another instance has taken it over, and ends it).
                tracing::error!(job = %job.id, error = %e, "an import stopped");
                return;
            }
        };
        if let Err(e) = self
            .store
            .end_job(&job.id, Some(heartbeat), status, message)
            .await
        {
            tracing::error!(job = %job.id, error = %e, "an import's end was not recorded");
        }
        let _ = tokio::fs::remove_file(&path).await;
    }

    /// Reads and stores the rows, from `counts` on; answers why the body could not be read to
    /// its end, if so, and the job's last heartbeat.
    async fn import(
        &self,
        job: &Job,
        counts: Counts,
        path: PathBuf,
    ) -> Result<(Option<String>, DateTime<Utc>), Error> {
        let format = Format::of(&job.content_type)
            .ok_or_else(|| Error::Internal(format!("unknown format {}", job.content_type)))?;
        let (sender, mut rows) = mpsc::channel(self.settings.batch_rows);
        let reading = Reading {
            path,
            format,
            max_row_bytes: self.settings.max_row_bytes,
            href_prefix: job.href_prefix.clone().unwrap_or_default(),
            skip: job.rows_read.max(0) as u64,
            // The window the job started with: a resumed job orders its rows as before.
            order_rows: job.order_rows.unwrap_or(0).max(0) as u64,
        };
        tokio::task::spawn_blocking(move || read::read_file(reading, sender));
        // The rows are the job's tenant's.
        let store = self.store.for_tenant(Tenant::of_row(&job.tenant));
        let mut batches = InFlight::new(store, &job.id, counts);
        let mut batch = Batch::default();
        let fatal = loop {
            let item = match tokio::time::timeout(HEARTBEAT, rows.recv()).await {
                Ok(Some(item)) => item,
                Ok(None) => break None,
                Err(_) => {
                    self.send(&mut batches, std::mem::take(&mut batch)).await?;
                    continue;
                }
            };
            match item {
                Item::Row(line, row) => batch.add(line, *row),
                Item::Fatal(message) => break Some(message),
            }
            if batch.len() >= self.settings.batch_rows {
                self.send(&mut batches, std::mem::take(&mut batch)).await?;
            }
        };
        self.send(&mut batches, batch).await?;
        let (before, last) = batches.finish().await?;
        self.refresh_statistics(&before, &last).await;
        Ok((fatal, last.heartbeat))
    }

    /// Sends a batch on its way, with the job's counts after it.
    async fn send(&self, batches: &mut InFlight, batch: Batch) -> Result<(), Error> {
        let Batch {
            read,
            rows,
            rejected,
        } = batch;
        let heartbeat = jobs::now();
        let done = batches
            .send(rows, move |before, stored| {
                after(before, read, &rejected, stored, heartbeat)
            })
            .await?;
        if let Some((before, last)) = done {
            self.refresh_statistics(&before, &last).await;
        }
        Ok(())
    }

    /// Refreshes the planner's statistics of the tables an import fills (PostgreSQL). A table
    /// that grew since its last ANALYZE keeps the plans made for its old size: the lookup of
    /// the ids a batch holds, planned for a table of a few rows, reads the whole table at
    /// every batch once it has grown. Done when the import crossed a refresh point from
    /// `before` to `after`. A failure is logged; the import goes on.
    async fn refresh_statistics(&self, before: &Counts, after: &Counts) {
        if !statistics_due(before.created, after.created) {
            return;
        }
        if let Err(e) = self.store.refresh_statistics::<UsageTable>().await {
            tracing::warn!(error = %e, "refreshing the planner's statistics after an import");
        }
    }

    /// Every `stale / 4`, takes over or fails the imports whose runner stopped.
    pub async fn sweep(self, mut shutdown: watch::Receiver<bool>) {
        let every = (self.settings.stale / 4).max(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            if let Err(e) = self.sweep_once().await {
                tracing::warn!(error = %e, "looking for stopped imports");
            }
        }
    }

    async fn sweep_once(&self) -> Result<(), Error> {
        let stale = chrono::Duration::from_std(self.settings.stale).unwrap_or_default();
        for seen in self.store.stale_imports(Utc::now() - stale).await? {
            let path = spool::path(&self.settings.spool_dir, &seen.id);
            if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                // Resumed here, after its last stored batch, when a slot is free.
                if let Ok(permit) = self.slots.clone().try_acquire_owned() {
                    tracing::info!(job = %seen.id, rows = seen.rows_read, "resuming an import");
                    tokio::spawn(self.clone().run(seen, true, permit));
                }
                continue;
            }
            let message = "the instance running the import stopped; the counts say what was \
                           stored";
            self.store
                .end_job(
                    &seen.id,
                    Some(seen.updated_at),
                    jobs::FAILED,
                    Some(message.into()),
                )
                .await?;
        }
        Ok(())
    }
}

/// Rows read since the last batch sent.
#[derive(Default)]
struct Batch {
    read: i64,
    rows: Vec<ImportRow>,
    rejected: Vec<(u64, RowError)>,
}

impl Batch {
    fn add(&mut self, line: u64, row: Result<ImportRow, RowError>) {
        self.read += 1;
        match row {
            Ok(row) => self.rows.push(row),
            Err(e) => self.rejected.push((line, e)),
        }
    }

    fn len(&self) -> usize {
        self.read as usize
    }
}

/// Usages an import creates before the planner's statistics are first refreshed; then again
/// each time the import has doubled what it created, so the plans are never made for a table
/// less than half its size by the import's own doing.
const FIRST_STATISTICS: i64 = 1024;

/// Whether the import went from `before` created usages to `after` across a refresh point.
fn statistics_due(before: i64, after: i64) -> bool {
    after >= FIRST_STATISTICS && (before < FIRST_STATISTICS || after.ilog2() > before.ilog2())
}

/// The job's counts once a batch is stored: `read` rows more, `rejected` and the rows the
/// database refused rejected, the rest created or skipped as `stored` says.
fn after(
    base: &Counts,
    read: i64,
    rejected: &[(u64, RowError)],
    stored: &Stored,
    heartbeat: DateTime<Utc>,
) -> Counts {
    // The errors of the first lines: rows are stored in date order within a window, so a
    // later batch may hold an earlier line.
    let mut errors: Vec<Value> = serde_json::from_str(&base.errors).unwrap_or_default();
    let refused = RowError::new("the database refused the row");
    errors.extend(rejected.iter().map(|(line, e)| error_json(*line, e)));
    errors.extend(
        stored
            .refused
            .iter()
            .map(|line| error_json(*line, &refused)),
    );
    errors.sort_by_key(|e| e["line"].as_u64().unwrap_or(u64::MAX));
    errors.truncate(MAX_ERRORS);
    Counts {
        read: base.read + read,
        created: base.created + stored.created,
        skipped: base.skipped + stored.skipped,
        rejected: base.rejected + rejected.len() as i64 + stored.refused.len() as i64,
        errors: Value::Array(errors).to_string(),
        heartbeat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_refreshed_at_1024_usages_then_at_each_doubling() {
        let due: Vec<i64> = (0..=10_000)
            .step_by(500)
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| statistics_due(w[0], w[1]))
            .map(|w| w[1])
            .collect();
        assert_eq!(due, vec![1500, 2500, 4500, 8500]);
        assert!(!statistics_due(0, 1023));
        assert!(statistics_due(1000, 1024));
        assert!(!statistics_due(1024, 2047));
    }
}
