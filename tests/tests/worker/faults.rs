//! The runner against the engine when DynamoDB's answers or items go wrong: a migration is
//! recorded as applied only together with the data version it reached, a checkpoint that
//! landed is the run's own even when its answer was lost, and an unreadable item stops
//! nothing.

use std::time::Duration;

use asyncjob_shared::migration::{ExpireFinishedJobs, MigrationContext, Registry};
use asyncjob_shared::model::{AsyncJob, JobId, JobStatus, JobType, SegmentKey, StoredJob, instant};
use asyncjob_shared::runner::{RunOutcome, RunSettings, Runner};
use asyncjob_shared::store::test_support::to_item;
use asyncjob_shared::store::{DynamoStore, JobStore, SegmentRuns, StoreError};
use asyncjob_tests::faults::{CancelReason, Fault, FaultPlan, FaultRule};
use asyncjob_tests::{ApiRequest, TestEnv};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::support::{
    expire_waits, expiring, far_deadline, legacy_jobs, put_items, run_to_end, runner_on, settings,
};

/// A data migration to version 1 over five legacy jobs, run through a store whose requests
/// `plan` can fault.
struct FaultyVersion1 {
    env: TestEnv,
    plan: FaultPlan,
    store: DynamoStore,
    settings: RunSettings,
    registry: Registry,
    job: JobId,
}

impl FaultyVersion1 {
    async fn start() -> Self {
        let env = TestEnv::start().await;
        put_items(&env, &legacy_jobs(5)).await;
        let job = env.kick_off(1).await.id;
        let plan = FaultPlan::default();
        let store = env.faulty_store(&plan);
        Self {
            env,
            plan,
            store,
            settings: settings(),
            registry: Registry::new(vec![Box::new(ExpireFinishedJobs)]).unwrap(),
            job,
        }
    }

    async fn run(&self) -> RunOutcome {
        self.try_run().await.unwrap()
    }

    async fn try_run(&self) -> Result<RunOutcome, StoreError> {
        let context = MigrationContext::on(&self.store, self.settings.page_size);
        Runner::new(
            &self.store,
            &self.registry,
            context,
            &self.settings,
            "worker",
        )
        .run(&self.job, far_deadline())
        .await
    }

    async fn stored(&self) -> StoredJob {
        self.env.job(self.job.as_str()).await.unwrap()
    }
}

/// DynamoDB cancels the transaction that records the last page of migration 1 and moves the
/// data version up, for a reason other than its conditions. The job must not be completed:
/// the data is not at version 1 yet.
#[tokio::test]
async fn a_migration_whose_last_write_is_cancelled_for_throttling_is_not_completed() {
    for item in [0, 1] {
        let faulty = FaultyVersion1::start().await;
        faulty.plan.always(Fault::CancelTransaction {
            item,
            reason: CancelReason::Throttling,
        });

        let outcome = faulty.run().await;
        assert!(matches!(outcome, RunOutcome::Failed(_)), "{outcome:?}");
        let stored = faulty.stored().await;
        assert_eq!(stored.job.status, JobStatus::Accepted);
        assert!(
            stored.run.unwrap().applied.is_empty(),
            "not recorded as applied"
        );
        assert_eq!(faulty.env.store.data_version().await.unwrap(), 0);

        faulty.plan.clear();
        assert_eq!(faulty.run().await, RunOutcome::Completed);
        assert_eq!(faulty.env.store.data_version().await.unwrap(), 1);
    }
}

/// Throttling is the table asking for less, not a failure: a job throttled more times in a
/// row than its attempts allow is never given up; it waits, and completes once the table
/// takes its requests again.
#[tokio::test]
async fn a_throttled_migration_is_slowed_down_never_given_up() {
    // Every Scan throttled, the SDK's own retries included.
    pushed_back_never_given_up("Scan", Fault::Throttle, "throttled").await;
}

/// A write that meets a conflicting transaction is another writer getting there first, not
/// a failure: it is pushed back as throttling is, and never gives the job up.
#[tokio::test]
async fn a_migration_meeting_conflicting_transactions_is_slowed_down_never_given_up() {
    pushed_back_never_given_up("UpdateItem", Fault::Conflict, "conflicting transaction").await;
}

/// A segment's step fails, and so do the first writes that would record it (throttled, the
/// SDK's retries included): the runner tries that write again, so the segment is let go
/// with its failure counted, instead of its lease being left to run out and count as a run
/// that died.
#[tokio::test]
async fn a_throttled_write_of_a_failure_is_tried_again_so_no_lease_is_left() {
    let mut faulty = FaultyVersion1::start().await;
    faulty.settings.retry_delay = Duration::from_secs(60);
    faulty.settings.max_retry_delay = Duration::from_secs(60);
    // The job's claim, its first survey and the segment's claim are the first three
    // PutItems; the segment's failure is the fourth, throttled through the SDK's retries.
    faulty.plan.set(
        (3..6)
            .map(|occurrence| FaultRule {
                operation: "PutItem",
                occurrence,
                fault: Fault::Throttle,
            })
            .collect(),
    );
    faulty.plan.always_on("UpdateItem", Fault::ServerError);
    let outcome = faulty.run().await;
    assert!(matches!(outcome, RunOutcome::Failed(_)), "{outcome:?}");
    let key = SegmentKey::all(&faulty.job, 1, 1).remove(0);
    let segment = faulty.env.store.segments(&[key]).await.unwrap().remove(0);
    assert_eq!(segment.attempts.lease, None, "the segment was let go");
    assert_eq!(segment.attempts.failures, 1);
}

/// The `PutItem`s from `first` on land and each answer is lost, the SDK's retries
/// included, so the claim they make fails; the run returns the error.
async fn claim_lost(first: u8) -> (FaultyVersion1, Result<RunOutcome, StoreError>) {
    let faulty = FaultyVersion1::start().await;
    faulty.plan.set(
        (first..first + 3)
            .map(|occurrence| FaultRule {
                operation: "PutItem",
                occurrence,
                fault: Fault::LoseAnswerAs500,
            })
            .collect(),
    );
    let outcome = faulty.try_run().await;
    faulty.plan.clear();
    (faulty, outcome)
}

/// A claim that landed while every answer to it was lost leaves no lease behind: the run
/// that returns its error lets go of the job, so the next run need not wait for the lease
/// to run out, nor count it as a run that died.
#[tokio::test]
async fn a_claim_whose_answers_are_all_lost_lets_go_of_the_job() {
    let (faulty, outcome) = claim_lost(0).await;
    assert!(outcome.is_err(), "{outcome:?}");
    let run = faulty.stored().await.run.unwrap();
    assert_eq!(run.attempts.lease, None, "the job was let go");
    assert_eq!(run.attempts.failures, 0);
    assert_eq!(faulty.run().await, RunOutcome::Completed);
}

/// Two workers claim the job from the same version; the second one's claim loses the race,
/// and every answer telling it so is lost. It lets go of nothing: the job is the first
/// worker's, which runs on and completes it.
#[tokio::test]
async fn a_claim_that_lost_its_race_unanswered_leaves_the_winners_lease_alone() {
    let faulty = FaultyVersion1::start().await;
    let late = &faulty.plan;
    let mut rules = vec![FaultRule {
        operation: "GetItem",
        occurrence: 0,
        fault: Fault::Pause { after: true },
    }];
    rules.extend((0..3).map(|occurrence| FaultRule {
        operation: "PutItem",
        occurrence,
        fault: Fault::LoseAnswerAs500,
    }));
    late.set(rules);
    let first_plan = FaultPlan::default();
    // The first worker's claim lands, and it waits for the answer.
    first_plan.set(vec![FaultRule {
        operation: "PutItem",
        occurrence: 0,
        fault: Fault::Pause { after: true },
    }]);
    let first_store = faulty.env.faulty_store(&first_plan);
    let context = MigrationContext::on(&first_store, faulty.settings.page_size);
    let first = Runner::new(
        &first_store,
        &faulty.registry,
        context,
        &faulty.settings,
        "first",
    );

    let late_run = faulty.try_run();
    tokio::pin!(late_run);
    tokio::select! {
        outcome = &mut late_run => panic!("the late worker did not read the job: {outcome:?}"),
        () = late.paused() => {}
    }
    let first_run = first.run(&faulty.job, far_deadline());
    tokio::pin!(first_run);
    tokio::select! {
        outcome = &mut first_run => panic!("the first worker did not claim: {outcome:?}"),
        () = first_plan.paused() => {}
    }
    late.resume();
    assert!(
        late_run.await.is_err(),
        "every answer to its claim was lost"
    );
    let lease = faulty.stored().await.run.unwrap().attempts.lease;
    assert_eq!(lease.map(|lease| lease.owner).as_deref(), Some("first"));

    first_plan.resume();
    assert_eq!(first_run.await.unwrap(), RunOutcome::Completed);
}

/// The same for a segment: its claim landed and every answer to it was lost. The segment is
/// let go, so the run's next survey takes it again and the run completes the job, instead
/// of leaving it held until its lease runs out.
#[tokio::test]
async fn a_segment_claim_whose_answers_are_all_lost_lets_go_of_the_segment() {
    // The job's claim, its first survey and then the segment's claim.
    let (faulty, outcome) = claim_lost(2).await;
    assert_eq!(outcome.unwrap(), RunOutcome::Completed);
    assert_eq!(faulty.env.store.data_version().await.unwrap(), 1);
}

/// Every `operation` of the migration meets `fault` for more runs in a row than a job's
/// attempts allow, each run failing with `cause`; once the fault stops, the job completes.
async fn pushed_back_never_given_up(operation: &str, fault: Fault, cause: &str) {
    let mut faulty = FaultyVersion1::start().await;
    faulty.settings.retry_delay = Duration::from_secs(60);
    faulty.settings.max_retry_delay = Duration::from_secs(60);
    faulty.plan.always_on(operation, fault);

    let throttled_runs = faulty.settings.max_attempts + 2;
    for _ in 0..throttled_runs {
        let outcome = faulty.run().await;
        assert!(matches!(outcome, RunOutcome::Failed(_)), "{outcome:?}");
        // The job waits as its segment does, and says why.
        let run = faulty.stored().await.run.unwrap();
        assert!(run.progress().contains(": throttled"), "{}", run.progress());
        expire_waits(&faulty.env, &faulty.job).await;
    }
    let stored = faulty.stored().await;
    assert_eq!(stored.job.status, JobStatus::Accepted);
    let run = stored.run.unwrap();
    assert_eq!(
        (run.attempts.throttled, run.attempts.failures),
        (throttled_runs, 0)
    );
    assert!(run.attempts.last_error.unwrap().contains(cause));

    faulty.plan.clear();
    assert_eq!(faulty.run().await, RunOutcome::Completed);
    assert_eq!(faulty.env.store.data_version().await.unwrap(), 1);
}

/// A budget shared by parallel segments holds while DynamoDB throttles their writes: a
/// throttled segment waits and tries again, it does not burst above its share to catch up,
/// and every item is still migrated.
#[tokio::test]
async fn the_budget_of_a_migration_in_segments_holds_while_its_writes_are_throttled() {
    const ITEMS: u64 = 200;
    const ITEMS_PER_SECOND: u32 = 40;
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(ITEMS as usize)).await;
    let job = env.kick_off(1).await.id;
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);
    let settings = RunSettings {
        items_per_second: Some(ITEMS_PER_SECOND),
        segments: Some(4),
        segments_at_once: 4,
        retry_delay: Duration::from_millis(100),
        max_retry_delay: Duration::from_millis(400),
        ..settings()
    };
    let registry = Registry::new(vec![Box::new(ExpireFinishedJobs)]).unwrap();
    // Three throttled answers in a row outlast the SDK's own retries: the step fails.
    plan.set(
        [20, 21, 22, 90, 91, 92, 93, 94, 95]
            .into_iter()
            .map(|occurrence| FaultRule {
                operation: "UpdateItem",
                occurrence,
                fault: Fault::Throttle,
            })
            .collect(),
    );
    let context = MigrationContext::on(&store, settings.page_size);
    let runner = Runner::new(&store, &registry, context, &settings, "worker");
    let started = std::time::Instant::now();
    let outcome = run_to_end(&runner, &job).await;
    let elapsed = started.elapsed();

    assert_eq!(outcome, RunOutcome::Completed);
    let (injected, _) = plan.counts();
    assert_eq!(injected.get("throttle"), Some(&9));
    // Every item has its TTL (a write that landed in a failed step is not counted again
    // when its page is done again, so the job's count of changes may be lower).
    assert_eq!(expiring(&env, &job).await as u64, ITEMS);
    // Each segment may use at most a second of its share at once after a pause; beyond
    // that the writes keep to the budget, throttled or not.
    let floor = Duration::from_secs_f64(
        (ITEMS - u64::from(ITEMS_PER_SECOND)) as f64 / f64::from(ITEMS_PER_SECOND),
    );
    assert!(
        elapsed >= floor,
        "{ITEMS} writes in {elapsed:?}, at most {ITEMS_PER_SECOND}/s"
    );
    assert_eq!(env.store.data_version().await.unwrap(), 1);
}

/// A checkpoint lands, its answer is lost, and the SDK's retry finds the job changed: the
/// change is the run's own write, so the run goes on to the end.
#[tokio::test]
async fn a_checkpoint_whose_answer_was_lost_does_not_stop_the_run() {
    for lost in [Fault::LoseAnswerAsTimeout, Fault::LoseAnswerAs500] {
        let env = TestEnv::start().await;
        put_items(&env, &legacy_jobs(25)).await;
        let job = env.kick_off(2).await;
        let plan = FaultPlan::default();
        let store = env.faulty_store(&plan);
        let settings = settings();
        let context = MigrationContext::on(&store, settings.page_size);
        let runner = Runner::new(&store, Registry::built_in(), context, &settings, "worker");
        // The claim is PutItem #0; #1 and #2 are checkpoints of migration 1.
        plan.set(vec![
            FaultRule {
                operation: "PutItem",
                occurrence: 1,
                fault: lost,
            },
            FaultRule {
                operation: "TransactWriteItems",
                occurrence: 0,
                fault: lost,
            },
        ]);
        assert_eq!(
            runner.run(&job.id, far_deadline()).await.unwrap(),
            RunOutcome::Completed,
            "{lost:?}"
        );
        assert_eq!(env.store.data_version().await.unwrap(), 2);
    }
}

/// An item this release cannot read (here, an attribute a newer release added) is skipped
/// and logged by searches, the sweeper and migrations, and counted in the job's output; it
/// stops none of them.
#[tokio::test]
async fn one_unreadable_item_stops_nothing() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(3)).await;
    let mut newer = AsyncJob::accepted(
        JobType::DataMigration,
        1,
        "urn:newer-release".into(),
        &instant::format(instant::now()),
    );
    newer.status = JobStatus::Accepted;
    let unreadable_id = newer.id.clone();
    let mut item = to_item(&StoredJob::new(newer)).unwrap();
    item.insert("priority".into(), AttributeValue::N("3".into()));
    put_items(&env, &[item]).await;
    let job = env.kick_off(2).await;

    for query in [
        "/AsyncJob?status=accepted",
        "/AsyncJob?_sort=requestTime",
        &format!("/AsyncJob?_id={unreadable_id},{}", job.id),
    ] {
        let page = env.send(ApiRequest::get(query)).await;
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        let ids: Vec<&str> = page.body["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["resource"]["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&job.id.as_str()), "{query}: {ids:?}");
        assert!(!ids.contains(&unreadable_id.as_str()), "{query}: {ids:?}");
    }

    let settings = settings();
    let sweeper = runner_on(&env, Registry::built_in(), &settings, "sweeper");
    let outcomes = sweeper.sweep(far_deadline()).await.unwrap();
    assert!(
        outcomes.contains(&(job.id.clone(), RunOutcome::Completed)),
        "{outcomes:?}"
    );
    let done = env
        .send(ApiRequest::get(&format!("/job/{}/status", job.id)))
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let skipped: Vec<i64> = done.body["output"]["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|part| part["name"] == "migration")
        .map(|part| {
            part["part"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "itemsSkipped")
                .unwrap()["valueInteger"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        skipped,
        vec![1, 1],
        "each migration skipped the unreadable item"
    );
}
