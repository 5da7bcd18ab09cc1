//! A run ends before its Lambda deadline even when a page would not: the page is cut short,
//! the lease let go, and nothing is left to run out.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use asyncjob_shared::migration::Registry;
use asyncjob_shared::model::{JobId, SegmentKey};
use asyncjob_shared::runner::{RunOutcome, RunSettings};
use asyncjob_shared::store::SegmentRuns;
use asyncjob_tests::TestEnv;

use crate::support::{Stalling, legacy_jobs, put_items, runner_on, settings};

/// A deadline a moment away, with a stop margin before it: the run must be over by then.
/// The moment is long enough for the claim to land and the first page to start on a slow,
/// busy machine (they take milliseconds); the test checks that the page did start.
fn near_deadline(settings: &RunSettings) -> Instant {
    Instant::now() + settings.stop_before_deadline + Duration::from_secs(5)
}

/// How long a test waits for a run that should have ended at its deadline before it says
/// the run hung: far beyond it, so a slow machine never trips it.
const HUNG: Duration = Duration::from_secs(60);

/// Runs a job whose migration stalls in its first page, in `segments` segments, with a
/// deadline a moment away: the run yields by then, a page having started, and the job is
/// let go with no failure counted.
async fn run_stalling(segments: u32) -> (TestEnv, JobId) {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(5)).await;
    let job = env.kick_off(1).await.id;
    let stalling = Stalling::default();
    let steps = stalling.0.clone();
    let registry = Registry::new(vec![Box::new(stalling)]).unwrap();
    let settings = RunSettings {
        segments: Some(segments),
        stop_before_deadline: Duration::from_millis(200),
        ..settings()
    };
    let runner = runner_on(&env, &registry, &settings, "worker");
    let run = runner.run(&job, near_deadline(&settings));
    let outcome = tokio::time::timeout(HUNG, run).await.expect("the run hung");
    assert_eq!(outcome.unwrap(), RunOutcome::Yielded);
    assert!(steps.load(Ordering::SeqCst) >= 1, "a page started");
    let run = env.job(job.as_str()).await.unwrap().run.unwrap();
    assert!(run.attempts.lease.is_none(), "{run:?}");
    assert_eq!(run.attempts.failures, 0);
    drop(runner);
    (env, job)
}

#[tokio::test]
async fn a_page_slower_than_the_deadline_is_cut_short_and_the_job_let_go() {
    run_stalling(1).await;
}

#[tokio::test]
async fn a_segment_page_slower_than_the_deadline_is_cut_short_and_the_segment_let_go() {
    let (env, job) = run_stalling(2).await;
    let segments = env
        .store
        .segments(&SegmentKey::all(&job, 1, 2))
        .await
        .unwrap();
    assert_eq!(segments.len(), 2);
    for segment in segments {
        assert!(segment.attempts.lease.is_none(), "{segment:?}");
        assert_eq!(segment.attempts.failures, 0);
    }
}
