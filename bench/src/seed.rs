//! Filling a table fast: batches of 25 items, several in flight.

use asyncjob_shared::model::{AsyncJob, JobStatus, JobType, StoredJob, instant};
use asyncjob_shared::store::test_support::{Item, legacy_item, to_item};
use asyncjob_tests::TestEnv;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures_util::{StreamExt, stream};

/// `n` data-migration jobs, one millisecond apart and older than anything written so far
/// this run, with the status `status_of(index)`.
pub async fn jobs(
    env: &TestEnv,
    n: usize,
    status_of: impl Fn(usize) -> JobStatus,
) -> Vec<AsyncJob> {
    let now = instant::now();
    let jobs: Vec<AsyncJob> = (0..n)
        .map(|i| {
            let at = instant::format(now - time::Duration::milliseconds((n - i) as i64));
            let mut job = AsyncJob::accepted(JobType::DataMigration, 2, "urn:bench".into(), &at);
            job.status = status_of(i);
            job
        })
        .collect();
    let items = jobs
        .iter()
        .map(|job| to_item(&StoredJob::new(job.clone())).unwrap());
    write(env, items.collect()).await;
    jobs
}

/// `n` finished jobs as an older release wrote them: no TTL, no index keys.
pub async fn legacy_jobs(env: &TestEnv, n: usize) {
    let items = jobs_without_writing(n).map(legacy_item).collect();
    write(env, items).await;
}

fn jobs_without_writing(n: usize) -> impl Iterator<Item = AsyncJob> {
    let now = instant::now();
    (0..n).map(move |i| {
        let at = instant::format(now - time::Duration::seconds((n - i) as i64));
        let mut job = AsyncJob::accepted(JobType::DataMigration, 1, "urn:bench".into(), &at);
        job.status = JobStatus::Completed;
        job
    })
}

async fn write(env: &TestEnv, items: Vec<Item>) {
    let batches: Vec<Vec<WriteRequest>> = items
        .chunks(25)
        .map(|chunk| {
            chunk
                .iter()
                .map(|item| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item.clone()))
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect()
        })
        .collect();
    stream::iter(batches)
        .for_each_concurrent(8, |batch| async move {
            let mut pending = Some(batch);
            while let Some(batch) = pending.take().filter(|b| !b.is_empty()) {
                let output = env
                    .client
                    .batch_write_item()
                    .request_items(&env.table, batch)
                    .send()
                    .await
                    .unwrap();
                pending = output
                    .unprocessed_items
                    .and_then(|mut left| left.remove(&env.table));
            }
        })
        .await;
}
