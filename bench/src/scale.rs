//! Search latency for a 20-item page with 1k and with 100k jobs in the table: a Query's
//! cost follows the page, a Scan's the table.

use std::time::Instant;

use asyncjob_shared::model::{CodeSet, JobStatus};
use asyncjob_shared::store::DynamoStore;
use asyncjob_tests::{ApiRequest, BASE, TestEnv};
use lambda_http::{Body, Response};
use serde_json::Value;

use crate::seed;
use crate::stats::{Summary, summarize};

const ROUNDS: usize = 150;

pub struct Row {
    pub search: &'static str,
    pub small: Summary,
    pub large: Summary,
}

pub const SMALL: usize = 1_000;
pub const LARGE: usize = 100_000;

const SEARCHES: [(&str, &str); 4] = [
    ("type", "/AsyncJob?type=data-migration&_count=20"),
    ("status", "/AsyncJob?status=completed&_count=20"),
    (
        "type + status",
        "/AsyncJob?type=data-migration&status=completed,error&_count=20",
    ),
    ("page 10 of status", "/AsyncJob?status=completed&_count=20"),
];

fn body(response: Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).unwrap()
}

/// The path of the `pages`-th page of `first`.
async fn page_path(store: &DynamoStore, env: &TestEnv, first: &str, pages: usize) -> String {
    let mut path = first.to_owned();
    for _ in 1..pages {
        let bundle = body(search::handle(store, &env.config, ApiRequest::get(&path).build()).await);
        let next = bundle["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .unwrap();
        path = next["url"]
            .as_str()
            .unwrap()
            .strip_prefix(BASE)
            .unwrap()
            .to_owned();
    }
    path
}

async fn latencies(store: &DynamoStore, env: &TestEnv) -> Vec<Summary> {
    let mut summaries = Vec::new();
    for (name, first) in SEARCHES {
        let pages = if name.starts_with("page 10") { 10 } else { 1 };
        let path = page_path(store, env, first, pages).await;
        let mut samples = Vec::new();
        for round in 0..ROUNDS + 10 {
            let request = ApiRequest::get(&path).build();
            let started = Instant::now();
            let response = search::handle(store, &env.config, request).await;
            let elapsed = started.elapsed();
            assert_eq!(response.status(), 200);
            if round >= 10 {
                samples.push(elapsed);
            }
        }
        summaries.push(summarize(samples));
    }
    summaries
}

pub async fn run() -> Vec<Row> {
    let env = TestEnv::start().await;
    let store = DynamoStore::new(env.client.clone(), &env.table, env.config.retention);
    let status_of = |n: usize| <JobStatus as CodeSet>::ALL[n % 4];
    seed::jobs(&env, SMALL, status_of).await;
    let small = latencies(&store, &env).await;
    seed::jobs(&env, LARGE - SMALL, status_of).await;
    let large = latencies(&store, &env).await;
    SEARCHES
        .iter()
        .zip(small.into_iter().zip(large))
        .map(|((search, _), (small, large))| Row {
            search,
            small,
            large,
        })
        .collect()
}
