//! A migration's write budget is the migration's, whatever its number of segments and
//! however many of them run at once: they reserve windows of one shared budget.

use std::time::{Duration, Instant};

use asyncjob_shared::migration::{ExpireFinishedJobs, MigrationContext, Registry};
use asyncjob_shared::model::SegmentKey;
use asyncjob_shared::runner::{RunOutcome, RunSettings, Runner};
use asyncjob_tests::faults::{Fault, FaultPlan, FaultRule};
use asyncjob_tests::{ApiRequest, TestEnv};

use crate::support::{
    expiring, far_deadline, legacy_jobs, put_items, run_to_end, runner_on, settings,
};

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

/// A cancel deletes the segments and their budget together. A page that was still running
/// then, and reserves its window after the cancel, does not bring the budget back: a window
/// is reserved only while its segment exists.
#[tokio::test]
async fn a_page_that_reserves_after_a_cancel_leaves_no_budget_behind() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(20)).await;
    let job = env.kick_off(1).await.id;
    let registry = Registry::new(vec![Box::new(ExpireFinishedJobs)]).unwrap();
    let settings = RunSettings {
        items_per_second: Some(100),
        segments: Some(2),
        segments_at_once: 0,
        ..settings()
    };
    let starter = runner_on(&env, &registry, &settings, "starter");
    assert_eq!(
        starter.run(&job, far_deadline()).await.unwrap(),
        RunOutcome::NotRunnable,
        "segments started"
    );
    // The segment's worker reads the job (GetItem 0), scans its page, and stops before it
    // reads the budget (GetItem 1).
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);
    plan.set(vec![FaultRule {
        operation: "GetItem",
        occurrence: 1,
        fault: Fault::Pause { after: false },
    }]);
    let context = MigrationContext::on(&store, settings.page_size);
    let worker = Runner::new(&store, &registry, context, &settings, "worker");
    let key = &SegmentKey::all(&job, 1, 2)[0];
    let page = worker.run_segment(key, far_deadline());
    let cancel = async {
        plan.paused().await;
        let answer = env
            .send(ApiRequest::delete(&format!("/job/{job}/status")))
            .await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        plan.resume();
    };
    let (outcome, ()) = tokio::join!(page, cancel);
    assert!(!matches!(outcome, Ok(RunOutcome::Completed)), "{outcome:?}");
    let left: Vec<String> = env
        .items()
        .await
        .iter()
        .filter_map(|item| item["id"].as_s().ok().cloned())
        .filter(|id| id.starts_with("~budget~") || id.starts_with("~segment~"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(
        expiring(&env, &job).await,
        0,
        "no item of the page was written"
    );
}
