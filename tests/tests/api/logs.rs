//! One JSON log line per request: route, status, latency, job id; never a token.

use std::io::Write;
use std::sync::{Arc, Mutex};

use asyncjob_tests::{ApiRequest, TestEnv};
use serde_json::Value;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_request_logs_one_json_line_without_secrets() {
    let env = TestEnv::start().await;
    let job = env.kick_off(2).await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let token = "e30.eyJzY29wZSI6ImFzeW5jam9iL3JlYWQifQ.secret-signature";
    env.send(
        ApiRequest::get(&format!("/job/{}/status", job.id))
            .header("authorization", &format!("Bearer {token}")),
    )
    .await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
        .filter(|line: &Value| line["fields"]["message"] == "answered")
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = &lines[0];
    assert_eq!(line["fields"]["status"], 202);
    assert!(line["fields"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(line["span"]["route"], "status");
    assert_eq!(line["span"]["job"], job.id.as_str());
    assert!(
        !text.contains("secret-signature") && !text.contains("eyJzY29wZSI6"),
        "{text}"
    );
}
