//! Migrations run as parallel Scan segments, against the engine: segments done in any order,
//! by any worker; the data version moving up only once all are done; a cancel seen by every
//! segment; a crashed segment resumed; a failing segment failing the job.

use std::sync::atomic::Ordering;
use std::time::Duration;

use asyncjob_shared::migration::{ExpireFinishedJobs, MigrationContext, Registry, scan_page};
use asyncjob_shared::model::{
    JobId, JobStatus, MigrationProgress, RunState, SegmentKey, SegmentRun, instant,
};
use asyncjob_shared::runner::{RunOutcome, RunSettings, Runner};
use asyncjob_shared::store::test_support::schema::EXPIRES_AT;
use asyncjob_shared::store::{JobRuns, JobStore, SegmentRuns};
use asyncjob_tests::faults::{Fault, FaultPlan, FaultRule};
use asyncjob_tests::{ApiRequest, TestEnv};
use tokio::sync::Notify;

use crate::support::{
    Broken, expire_segment_lease, expiring, far_deadline, legacy_jobs, pausing_registry, put_items,
    run_to_end, runner_on,
};

const SEGMENTS: u32 = 4;
const LEGACY_JOBS: usize = 120;

/// Four segments, pages of ten; `segments_at_once` segments run by the job's own runner.
fn segmented(segments_at_once: usize) -> RunSettings {
    RunSettings {
        segments: Some(SEGMENTS),
        segments_at_once,
        ..crate::support::settings()
    }
}

/// A run of the job that only starts the segments of its next migration (it runs none of
/// them itself) and lets go of the job.
async fn start_segments(env: &TestEnv, registry: &Registry, job: &JobId) {
    let settings = segmented(0);
    let runner = runner_on(env, registry, &settings, "starter");
    let outcome = runner.run(job, far_deadline()).await.unwrap();
    assert_eq!(outcome, RunOutcome::NotRunnable);
    let run = env.job(job.as_str()).await.unwrap().run.unwrap();
    assert!(run.attempts.lease.is_none(), "the job is let go: {run:?}");
}

async fn segments_of(env: &TestEnv, job: &JobId, version: u32) -> Vec<SegmentRun> {
    env.store
        .segments(&SegmentKey::all(job, version, SEGMENTS))
        .await
        .unwrap()
}

#[tokio::test]
async fn segments_done_in_any_order_apply_the_migration_once_all_are_done() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(LEGACY_JOBS)).await;
    let job = env.kick_off(2).await.id;
    let registry = Registry::built_in();
    start_segments(&env, registry, &job).await;
    let keys = SegmentKey::all(&job, 1, SEGMENTS);
    assert_eq!(segments_of(&env, &job, 1).await.len(), 4);

    // Three segments, out of order, each by a worker of its own.
    let settings = segmented(1);
    for segment in [3, 0, 2] {
        let runner = runner_on(
            &env,
            registry,
            &settings,
            &format!("segment-worker-{segment}"),
        );
        let outcome = runner.run_segment(&keys[segment], far_deadline()).await;
        assert_eq!(outcome.unwrap(), RunOutcome::Completed);
        // Not yet applied: one segment is still to come.
        assert_eq!(env.store.data_version().await.unwrap(), 0);
    }
    let segments = segments_of(&env, &job, 1).await;
    let done: Vec<bool> = segments.iter().map(|s| s.done).collect();
    assert_eq!(done, [true, false, true, true]);
    // The segments split the table between them.
    assert!(segments.iter().filter(|s| s.items_scanned > 0).count() > 1);
    // A done segment is kept while its job runs, however long that takes.
    assert_eq!(
        segment_items(&env).await,
        (4, 0),
        "(segments, with an expiry)"
    );
    // The transaction that applies the migration checks every segment: with one not done, it
    // writes nothing.
    let stored = env.job(job.as_str()).await.unwrap();
    let applying = stored.revised(instant::now());
    let refused = env
        .store
        .save_advancing(&stored.job.meta.version_id, &applying, 1, &keys)
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(env.store.data_version().await.unwrap(), 0);
    assert_eq!(env.job(job.as_str()).await.unwrap(), stored);

    // The job's runner sums them into its progress, runs the last one, applies migration 1,
    // and runs migration 2 in segments the same way.
    let runner = runner_on(&env, registry, &settings, "worker");
    assert_eq!(
        runner.run(&job, far_deadline()).await.unwrap(),
        RunOutcome::Completed
    );
    assert_eq!(env.store.data_version().await.unwrap(), 2);
    assert_eq!(expiring(&env, &job).await, LEGACY_JOBS);
    // Each applying write deleted its migration's segments.
    assert_eq!(segment_items(&env).await, (0, 0));
    let answer = env
        .send(ApiRequest::get(&format!("/job/{job}/status")))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let migrations: Vec<_> = answer.body["output"]["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "migration")
        .map(|p| {
            let parts = p["part"].as_array().unwrap();
            let count = |name: &str| {
                let part = parts.iter().find(|part| part["name"] == name).unwrap();
                part["valueInteger"].as_u64().unwrap()
            };
            (
                count("itemsScanned") >= LEGACY_JOBS as u64,
                count("itemsChanged"),
            )
        })
        .collect();
    // Together the segments scanned each item and changed each legacy job once.
    let each = (true, LEGACY_JOBS as u64);
    assert_eq!(migrations, [each, each], "(scanned all, changed) of each");
}

/// Segment items in the table, and how many of them have an expiry.
async fn segment_items(env: &TestEnv) -> (usize, usize) {
    let items = env.items().await;
    let segments: Vec<_> = items
        .iter()
        .filter(|item| item.contains_key("segment") && item.contains_key("total"))
        .collect();
    let expiring = segments
        .iter()
        .filter(|item| item.contains_key(EXPIRES_AT))
        .count();
    (segments.len(), expiring)
}

#[tokio::test]
async fn a_running_job_shows_the_sum_of_its_segments() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(LEGACY_JOBS)).await;
    let job = env.kick_off(1).await.id;
    let registry = Registry::built_in();
    start_segments(&env, registry, &job).await;
    let keys = SegmentKey::all(&job, 1, SEGMENTS);
    let settings = segmented(1);
    for key in &keys[..2] {
        let runner = runner_on(&env, registry, &settings, "segment-worker");
        assert_eq!(
            runner.run_segment(key, far_deadline()).await.unwrap(),
            RunOutcome::Completed
        );
    }
    let done: u64 = segments_of(&env, &job, 1).await[..2]
        .iter()
        .map(|s| s.items_scanned)
        .sum();
    // A job runner that runs nothing sums them up.
    start_segments(&env, registry, &job).await;

    let answer = env
        .send(ApiRequest::get(&format!("/job/{job}/status")))
        .await;
    assert_eq!(answer.status, 202);
    let progress = answer.header("x-progress").unwrap();
    assert!(
        progress.starts_with(&format!("migration 1/1: {done} "))
            && progress.contains(" in 4 segments"),
        "{progress}"
    );
    let parts = &answer.body["output"]["parameter"][0]["part"];
    let scanned = parts
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "itemsScanned")
        .unwrap();
    assert_eq!(scanned["valueInteger"], done);
    let segments = parts
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "segments");
    assert_eq!(segments.unwrap()["valueInteger"], SEGMENTS);
}

#[tokio::test]
async fn a_cancel_stops_every_segment_at_its_next_checkpoint() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(LEGACY_JOBS)).await;
    let job = env.kick_off(2).await.id;
    // The first migration pauses after its second page, wherever it runs.
    let paused = pausing_registry(2);
    start_segments(&env, &paused.registry, &job).await;
    let keys = SegmentKey::all(&job, 1, SEGMENTS);
    let settings = segmented(1);
    let runner = runner_on(&env, &paused.registry, &settings, "segment-worker");

    let running = runner.run_segment(&keys[0], far_deadline());
    let cancel = async {
        paused.paused.notified().await;
        let answer = env
            .send(ApiRequest::delete(&format!("/job/{job}/status")))
            .await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        paused.resume.notify_one();
    };
    let (outcome, ()) = tokio::join!(running, cancel);
    // The cancel deleted the segments with it: the checkpoint of the page in flight finds
    // its segment gone, and the segment stops.
    assert_eq!(outcome.unwrap(), RunOutcome::Cancelled);
    assert_eq!(paused.pages.load(Ordering::SeqCst), 2);
    assert_eq!(segment_items(&env).await, (0, 0));

    // No other segment starts, and no worker takes the job up again.
    for key in &keys[1..] {
        let outcome = runner.run_segment(key, far_deadline()).await.unwrap();
        assert_eq!(outcome, RunOutcome::Cancelled);
    }
    assert_eq!(paused.pages.load(Ordering::SeqCst), 2);
    let worker = runner_on(&env, &paused.registry, &settings, "worker");
    assert_eq!(
        worker.run(&job, far_deadline()).await.unwrap(),
        RunOutcome::NotRunnable
    );
    let stored = env.job(job.as_str()).await.unwrap();
    assert_eq!(stored.job.status, JobStatus::Cancelled);
    assert_eq!(env.store.data_version().await.unwrap(), 0);
}

#[tokio::test]
async fn a_crashed_segment_is_resumed_by_the_sweeper_once_its_lease_runs_out() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(LEGACY_JOBS)).await;
    let job = env.kick_off(1).await.id;
    let paused = pausing_registry(2);
    start_segments(&env, &paused.registry, &job).await;
    let keys = SegmentKey::all(&job, 1, SEGMENTS);
    let settings = segmented(SEGMENTS as usize);

    // A worker dies in its segment's second page: its lease and first checkpoint stay.
    let crashing = runner_on(&env, &paused.registry, &settings, "crashing");
    let run = crashing.run_segment(&keys[1], far_deadline());
    tokio::select! {
        _ = run => panic!("the segment was to stop in its second page"),
        () = paused.paused.notified() => {}
    }
    let crashed = segments_of(&env, &job, 1).await.remove(1);
    assert!(crashed.attempts.lease.is_some() && crashed.cursor.is_some());
    let checkpointed = crashed.items_scanned;
    assert_eq!(checkpointed, 10);

    // While its lease holds, nobody else runs it.
    let other = runner_on(&env, &paused.registry, &settings, "other");
    assert_eq!(
        other.run_segment(&keys[1], far_deadline()).await.unwrap(),
        RunOutcome::NotRunnable
    );
    expire_segment_lease(&env, &keys[1]).await;

    // The sweeper runs the job, which resumes the segment from its checkpoint.
    let sweeper = runner_on(&env, &paused.registry, &settings, "sweeper");
    let swept = sweeper.sweep(far_deadline()).await.unwrap();
    assert_eq!(swept, vec![(job.clone(), RunOutcome::Completed)]);
    assert_eq!(env.store.data_version().await.unwrap(), 1);
    assert_eq!(expiring(&env, &job).await, LEGACY_JOBS);
    // Every item was scanned; the crashed segment's first page was not scanned again (the
    // page that died with the worker was, and counted once).
    let applied = &env.job(job.as_str()).await.unwrap().run.unwrap().applied[0];
    let scanned = applied.items_scanned;
    assert!(
        (LEGACY_JOBS as u64..LEGACY_JOBS as u64 + checkpointed).contains(&scanned),
        "{scanned}"
    );
}

#[tokio::test]
async fn a_segment_that_keeps_failing_fails_the_job() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(20)).await;
    let job = env.kick_off(1).await.id;
    let registry = Registry::new(vec![Box::new(Broken)]).unwrap();
    let settings = segmented(SEGMENTS as usize);
    let runner = runner_on(&env, &registry, &settings, "worker");
    assert_eq!(
        runner.run(&job, far_deadline()).await.unwrap(),
        RunOutcome::GaveUp
    );
    let answer = env
        .send(ApiRequest::get(&format!("/job/{job}/status")))
        .await;
    assert_eq!(answer.status, 500, "{}", answer.body);
    let diagnostics = answer.body["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        diagnostics.contains("gave up after 3 failed attempts in a row")
            && diagnostics.contains("segment")
            && diagnostics.contains("the disk is full"),
        "{diagnostics}"
    );
    assert_eq!(env.store.data_version().await.unwrap(), 0);
    // The job's final write deleted its segments.
    assert_eq!(segment_items(&env).await, (0, 0));
}

/// The worker that finishes the last segment runs the job next, to apply the migration. If
/// another worker holds the job just then (it is reading the segments, and saw that one
/// still running), the migration is still applied at once, not left for the sweeper: the
/// holder looks at the segments again once it has let go of the job.
#[tokio::test]
async fn the_last_segment_done_while_another_worker_holds_the_job_still_applies_it() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(40)).await;
    let job = env.kick_off(1).await.id;
    // Worker C's first page pauses, holding segment 2's lease.
    let paused = pausing_registry(1);
    let settings = RunSettings {
        segments: Some(2),
        ..segmented(1)
    };
    let starter = RunSettings {
        segments_at_once: 0,
        ..settings.clone()
    };
    let outcome = runner_on(&env, &paused.registry, &starter, "starter")
        .run(&job, far_deadline())
        .await;
    assert_eq!(
        outcome.unwrap(),
        RunOutcome::NotRunnable,
        "segments started"
    );
    let keys = SegmentKey::all(&job, 1, 2);
    let c = runner_on(&env, &paused.registry, &settings, "worker-c");
    // Worker B's reads of the segments can be held up after they are answered.
    let plan = FaultPlan::default();
    let b_store = env.faulty_store(&plan);
    let b_context = MigrationContext::on(&b_store, settings.page_size);
    let b = Runner::new(&b_store, &paused.registry, b_context, &settings, "worker-b");

    let c_done = Notify::new();
    let c_segment = async {
        let outcome = c.run_segment(&keys[1], far_deadline()).await.unwrap();
        c_done.notify_one();
        outcome
    };
    let the_rest = async {
        paused.paused.notified().await;
        let outcome = b.run_segment(&keys[0], far_deadline()).await.unwrap();
        assert_eq!(outcome, RunOutcome::Completed, "B finished segment 1");
        plan.set(vec![FaultRule {
            operation: "BatchGetItem",
            occurrence: 0,
            fault: Fault::Pause { after: true },
        }]);
        let b_job = b.run(&job, far_deadline());
        tokio::pin!(b_job);
        tokio::select! {
            outcome = &mut b_job => panic!("B was to stop after reading the segments: {outcome:?}"),
            () = plan.paused() => {}
        }
        // B holds the job and saw segment 2 held by C. C finishes it, and cannot take the
        // job to apply the migration.
        paused.resume.notify_one();
        c_done.notified().await;
        let c_job = c.run(&job, far_deadline()).await.unwrap();
        assert_eq!(c_job, RunOutcome::NotRunnable, "B holds the job");
        plan.resume();
        b_job.await.unwrap()
    };
    let (c_segment, b_job) = tokio::join!(c_segment, the_rest);
    assert_eq!(c_segment, RunOutcome::Completed);
    assert_eq!(b_job, RunOutcome::Completed);
    let stored = env.job(job.as_str()).await.unwrap();
    assert_eq!(stored.job.status, JobStatus::Completed);
    assert_eq!(env.store.data_version().await.unwrap(), 1);
}

/// Throttling is the table asking for less, not a failure: a segment whose job reads are
/// throttled in more runs in a row than its attempts allow is never given up, nor is its
/// job. Each run lets go of the segment and counts a throttled attempt; once the table
/// takes reads again, the job completes.
#[tokio::test]
async fn a_throttled_segment_is_slowed_down_never_given_up() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(40)).await;
    let job = env.kick_off(1).await.id;
    let registry = Registry::built_in();
    start_segments(&env, registry, &job).await;
    let keys = SegmentKey::all(&job, 1, SEGMENTS);
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);
    let settings = segmented(1);
    plan.always_on("GetItem", Fault::Throttle);

    let runs = settings.max_attempts + 2;
    for run in 0..runs {
        let context = MigrationContext::on(&store, settings.page_size);
        let owner = format!("stream-worker-{run}");
        let runner = Runner::new(&store, registry, context, &settings, &owner);
        let outcome = runner.run_segment(&keys[0], far_deadline()).await;
        assert!(
            matches!(&outcome, Ok(RunOutcome::Failed(reason)) if reason.contains("throttled")),
            "run {run}: {outcome:?}"
        );
        // Stream-started invocations come one after another; a lease left behind would
        // have run out before the next.
        expire_segment_lease(&env, &keys[0]).await;
    }
    let segment = segments_of(&env, &job, 1).await.remove(0);
    assert_eq!(segment.gave_up, None);
    assert!(segment.attempts.lease.is_none(), "let go: {segment:?}");
    assert_eq!(
        (segment.attempts.throttled, segment.attempts.failures),
        (runs, 0)
    );

    plan.clear();
    let settings = segmented(SEGMENTS as usize);
    let runner = runner_on(&env, registry, &settings, "worker");
    assert_eq!(run_to_end(&runner, &job).await, RunOutcome::Completed);
    assert_eq!(env.store.data_version().await.unwrap(), 1);
}

/// The job's runner surveys its segments while it runs some of them itself. When a survey
/// is throttled, the segments in flight stop at their next checkpoint and let go of their
/// leases before the job records the throttled attempt: none of them is left to run out
/// and count as a worker that died.
#[tokio::test]
async fn a_throttled_survey_lets_go_of_the_segments_it_runs() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(LEGACY_JOBS)).await;
    let job = env.kick_off(1).await.id;
    let paused = pausing_registry(1);
    start_segments(&env, &paused.registry, &job).await;
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);
    let settings = segmented(SEGMENTS as usize);
    let context = MigrationContext::on(&store, settings.page_size);
    let runner = Runner::new(&store, &paused.registry, context, &settings, "worker");

    let run = runner.run(&job, far_deadline());
    let throttle_the_survey = async {
        // A first page is in flight while the next survey is throttled; then it goes on.
        paused.paused.notified().await;
        plan.always_on("BatchGetItem", Fault::Throttle);
        while !plan.counts().0.contains_key("throttle") {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        paused.resume.notify_one();
    };
    let (outcome, ()) = tokio::join!(run, throttle_the_survey);
    assert!(
        matches!(&outcome, Ok(RunOutcome::Failed(reason)) if reason.contains("throttled")),
        "{outcome:?}"
    );
    plan.clear();
    let stored = env.job(job.as_str()).await.unwrap();
    let attempts = stored.run.unwrap().attempts;
    assert_eq!((attempts.throttled, attempts.failures), (1, 0));
    assert!(attempts.lease.is_none());
    for segment in segments_of(&env, &job, 1).await {
        assert!(segment.attempts.lease.is_none(), "{segment:?}");
        assert_eq!(segment.attempts.failures, 0, "{segment:?}");
    }
    let runner = runner_on(&env, &paused.registry, &settings, "sweeper");
    assert_eq!(run_to_end(&runner, &job).await, RunOutcome::Completed);
}

/// A worker that lacks a segment's migration (an older release, during a deployment)
/// leaves the segment alone: it takes no lease that would run out and count against it.
#[tokio::test]
async fn a_worker_without_the_segments_migration_leaves_it_unclaimed() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(20)).await;
    let job = env.kick_off(2).await.id;
    let registry = Registry::built_in();
    start_segments(&env, registry, &job).await;
    let settings = segmented(1);
    let newer = runner_on(&env, registry, &settings, "newer");
    for key in SegmentKey::all(&job, 1, SEGMENTS) {
        let outcome = newer.run_segment(&key, far_deadline()).await.unwrap();
        assert_eq!(outcome, RunOutcome::Completed);
    }
    // Migration 1 is applied and migration 2's segments are started.
    start_segments(&env, registry, &job).await;
    assert_eq!(env.store.data_version().await.unwrap(), 1);

    let older_registry = Registry::new(vec![Box::new(ExpireFinishedJobs)]).unwrap();
    let older = runner_on(&env, &older_registry, &settings, "older");
    let key = &SegmentKey::all(&job, 2, SEGMENTS)[0];
    let outcome = older.run_segment(key, far_deadline()).await.unwrap();
    assert_eq!(outcome, RunOutcome::NotRunnable);
    let segment = segments_of(&env, &job, 2).await.remove(0);
    assert_eq!((segment.revision, segment.attempts.lease), (0, None));
}

/// DynamoDB leaves keys of a BatchGetItem unprocessed when the table is busy. Asked again a
/// few times with a growing wait, they are read; while the table stays busy, the read ends
/// as throttled instead of asking again without end.
#[tokio::test]
async fn unprocessed_segment_keys_are_asked_again_a_bounded_number_of_times() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(20)).await;
    let job = env.kick_off(1).await.id;
    let registry = Registry::built_in();
    start_segments(&env, registry, &job).await;
    let keys = SegmentKey::all(&job, 1, SEGMENTS);
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);

    plan.set(
        (0..3)
            .map(|occurrence| FaultRule {
                operation: "BatchGetItem",
                occurrence,
                fault: Fault::LeaveUnprocessed,
            })
            .collect(),
    );
    assert_eq!(store.segments(&keys).await.unwrap().len(), keys.len());

    plan.always_on("BatchGetItem", Fault::LeaveUnprocessed);
    let busy = tokio::time::timeout(Duration::from_secs(60), store.segments(&keys))
        .await
        .expect("the read asked again without end");
    let error = busy.unwrap_err();
    assert!(error.is_pushback(), "{error}");
    let (injected, _) = plan.counts();
    assert!(injected["keys left unprocessed"] < 20, "{injected:?}");
}

/// A job a release before the one run path began as a single scan of the whole table goes
/// on from its cursor as its migration's one segment, with its counts: the items before the
/// cursor are not read again.
#[tokio::test]
async fn a_single_scan_begun_by_an_older_release_goes_on_from_its_cursor() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(LEGACY_JOBS)).await;
    let job = env.kick_off(1).await.id;
    let context = MigrationContext::on(&env.store, 10);
    let (first_page, cursor) = scan_page(&context, &env.table, None).await.unwrap();
    let mut begun = env.job(job.as_str()).await.unwrap();
    begun.run = Some(RunState {
        plan: Some(vec![1]),
        current: Some(MigrationProgress {
            cursor,
            items_scanned: 10,
            duration_ms: 1000,
            ..MigrationProgress::starting(1, None)
        }),
        ..RunState::default()
    });
    env.put(&begun).await;

    let registry = Registry::new(vec![Box::new(ExpireFinishedJobs)]).unwrap();
    let settings = segmented(1);
    let runner = runner_on(&env, &registry, &settings, "worker");
    assert_eq!(run_to_end(&runner, &job).await, RunOutcome::Completed);
    // The older release's page is not done again: its legacy jobs have no TTL yet.
    let skipped = first_page
        .iter()
        .filter(|item| item.contains_key("requestTime"))
        .filter(|item| item["id"].as_s().ok() != Some(&job.to_string()))
        .count();
    assert!(skipped > 0);
    assert_eq!(expiring(&env, &job).await, LEGACY_JOBS - skipped);
}
