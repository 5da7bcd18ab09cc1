//! Fills the local table with finished jobs as an older release wrote them: no TTL and no
//! index keys. The built-in migrations then have real work: a data migration kicked off
//! afterwards gives them both, and they show up in searches again. A failed job carries
//! the OperationOutcome the worker writes when it gives up, so the dashboard and the
//! status URL have a failure to show.
//!
//! `make seed` (with `make dev` running); `SEED_JOBS` sets how many (default 20000).

use asyncjob_shared::config::Config;
use asyncjob_shared::model::{AsyncJob, JobStatus, JobType, Parameters, instant};
use asyncjob_shared::runner::{attempt_failure, gave_up_reason};
use asyncjob_shared::store::test_support::legacy_item;
use asyncjob_shared::store::{StoreError, Transient, local_client};
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures_util::{StreamExt, TryStreamExt, stream};

/// DynamoDB's limit per BatchWriteItem.
const BATCH: usize = 25;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    let count: usize = std::env::var("SEED_JOBS")
        .ok()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20_000);
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .unwrap_or_else(|_| "http://127.0.0.1:8000".to_owned());
    let client = local_client(&endpoint);
    let now = instant::now();
    let statuses = [JobStatus::Completed, JobStatus::Error, JobStatus::Cancelled];
    // Why a seeded job failed, in the worker's words for a job it gave up on.
    let throttled = StoreError::Unavailable {
        kind: Transient::Throttled,
        detail: String::new(),
    };
    let failure = gave_up_reason(8, &attempt_failure("running the job", &throttled));
    let mut requests = Vec::with_capacity(count);
    for n in 0..count {
        let at = instant::format(now - time::Duration::seconds((count - n) as i64));
        let mut job = AsyncJob::accepted(
            JobType::DataMigration,
            1,
            format!("http://127.0.0.1:9000/$data-migration?seed={n}"),
            &at,
        );
        job.status = statuses[n % statuses.len()];
        if job.status == JobStatus::Error {
            job.output = Some(Parameters::failure(&failure));
        }
        requests.push(
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(legacy_item(job)))
                        .build()?,
                )
                .build(),
        );
    }
    let batches: Vec<Vec<WriteRequest>> = requests.chunks(BATCH).map(<[_]>::to_vec).collect();
    stream::iter(batches)
        .map(|batch| {
            let client = &client;
            let table = &config.table_name;
            async move {
                let mut pending = Some(batch);
                while let Some(batch) = pending.take().filter(|batch| !batch.is_empty()) {
                    let output = client
                        .batch_write_item()
                        .request_items(table, batch)
                        .send()
                        .await?;
                    pending = output
                        .unprocessed_items
                        .and_then(|mut left| left.remove(table));
                }
                Ok::<_, aws_sdk_dynamodb::Error>(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<()>()
        .await?;
    println!(
        "seeded {count} finished jobs without TTL or index keys into {:?}",
        config.table_name
    );
    Ok(())
}
