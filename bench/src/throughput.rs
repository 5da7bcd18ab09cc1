//! The worker's migration speed beside a bare loop of the same DynamoDB reads and writes.

use std::time::{Duration, Instant};

use asyncjob_shared::migration::{ExpireFinishedJobs, MigrationContext, Registry};
use asyncjob_shared::runner::{RunOutcome, RunSettings, Runner};
use asyncjob_shared::store::DynamoStore;
use asyncjob_shared::store::test_support::schema::{EXPIRES_AT, ID};
use asyncjob_tests::TestEnv;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::{StreamExt, stream};

use crate::seed;

pub const ITEMS: usize = 10_000;
const PAGE: usize = 100;
const CONCURRENCY: usize = 16;

pub struct Result {
    pub worker_per_second: f64,
    pub bare_per_second: f64,
}

async fn worker_run() -> Duration {
    let env = TestEnv::start().await;
    seed::legacy_jobs(&env, ITEMS).await;
    let store = DynamoStore::new(env.client.clone(), &env.table, env.config.retention);
    let registry = Registry::new(vec![Box::new(ExpireFinishedJobs)]).unwrap();
    let job = env.kick_off(1).await;
    let settings = RunSettings {
        page_size: PAGE,
        ..RunSettings::default()
    };
    let context = MigrationContext::on(&store, settings.page_size);
    let runner = Runner::new(&store, &registry, context, &settings, "bench");
    let started = Instant::now();
    let outcome = runner
        .run(&job.id, Instant::now() + Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(outcome, RunOutcome::Completed);
    started.elapsed()
}

/// The same work without the runner: scan a page, set the TTL on each item, next page.
async fn bare_run() -> Duration {
    let env = TestEnv::start().await;
    seed::legacy_jobs(&env, ITEMS).await;
    let (client, table) = (&env.client, &env.table);
    let started = Instant::now();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .limit(PAGE as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        let ids: Vec<String> = page
            .items
            .unwrap_or_default()
            .iter()
            .filter(|item| !item.contains_key(EXPIRES_AT))
            .filter_map(|item| item.get(ID)?.as_s().ok().cloned())
            .collect();
        stream::iter(ids)
            .for_each_concurrent(CONCURRENCY, |id| async move {
                client
                    .update_item()
                    .table_name(table)
                    .key(ID, AttributeValue::S(id))
                    .update_expression("SET #e = :e")
                    .condition_expression("attribute_exists(#id) AND attribute_not_exists(#e)")
                    .expression_attribute_names("#id", ID)
                    .expression_attribute_names("#e", EXPIRES_AT)
                    .expression_attribute_values(":e", AttributeValue::N("1900000000".into()))
                    .send()
                    .await
                    .unwrap();
            })
            .await;
        start = page.last_evaluated_key;
        if start.is_none() {
            return started.elapsed();
        }
    }
}

pub async fn run() -> Result {
    let worker = worker_run().await;
    let bare = bare_run().await;
    Result {
        worker_per_second: ITEMS as f64 / worker.as_secs_f64(),
        bare_per_second: ITEMS as f64 / bare.as_secs_f64(),
    }
}
