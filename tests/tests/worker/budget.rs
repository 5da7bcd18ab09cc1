//! A migration's write budget is the migration's, whatever its number of segments and
//! however many of them run at once: they reserve windows of one shared budget.

use std::time::{Duration, Instant};

use asyncjob_shared::migration::{ExpireFinishedJobs, Registry};
use asyncjob_shared::runner::{RunOutcome, RunSettings};
use asyncjob_tests::TestEnv;

use crate::support::{expiring, legacy_jobs, put_items, run_to_end, runner_on, settings};

/// Sixteen segments, all running at once, under a budget of 4 writes a second: a share of a
/// quarter of a write a second each. Together they write no faster than 4 a second.
#[tokio::test]
async fn segments_running_at_once_share_the_migrations_budget() {
    const WRITES: u64 = 32;
    const ITEMS_PER_SECOND: u32 = 4;
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(WRITES as usize)).await;
    let job = env.kick_off(1).await.id;
    let registry = Registry::new(vec![Box::new(ExpireFinishedJobs)]).unwrap();
    let settings = RunSettings {
        items_per_second: Some(ITEMS_PER_SECOND),
        segments: Some(16),
        segments_at_once: 16,
        ..settings()
    };
    let runner = runner_on(&env, &registry, &settings, "worker");
    let started = Instant::now();
    assert_eq!(run_to_end(&runner, &job).await, RunOutcome::Completed);
    let elapsed = started.elapsed();

    assert_eq!(expiring(&env, &job).await as u64, WRITES);
    // No two segments' windows overlap and none starts before it was reserved, so the last
    // of the writes, a quarter of a second apart, comes no sooner than this (less a few
    // milliseconds for the wall clock's rounding).
    let floor = Duration::from_secs_f64((WRITES - 1) as f64 / f64::from(ITEMS_PER_SECOND))
        - Duration::from_millis(50);
    assert!(
        elapsed >= floor,
        "{WRITES} writes in {elapsed:?}, at most {ITEMS_PER_SECOND}/s"
    );
}
