//! A store that is down or throttling answers 503 with Retry-After, never a hang or a 500,
//! and the service works again once the store is back.

use asyncjob_shared::store::{DynamoStore, local_client};
use asyncjob_tests::{Answer, ApiRequest, TestEnv};
use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn every_route(id: &str) -> Vec<ApiRequest> {
    vec![
        ApiRequest::post("/$data-migration?dataVersion=1").prefer_async(),
        ApiRequest::get(&format!("/job/{id}/status")),
        ApiRequest::delete(&format!("/job/{id}/status")),
        ApiRequest::get("/AsyncJob?status=accepted"),
        ApiRequest::post("/AsyncJob/_search"),
        ApiRequest::get(&format!("/AsyncJob/{id}")),
    ]
}

fn assert_transient(answer: &Answer) {
    answer.assert_outcome(503, "transient");
    let wait: u32 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1);
}

#[tokio::test]
async fn every_route_answers_503_while_the_engine_is_down_and_recovers() {
    let mut env = TestEnv::start().await;
    if !env.owns_engine() {
        return; // Another endpoint cannot be stopped from here.
    }
    let job = env.kick_off(2).await;
    env.stop_engine().await;
    let answers = join_all(
        every_route(job.id.as_str())
            .into_iter()
            .map(|r| env.send(r)),
    )
    .await;
    for answer in &answers {
        assert_transient(answer);
    }

    env.restart_engine().await;
    let statuses: Vec<u16> = join_all(
        every_route(job.id.as_str())
            .into_iter()
            .map(|r| env.send(r)),
    )
    .await
    .iter()
    .map(|answer| answer.status)
    .collect();
    // Kick-off of another version while one runs, poll, cancel, search, search, read.
    assert_eq!(statuses.len(), 6);
    assert!(statuses.iter().all(|status| *status < 500), "{statuses:?}");
    assert_eq!(env.job(job.id.as_str()).await.unwrap().job.id, job.id);
}

/// An endpoint that answers every request with DynamoDB's throttling error.
async fn throttling_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = vec![0; 64 * 1024];
                // One request per connection is enough: the answer closes it.
                let _ = socket.read(&mut buffer).await;
                let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#;
                let response = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn throttling_answers_503_with_retry_after() {
    let env = TestEnv::start().await;
    let throttled = DynamoStore::new(
        local_client(&throttling_endpoint().await),
        &env.table,
        env.config.retention,
    );
    let id = "0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a";
    let request = ApiRequest::get(&format!("/job/{id}/status")).build();
    let answer = Answer::from(status::handle(&throttled, &env.config, request).await);
    assert_transient(&answer);
    let request = ApiRequest::get("/AsyncJob").build();
    let answer = Answer::from(search::handle(&throttled, &env.config, request).await);
    assert_transient(&answer);
}
