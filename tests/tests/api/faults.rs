//! A store that is down, throttling or in conflict answers 503 with Retry-After, never a
//! hang or a 500; a write whose answer was lost is recognised as the service's own; and the
//! service works again once the store is back.

use asyncjob_shared::model::JobStatus;
use asyncjob_tests::faults::{CancelReason, Fault, FaultPlan, FaultRule};
use asyncjob_tests::{Answer, ApiRequest, TestEnv};
use futures_util::future::join_all;

fn every_route(id: &str) -> Vec<ApiRequest> {
    vec![
        ApiRequest::post("/$data-migration?dataVersion=1").prefer_async(),
        ApiRequest::get(&format!("/job/{id}/status")),
        ApiRequest::delete(&format!("/job/{id}/status")),
        ApiRequest::get("/AsyncJob?status=accepted"),
        ApiRequest::post("/AsyncJob/_search"),
        ApiRequest::get(&format!("/AsyncJob/{id}")),
        ApiRequest::post(&format!("/AsyncJob/{id}/$pause")),
        ApiRequest::post(&format!("/AsyncJob/{id}/$resume")),
    ]
}

fn assert_transient(answer: &Answer) {
    answer.assert_outcome(503, "transient");
    let wait: u32 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1);
}

#[tokio::test]
async fn every_route_answers_503_while_the_engine_is_down_and_recovers() {
    let mut env = TestEnv::start().await;
    if !env.owns_engine() {
        return; // Another endpoint cannot be stopped from here.
    }
    let job = env.kick_off(2).await;
    env.stop_engine().await;
    let answers = join_all(
        every_route(job.id.as_str())
            .into_iter()
            .map(|r| env.send(r)),
    )
    .await;
    for answer in &answers {
        assert_transient(answer);
    }

    env.restart_engine().await;
    let statuses: Vec<u16> = join_all(
        every_route(job.id.as_str())
            .into_iter()
            .map(|r| env.send(r)),
    )
    .await
    .iter()
    .map(|answer| answer.status)
    .collect();
    // Kick-off of another version while one runs, poll, cancel, search, search, read,
    // pause, resume.
    assert_eq!(statuses.len(), 8);
    assert!(statuses.iter().all(|status| *status < 500), "{statuses:?}");
    assert_eq!(env.job(job.id.as_str()).await.unwrap().job.id, job.id);
}

#[tokio::test]
async fn throttling_answers_503_with_retry_after() {
    let env = TestEnv::start().await;
    let plan = FaultPlan::default();
    let throttled = env.faulty_store(&plan);
    plan.always(Fault::Throttle);
    let id = "0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a";
    for request in every_route(id) {
        assert_transient(&env.send_to(&throttled, request).await);
    }
}

/// A write to an item that is in another transaction is refused with
/// `TransactionConflictException`: a passing conflict, not a server fault.
#[tokio::test]
async fn a_conflict_with_a_transaction_answers_503() {
    let env = TestEnv::start().await;
    let job = env.kick_off(1).await;
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);
    plan.always(Fault::Conflict);
    for request in every_route(job.id.as_str()) {
        assert_transient(&env.send_to(&store, request).await);
    }
}

/// A cancel that landed, whose answer was lost on the way back, is recognised as the
/// service's own write when the SDK's retry finds the job changed: `202`, not `404`.
#[tokio::test]
async fn a_cancel_whose_answer_was_lost_answers_202() {
    let env = TestEnv::start().await;
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);
    for lost in [Fault::LoseAnswerAsTimeout, Fault::LoseAnswerAs500] {
        let job = env.kick_off(1).await;
        plan.set(vec![FaultRule {
            operation: "PutItem",
            occurrence: 0,
            fault: lost,
        }]);
        let answer = env
            .send_to(
                &store,
                ApiRequest::delete(&format!("/job/{}/status", job.id)),
            )
            .await;
        assert_eq!(answer.status, 202, "{lost:?}: {}", answer.body);
        assert_eq!(answer.header("etag"), Some("W/\"2\""));
        let stored = env.job(job.id.as_str()).await.unwrap();
        assert_eq!(stored.job.status, JobStatus::Cancelled);
        assert_eq!(stored.job.meta.version_id, "2", "written once");
    }
}

/// The same when the SDK's retry of the lost answer meets a passing conflict instead: the
/// cancel reads the job again and finds its own write there, not another cancel's.
#[tokio::test]
async fn a_cancel_whose_answer_was_lost_and_whose_retry_met_a_conflict_answers_202() {
    let env = TestEnv::start().await;
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);
    for lost in [Fault::LoseAnswerAsTimeout, Fault::LoseAnswerAs500] {
        let job = env.kick_off(1).await;
        plan.set(vec![
            FaultRule {
                operation: "PutItem",
                occurrence: 0,
                fault: lost,
            },
            FaultRule {
                operation: "PutItem",
                occurrence: 1,
                fault: Fault::Conflict,
            },
        ]);
        let path = format!("/job/{}/status", job.id);
        let answer = env.send_to(&store, ApiRequest::delete(&path)).await;
        assert_eq!(answer.status, 202, "{lost:?}: {}", answer.body);
        assert_eq!(answer.header("etag"), Some("W/\"2\""));
        let stored = env.job(job.id.as_str()).await.unwrap();
        assert_eq!(stored.job.meta.version_id, "2", "written once");
        let again = env.send_to(&store, ApiRequest::delete(&path)).await;
        assert_eq!(again.status, 404, "a second cancel finds it cancelled");
    }
}

/// A kick-off whose transaction is cancelled for throttling writes nothing and says to
/// come back.
#[tokio::test]
async fn a_kick_off_whose_transaction_is_throttled_answers_503_and_writes_nothing() {
    let env = TestEnv::start().await;
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);
    plan.always(Fault::CancelTransaction {
        item: 1,
        reason: CancelReason::Throttling,
    });
    let answer = env
        .send_to(&store, ApiRequest::post("/$data-migration").prefer_async())
        .await;
    assert_transient(&answer);
    assert!(env.items().await.is_empty(), "nothing is written");
}

/// A kick-off whose transaction landed and whose answer was lost is sent again by the SDK
/// with the same idempotency token, which DynamoDB answers as applied: the kick-off says it
/// started the job, not that another one was under way, and there is one job.
#[tokio::test]
async fn a_kick_off_whose_answer_was_lost_says_it_started_the_job() {
    let env = TestEnv::start().await;
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);
    for (tried, lost) in [Fault::LoseAnswerAsTimeout, Fault::LoseAnswerAs500]
        .into_iter()
        .enumerate()
    {
        plan.set(vec![FaultRule {
            operation: "TransactWriteItems",
            occurrence: 0,
            fault: lost,
        }]);
        let answer = env
            .send_to(&store, ApiRequest::post("/$data-migration").prefer_async())
            .await;
        assert_eq!(answer.status, 202, "{lost:?}: {}", answer.body);
        let issues = answer.body["issue"].as_array().unwrap();
        assert_eq!(
            issues.len(),
            1,
            "{lost:?}: no 'no new job' note: {issues:?}"
        );
        let id = answer.header("content-location").unwrap().to_owned();
        let id = id.trim_end_matches("/status").rsplit('/').next().unwrap();
        let stored = env.job(id).await.unwrap();
        assert_eq!(stored.job.status, JobStatus::Accepted);
        assert_eq!(
            env.job_ids().await.len(),
            tried + 1,
            "{lost:?}: one job more"
        );
        // Cancelled, so that the next kick-off starts a job of its own.
        let cancelled = env
            .send(ApiRequest::delete(&format!("/job/{id}/status")))
            .await;
        assert_eq!(cancelled.status, 202);
    }
}

/// A pause is the same kind of write as a cancel: after a try whose answer was lost and a
/// retry that met a conflict, it finds its own write and answers 200, paused once.
#[tokio::test]
async fn a_pause_whose_answer_was_lost_and_whose_retry_met_a_conflict_answers_200() {
    let env = TestEnv::start().await;
    let plan = FaultPlan::default();
    let store = env.faulty_store(&plan);
    for lost in [Fault::LoseAnswerAsTimeout, Fault::LoseAnswerAs500] {
        let job = env.kick_off(1).await;
        plan.set(vec![
            FaultRule {
                operation: "PutItem",
                occurrence: 0,
                fault: lost,
            },
            FaultRule {
                operation: "PutItem",
                occurrence: 1,
                fault: Fault::Conflict,
            },
        ]);
        let path = format!("/AsyncJob/{}/$pause", job.id);
        let answer = env.send_to(&store, ApiRequest::post(&path)).await;
        assert_eq!(answer.status, 200, "{lost:?}: {}", answer.body);
        assert_eq!(answer.header("etag"), Some("W/\"2\""));
        let run = env.job(job.id.as_str()).await.unwrap().run.unwrap();
        assert!(run.paused.is_some(), "{lost:?}");
        assert_eq!(run.controls.len(), 1, "{lost:?}: paused once");
        // Cancelled, so the next round may kick off again.
        let cancel = ApiRequest::delete(&format!("/job/{}/status", job.id));
        assert_eq!(env.send(cancel).await.status, 202);
    }
}
