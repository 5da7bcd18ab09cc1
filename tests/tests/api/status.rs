use asyncjob_shared::model::JobStatus;
use asyncjob_shared::model::StoredJob;
use asyncjob_shared::store::{JobRuns, JobStore};
use asyncjob_tests::faults::{Fault, FaultPlan, FaultRule};
use asyncjob_tests::{ApiRequest, TestEnv};

use crate::support::{job, seeded};

fn poll(id: &str) -> ApiRequest {
    ApiRequest::get(&format!("/job/{id}/status"))
}

#[tokio::test]
async fn an_accepted_job_answers_202_with_progress_and_a_wait() {
    let env = TestEnv::start().await;
    let job = env.kick_off(1).await;
    let answer = env.send(poll(job.id.as_str())).await;

    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.body["resourceType"], "AsyncJob");
    assert_eq!(answer.body["id"], job.id.as_str());
    assert_eq!(answer.body["status"], "accepted");
    assert_eq!(answer.body["type"], "data-migration");
    assert_eq!(answer.body["dataVersion"], 1);
    assert_eq!(answer.body["requestTime"], job.request_time.as_str());
    assert!(
        answer
            .header("retry-after")
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 1
    );
    let progress = answer.header("x-progress").unwrap();
    assert!(!progress.is_empty() && progress.len() < 100);
    assert_eq!(answer.header("etag"), Some("W/\"1\""));
    assert!(answer.header("last-modified").unwrap().ends_with(" GMT"));
}

#[tokio::test]
async fn a_completed_job_answers_200_with_output_and_expiry() {
    let env = TestEnv::start().await;
    let done = seeded(&env, JobStatus::Completed, 1).await;
    let answer = env.send(poll(done.id.as_str())).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "completed");
    assert!(answer.body["transactionTime"].is_string());
    assert_eq!(answer.body["output"]["resourceType"], "Parameters");
    let expires = answer.header("expires").unwrap();
    let stored = env.job(done.id.as_str()).await.unwrap();
    assert_eq!(
        expires,
        asyncjob_shared::model::instant::http_date(stored.expires_at.unwrap())
    );
    assert!(answer.header("retry-after").is_none());
}

#[tokio::test]
async fn a_failed_job_answers_500_with_its_failure() {
    let env = TestEnv::start().await;
    let failed = seeded(&env, JobStatus::Error, 1).await;
    let answer = env.send(poll(failed.id.as_str())).await;

    answer.assert_outcome(500, "exception");
    assert_eq!(
        answer.body["issue"][0]["diagnostics"],
        "migration 1 failed: boom"
    );
    // The job itself stays readable.
    let read = env
        .send(ApiRequest::get(&format!("/AsyncJob/{}", failed.id)))
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["status"], "error");
}

#[tokio::test]
async fn cancelled_unknown_and_expired_jobs_are_not_found() {
    let env = TestEnv::start().await;
    let cancelled = seeded(&env, JobStatus::Cancelled, 1).await;
    let mut expired: StoredJob = job(JobStatus::Completed, 1, 60);
    expired.expires_at = Some(asyncjob_shared::model::instant::now() - time::Duration::seconds(1));
    env.put(&expired).await;

    for id in [
        cancelled.id.as_str(),
        expired.job.id.as_str(),
        "0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a",
    ] {
        env.send(poll(id)).await.assert_outcome(404, "not-found");
    }
}

#[tokio::test]
async fn a_current_etag_gives_304() {
    let env = TestEnv::start().await;
    let job = env.kick_off(1).await;
    let answer = env
        .send(poll(job.id.as_str()).header("if-none-match", "W/\"1\""))
        .await;
    assert_eq!(answer.status, 304);
    assert!(answer.body.is_null());
    assert_eq!(answer.header("etag"), Some("W/\"1\""));

    let stale = env
        .send(poll(job.id.as_str()).header("if-none-match", "W/\"0\""))
        .await;
    assert_eq!(stale.status, 202);
}

/// A 304 carries the headers the full answer would (RFC 9110 §15.4.5): a poller that holds
/// the current version still learns when to poll again, how far the job is, and when a
/// finished job's record goes away.
#[tokio::test]
async fn a_304_carries_the_headers_of_the_full_answer() {
    let env = TestEnv::start().await;
    let running = env.kick_off(1).await;
    let full = env.send(poll(running.id.as_str())).await;
    let not_modified = env
        .send(poll(running.id.as_str()).header("if-none-match", "W/\"1\""))
        .await;
    assert_eq!(not_modified.status, 304);
    for header in ["etag", "last-modified", "retry-after", "x-progress"] {
        assert_eq!(not_modified.header(header), full.header(header), "{header}");
    }

    let done = seeded(&env, JobStatus::Completed, 1).await;
    let full = env.send(poll(done.id.as_str())).await;
    let not_modified = env
        .send(poll(done.id.as_str()).header("if-none-match", "W/\"1\""))
        .await;
    assert_eq!(not_modified.status, 304);
    assert!(full.header("expires").is_some());
    assert_eq!(not_modified.header("expires"), full.header("expires"));
    assert_eq!(not_modified.header("retry-after"), None);
}

#[tokio::test]
async fn bad_ids_are_invalid() {
    let env = TestEnv::start().await;
    for id in ["a%20b", "a_b", &"x".repeat(65), "%E2%9C%93"] {
        env.send(poll(id)).await.assert_outcome(400, "invalid");
    }
}

/// A poll of the job as the client has seen it, which may wait up to `seconds`.
fn poll_waiting(id: &str, seen: &str, seconds: u32) -> ApiRequest {
    poll(id)
        .header("if-none-match", seen)
        .header("prefer", &format!("wait={seconds}"))
}

/// A poll that may wait answers as soon as the job changes, with the new version, and says
/// how long it would have waited: at most 20 s, however long the client asked for.
#[tokio::test]
async fn a_poll_that_may_wait_answers_once_the_job_changes() {
    let env = TestEnv::start().await;
    let job = env.kick_off(1).await;
    let plan = FaultPlan::default();
    // The poll's first read lands, and waits for its answer while the job changes.
    plan.set(vec![FaultRule {
        operation: "GetItem",
        occurrence: 0,
        fault: Fault::Pause { after: true },
    }]);
    let store = env.faulty_store(&plan);
    let answer = env.send_to(&store, poll_waiting(job.id.as_str(), "W/\"1\"", 3600));
    tokio::pin!(answer);
    tokio::select! {
        answer = &mut answer => panic!("the poll did not read the job: {}", answer.status),
        () = plan.paused() => {}
    }
    let stored = env.job(job.id.as_str()).await.unwrap();
    let next = stored.revised(env.store.clock().now());
    assert!(
        env.store
            .save(&stored.job.meta.version_id, &next)
            .await
            .unwrap()
    );
    plan.resume();

    let answer = answer.await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.header("etag"), Some("W/\"2\""));
    assert_eq!(answer.header("preference-applied"), Some("wait=20"));
    assert!(answer.header("x-progress").is_some());
}

/// When the job does not change, the poll answers once the wait is over, as a poll without
/// a wait would: `304` with the headers of the full answer.
#[tokio::test]
async fn a_poll_that_waits_for_a_job_that_stays_answers_when_the_wait_is_over() {
    let env = TestEnv::start().await;
    let job = env.kick_off(1).await;
    let answer = env.send(poll_waiting(job.id.as_str(), "W/\"1\"", 1)).await;
    assert_eq!(answer.status, 304);
    assert_eq!(answer.header("preference-applied"), Some("wait=1"));
    assert!(answer.header("retry-after").is_some());
    assert!(answer.header("x-progress").is_some());
}

/// A poll waits only for a change the client has not seen: a job changed since the version
/// it names, or finished, is answered at once, and the wait is not said to be applied.
#[tokio::test]
async fn a_poll_of_a_job_changed_since_or_finished_does_not_wait() {
    let env = TestEnv::start().await;
    let job = env.kick_off(1).await;
    let changed = env.send(poll_waiting(job.id.as_str(), "W/\"0\"", 20)).await;
    assert_eq!(changed.status, 202, "{}", changed.body);
    assert_eq!(changed.header("preference-applied"), None);
    let done = seeded(&env, JobStatus::Completed, 1).await;
    let finished = env
        .send(poll_waiting(done.id.as_str(), "W/\"1\"", 20))
        .await;
    assert_eq!(finished.status, 304, "it has seen the job as it is");
    assert_eq!(finished.header("preference-applied"), None);
}
