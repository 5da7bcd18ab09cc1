//! Migrations at scale: a migration run by the job runner beside a bare loop of the same
//! Scan pages and writes at the same concurrency, over a table of a million jobs (seeded by
//! the local stack's `dev-seed`) in one scan, and over a smaller table in 1, 4 and 8
//! parallel Scan segments; a migration under a budget of half the bare rate; and the status
//! poll while a migration runs, against the same poll with none.
//!
//! The parallel runs use a smaller table because the embedded engine keeps no index on the
//! hash it splits a table by: each page of a parallel Scan reads and sorts the whole table
//! (a million rows a page, ten thousand pages), where DynamoDB reads only the page.

use std::path::Path;
use std::time::{Duration, Instant};

use asyncjob_shared::migration::{
    Migration, MigrationContext, Registry, Step, scan_page, table_item_count, text,
};
use asyncjob_shared::model::{AsyncJob, JobId, JobType, StoredJob, instant};
use asyncjob_shared::runner::{RunOutcome, RunSettings, Runner};
use asyncjob_shared::store::test_support::Item;
use asyncjob_shared::store::test_support::schema::{ID, STATUS};
use asyncjob_shared::store::{DynamoStore, JobStore, StoreError};
use asyncjob_tests::{ApiRequest, TestEnv};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::{BoxFuture, join_all};
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::stats::{Summary, summarize};

/// Jobs in the table the single scan walks, unless `BENCH_MIGRATION_ITEMS` says otherwise.
const ITEMS: usize = 1_000_000;
/// Jobs in the table the parallel segments walk, unless `BENCH_SEGMENT_ITEMS` says otherwise.
const SEGMENT_ITEMS: usize = 100_000;
const SEGMENTS: [u32; 3] = [1, 4, 8];
const PAGE: usize = 100;
/// Writes in flight per segment, in the migration and in the bare loop alike.
const CONCURRENCY: usize = 16;
/// Status polls with a migration running, and with none.
const POLLS: usize = 300;
const POLL_GAP: Duration = Duration::from_millis(20);

pub struct Row {
    pub items: usize,
    pub segments: u32,
    pub migration_per_second: f64,
    pub bare_per_second: f64,
}

pub struct Result {
    /// Jobs seeded, and how long `dev-seed` took, per table.
    pub seeded: Vec<(usize, Duration)>,
    pub rows: Vec<Row>,
    pub budget: u32,
    pub budget_segments: u32,
    pub budgeted_per_second: f64,
    pub status_idle: Summary,
    pub status_running: Summary,
}

/// Writes `touched = version` on every finished job: the same item writes whatever the
/// version, so each run has the whole table to do.
struct Touch(u32);

impl Migration for Touch {
    fn version(&self) -> u32 {
        self.0
    }

    fn name(&self) -> &'static str {
        "touch"
    }

    fn segmentable(&self) -> bool {
        true
    }

    fn estimate<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
    ) -> BoxFuture<'a, std::result::Result<Option<u64>, StoreError>> {
        Box::pin(table_item_count(context, context.jobs_table))
    }

    fn step<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, std::result::Result<Step, StoreError>> {
        Box::pin(async move {
            let (items, next) = scan_page(context, context.jobs_table, cursor).await?;
            let ids = finished_jobs(&items);
            context.budget.reserve(ids.len() as u64).await?;
            let changed = stream::iter(ids)
                .map(|id| async move {
                    context.budget.take().await?;
                    touch(context.client, context.jobs_table, id, self.0).await
                })
                .buffer_unordered(CONCURRENCY)
                .try_fold(0, |count, ()| async move { Ok(count + 1) })
                .await?;
            Ok(Step {
                items_scanned: items.len() as u64,
                items_changed: changed,
                items_skipped: 0,
                next,
            })
        })
    }
}

/// The ids of the finished jobs among `items`: the seeded ones, not the running job or the
/// bookkeeping and segment items.
fn finished_jobs(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter(|item| text(item, STATUS).is_some_and(|status| status != "accepted"))
        .filter_map(|item| text(item, ID).map(str::to_owned))
        .collect()
}

async fn touch(
    client: &Client,
    table: &str,
    id: String,
    version: u32,
) -> std::result::Result<(), StoreError> {
    client
        .update_item()
        .table_name(table)
        .key(ID, AttributeValue::S(id))
        .update_expression("SET touched = :v")
        .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
        .send()
        .await
        .map(drop)
        .map_err(|error| StoreError::Failed(error.to_string()))
}

/// The same work without the runner: `segments` Scan segments side by side, each a page at
/// a time with its writes `CONCURRENCY` at once.
async fn bare_loop(env: &TestEnv, segments: u32, version: u32) -> f64 {
    let started = Instant::now();
    let walks = (0..segments).map(|segment| async move {
        let mut start = None;
        let mut written = 0;
        loop {
            let page = env
                .client
                .scan()
                .table_name(&env.table)
                .limit(PAGE as i32)
                // One segment is the whole table, read as the migration's single scan reads it.
                .set_segment((segments > 1).then_some(segment as i32))
                .set_total_segments((segments > 1).then_some(segments as i32))
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            let ids = finished_jobs(page.items());
            written += ids.len();
            stream::iter(ids)
                .for_each_concurrent(CONCURRENCY, |id| async move {
                    // A write that timed out under load is sent again, as a runner's retry
                    // would send it.
                    for attempt in 1.. {
                        match touch(&env.client, &env.table, id.clone(), version).await {
                            Ok(()) => break,
                            Err(error) if attempt < 3 => eprintln!("bench:   retrying: {error}"),
                            Err(error) => panic!("{error}"),
                        }
                    }
                })
                .await;
            start = page.last_evaluated_key;
            if start.is_none() {
                return written;
            }
        }
    });
    let written: usize = join_all(walks).await.into_iter().sum();
    written as f64 / started.elapsed().as_secs_f64()
}

/// A data-migration job to `version`, written as the kick-off would (the kick-off itself
/// only knows the built-in migrations).
async fn job_to(env: &TestEnv, version: u32) -> JobId {
    let now = instant::format(instant::now());
    let job = AsyncJob::accepted(JobType::DataMigration, version, "urn:bench".into(), &now);
    env.put(&StoredJob::new(job.clone())).await;
    job.id
}

/// Runs the job to `version` in `segments` segments (all at once), within `budget` if
/// set; its items changed a second.
async fn migration(
    store: &DynamoStore,
    registry: &Registry,
    job: &JobId,
    segments: u32,
    budget: Option<u32>,
) -> f64 {
    let settings = RunSettings {
        page_size: PAGE,
        segments: Some(segments),
        segments_at_once: segments as usize,
        items_per_second: budget,
        // A write that times out under load is tried again soon, as in the bare loop.
        retry_delay: Duration::from_millis(100),
        ..RunSettings::default()
    };
    let context = MigrationContext::on(store, PAGE).with_budget(budget);
    let runner = Runner::new(store, registry, context, &settings, "bench");
    let started = Instant::now();
    let outcome = runner
        .run(job, Instant::now() + Duration::from_secs(24 * 3600))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(outcome, RunOutcome::Completed);
    let stored = store.get(job).await.unwrap().unwrap();
    let applied = &stored.run.unwrap().applied[0];
    applied.items_changed as f64 / elapsed.as_secs_f64()
}

/// Status polls of `job`, one every [`POLL_GAP`], until `POLLS` are done.
async fn polls(env: &TestEnv, job: &JobId) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(POLLS);
    for _ in 0..POLLS {
        let request = ApiRequest::get(&format!("/job/{job}/status")).build();
        let started = Instant::now();
        let response = status::handle(&env.store, &env.config, request).await;
        samples.push(started.elapsed());
        assert!(response.status().as_u16() < 300);
        tokio::time::sleep(POLL_GAP).await;
    }
    samples
}

/// Fills the table with `dev-seed`, the local stack's own seeding tool (release build).
fn seed(root: &Path, env: &TestEnv, items: usize) -> Duration {
    let started = Instant::now();
    let status = std::process::Command::new(root.join("target/release/dev-seed"))
        .env("ASYNCJOB_TABLE", &env.table)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &env.endpoint)
        .env("SEED_JOBS", items.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("dev-seed runs (make bench builds it)");
    assert!(status.success(), "dev-seed failed");
    started.elapsed()
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// A fresh table of `items` seeded jobs, and how long seeding took.
async fn seeded_table(root: &Path, items: usize) -> (TestEnv, Duration) {
    let env = TestEnv::start().await;
    let seeding = seed(root, &env, items);
    eprintln!(
        "bench:   seeded {items} jobs in {:.0} s",
        seeding.as_secs_f64()
    );
    (env, seeding)
}

/// The migration in `segments` segments beside the bare loop, as data version `version`.
async fn compare(
    env: &TestEnv,
    registry: &Registry,
    items: usize,
    segments: u32,
    version: u32,
) -> Row {
    let bare_per_second = bare_loop(env, segments, version).await;
    let job = job_to(env, version).await;
    let migration_per_second = migration(&env.store, registry, &job, segments, None).await;
    eprintln!(
        "bench:   {items} jobs, {segments} segments: migration {migration_per_second:.0}/s, bare {bare_per_second:.0}/s"
    );
    Row {
        items,
        segments,
        migration_per_second,
        bare_per_second,
    }
}

pub async fn run(root: &Path) -> Result {
    let registry = Registry::new(
        (1..=4)
            .map(|v| Box::new(Touch(v)) as Box<dyn Migration>)
            .collect(),
    )
    .unwrap();
    let large = setting("BENCH_MIGRATION_ITEMS", ITEMS);
    let (env, large_seeding) = seeded_table(root, large).await;
    let mut rows = vec![compare(&env, &registry, large, 1, 1).await];
    drop(env);

    let small = setting("BENCH_SEGMENT_ITEMS", SEGMENT_ITEMS);
    let (env, small_seeding) = seeded_table(root, small).await;
    for (segments, version) in SEGMENTS.into_iter().zip(1..) {
        rows.push(compare(&env, &registry, small, segments, version).await);
    }
    let last = rows.last().expect("segment counts are measured");
    let budget = (last.bare_per_second / 2.0).round() as u32;
    let budget_segments = last.segments;
    let job = job_to(&env, 4).await;
    let status_idle = summarize(polls(&env, &job).await);
    let (budgeted_per_second, running) = tokio::join!(
        migration(&env.store, &registry, &job, budget_segments, Some(budget)),
        async {
            // Once the migration is under way.
            tokio::time::sleep(Duration::from_secs(1)).await;
            polls(&env, &job).await
        }
    );
    Result {
        seeded: vec![(large, large_seeding), (small, small_seeding)],
        rows,
        budget,
        budget_segments,
        budgeted_per_second,
        status_idle,
        status_running: summarize(running),
    }
}
