//! Data for migrations to work on, and a migration wrapper that lets a test step in
//! between pages.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asyncjob_shared::migration::{Migration, MigrationContext, Registry, Step};
use asyncjob_shared::model::run::millis;
use asyncjob_shared::model::{AsyncJob, Attempts, JobId, JobStatus, JobType, SegmentKey, instant};
use asyncjob_shared::runner::{RunOutcome, RunSettings, Runner};
use asyncjob_shared::store::test_support::schema::EXPIRES_AT;
use asyncjob_shared::store::test_support::{Item, legacy_item};
use asyncjob_shared::store::{DynamoStore, SegmentRuns, StoreError};
use asyncjob_tests::TestEnv;
use futures_util::future::BoxFuture;
use tokio::sync::Notify;

/// Small pages, so a short table still takes several checkpoints. The lease outlasts any
/// stall of a busy machine, so a live worker never loses it in a test; a test that wants a
/// lease to have run out moves it into the past ([`expire_lease`], [`expire_segment_lease`]).
pub fn settings() -> RunSettings {
    RunSettings {
        lease: Duration::from_secs(60),
        max_attempts: 3,
        // Failed attempts may be tried again at once.
        retry_delay: Duration::ZERO,
        max_retry_delay: Duration::ZERO,
        page_size: 10,
        items_per_second: None,
        segments: None,
        segments_at_once: 8,
        stop_before_deadline: Duration::ZERO,
    }
}

/// A runner of `env`'s jobs whose migrations work on `env`'s table.
pub fn runner_on<'a>(
    env: &'a TestEnv,
    registry: &'a Registry,
    settings: &'a RunSettings,
    owner: &str,
) -> Runner<'a, DynamoStore> {
    let store = env.store_of("worker");
    let context =
        MigrationContext::on(store, settings.page_size).with_budget(settings.items_per_second);
    Runner::new(store, registry, context, settings, owner)
}

/// Moves the leases of the job and of its current migration's segments into the past, as
/// if its worker had stalled for longer than them.
pub async fn expire_lease(env: &TestEnv, id: &JobId) {
    let past = millis(instant::now()) - 1;
    pass_time(env, id, |attempts| {
        if let Some(lease) = attempts.lease.as_mut() {
            lease.expires_at_ms = past;
        }
    })
    .await;
}

/// Moves the waits after failed attempts of the job and of its current migration's
/// segments into the past, as if their back-off had passed.
pub async fn expire_waits(env: &TestEnv, id: &JobId) {
    let past = millis(instant::now()) - 1;
    pass_time(env, id, |attempts| {
        if attempts.retry_at_ms.is_some() {
            attempts.retry_at_ms = Some(past);
        }
    })
    .await;
}

/// Applies `change` to the attempts of the job and of its current migration's segments.
async fn pass_time(env: &TestEnv, id: &JobId, change: impl Fn(&mut Attempts)) {
    let mut stored = env.job(id.as_str()).await.expect("the job exists");
    let Some(run) = stored.run.as_mut() else {
        return;
    };
    change(&mut run.attempts);
    let keys = run.current.as_ref().and_then(|progress| {
        let total = progress.segments?;
        Some(SegmentKey::all(id, progress.version, total))
    });
    env.put(&stored).await;
    for mut segment in env.store.segments(&keys.unwrap_or_default()).await.unwrap() {
        change(&mut segment.attempts);
        assert!(env.store.save_segment(&segment.revised()).await.unwrap());
    }
}

/// Moves the segment's lease, if it has one, into the past, as if its worker had died
/// longer ago than it.
pub async fn expire_segment_lease(env: &TestEnv, key: &SegmentKey) {
    let mut segment = env
        .store
        .segments(std::slice::from_ref(key))
        .await
        .unwrap()
        .pop()
        .expect("the segment exists");
    if let Some(lease) = segment.attempts.lease.as_mut() {
        lease.expires_at_ms = millis(instant::now()) - 1;
        assert!(env.store.save_segment(&segment.revised()).await.unwrap());
    }
}

/// Runs the job again and again, a moment apart, as the sweeper would, until a run ends it.
pub async fn run_to_end(runner: &Runner<'_, DynamoStore>, job: &JobId) -> RunOutcome {
    for _ in 0..100 {
        match runner.run(job, far_deadline()).await.unwrap() {
            RunOutcome::NotRunnable | RunOutcome::Failed(_) | RunOutcome::Yielded => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            ended => return ended,
        }
    }
    panic!("the job did not end in 100 runs")
}

pub fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(120)
}

/// `n` finished jobs as an older release wrote them: no TTL, no index keys.
pub fn legacy_jobs(n: usize) -> Vec<Item> {
    let statuses = [JobStatus::Completed, JobStatus::Error, JobStatus::Cancelled];
    (0..n)
        .map(|i| {
            let at = instant::format(instant::now() - time::Duration::minutes((n - i) as i64));
            let mut job = AsyncJob::accepted(JobType::DataMigration, 1, "urn:old".into(), &at);
            job.status = statuses[i % statuses.len()];
            legacy_item(job)
        })
        .collect()
}

/// How many jobs other than `job` (the legacy ones) have a TTL: those the first
/// migration has reached.
pub async fn expiring(env: &TestEnv, job: &JobId) -> usize {
    env.items()
        .await
        .iter()
        .filter(|item| item.contains_key("requestTime") && item.contains_key(EXPIRES_AT))
        .filter(|item| item["id"].as_s().ok() != Some(&job.as_str().to_owned()))
        .count()
}

pub async fn put_items(env: &TestEnv, items: &[Item]) {
    for item in items {
        env.client
            .put_item()
            .table_name(&env.table)
            .set_item(Some(item.clone()))
            .send()
            .await
            .unwrap();
    }
}

/// Wraps a migration: counts its pages and, once `pause_after` pages have been migrated
/// (before their checkpoint), signals `paused` and waits for `resume`.
pub struct Pausing<M> {
    pub inner: M,
    pub pages: Arc<AtomicUsize>,
    pub pause_after: usize,
    pub paused: Arc<Notify>,
    pub resume: Arc<Notify>,
}

impl<M: Migration> Migration for Pausing<M> {
    fn version(&self) -> u32 {
        self.inner.version()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn segmentable(&self) -> bool {
        self.inner.segmentable()
    }

    fn estimate<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        self.inner.estimate(context)
    }

    fn step<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Step, StoreError>> {
        Box::pin(async move {
            let step = self.inner.step(context, cursor).await?;
            if self.pages.fetch_add(1, Ordering::SeqCst) + 1 == self.pause_after {
                self.paused.notify_one();
                self.resume.notified().await;
            }
            Ok(step)
        })
    }
}

/// The built-in registry with the first migration pausing after `pause_after` pages.
pub struct Paused {
    pub registry: Registry,
    pub pages: Arc<AtomicUsize>,
    pub paused: Arc<Notify>,
    pub resume: Arc<Notify>,
}

pub fn pausing_registry(pause_after: usize) -> Paused {
    let pages = Arc::new(AtomicUsize::new(0));
    let paused = Arc::new(Notify::new());
    let resume = Arc::new(Notify::new());
    let registry = Registry::new(vec![
        Box::new(Pausing {
            inner: asyncjob_shared::migration::ExpireFinishedJobs,
            pages: pages.clone(),
            pause_after,
            paused: paused.clone(),
            resume: resume.clone(),
        }),
        Box::new(asyncjob_shared::migration::RewriteIndexKeys),
    ])
    .unwrap();
    Paused {
        registry,
        pages,
        paused,
        resume,
    }
}

/// A migration whose every step fails, whole or in segments.
pub struct Broken;

impl Migration for Broken {
    fn version(&self) -> u32 {
        1
    }

    fn name(&self) -> &'static str {
        "broken"
    }

    fn segmentable(&self) -> bool {
        true
    }

    fn step<'a>(
        &'a self,
        _: &'a MigrationContext<'a>,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Step, StoreError>> {
        Box::pin(async { Err(StoreError::Failed("the disk is full".into())) })
    }
}

/// A migration whose step never ends: a page slower than any deadline (a budget's share of
/// a few items an hour, a table that stopped answering without an error). Counts the steps
/// started.
#[derive(Default)]
pub struct Stalling(pub Arc<AtomicUsize>);

impl Migration for Stalling {
    fn version(&self) -> u32 {
        1
    }

    fn name(&self) -> &'static str {
        "stalling"
    }

    fn segmentable(&self) -> bool {
        true
    }

    fn step<'a>(
        &'a self,
        _: &'a MigrationContext<'a>,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Step, StoreError>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::pending())
    }
}
