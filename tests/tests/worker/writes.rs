//! A conditional write recognises only itself. When a write's condition fails, the store
//! looks at the item as it is: if this write put it there (an earlier attempt landed and its
//! answer was lost), it counts as written; if another writer did, it does not, even when
//! both computed the same item (two cancels in one millisecond do). Each of the store's
//! conditional writes is raced against an identical twin, then has its answer lost.

use asyncjob_shared::model::{JobStatus, SegmentKey, SegmentRun, StoredJob, instant};
use asyncjob_shared::store::{JobRuns, JobStore, SegmentRuns, StoreError};
use asyncjob_tests::TestEnv;
use asyncjob_tests::faults::{Fault, FaultPlan, FaultRule};

/// A freshly kicked-off job as stored (at version 1).
async fn kicked_off(env: &TestEnv) -> StoredJob {
    let job = env.kick_off(1).await;
    env.job(job.id.as_str()).await.unwrap()
}

/// The next write of a fresh job, computed once: whoever sends it sends the very same item.
async fn cancel_of_a_fresh_job(env: &TestEnv) -> StoredJob {
    kicked_off(env)
        .await
        .cancelled(instant::now(), env.config.retention)
}

/// The job's next revision and the one segment of its migration, before it is started.
async fn segment_start(env: &TestEnv) -> (StoredJob, [SegmentRun; 1]) {
    let current = kicked_off(env).await;
    let key = SegmentKey::all(&current.job.id, 1, 1).remove(0);
    (current.revised(instant::now()), [SegmentRun::new(key)])
}

/// The next write of a started segment.
async fn segment_and_next(env: &TestEnv) -> SegmentRun {
    let (next, segments) = segment_start(env).await;
    let started = env.store.start_segments("1", &next, &segments).await;
    assert!(started.unwrap());
    let mut next = segments[0].revised();
    next.items_scanned = 10;
    next
}

/// Exactly one of two identical writes counts as written. The other lost: its condition
/// failed, or (DynamoDB, when two transactions meet) it was refused as a passing conflict,
/// which counts as nothing written.
fn written_once(results: [Result<bool, StoreError>; 2]) {
    let written = results
        .iter()
        .filter(|result| match result {
            Ok(written) => *written,
            Err(error) => {
                assert!(error.is_transient(), "{error}");
                false
            }
        })
        .count();
    assert_eq!(
        written, 1,
        "exactly one of two identical writes wrote: {results:?}"
    );
}

/// The first request of `operation` lands, and its answer is lost as a timeout; the SDK
/// sends it again.
fn losing_the_first(plan: &FaultPlan, operation: &'static str) {
    plan.set(vec![FaultRule {
        operation,
        occurrence: 0,
        fault: Fault::LoseAnswerAsTimeout,
    }]);
}

#[tokio::test]
async fn of_two_identical_job_writes_only_the_one_that_landed_counts() {
    let env = TestEnv::start().await;
    let next = cancel_of_a_fresh_job(&env).await;
    let (a, b) = tokio::join!(env.store.save("1", &next), env.store.save("1", &next));
    written_once([a, b]);
    assert_eq!(env.job(next.job.id.as_str()).await.unwrap(), next);
}

#[tokio::test]
async fn of_two_identical_advancing_writes_only_the_one_that_landed_counts() {
    let env = TestEnv::start().await;
    let next = cancel_of_a_fresh_job(&env).await;
    let (a, b) = tokio::join!(
        env.store.save_advancing("1", &next, 1, &[]),
        env.store.save_advancing("1", &next, 1, &[])
    );
    written_once([a, b]);
    assert_eq!(env.store.data_version().await.unwrap(), 1);
}

#[tokio::test]
async fn of_two_identical_segment_starts_only_the_one_that_landed_counts() {
    let env = TestEnv::start().await;
    let (next, segments) = segment_start(&env).await;
    let (a, b) = tokio::join!(
        env.store.start_segments("1", &next, &segments),
        env.store.start_segments("1", &next, &segments)
    );
    written_once([a, b]);
}

#[tokio::test]
async fn of_two_identical_segment_writes_only_the_one_that_landed_counts() {
    let env = TestEnv::start().await;
    let next = segment_and_next(&env).await;
    let (a, b) = tokio::join!(env.store.save_segment(&next), env.store.save_segment(&next));
    written_once([a, b]);
    let stored = env
        .store
        .segments(std::slice::from_ref(&next.key))
        .await
        .unwrap();
    assert_eq!(stored, [next]);
}

#[tokio::test]
async fn a_job_write_whose_answer_was_lost_counts_as_written() {
    let env = TestEnv::start().await;
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);
    let next = cancel_of_a_fresh_job(&env).await;
    losing_the_first(&plan, "PutItem");
    assert!(store.save("1", &next).await.unwrap());

    let next = cancel_of_a_fresh_job(&env).await;
    losing_the_first(&plan, "TransactWriteItems");
    assert!(store.save_advancing("1", &next, 1, &[]).await.unwrap());
    let stored = env.job(next.job.id.as_str()).await.unwrap();
    assert_eq!(stored.job.status, JobStatus::Cancelled);
}

#[tokio::test]
async fn a_segment_write_whose_answer_was_lost_counts_as_written() {
    let env = TestEnv::start().await;
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);
    let (next, segments) = segment_start(&env).await;
    losing_the_first(&plan, "TransactWriteItems");
    assert!(store.start_segments("1", &next, &segments).await.unwrap());

    let next = segments[0].revised();
    losing_the_first(&plan, "PutItem");
    assert!(store.save_segment(&next).await.unwrap());
    assert_eq!(
        store
            .segments(std::slice::from_ref(&next.key))
            .await
            .unwrap(),
        [next]
    );
}
