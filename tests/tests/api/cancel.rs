use asyncjob_shared::model::JobStatus;
use asyncjob_tests::{ApiRequest, TestEnv};

use crate::support::seeded;

fn cancel(id: &str) -> ApiRequest {
    ApiRequest::delete(&format!("/job/{id}/status"))
}

#[tokio::test]
async fn cancelling_an_accepted_job() {
    let env = TestEnv::start().await;
    let job = env.kick_off(1).await;

    let answer = env.send(cancel(job.id.as_str())).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.body["resourceType"], "OperationOutcome");
    assert_eq!(answer.body["issue"][0]["severity"], "information");

    let stored = env.job(job.id.as_str()).await.unwrap();
    assert_eq!(stored.job.status, JobStatus::Cancelled);
    assert_eq!(stored.job.meta.version_id, "2");
    assert!(stored.expires_at.is_some(), "a finished job gets a TTL");

    // Gone from the status URL, still readable as a resource.
    env.send(ApiRequest::get(&format!("/job/{}/status", job.id)))
        .await
        .assert_outcome(404, "not-found");
    let read = env
        .send(ApiRequest::get(&format!("/AsyncJob/{}", job.id)))
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["status"], "cancelled");
}

#[tokio::test]
async fn cancelled_or_unknown_jobs_are_not_found() {
    let env = TestEnv::start().await;
    let job = env.kick_off(1).await;
    assert_eq!(env.send(cancel(job.id.as_str())).await.status, 202);
    env.send(cancel(job.id.as_str()))
        .await
        .assert_outcome(404, "not-found");
    env.send(cancel("0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a"))
        .await
        .assert_outcome(404, "not-found");
}

#[tokio::test]
async fn finished_jobs_conflict_and_stay_as_they_are() {
    let env = TestEnv::start().await;
    for status in [JobStatus::Completed, JobStatus::Error] {
        let job = seeded(&env, status, 1).await;
        env.send(cancel(job.id.as_str()))
            .await
            .assert_outcome(409, "conflict");
        assert_eq!(env.job(job.id.as_str()).await.unwrap().job, job);
    }
}

#[tokio::test]
async fn concurrent_cancels_cancel_once() {
    let env = TestEnv::start().await;
    let job = env.kick_off(1).await;
    let answers =
        futures_util::future::join_all((0..6).map(|_| env.send(cancel(job.id.as_str())))).await;
    let accepted = answers.iter().filter(|answer| answer.status == 202).count();
    let not_found = answers.iter().filter(|answer| answer.status == 404).count();
    assert_eq!((accepted, not_found), (1, 5));
    assert_eq!(
        env.job(job.id.as_str()).await.unwrap().job.meta.version_id,
        "2"
    );
}

#[tokio::test]
async fn bad_cancels_are_refused() {
    let env = TestEnv::start().await;
    env.send(cancel("a_b")).await.assert_outcome(400, "invalid");
}
