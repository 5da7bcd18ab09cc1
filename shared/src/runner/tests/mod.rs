//! The runner's rules over the in-memory store: leases, checkpoints and resumption,
//! deadlines, cancels seen at a checkpoint, and giving up. The same paths run against the
//! engine in the integration tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

mod failures;

use super::{MAX_SEGMENTS, RunOutcome, RunSettings, Runner};
use crate::migration::{Migration, MigrationContext, Registry, Step};
use crate::model::run::millis;
use crate::model::{
    Action, AsyncJob, Control, JobId, JobStatus, JobType, Lease, StoredJob, instant,
};
use crate::store::{DynamoStore, JobStore, MemoryStore, StoreError, local_client};

const RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A migration of `pages` pages that touches no table; it counts the pages it migrated and
/// may fail every step, or cancel the job it runs for after a number of pages.
struct Pages {
    version: u32,
    pages: usize,
    migrated: Arc<AtomicUsize>,
    /// Steps that fail before any succeeds (`usize::MAX`: every one).
    failing_steps: usize,
    calls: Arc<AtomicUsize>,
    /// How long each step takes.
    slowness: Duration,
    cancel_after: Option<(Arc<MemoryStore>, JobId, usize)>,
}

impl Pages {
    fn new(version: u32, pages: usize) -> Self {
        Self {
            version,
            pages,
            migrated: Arc::default(),
            failing_steps: 0,
            calls: Arc::default(),
            slowness: Duration::ZERO,
            cancel_after: None,
        }
    }
}

impl Migration for Pages {
    fn version(&self) -> u32 {
        self.version
    }

    fn name(&self) -> &'static str {
        "pages"
    }

    fn step<'a>(
        &'a self,
        _: &'a MigrationContext<'a>,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Step, StoreError>> {
        Box::pin(async move {
            tokio::time::sleep(self.slowness).await;
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.failing_steps {
                return Err(StoreError::Failed("the disk is full".into()));
            }
            let page: usize = cursor.map_or(0, |c| c.parse().unwrap());
            let migrated = self.migrated.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some((store, id, after)) = &self.cancel_after
                && migrated == *after
            {
                store
                    .control(id, &Control::new(Action::Cancel, "test"))
                    .await?;
            }
            Ok(Step {
                items_scanned: 10,
                items_changed: 1,
                items_skipped: 0,
                next: (page + 1 < self.pages).then(|| (page + 1).to_string()),
            })
        })
    }
}

fn settings() -> RunSettings {
    RunSettings {
        lease: Duration::from_secs(60),
        max_attempts: 3,
        retry_delay: Duration::ZERO,
        max_retry_delay: Duration::ZERO,
        page_size: 10,
        items_per_second: None,
        segments: None,
        segments_at_once: 8,
        stop_before_deadline: Duration::ZERO,
    }
}

/// Migrations here touch no table; the store is never reached.
fn offline_store() -> DynamoStore {
    DynamoStore::new(local_client("http://127.0.0.1:9"), "unused", RETENTION)
}

fn context(offline: &DynamoStore) -> MigrationContext<'_> {
    MigrationContext::on(offline, 10)
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// A store holding one accepted data migration to `data_version`.
fn store_with_job(data_version: u32) -> (Arc<MemoryStore>, JobId) {
    let store = Arc::new(MemoryStore::new(RETENTION));
    let job = AsyncJob::accepted(
        JobType::DataMigration,
        data_version,
        "https://api.test/$data-migration".into(),
        &instant::format(instant::now()),
    );
    let id = job.id.clone();
    store.put(StoredJob::new(job));
    (store, id)
}

async fn stored(store: &MemoryStore, id: &JobId) -> StoredJob {
    store.get(id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_job_applies_every_page_of_its_plan_and_completes() {
    let (store, id) = store_with_job(2);
    let (first, second) = (Pages::new(1, 3), Pages::new(2, 2));
    let counts = (first.migrated.clone(), second.migrated.clone());
    let registry = Registry::new(vec![Box::new(first), Box::new(second)]).unwrap();
    let (offline, settings) = (offline_store(), settings());
    let runner = Runner::new(&*store, &registry, context(&offline), &settings, "w");

    assert_eq!(runner.run(&id, far()).await.unwrap(), RunOutcome::Completed);
    assert_eq!(counts.0.load(Ordering::SeqCst), 3);
    assert_eq!(counts.1.load(Ordering::SeqCst), 2);
    assert_eq!(store.data_version().await.unwrap(), 2);
    let done = stored(&store, &id).await;
    assert_eq!(done.job.status, JobStatus::Completed);
    assert!(done.expires_at.is_some());
    let run = done.run.unwrap();
    assert_eq!(run.attempts.lease, None);
    assert_eq!(run.applied.len(), 2);
    assert_eq!(run.applied[0].items_scanned, 30);
    let output = serde_json::to_value(done.job.output.unwrap()).unwrap();
    assert_eq!(output["parameter"][0]["valueInteger"], 2);
}

/// Gives the job a lease of another worker's that runs out at `expires`.
async fn lease_to_another(store: &MemoryStore, id: &JobId, expires: time::OffsetDateTime) {
    let mut held = stored(store, id).await;
    held.run.get_or_insert_default().attempts.lease = Some(Lease {
        owner: "another worker".into(),
        expires_at_ms: millis(expires),
    });
    store.put(held);
}

#[tokio::test]
async fn a_job_held_by_a_live_lease_is_left_alone_until_the_lease_expires() {
    let (store, id) = store_with_job(1);
    lease_to_another(&store, &id, instant::now() + Duration::from_secs(60)).await;
    let registry = Registry::new(vec![Box::new(Pages::new(1, 1))]).unwrap();
    let (offline, settings) = (offline_store(), settings());
    let runner = Runner::new(&*store, &registry, context(&offline), &settings, "w");

    assert_eq!(
        runner.run(&id, far()).await.unwrap(),
        RunOutcome::NotRunnable
    );
    assert!(runner.sweep(far()).await.unwrap().is_empty());
    // The other worker's lease runs out.
    lease_to_another(&store, &id, instant::now() - Duration::from_millis(1)).await;
    assert_eq!(
        runner.sweep(far()).await.unwrap(),
        vec![(id.clone(), RunOutcome::Completed)]
    );
}

#[tokio::test]
async fn a_run_at_its_deadline_yields_and_the_next_resumes_where_it_stopped() {
    let (store, id) = store_with_job(1);
    let pages = Pages::new(1, 4);
    let migrated = pages.migrated.clone();
    let registry = Registry::new(vec![Box::new(pages)]).unwrap();
    let (offline, mut settings) = (offline_store(), settings());
    // Any deadline is near: the run claims the job, then yields before its first page.
    settings.stop_before_deadline = Duration::from_secs(3600);
    let yielding = Runner::new(&*store, &registry, context(&offline), &settings, "w");
    assert_eq!(yielding.run(&id, far()).await.unwrap(), RunOutcome::Yielded);
    let run = stored(&store, &id).await.run.unwrap();
    assert_eq!(
        run.attempts.lease, None,
        "a yielding run lets go of its lease"
    );
    assert_eq!(run.progress(), "migration 1/1: starting");

    let settings = self::settings();
    let runner = Runner::new(&*store, &registry, context(&offline), &settings, "w");
    assert_eq!(runner.run(&id, far()).await.unwrap(), RunOutcome::Completed);
    assert_eq!(migrated.load(Ordering::SeqCst), 4, "each page once");
}

#[tokio::test]
async fn a_cancel_is_seen_at_the_next_checkpoint_and_nothing_more_runs() {
    let (store, id) = store_with_job(1);
    let mut pages = Pages::new(1, 10);
    pages.cancel_after = Some((store.clone(), id.clone(), 2));
    let migrated = pages.migrated.clone();
    let registry = Registry::new(vec![Box::new(pages)]).unwrap();
    let (offline, settings) = (offline_store(), settings());
    let runner = Runner::new(&*store, &registry, context(&offline), &settings, "w");

    assert_eq!(runner.run(&id, far()).await.unwrap(), RunOutcome::Cancelled);
    assert_eq!(migrated.load(Ordering::SeqCst), 2);
    let cancelled = stored(&store, &id).await;
    assert_eq!(cancelled.job.status, JobStatus::Cancelled);
    assert!(
        cancelled.expires_at.is_some(),
        "a cancelled job expires too"
    );
    assert_eq!(store.data_version().await.unwrap(), 0);
    assert!(runner.sweep(far()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_job_whose_steps_keep_failing_is_given_up_as_error() {
    let (store, id) = store_with_job(1);
    let mut broken = Pages::new(1, 1);
    broken.failing_steps = usize::MAX;
    let registry = Registry::new(vec![Box::new(broken)]).unwrap();
    let (offline, settings) = (offline_store(), settings());
    let runner = Runner::new(&*store, &registry, context(&offline), &settings, "w");

    // With no wait between attempts, one run tries the page again until it gives up.
    assert_eq!(runner.run(&id, far()).await.unwrap(), RunOutcome::GaveUp);
    let failed = stored(&store, &id).await;
    assert_eq!(failed.job.status, JobStatus::Error);
    let output = serde_json::to_string(&failed.job.output).unwrap();
    assert!(output.contains("the disk is full"), "{output}");
    assert!(output.contains("after 3 failed attempts"), "{output}");
}

#[tokio::test]
async fn a_version_the_data_has_reached_completes_without_migrating() {
    let (store, id) = store_with_job(1);
    let pages = Pages::new(1, 3);
    let migrated = pages.migrated.clone();
    let registry = Registry::new(vec![Box::new(pages)]).unwrap();
    let (offline, settings) = (offline_store(), settings());
    let runner = Runner::new(&*store, &registry, context(&offline), &settings, "w");
    assert_eq!(runner.run(&id, far()).await.unwrap(), RunOutcome::Completed);

    let again = AsyncJob::accepted(
        JobType::DataMigration,
        1,
        "https://api.test/$data-migration".into(),
        &instant::format(instant::now()),
    );
    let again_id = again.id.clone();
    store.put(StoredJob::new(again));
    assert_eq!(
        runner.run(&again_id, far()).await.unwrap(),
        RunOutcome::Completed
    );
    assert_eq!(migrated.load(Ordering::SeqCst), 3, "no page migrated twice");
    assert_eq!(stored(&store, &again_id).await.run.unwrap().applied, vec![]);
}

#[test]
fn a_migration_runs_in_one_segment_per_hundred_thousand_items_up_to_the_cap() {
    let by_size = RunSettings::default();
    assert_eq!(by_size.segments_for(None), 1);
    assert_eq!(by_size.segments_for(Some(20_000)), 1);
    assert_eq!(by_size.segments_for(Some(1_000_000)), 10);
    assert_eq!(by_size.segments_for(Some(100_000_000)), MAX_SEGMENTS);
    let fixed = RunSettings {
        segments: Some(4),
        ..RunSettings::default()
    };
    assert_eq!(fixed.segments_for(Some(100)), 4);
    let too_many = RunSettings {
        segments: Some(1000),
        ..RunSettings::default()
    };
    assert_eq!(too_many.segments_for(None), MAX_SEGMENTS);
}
