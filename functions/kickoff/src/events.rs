//! Kick-offs carried by events: SQS batches and EventBridge events. The same validation and
//! idempotency as over HTTP; a redelivered message finds the job its first delivery created.

use asyncjob_shared::events::EventError;
use asyncjob_shared::migration::Registry;
use asyncjob_shared::model::AsyncJob;
use asyncjob_shared::parse::kickoff::event_data_version;
use asyncjob_shared::store::{JobStore, Kickoff};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::{Value, json};

use crate::start_data_migration;

pub async fn handle_event(store: &impl JobStore, payload: Value) -> Result<Value, EventError> {
    if payload.get("Records").is_some() {
        let event: SqsEvent = serde_json::from_value(payload)
            .map_err(|error| EventError::Invalid(format!("not an SQS event: {error}")))?;
        let response = handle_messages(store, event).await;
        return Ok(serde_json::to_value(response).expect("a batch response serializes"));
    }
    let event: EventBridgeEvent<Value> = serde_json::from_value(payload).map_err(|error| {
        EventError::Invalid(format!("not an SQS or EventBridge event: {error}"))
    })?;
    let source = format!("urn:asyncjob:eventbridge:{}", event.id.unwrap_or_default());
    // An error makes Lambda retry the event, then hand it to the dead-letter queue.
    let job = kick_off(store, &event.detail, source)
        .await
        .inspect_err(|error| {
            tracing::error!(%error, "EventBridge kick-off refused");
        })?;
    Ok(json!({ "jobId": job.id }))
}

/// Each message on its own; those that could not start a job are reported back, so SQS
/// delivers them again until its redrive policy moves them to the dead-letter queue.
async fn handle_messages(store: &impl JobStore, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        let result = match serde_json::from_str::<Value>(message.body.as_deref().unwrap_or("")) {
            Ok(request) => kick_off(store, &request, format!("urn:asyncjob:sqs:{id}")).await,
            Err(error) => Err(EventError::Invalid(format!(
                "the body is not JSON: {error}"
            ))),
        };
        match result {
            Ok(job) => tracing::info!(message = %id, job = %job.id, "kicked off"),
            Err(error) => {
                tracing::warn!(message = %id, %error, "message not kicked off");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}

async fn kick_off(
    store: &impl JobStore,
    request: &Value,
    source: String,
) -> Result<AsyncJob, EventError> {
    let data_version = event_data_version(request, Registry::built_in().newest())?;
    // Boxed: the store's future is deep, and each entrypoint nests it further.
    match Box::pin(start_data_migration(store, data_version, source)).await? {
        Kickoff::Created(job) | Kickoff::Existing(job) => Ok(job),
        Kickoff::Busy(running) => Err(EventError::Busy(format!(
            "the data migration to version {} ({}) is still running",
            running.data_version.unwrap_or_default(),
            running.id
        ))),
    }
}
