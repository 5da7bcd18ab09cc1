use asyncjob_shared::model::JobStatus;
use asyncjob_tests::{ApiRequest, BASE, TestEnv};

use crate::support::seeded;

#[tokio::test]
async fn reads_a_job_in_any_status() {
    let env = TestEnv::start().await;
    for status in [
        JobStatus::Accepted,
        JobStatus::Completed,
        JobStatus::Error,
        JobStatus::Cancelled,
    ] {
        let job = seeded(&env, status, 1).await;
        let answer = env
            .send(ApiRequest::get(&format!("/AsyncJob/{}", job.id)))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body, serde_json::to_value(&job).unwrap());
        assert_eq!(answer.header("etag"), Some("W/\"1\""));
        assert_eq!(
            answer.header("content-type"),
            Some("application/fhir+json; charset=utf-8")
        );
    }
}

#[tokio::test]
async fn unknown_and_malformed_ids() {
    let env = TestEnv::start().await;
    env.send(ApiRequest::get(
        "/AsyncJob/0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a",
    ))
    .await
    .assert_outcome(404, "not-found");
    // Bookkeeping items are not jobs, and their keys are not ids.
    env.kick_off(1).await;
    env.send(ApiRequest::get("/AsyncJob/~active~data-migration"))
        .await
        .assert_outcome(400, "invalid");
    env.send(ApiRequest::get("/AsyncJob/a%2Fb"))
        .await
        .assert_outcome(400, "invalid");
}

#[tokio::test]
async fn a_current_etag_gives_304() {
    let env = TestEnv::start().await;
    let job = seeded(&env, JobStatus::Completed, 1).await;
    let answer = env
        .send(ApiRequest::get(&format!("/AsyncJob/{}", job.id)).header("if-none-match", "W/\"1\""))
        .await;
    assert_eq!(answer.status, 304);
}

#[tokio::test]
async fn the_full_url_in_search_reads_the_job() {
    let env = TestEnv::start().await;
    let job = seeded(&env, JobStatus::Completed, 1).await;
    let bundle = env.send(ApiRequest::get("/AsyncJob")).await.body;
    let full_url = bundle["entry"][0]["fullUrl"].as_str().unwrap();
    assert_eq!(full_url, format!("{BASE}/AsyncJob/{}", job.id));
    let path = full_url.strip_prefix(BASE).unwrap();
    assert_eq!(env.send(ApiRequest::get(path)).await.status, 200);
}
