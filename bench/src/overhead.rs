//! Handler latency against the embedded engine, beside the bare DynamoDB calls the handler
//! makes, measured in turns in the same run.

use std::future::Future;
use std::time::Instant;

use asyncjob_shared::model::StoredJob;
use asyncjob_shared::model::{CodeSet, JobStatus};
use asyncjob_shared::store::DynamoStore;
use asyncjob_shared::store::test_support::schema::{
    ID, JOB_ID, META, STATUS, STATUS_INDEX, VERSION_ID,
};
use asyncjob_shared::store::test_support::to_item;
use asyncjob_tests::{ApiRequest, TestEnv};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Request, Response};

use crate::seed;
use crate::stats::{Summary, summarize};

const ROUNDS: usize = 400;
const WARMUP: usize = 40;

pub struct Row {
    pub handler: &'static str,
    pub handler_latency: Summary,
    pub bare_latency: Summary,
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

/// Times `handler` and `bare` in turns, `ROUNDS` times each after a warm-up.
async fn measure<H, HF, B, BF>(mut handler: H, mut bare: B) -> (Summary, Summary)
where
    H: FnMut(usize) -> HF,
    HF: Future<Output = Response<Body>>,
    B: FnMut(usize) -> BF,
    BF: Future<Output = ()>,
{
    let (mut handled, mut bared) = (Vec::new(), Vec::new());
    for round in 0..WARMUP + ROUNDS {
        let started = Instant::now();
        let response = handler(round).await;
        let handler_time = started.elapsed();
        assert!(response.status().as_u16() < 500, "{:?}", response.body());
        let started = Instant::now();
        bare(round).await;
        let bare_time = started.elapsed();
        if round >= WARMUP {
            handled.push(handler_time);
            bared.push(bare_time);
        }
    }
    (summarize(handled), summarize(bared))
}

async fn get(client: &Client, table: &str, id: &str) {
    client
        .get_item()
        .table_name(table)
        .key(ID, s(id))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
}

pub async fn run() -> Vec<Row> {
    let env = TestEnv::start().await;
    let client = env.client.clone();
    let table = env.table.clone();
    // The handlers' store without the tests' operation log.
    let store = DynamoStore::new(client.clone(), &table, env.config.retention);
    let config = &env.config;
    seed::jobs(&env, 100, |n| <JobStatus as CodeSet>::ALL[n % 4]).await;
    let job = env.kick_off(2).await;
    let id = job.id.to_string();
    let requests = |r: ApiRequest| -> Vec<Request> {
        (0..WARMUP + ROUNDS).map(|_| r.clone().build()).collect()
    };
    let mut rows = Vec::new();

    let mut poll = requests(ApiRequest::get(&format!("/job/{id}/status")));
    let (handler_latency, bare_latency) = measure(
        |_| status::handle(&store, config, poll.pop().unwrap()),
        |_| get(&client, &table, &id),
    )
    .await;
    rows.push(Row {
        handler: "status",
        handler_latency,
        bare_latency,
    });

    let mut reads = requests(ApiRequest::get(&format!("/AsyncJob/{id}")));
    let (handler_latency, bare_latency) = measure(
        |_| search::handle(&store, config, reads.pop().unwrap()),
        |_| get(&client, &table, &id),
    )
    .await;
    rows.push(Row {
        handler: "read",
        handler_latency,
        bare_latency,
    });

    let mut searches = requests(ApiRequest::get("/AsyncJob?status=completed&_count=20"));
    let (handler_latency, bare_latency) = measure(
        |_| search::handle(&store, config, searches.pop().unwrap()),
        |_| async {
            client
                .query()
                .table_name(&table)
                .index_name(STATUS_INDEX)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", STATUS)
                .expression_attribute_values(":pk", s("completed"))
                .scan_index_forward(false)
                .limit(21)
                .send()
                .await
                .unwrap();
        },
    )
    .await;
    rows.push(Row {
        handler: "search",
        handler_latency,
        bare_latency,
    });

    // A repeated kick-off: the pointer to the running migration, then that job.
    let mut kickoffs = requests(ApiRequest::post("/$data-migration").prefer_async());
    let (handler_latency, bare_latency) = measure(
        |_| kickoff::handle(&store, config, kickoffs.pop().unwrap()),
        |_| async {
            let pointer = client
                .get_item()
                .table_name(&table)
                .key(ID, s("~active~data-migration"))
                .consistent_read(true)
                .send()
                .await
                .unwrap();
            let running = pointer.item.unwrap()[JOB_ID].as_s().unwrap().clone();
            get(&client, &table, &running).await;
        },
    )
    .await;
    rows.push(Row {
        handler: "kickoff (repeat)",
        handler_latency,
        bare_latency,
    });

    // Cancels need a fresh accepted job each: half for the handler, half for the bare calls.
    let victims = seed::jobs(&env, 2 * (WARMUP + ROUNDS), |_| JobStatus::Accepted).await;
    let mut cancels: Vec<Request> = victims[..WARMUP + ROUNDS]
        .iter()
        .map(|job| ApiRequest::delete(&format!("/job/{}/status", job.id)).build())
        .collect();
    let bare_victims = &victims[WARMUP + ROUNDS..];
    let (handler_latency, bare_latency) = measure(
        |_| control::handle(&store, config, cancels.pop().unwrap()),
        |round| {
            let (client, table) = (&client, &table);
            let mut job = bare_victims[round].clone();
            async move {
                get(client, table, job.id.as_str()).await;
                job.status = JobStatus::Cancelled;
                let item = to_item(&StoredJob::new(job.clone())).unwrap();
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item))
                    .condition_expression("#meta.#version = :v")
                    .expression_attribute_names("#meta", META)
                    .expression_attribute_names("#version", VERSION_ID)
                    .expression_attribute_values(":v", s(&job.meta.version_id))
                    .send()
                    .await
                    .unwrap();
            }
        },
    )
    .await;
    rows.push(Row {
        handler: "cancel",
        handler_latency,
        bare_latency,
    });
    rows
}
