//! The worker: runs jobs handed over by the table's stream (new `accepted` jobs) and, on a
//! schedule, sweeps for accepted jobs nobody is running (SPEC §4).

use std::time::Instant;

use asyncjob_shared::migration::Registry;
use asyncjob_shared::model::{CodeSet, JobId, JobStatus};
use asyncjob_shared::runner::{RunSettings, Runner};
use asyncjob_shared::store::{DynamoStore, StoreError};
use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::Deserialize;
use serde_json::{Value, json};

/// What a worker invocation was given and must finish by.
pub struct Invocation<'a> {
    pub payload: Value,
    pub deadline: Instant,
    /// Names this worker in leases: the invocation's request id.
    pub owner: &'a str,
}

pub async fn handle(
    store: &DynamoStore,
    settings: &RunSettings,
    registry: &Registry,
    invocation: Invocation<'_>,
) -> Result<Value, StoreError> {
    let runner = Runner::new(store, registry, settings, invocation.owner);
    if invocation.payload.get("Records").is_some() {
        let event: StreamEvent = serde_json::from_value(invocation.payload).map_err(|error| {
            StoreError::Internal(format!("not a DynamoDB stream event: {error}"))
        })?;
        let response = run_stream(&runner, event, invocation.deadline).await;
        Ok(serde_json::to_value(response).expect("a batch response serializes"))
    } else {
        // Anything else is the schedule's tick.
        let outcomes = runner.sweep(invocation.deadline).await?;
        for (id, outcome) in &outcomes {
            tracing::info!(job = %id, ?outcome, "swept");
        }
        Ok(json!({ "jobsRun": outcomes.len() }))
    }
}

/// Runs the new accepted jobs of a stream batch. A record whose run failed on the store is
/// reported back, so Lambda retries from it; jobs whose migration failed are retried by the
/// sweeper instead, so they never hold up the stream.
async fn run_stream(
    runner: &Runner<'_>,
    event: StreamEvent,
    deadline: Instant,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in event.records {
        let Some(id) = accepted_job(&record) else {
            continue;
        };
        match runner.run(&id, deadline).await {
            Ok(outcome) => tracing::info!(job = %id, ?outcome, "ran"),
            Err(error) => {
                tracing::error!(job = %id, %error, "could not run the job");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                // Lambda retries the batch from the first failure; later records come again.
                break;
            }
        }
        if Instant::now() >= deadline {
            // The sweeper runs what is left.
            break;
        }
    }
    response
}

#[derive(Deserialize)]
struct JobImage {
    id: String,
    status: Option<String>,
}

/// The id of the job a stream record shows as accepted; `None` for anything else.
fn accepted_job(record: &EventRecord) -> Option<JobId> {
    let image: JobImage = serde_dynamo::from_item(record.change.new_image.clone()).ok()?;
    (image.status.as_deref() == Some(JobStatus::Accepted.code()))
        .then(|| JobId::parse(&image.id))
        .flatten()
}
