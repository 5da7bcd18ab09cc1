//! Kick-offs carried by events: SQS batches and EventBridge events. The same validation and
//! idempotency as over HTTP; a redelivered message finds the job its first delivery created.

use asyncjob_shared::config::Config;
use asyncjob_shared::events::EventError;
use asyncjob_shared::migration::Registry;
use asyncjob_shared::model::JobId;
use asyncjob_shared::model::output::says_paused;
use asyncjob_shared::parse::kickoff::event_data_version;
use asyncjob_shared::store::{Delivery, JobStore, Kickoff};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::{Value, json};

use crate::start_data_migration;

/// Handles an SQS batch, or an EventBridge event from the configured source; events from
/// any other source are refused (the template also keeps others off the kick-off bus).
pub async fn handle_event(
    store: &impl JobStore,
    config: &Config,
    payload: Value,
) -> Result<Value, EventError> {
    if payload.get("Records").is_some() {
        let event: SqsEvent = serde_json::from_value(payload)
            .map_err(|error| EventError::Invalid(format!("not an SQS event: {error}")))?;
        let response = handle_messages(store, event).await;
        return Ok(serde_json::to_value(response).expect("a batch response serializes"));
    }
    let event: EventBridgeEvent<Value> = serde_json::from_value(payload).map_err(|error| {
        EventError::Invalid(format!("not an SQS or EventBridge event: {error}"))
    })?;
    if event.source != config.event_source {
        tracing::error!(source = ?event.source, "an event from another source was refused");
        return Err(EventError::Invalid(format!(
            "events from {:?} cannot kick off; the configured source is {:?}",
            event.source, config.event_source
        )));
    }
    // An error makes Lambda retry the event, then hand it to the dead-letter queue.
    let job = kick_off(store, &event.detail, "eventbridge", event.id.as_deref())
        .await
        .inspect_err(|error| {
            tracing::error!(%error, "EventBridge kick-off refused");
        })?;
    Ok(json!({ "jobId": job }))
}

/// Each message on its own; those that could not start a job are reported back, so SQS
/// delivers them again until its redrive policy moves them to the dead-letter queue.
async fn handle_messages(store: &impl JobStore, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        let result = match serde_json::from_str::<Value>(message.body.as_deref().unwrap_or("")) {
            Ok(request) => kick_off(store, &request, "sqs", Some(&id)).await,
            Err(error) => Err(EventError::Invalid(format!(
                "the body is not JSON: {error}"
            ))),
        };
        match result {
            Ok(job) => tracing::info!(message = %id, %job, "kicked off"),
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

/// Starts the job one delivery asks for: `source` and `id` name the delivery, so a
/// redelivery finds the job the first one started.
async fn kick_off(
    store: &impl JobStore,
    request: &Value,
    source: &str,
    id: Option<&str>,
) -> Result<JobId, EventError> {
    let delivery = id
        .and_then(|id| Delivery::new(source, id))
        .ok_or_else(|| EventError::Invalid(format!("a {source} delivery without a usable id")))?;
    let data_version = event_data_version(request, Registry::built_in().newest())?;
    let name = format!("urn:asyncjob:{}", delivery.as_str());
    // Boxed: the store's future is deep, and each entrypoint nests it further.
    match Box::pin(start_data_migration(
        store,
        data_version,
        name,
        Some(&delivery),
    ))
    .await?
    {
        Kickoff::Created(job) | Kickoff::Existing(job) => Ok(job.id),
        Kickoff::Delivered(id) => Ok(id),
        Kickoff::Busy(running) => Err(EventError::Busy(format!(
            "the data migration to version {} ({}) is {}",
            running.data_version.unwrap_or_default(),
            running.id,
            if says_paused(&running) {
                "paused"
            } else {
                "still running"
            }
        ))),
    }
}
