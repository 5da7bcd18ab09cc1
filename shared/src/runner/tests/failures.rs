//! Failed attempts: back-off, counting in a row, runs that died, leases renewed by long
//! pages, workers that lack a version, and completion that checks the data version.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{Pages, context, far, offline_store, settings, store_with_job, stored};
use crate::migration::{Migration, MigrationContext, Registry, Step};
use crate::model::run::millis;
use crate::model::{
    Attempts, JobId, JobStatus, Lease, MigrationProgress, SegmentKey, SegmentRun, instant,
};
use crate::runner::{RunOutcome, Runner};
use crate::store::{JobStore, MemoryStore, SegmentRuns, StoreError};

#[tokio::test]
async fn a_failed_attempt_backs_off_longer_each_time_and_the_sweeper_waits() {
    let (store, id) = store_with_job(1);
    let mut flaky = Pages::new(1, 1);
    flaky.failing_steps = 2;
    let registry = Registry::new(vec![Box::new(flaky)]).unwrap();
    let (offline, mut settings) = (offline_store(), settings());
    settings.retry_delay = Duration::from_secs(10);
    settings.max_retry_delay = Duration::from_secs(15);
    let runner = Runner::new(&*store, &registry, context(&offline), &settings, "w");

    let mut waits = Vec::new();
    for _ in 0..2 {
        let before = millis(instant::now());
        assert!(matches!(
            runner.run(&id, far()).await.unwrap(),
            RunOutcome::Failed(_)
        ));
        let run = stored(&store, &id).await.run.unwrap();
        assert_eq!(run.attempts.lease, None);
        waits.push((run.attempts.retry_at_ms.unwrap() - before) / 1000);
        // While it waits, neither a run nor the sweeper touches it.
        assert_eq!(
            runner.run(&id, far()).await.unwrap(),
            RunOutcome::NotRunnable
        );
        assert!(runner.sweep(far()).await.unwrap().is_empty());
        expire_wait(&store, &id).await;
    }
    assert!(
        matches!(waits[..], [10, 15] | [9, 14] | [9, 15] | [10, 14]),
        "{waits:?}"
    );
    assert_eq!(
        runner.sweep(far()).await.unwrap(),
        vec![(id.clone(), RunOutcome::Completed)]
    );
}

/// Moves the back-off of the job and of its segment into the past, as time passing would.
async fn expire_wait(store: &MemoryStore, id: &JobId) {
    let past = Some(millis(instant::now()) - 1);
    let mut waiting = stored(store, id).await;
    let run = waiting.run.as_mut().unwrap();
    run.attempts.retry_at_ms = past;
    let keys = SegmentKey::all(id, 1, run.current.as_ref().unwrap().segments.unwrap());
    store.put(waiting);
    for segment in store.segments(&keys).await.unwrap() {
        let mut next = segment.revised();
        next.attempts.retry_at_ms = past;
        assert!(store.save_segment(&next).await.unwrap());
    }
}

#[tokio::test]
async fn failures_count_in_a_row_and_a_checkpoint_starts_the_count_again() {
    let (store, id) = store_with_job(1);
    // Every other step fails: never three failures in a row.
    struct Alternating(Arc<AtomicUsize>);
    impl Migration for Alternating {
        fn version(&self) -> u32 {
            1
        }
        fn name(&self) -> &'static str {
            "alternating"
        }
        fn step<'a>(
            &'a self,
            _: &'a MigrationContext<'a>,
            cursor: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Step, StoreError>> {
            Box::pin(async move {
                if self.0.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                    return Err(StoreError::Failed("throttled for a moment".into()));
                }
                let page: usize = cursor.map_or(0, |c| c.parse().unwrap());
                Ok(Step {
                    next: (page < 5).then(|| (page + 1).to_string()),
                    ..Step::default()
                })
            })
        }
    }
    let steps = Arc::new(AtomicUsize::new(0));
    let registry = Registry::new(vec![Box::new(Alternating(steps.clone()))]).unwrap();
    let (offline, settings) = (offline_store(), settings());
    let runner = Runner::new(&*store, &registry, context(&offline), &settings, "w");
    // With no wait between attempts, one run goes on after each failure.
    assert_eq!(runner.run(&id, far()).await.unwrap(), RunOutcome::Completed);
    // Six pages, each failing once first: twice the failures (3 in a row) that give a job up.
    assert_eq!(steps.load(Ordering::SeqCst), 12);
}

#[tokio::test]
async fn a_segment_run_that_died_holding_its_lease_counts_as_a_failed_attempt() {
    let (store, id) = store_with_job(1);
    let mut broken = Pages::new(1, 1);
    broken.failing_steps = usize::MAX;
    let registry = Registry::new(vec![Box::new(broken)]).unwrap();
    let (offline, mut settings) = (offline_store(), settings());
    settings.retry_delay = Duration::from_secs(10);
    settings.max_retry_delay = Duration::from_secs(10);
    let runner = Runner::new(&*store, &registry, context(&offline), &settings, "w");
    // The migration's one segment was being run by a worker that died.
    let job = stored(&store, &id).await;
    let mut started = job.revised(instant::now());
    started.run = Some(crate::model::RunState {
        plan: Some(vec![1]),
        current: Some(MigrationProgress {
            segments: Some(1),
            ..MigrationProgress::starting(1, None)
        }),
        ..Default::default()
    });
    let key = SegmentKey::all(&id, 1, 1).remove(0);
    let segment = SegmentRun {
        attempts: dead_worker(0),
        ..SegmentRun::new(key.clone())
    };
    assert!(
        store
            .start_segments(&job.job.meta.version_id, &started, &[segment])
            .await
            .unwrap()
    );
    let outcome = runner.run(&id, far()).await.unwrap();
    assert!(matches!(outcome, RunOutcome::Failed(_)), "{outcome:?}");
    // The death, then this run's own failure.
    let segment = store.segments(&[key]).await.unwrap().remove(0);
    assert_eq!(segment.attempts.failures, 2);
}

#[tokio::test]
async fn the_last_of_too_many_deaths_gives_the_job_up_with_a_reason() {
    let (store, id) = store_with_job(1);
    let registry = Registry::new(vec![Box::new(Pages::new(1, 1))]).unwrap();
    let (offline, settings) = (offline_store(), settings());
    let runner = Runner::new(&*store, &registry, context(&offline), &settings, "w");
    let mut held = stored(&store, &id).await;
    held.run = Some(crate::model::RunState {
        attempts: dead_worker(settings.max_attempts - 1),
        ..Default::default()
    });
    store.put(held);
    assert_eq!(runner.run(&id, far()).await.unwrap(), RunOutcome::GaveUp);
    let output = serde_json::to_string(&stored(&store, &id).await.job.output).unwrap();
    assert!(output.contains("3 failed attempts in a row"), "{output}");
    assert!(output.contains("crashed or timed out"), "{output}");
}

#[tokio::test]
async fn a_long_page_renews_the_lease_so_no_one_takes_the_job_mid_page() {
    let (store, id) = store_with_job(1);
    // The page lasts three leases; the lease is renewed every third of it. Leases run on
    // the wall clock, so the margin is real: a renewal may come up to 1 s late (a busy
    // machine) before a rival could take the job.
    let mut slow = Pages::new(1, 1);
    slow.slowness = Duration::from_millis(4500);
    let registry = Registry::new(vec![Box::new(slow)]).unwrap();
    let quick = Registry::new(vec![Box::new(Pages::new(1, 1))]).unwrap();
    let (offline, mut settings) = (offline_store(), settings());
    settings.lease = Duration::from_millis(1500);
    let worker = Runner::new(&*store, &registry, context(&offline), &settings, "worker");
    let rival = Runner::new(&*store, &quick, context(&offline), &settings, "rival");

    let attempts = async {
        let mut outcomes = Vec::new();
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(600)).await;
            outcomes.push(rival.run(&id, far()).await.unwrap());
        }
        outcomes
    };
    let (outcome, rival_outcomes) = tokio::join!(worker.run(&id, far()), attempts);
    assert_eq!(outcome.unwrap(), RunOutcome::Completed);
    assert!(
        rival_outcomes.iter().all(|o| *o == RunOutcome::NotRunnable),
        "{rival_outcomes:?}"
    );
}

#[tokio::test]
async fn a_worker_without_the_job_s_version_leaves_it_alone() {
    let (store, id) = store_with_job(2);
    let older = Registry::new(vec![Box::new(Pages::new(1, 1))]).unwrap();
    let (offline, settings) = (offline_store(), settings());
    let lagging = Runner::new(&*store, &older, context(&offline), &settings, "old");
    assert_eq!(
        lagging.run(&id, far()).await.unwrap(),
        RunOutcome::NotRunnable
    );
    assert!(
        lagging
            .sweep(far())
            .await
            .unwrap()
            .iter()
            .all(|(_, o)| *o == RunOutcome::NotRunnable)
    );
    let untouched = stored(&store, &id).await;
    assert_eq!(untouched.job.status, JobStatus::Accepted);
    assert_eq!(untouched.run, None);
    assert_eq!(store.data_version().await.unwrap(), 0);

    // A worker that has the version runs it; one that lags behind it still does not.
    let newer =
        Registry::new(vec![Box::new(Pages::new(1, 1)), Box::new(Pages::new(2, 1))]).unwrap();
    let current = Runner::new(&*store, &newer, context(&offline), &settings, "new");
    assert_eq!(
        current.run(&id, far()).await.unwrap(),
        RunOutcome::Completed
    );
    assert_eq!(store.data_version().await.unwrap(), 2);
}

#[tokio::test]
async fn a_job_is_completed_only_once_the_data_reached_its_version() {
    let (store, id) = store_with_job(2);
    // A plan that (wrongly) has nothing to do: the data is still at version 0.
    let mut planned = stored(&store, &id).await;
    planned.run = Some(crate::model::RunState {
        plan: Some(Vec::new()),
        ..Default::default()
    });
    store.put(planned);
    let registry =
        Registry::new(vec![Box::new(Pages::new(1, 1)), Box::new(Pages::new(2, 1))]).unwrap();
    let (offline, settings) = (offline_store(), settings());
    let runner = Runner::new(&*store, &registry, context(&offline), &settings, "w");
    let outcome = runner.run(&id, far()).await.unwrap();
    assert!(
        matches!(&outcome, RunOutcome::Failed(reason) if reason.contains("below the job's 2")),
        "{outcome:?}"
    );
    assert_eq!(stored(&store, &id).await.job.status, JobStatus::Accepted);
}

/// A lease that ran out under a worker that died, after `failures` failed attempts.
fn dead_worker(failures: u32) -> Attempts {
    Attempts {
        lease: Some(Lease {
            owner: "a worker that died".into(),
            expires_at_ms: millis(instant::now()) - 1,
        }),
        failures,
        ..Attempts::default()
    }
}
