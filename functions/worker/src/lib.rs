//! The worker: runs what the table's stream hands over (new `accepted` jobs, and the new
//! segments of a migration that runs in parallel, one invocation each) and, on a schedule,
//! sweeps for accepted jobs nobody is running.

pub mod metrics;

use std::time::Instant;

use asyncjob_shared::events::EventError;
use asyncjob_shared::model::run::millis;
use asyncjob_shared::model::{SegmentKey, instant};
use asyncjob_shared::runner::{RunOutcome, Runner};
use asyncjob_shared::store::{RunStore, StoreError, StreamWork, stream_work};
use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_json::{Value, json};

/// Runs what an invocation's `payload` hands over, finishing by `deadline`. The runner's
/// owner names this invocation in leases.
pub async fn handle<S: RunStore>(
    runner: &Runner<'_, S>,
    payload: Value,
    deadline: Instant,
) -> Result<Value, EventError> {
    if payload.get("Records").is_some() {
        let event: StreamEvent = serde_json::from_value(payload).map_err(|error| {
            EventError::Invalid(format!("not a DynamoDB stream event: {error}"))
        })?;
        let (response, outcomes) = run_stream(runner, event, deadline).await;
        report_failed_jobs(&outcomes);
        Ok(serde_json::to_value(response).expect("a batch response serializes"))
    } else {
        // Anything else is the schedule's tick.
        let outcomes = runner.sweep(deadline).await?;
        for (id, outcome) in &outcomes {
            tracing::info!(job = %id, ?outcome, "swept");
        }
        report_failed_jobs(&outcomes.iter().map(|(_, o)| o.clone()).collect::<Vec<_>>());
        Ok(json!({ "jobsRun": outcomes.len() }))
    }
}

/// Jobs that ended in `error` become the `JobsFailed` metric, on stdout as CloudWatch reads
/// it: one JSON line, outside the tracing log's own format.
fn report_failed_jobs(outcomes: &[RunOutcome]) {
    let failed = outcomes
        .iter()
        .filter(|outcome| **outcome == RunOutcome::GaveUp)
        .count();
    if failed > 0 {
        println!("{}", metrics::jobs_failed(failed, millis(instant::now())));
    }
}

/// Runs the new accepted jobs and segments of a stream batch. A record whose run failed on
/// the store is reported back, so Lambda retries from it; jobs whose migration failed are
/// retried by the sweeper instead, so they never hold up the stream.
async fn run_stream<S: RunStore>(
    runner: &Runner<'_, S>,
    event: StreamEvent,
    deadline: Instant,
) -> (DynamoDbEventResponse, Vec<RunOutcome>) {
    let mut response = DynamoDbEventResponse::default();
    let mut outcomes = Vec::new();
    for record in event.records {
        let ran = match stream_work(&record.change.new_image) {
            Some(StreamWork::Job(id)) => runner.run(&id, deadline).await,
            Some(StreamWork::Segment(key)) => run_segment(runner, &key, deadline).await,
            None => continue,
        };
        match ran {
            Ok(outcome) => {
                tracing::info!(?outcome, "ran");
                outcomes.push(outcome);
            }
            Err(error) => {
                tracing::error!(%error, "could not run the job or segment");
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
    (response, outcomes)
}

/// Runs a segment; the worker that finishes it runs the job next, which applies the
/// migration once every segment is done (or leaves it to the job's runner, if one holds it).
async fn run_segment<S: RunStore>(
    runner: &Runner<'_, S>,
    key: &SegmentKey,
    deadline: Instant,
) -> Result<RunOutcome, StoreError> {
    let outcome = runner.run_segment(key, deadline).await?;
    tracing::info!(job = %key.job_id, %key, ?outcome, "segment ran");
    match outcome {
        RunOutcome::Completed | RunOutcome::GaveUp => runner.run(&key.job_id, deadline).await,
        other => Ok(other),
    }
}
