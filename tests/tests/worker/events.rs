use std::time::{Duration, Instant};

use asyncjob_shared::migration::{ExpireFinishedJobs, Registry};
use asyncjob_shared::model::{JobStatus, SegmentKey};
use asyncjob_shared::runner::{RunOutcome, RunSettings};
use asyncjob_shared::store::{DynamoStore, JobStore, SegmentRuns};
use asyncjob_tests::{ApiRequest, TestEnv};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::{legacy_jobs, put_items, runner_on, settings};

/// The store as the event kick-off function uses it.
fn events(env: &TestEnv) -> &DynamoStore {
    env.store_of("kickoff-events")
}

fn sqs_event(messages: &[(&str, &str)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id, "receiptHandle": "handle", "body": body,
                "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:kickoff",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

fn failures(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|failure| failure["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn twenty_duplicate_deliveries_create_one_job() {
    let env = TestEnv::start().await;
    let body = r#"{"type": "data-migration", "dataVersion": 2}"#;
    let deliveries = (0..20).map(|_| {
        kickoff::events::handle_event(events(&env), &env.config, sqs_event(&[("m-1", body)]))
    });
    for response in join_all(deliveries).await {
        assert!(failures(&response.unwrap()).is_empty());
    }
    let ids = env.job_ids().await;
    assert_eq!(ids.len(), 1);
    let job = env.job(&ids[0]).await.unwrap().job;
    assert_eq!(job.data_version, Some(2));
    assert_eq!(job.request, "urn:asyncjob:sqs:m-1");
}

#[tokio::test]
async fn bad_messages_are_batch_item_failures_and_good_ones_still_start() {
    let env = TestEnv::start().await;
    let response = kickoff::events::handle_event(
        events(&env),
        &env.config,
        sqs_event(&[
            ("bad-json", "{not json"),
            ("bad-type", r#"{"type": "export"}"#),
            (
                "bad-version",
                r#"{"type": "data-migration", "dataVersion": 99}"#,
            ),
            ("good", r#"{"type": "data-migration", "dataVersion": 1}"#),
            ("busy", r#"{"type": "data-migration", "dataVersion": 2}"#),
        ]),
    )
    .await
    .unwrap();
    // "busy" asks for another version while version 1 runs: SQS delivers it again later.
    assert_eq!(
        failures(&response),
        vec!["bad-json", "bad-type", "bad-version", "busy"]
    );
    assert_eq!(env.job_ids().await.len(), 1);
}

#[tokio::test]
async fn eventbridge_events_start_jobs_and_refuse_bad_ones() {
    let env = TestEnv::start().await;
    let event = |detail: Value| {
        json!({
            "version": "0", "id": "e-1", "detail-type": "Start data migration",
            "source": "asyncjob.kickoff", "account": "123456789012", "time": "2026-11-27T12:00:00Z",
            "region": "us-east-1", "resources": [], "detail": detail
        })
    };
    let started = kickoff::events::handle_event(
        events(&env),
        &env.config,
        event(json!({"type": "data-migration"})),
    )
    .await
    .unwrap();
    let id = started["jobId"].as_str().unwrap();
    assert_eq!(
        env.job(id).await.unwrap().job.request,
        "urn:asyncjob:eventbridge:e-1"
    );
    let refused = kickoff::events::handle_event(
        events(&env),
        &env.config,
        event(json!({"type": "data-migration", "dataVersion": 0})),
    )
    .await;
    assert!(refused.is_err());
    // Only the configured source may kick off.
    let mut foreign = event(json!({"type": "data-migration", "dataVersion": 2}));
    foreign["source"] = json!("someone.else");
    foreign["id"] = json!("e-2");
    let refused = kickoff::events::handle_event(events(&env), &env.config, foreign).await;
    assert!(refused.unwrap_err().to_string().contains("someone.else"));
    assert!(
        kickoff::events::handle_event(events(&env), &env.config, json!({"hello": "world"}))
            .await
            .is_err()
    );
    assert_eq!(env.job_ids().await.len(), 1);
}

/// SQS delivers at least once, and EventBridge retries: a delivery seen before answers with
/// the job it started, even once that job was cancelled or failed and a new kick-off of the
/// same version would start another.
#[tokio::test]
async fn a_redelivery_never_starts_a_second_job() {
    let env = TestEnv::start().await;
    let body = r#"{"type": "data-migration", "dataVersion": 1}"#;
    let deliver =
        || kickoff::events::handle_event(events(&env), &env.config, sqs_event(&[("m-1", body)]));
    assert!(failures(&deliver().await.unwrap()).is_empty());
    let first = env.job_ids().await;
    assert_eq!(first.len(), 1);

    for ending in ["cancelled", "error"] {
        if ending == "cancelled" {
            let cancel = ApiRequest::delete(&format!("/job/{}/status", first[0]));
            assert_eq!(env.send(cancel).await.status, 202);
        } else {
            let mut failed = env.job(&first[0]).await.unwrap();
            failed.job.status = JobStatus::Error;
            env.put(&failed).await;
        }
        assert!(failures(&deliver().await.unwrap()).is_empty(), "{ending}");
        assert_eq!(env.job_ids().await, first, "after the job was {ending}");
    }

    // Another message, the same request: that one is a retry and starts a fresh job.
    let other =
        kickoff::events::handle_event(events(&env), &env.config, sqs_event(&[("m-2", body)]));
    assert!(failures(&other.await.unwrap()).is_empty());
    assert_eq!(env.job_ids().await.len(), 2);

    // An EventBridge event for the version that runs is answered by its job, and
    // redelivered after that job was cancelled, by the same job.
    let event = json!({
        "version": "0", "id": "e-9", "detail-type": "kick-off", "source": "asyncjob.kickoff",
        "account": "123456789012", "time": "2026-11-27T12:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {"type": "data-migration", "dataVersion": 1}
    });
    let started = kickoff::events::handle_event(events(&env), &env.config, event.clone())
        .await
        .unwrap();
    let job = started["jobId"].as_str().unwrap().to_owned();
    let cancel = ApiRequest::delete(&format!("/job/{job}/status"));
    assert_eq!(env.send(cancel).await.status, 202);
    let again = kickoff::events::handle_event(events(&env), &env.config, event)
        .await
        .unwrap();
    assert_eq!(again["jobId"], job.as_str());
    assert_eq!(env.job_ids().await.len(), 2);
}

fn stream_event(records: &[(&str, &str, &str)]) -> Value {
    let images: Vec<(String, Value)> = records
        .iter()
        .map(|(sequence, id, status)| {
            let image = json!({"id": {"S": id}, "status": {"S": status}});
            (sequence.to_string(), image)
        })
        .collect();
    stream_of(&images)
}

/// A stream batch of new items, each with its sequence number and image (DynamoDB JSON).
fn stream_of(images: &[(String, Value)]) -> Value {
    let records: Vec<Value> = images
        .iter()
        .map(|(sequence, image)| {
            json!({
                "eventID": sequence, "eventName": "INSERT", "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/jobs/stream/x",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_790_000_000.0,
                    "Keys": {"id": image["id"].clone()},
                    "NewImage": image,
                    "SequenceNumber": sequence, "SizeBytes": 100,
                    "StreamViewType": "NEW_AND_OLD_IMAGES"
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

#[tokio::test]
async fn the_stream_runs_new_accepted_jobs() {
    let env = TestEnv::start().await;
    let job = env.kick_off(2).await;
    let settings = settings();
    let payload = stream_event(&[
        ("1", job.id.as_str(), "accepted"),
        ("2", "0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a", "accepted"),
        ("3", "~active~data-migration", "whatever"),
    ]);
    let runner = runner_on(&env, Registry::built_in(), &settings, "request-1");
    let deadline = Instant::now() + Duration::from_secs(60);
    let response = worker::handle(&runner, payload, deadline).await.unwrap();
    assert!(failures(&response).is_empty());
    assert_eq!(
        env.job(job.id.as_str()).await.unwrap().job.status,
        JobStatus::Completed
    );
}

/// A migration in segments fans out through the stream: each new segment item starts an
/// invocation of its own, and the one that finishes the last segment completes the job.
#[tokio::test]
async fn the_stream_runs_each_new_segment_in_an_invocation_of_its_own() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(40)).await;
    let job = env.kick_off(1).await;
    let registry = Registry::new(vec![Box::new(ExpireFinishedJobs)]).unwrap();
    let starting = RunSettings {
        segments: Some(3),
        segments_at_once: 0,
        ..settings()
    };
    let starter = runner_on(&env, &registry, &starting, "request-0");
    let deadline = Instant::now() + Duration::from_secs(60);
    let outcome = starter.run(&job.id, deadline).await.unwrap();
    assert_eq!(
        outcome,
        RunOutcome::NotRunnable,
        "segments started, none run"
    );

    let segments = env
        .store
        .segments(&SegmentKey::all(&job.id, 1, 3))
        .await
        .unwrap();
    let settings = settings();
    let invocations = segments.iter().enumerate().map(|(n, segment)| {
        let mut image: serde_dynamo::Item = serde_dynamo::to_item(segment).unwrap();
        image.insert(
            "id".into(),
            serde_dynamo::AttributeValue::S(format!("~segment~{n}")),
        );
        let payload = stream_of(&[(n.to_string(), serde_json::to_value(image).unwrap())]);
        let registry = &registry;
        let settings = &settings;
        let env = &env;
        async move {
            let owner = format!("request-{}", n + 1);
            let runner = runner_on(env, registry, settings, &owner);
            let deadline = Instant::now() + Duration::from_secs(60);
            worker::handle(&runner, payload, deadline).await.unwrap()
        }
    });
    for response in join_all(invocations).await {
        assert!(failures(&response).is_empty(), "{response}");
    }
    let stored = env.job(job.id.as_str()).await.unwrap();
    assert_eq!(stored.job.status, JobStatus::Completed);
    let segments = env
        .store
        .segments(&SegmentKey::all(&job.id, 1, 3))
        .await
        .unwrap();
    assert!(segments.iter().all(|segment| segment.done));
    assert_eq!(env.store.data_version().await.unwrap(), 1);
}

#[tokio::test]
async fn the_schedule_sweeps_jobs_nobody_runs() {
    let env = TestEnv::start().await;
    let job = env.kick_off(2).await;
    let settings = settings();
    let tick = json!({
        "version": "0", "id": "t-1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-27T12:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {}
    });
    let runner = runner_on(&env, Registry::built_in(), &settings, "request-2");
    let deadline = Instant::now() + Duration::from_secs(60);
    let response = worker::handle(&runner, tick, deadline).await.unwrap();
    assert_eq!(response["jobsRun"], 1);
    assert_eq!(
        env.job(job.id.as_str()).await.unwrap().job.status,
        JobStatus::Completed
    );
}
