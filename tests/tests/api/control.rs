//! Pause and resume (`POST /AsyncJob/{id}/$pause`, `$resume`): what each answers, what it
//! writes, who it records, and what a poller and a kick-off see meanwhile.

use asyncjob_shared::config::AuthMode;
use asyncjob_shared::model::{CodeSet, JobStatus};
use asyncjob_tests::{ApiRequest, TestEnv};
use serde_json::{Value, json};

use crate::support::seeded;

fn pause(id: &str) -> ApiRequest {
    ApiRequest::post(&format!("/AsyncJob/{id}/$pause"))
}

fn resume(id: &str) -> ApiRequest {
    ApiRequest::post(&format!("/AsyncJob/{id}/$resume"))
}

/// The output parts named `name`.
fn parts<'a>(job: &'a Value, name: &str) -> Vec<&'a Value> {
    job["output"]["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|part| part["name"] == name)
        .collect()
}

/// The value of the part `name` of `parameter`.
fn part<'a>(parameter: &'a Value, name: &str) -> &'a Value {
    let part = parameter["part"]
        .as_array()
        .and_then(|parts| parts.iter().find(|part| part["name"] == name))
        .unwrap_or_else(|| panic!("no part {name} in {parameter}"));
    part.as_object()
        .and_then(|fields| fields.iter().find(|(key, _)| key.starts_with("value")))
        .map(|(_, value)| value)
        .unwrap()
}

#[tokio::test]
async fn a_paused_job_stays_accepted_says_who_paused_it_and_resumes() {
    let mut env = TestEnv::start().await;
    env.config.auth.mode = AuthMode::Authorizer;
    let admin = |request: ApiRequest, who: &str| {
        request.claims(json!({"sub": who, "scope": "asyncjob/admin"}))
    };
    let job = seeded(&env, JobStatus::Accepted, 1).await;
    let id = job.id.as_str();

    let paused = env.send(admin(pause(id), "alice")).await;
    assert_eq!(paused.status, 200, "{}", paused.body);
    assert_eq!(paused.body["status"], "accepted");
    assert_eq!(paused.header("etag"), Some("W/\"2\""));
    let held = parts(&paused.body, "paused");
    assert_eq!(held.len(), 1, "{}", paused.body);
    assert_eq!(part(held[0], "by"), "alice");

    let poll = env
        .send(admin(ApiRequest::get(&format!("/job/{id}/status")), "bob"))
        .await;
    assert_eq!(poll.status, 202);
    let progress = poll.header("x-progress").unwrap();
    assert!(
        progress.starts_with("paused by alice since 20"),
        "{progress}"
    );
    assert_eq!(poll.header("retry-after"), Some("10"));

    // A second pause changes nothing: the first one's author and time stay.
    let again = env.send(admin(pause(id), "bob")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["meta"]["versionId"], "2");
    assert_eq!(part(parts(&again.body, "paused")[0], "by"), "alice");

    let resumed = env.send(admin(resume(id), "bob")).await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert!(parts(&resumed.body, "paused").is_empty());
    let history: Vec<(Value, Value)> = parts(&resumed.body, "control")
        .iter()
        .map(|record| (part(record, "action").clone(), part(record, "by").clone()))
        .collect();
    assert_eq!(
        history,
        [
            (json!("pause"), json!("alice")),
            (json!("resume"), json!("bob"))
        ]
    );
    let run = env.job(id).await.unwrap().run.unwrap();
    assert_eq!(run.paused, None);
    assert_eq!(run.attempts.failures, 0, "a pause is no failed attempt");

    // Resuming a running job changes nothing either.
    let again = env.send(admin(resume(id), "carol")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["meta"]["versionId"], "3");
}

#[tokio::test]
async fn a_paused_migration_holds_its_place_and_can_be_cancelled() {
    let env = TestEnv::start().await;
    let job = env.kick_off(1).await;
    let id = job.id.as_str();
    assert_eq!(env.send(pause(id)).await.status, 200);

    let other = env
        .send(ApiRequest::post("/$data-migration?dataVersion=2").prefer_async())
        .await;
    other.assert_outcome(429, "throttled");
    let message = other.body["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(message.contains("is paused"), "{message}");

    let cancel = env
        .send(ApiRequest::delete(&format!("/job/{id}/status")))
        .await;
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    assert_eq!(env.job(id).await.unwrap().job.status, JobStatus::Cancelled);
    // A cancelled job can be neither paused nor resumed.
    env.send(pause(id)).await.assert_outcome(409, "conflict");
    env.send(resume(id)).await.assert_outcome(409, "conflict");
}

#[tokio::test]
async fn finished_or_unknown_jobs_are_refused_and_left_as_they_are() {
    let env = TestEnv::start().await;
    for status in [JobStatus::Completed, JobStatus::Error] {
        let job = seeded(&env, status, 1).await;
        for request in [pause(job.id.as_str()), resume(job.id.as_str())] {
            let answer = env.send(request).await;
            answer.assert_outcome(409, "conflict");
            let message = answer.body["issue"][0]["diagnostics"].as_str().unwrap();
            assert!(message.contains(status.code()), "{message}");
        }
        assert_eq!(env.job(job.id.as_str()).await.unwrap().job, job);
    }
    env.send(pause("0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a"))
        .await
        .assert_outcome(404, "not-found");
}

#[tokio::test]
async fn bad_pauses_are_refused_and_write_nothing() {
    let env = TestEnv::start().await;
    let job = seeded(&env, JobStatus::Accepted, 1).await;
    let id = job.id.as_str();
    env.send(pause("a_b")).await.assert_outcome(400, "invalid");
    for body in [
        json!({"resourceType": "Parameters", "parameter": [{"name": "x", "valueInteger": 1}]}),
        json!({"resourceType": "Bundle"}),
        json!([1]),
    ] {
        env.send(pause(id).json(&body))
            .await
            .assert_outcome(400, "invalid");
    }
    env.send(pause(id).body("{not json"))
        .await
        .assert_outcome(400, "invalid");
    let wrong_method = env
        .send(ApiRequest::get(&format!("/AsyncJob/{id}/$pause")))
        .await;
    wrong_method.assert_outcome(405, "not-supported");
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    assert_eq!(env.job(id).await.unwrap().job, job, "nothing was written");

    // An empty Parameters resource is no parameter at all.
    let empty = json!({"resourceType": "Parameters"});
    assert_eq!(env.send(pause(id).json(&empty)).await.status, 200);
}
