use std::collections::BTreeSet;

use asyncjob_shared::migration::Registry;
use asyncjob_shared::model::JobStatus;
use asyncjob_tests::{ApiRequest, BASE, TestEnv};
use futures_util::future::join_all;
use serde_json::json;

use crate::support::seeded;

fn kick_off() -> ApiRequest {
    ApiRequest::post("/$data-migration").prefer_async()
}

#[tokio::test]
async fn kick_off_accepts_and_points_at_the_status() {
    let env = TestEnv::start().await;
    let answer = env.send(kick_off()).await;

    assert_eq!(answer.status, 202, "{}", answer.body);
    let location = answer.header("content-location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{BASE}/job/")) && location.ends_with("/status"));
    assert_eq!(answer.body["resourceType"], "OperationOutcome");
    assert_eq!(answer.body["issue"][0]["severity"], "information");
    assert_eq!(answer.body["issue"][0]["diagnostics"], location.as_str());

    let id = location
        .trim_end_matches("/status")
        .rsplit('/')
        .next()
        .unwrap();
    let job = env.job(id).await.unwrap().job;
    assert_eq!(job.status, JobStatus::Accepted);
    // No version asked: the newest registered one.
    assert_eq!(job.data_version, Some(Registry::built_in().newest()));
    assert_eq!(job.job_type.unwrap().to_string(), "data-migration");
    assert_eq!(job.request, format!("{BASE}/$data-migration"));
    assert_eq!(job.meta.version_id, "1");
    assert_eq!(env.job_ids().await, vec![id.to_owned()]);
}

#[tokio::test]
async fn the_version_can_come_from_a_parameters_body_or_the_query() {
    let env = TestEnv::start().await;
    let body = json!({"resourceType": "Parameters", "parameter": [{"name": "dataVersion", "valueInteger": 1}]});
    let from_body = env.send(kick_off().json(&body)).await;
    assert_eq!(from_body.status, 202);
    let from_query = env
        .send(ApiRequest::post("/$data-migration?dataVersion=1").prefer_async())
        .await;
    assert_eq!(from_query.status, 202);
    // Same version: the same job.
    assert_eq!(
        from_body.header("content-location"),
        from_query.header("content-location")
    );
    let id = env.job_ids().await.pop().unwrap();
    assert_eq!(
        env.job(&id).await.unwrap().job.request,
        format!("{BASE}/$data-migration")
    );
}

#[tokio::test]
async fn prefer_may_list_other_preferences() {
    let env = TestEnv::start().await;
    let answer = env
        .send(
            ApiRequest::post("/$data-migration")
                .header("prefer", "handling=lenient, respond-async"),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
}

#[tokio::test]
async fn bad_kick_offs_are_refused_and_write_nothing() {
    let env = TestEnv::start().await;
    let too_big = format!(
        "{{\"resourceType\":\"Parameters\",\"id\":\"{}\"}}",
        "x".repeat(70_000)
    );
    let cases = [
        ("no Prefer", ApiRequest::post("/$data-migration"), 400, "required"),
        (
            "Prefer without respond-async",
            ApiRequest::post("/$data-migration").header("prefer", "return=minimal"),
            400,
            "required",
        ),
        ("malformed JSON", kick_off().body("{\"resourceType\":").header("content-type", "application/fhir+json"), 400, "invalid"),
        ("wrong resourceType", kick_off().json(&json!({"resourceType": "Patient"})), 400, "invalid"),
        (
            "unknown version",
            kick_off().json(&json!({"resourceType": "Parameters", "parameter": [{"name": "dataVersion", "valueInteger": 99}]})),
            400,
            "invalid",
        ),
        (
            "version zero",
            kick_off().json(&json!({"resourceType": "Parameters", "parameter": [{"name": "dataVersion", "valueInteger": 0}]})),
            400,
            "invalid",
        ),
        ("version in the query not a number", ApiRequest::post("/$data-migration?dataVersion=two").prefer_async(), 400, "invalid"),
        ("query and body disagree", ApiRequest::post("/$data-migration?dataVersion=2").prefer_async()
            .json(&json!({"resourceType": "Parameters", "parameter": [{"name": "dataVersion", "valueInteger": 1}]})), 400, "invalid"),
        ("oversized body", kick_off().header("content-type", "application/fhir+json").body(too_big), 413, "too-costly"),
        ("not JSON", kick_off().header("content-type", "text/plain").body("dataVersion=1"), 415, "not-supported"),
        ("unknown parameter under strict handling", ApiRequest::post("/$data-migration?x=1").header("prefer", "respond-async, handling=strict"), 400, "invalid"),
        ("wrong method", ApiRequest::new(lambda_http::http::Method::PUT, "/$data-migration").prefer_async(), 405, "not-supported"),
        ("no host", kick_off().without_header("host"), 400, "invalid"),
    ];
    for (case, request, status, code) in cases {
        let answer = env.send(request).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.body);
        answer.assert_outcome(status, code);
        assert!(env.items().await.is_empty(), "{case} wrote something");
    }
}

#[tokio::test]
async fn a_repeat_kick_off_answers_with_the_same_job() {
    let env = TestEnv::start().await;
    let first = env.send(kick_off()).await;
    let second = env.send(kick_off()).await;
    assert_eq!(second.status, 202);
    assert_eq!(
        first.header("content-location"),
        second.header("content-location")
    );
    assert_eq!(env.job_ids().await.len(), 1);
    // Only the repeat says, in words, that it started nothing.
    assert_eq!(first.body["issue"].as_array().unwrap().len(), 1);
    let note = second.body["issue"][1]["diagnostics"].as_str().unwrap();
    assert!(note.contains("no new job was started"), "{note}");
    assert!(note.contains("already under way"), "{note}");
}

#[tokio::test]
async fn a_completed_version_is_not_run_again() {
    let env = TestEnv::start().await;
    let running = env.kick_off(1).await;
    let mut done = env.job(running.id.as_str()).await.unwrap();
    done.job.status = JobStatus::Completed;
    env.put(&done).await;

    let again = env
        .send(ApiRequest::post("/$data-migration?dataVersion=1").prefer_async())
        .await;
    assert_eq!(again.status, 202);
    assert!(
        again
            .header("content-location")
            .unwrap()
            .contains(running.id.as_str())
    );
    assert_eq!(env.job_ids().await.len(), 1);
    let note = again.body["issue"][1]["diagnostics"].as_str().unwrap();
    assert!(note.contains("version 1 is completed already"), "{note}");
}

#[tokio::test]
async fn after_a_cancel_or_a_failure_a_kick_off_is_a_retry() {
    let env = TestEnv::start().await;
    let first = env.kick_off(1).await;
    let cancelled = env
        .send(ApiRequest::delete(&format!("/job/{}/status", first.id)))
        .await;
    assert_eq!(cancelled.status, 202);

    let second = env.kick_off(1).await;
    assert_ne!(second.id, first.id);
    let mut failed = env.job(second.id.as_str()).await.unwrap();
    failed.job.status = JobStatus::Error;
    env.put(&failed).await;

    let third = env.kick_off(1).await;
    assert_ne!(third.id, second.id);
    assert_eq!(env.job_ids().await.len(), 3);
}

#[tokio::test]
async fn another_version_waits_while_one_runs() {
    let env = TestEnv::start().await;
    let running = env.kick_off(2).await;

    let version_1 = || ApiRequest::post("/$data-migration?dataVersion=1").prefer_async();
    let answer = env.send(version_1()).await;
    answer.assert_outcome(429, "throttled");
    let wait: u32 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!(wait > 0);
    let diagnostics = answer.body["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(diagnostics.contains(running.id.as_str()), "{diagnostics}");
    assert_eq!(env.job_ids().await, vec![running.id.to_string()]);

    // Once it is cancelled, the other version may start.
    let cancel = ApiRequest::delete(&format!("/job/{}/status", running.id));
    assert_eq!(env.send(cancel).await.status, 202);
    assert_eq!(env.send(version_1()).await.status, 202);
}

/// The repeat rule comes first: a version that is accepted or completed answers with its
/// job even while another version runs (an event redelivered after its job completed must
/// not end in the dead-letter queue).
#[tokio::test]
async fn a_repeat_kick_off_answers_with_its_job_even_while_another_version_runs() {
    let env = TestEnv::start().await;
    let first = env.kick_off(1).await;
    let mut done = env.job(first.id.as_str()).await.unwrap();
    done.job.status = JobStatus::Completed;
    env.put(&done).await;
    let running = env.kick_off(2).await;

    for (version, job) in [(1, &first), (2, &running)] {
        let again = env
            .send(
                ApiRequest::post(&format!("/$data-migration?dataVersion={version}")).prefer_async(),
            )
            .await;
        assert_eq!(again.status, 202, "version {version}: {}", again.body);
        let location = again.header("content-location").unwrap();
        assert!(
            location.contains(job.id.as_str()),
            "version {version}: {location}"
        );
    }
    assert_eq!(env.job_ids().await.len(), 2);
}

#[tokio::test]
async fn concurrent_duplicate_kick_offs_create_one_job() {
    let env = TestEnv::start().await;
    // Polled together, so their reads and writes interleave.
    let answers = join_all((0..12).map(|_| env.send(kick_off()))).await;
    let locations: BTreeSet<_> = answers
        .iter()
        .map(|answer| {
            assert_eq!(answer.status, 202, "{}", answer.body);
            answer.header("content-location").unwrap().to_owned()
        })
        .collect();
    assert_eq!(locations.len(), 1, "{locations:?}");
    assert_eq!(env.job_ids().await.len(), 1);
}

#[tokio::test]
async fn seeded_jobs_do_not_block_other_versions() {
    // Finished jobs of other versions are history, not a running migration.
    let env = TestEnv::start().await;
    seeded(&env, JobStatus::Completed, 2).await;
    assert_eq!(env.send(kick_off()).await.status, 202);
}
