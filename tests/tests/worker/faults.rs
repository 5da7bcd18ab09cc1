//! The runner against the engine when DynamoDB's answers go wrong: a migration is recorded
//! as applied only together with the data version it reached, and a checkpoint that landed
//! is the run's own even when its answer was lost.

use asyncjob_shared::migration::MigrationContext;
use asyncjob_shared::migration::{ExpireFinishedJobs, Registry};
use asyncjob_shared::model::JobStatus;
use asyncjob_shared::runner::{RunOutcome, Runner};
use asyncjob_shared::store::RunStore;
use asyncjob_tests::TestEnv;
use asyncjob_tests::faults::{CancelReason, Fault, FaultPlan, FaultRule};

use crate::support::{far_deadline, legacy_jobs, put_items, settings};

/// DynamoDB cancels the transaction that records the last page of migration 1 and moves the
/// data version up, for a reason other than its conditions. The job must not be completed:
/// the data is not at version 1 yet.
#[tokio::test]
async fn a_migration_whose_last_write_is_cancelled_for_throttling_is_not_completed() {
    for item in [0, 1] {
        let env = TestEnv::start().await;
        put_items(&env, &legacy_jobs(5)).await;
        let job = env.kick_off(1).await;
        let plan = FaultPlan::default();
        let store = env.faulty_store(&plan);
        let settings = settings();
        let registry = Registry::new(vec![Box::new(ExpireFinishedJobs)]).unwrap();
        let context = MigrationContext::on(&store, settings.page_size);
        let runner = Runner::new(&store, &registry, context, &settings, "worker");
        plan.always(Fault::CancelTransaction {
            item,
            reason: CancelReason::Throttling,
        });

        let outcome = runner.run(&job.id, far_deadline()).await.unwrap();
        assert!(matches!(outcome, RunOutcome::Failed(_)), "{outcome:?}");
        let stored = env.job(job.id.as_str()).await.unwrap();
        assert_eq!(stored.job.status, JobStatus::Accepted);
        assert!(
            stored.run.unwrap().applied.is_empty(),
            "not recorded as applied"
        );
        assert_eq!(env.store.data_version().await.unwrap(), 0);

        plan.clear();
        assert_eq!(
            runner.run(&job.id, far_deadline()).await.unwrap(),
            RunOutcome::Completed
        );
        assert_eq!(env.store.data_version().await.unwrap(), 1);
    }
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
