//! The engine the tests run against: the embedded `dynoxide`, served over HTTP on a free
//! port, which a test may stop and start again with the same data; and a log of the
//! DynamoDB operations a client sends and of the IAM actions each function needed.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

tokio::task_local! {
    /// The function whose code is running: its requests are recorded as its own.
    static FUNCTION: &'static str;
}

/// Runs `work` as `function`'s code: the DynamoDB actions it sends are that function's.
pub async fn as_function<F: std::future::Future>(function: &'static str, work: F) -> F::Output {
    FUNCTION.scope(function, work).await
}

/// Records every request a store sends: the DynamoDB operation, in order, and the IAM
/// actions it needs, by the function that sent it (the task's, or the log's own tag).
#[derive(Clone, Debug, Default)]
pub struct OperationLog {
    operations: Arc<Mutex<Vec<String>>>,
    actions: Arc<Mutex<BTreeSet<(String, String)>>>,
    function: Option<&'static str>,
}

impl OperationLog {
    /// The operations sent since the last call.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.operations.lock().unwrap())
    }

    /// The same log, counting requests sent outside any function's task as `function`'s.
    pub fn tagged(&self, function: &'static str) -> Self {
        Self {
            function: Some(function),
            ..self.clone()
        }
    }

    /// Adds the actions recorded so far to `target/iam-actions/`, where the check of the
    /// template's policies reads them (`tests/tests/template.rs`).
    pub fn save_actions(&self) {
        let actions = self.actions.lock().unwrap();
        if actions.is_empty() {
            return;
        }
        let lines: Vec<String> = actions
            .iter()
            .map(|(function, action)| format!("{function} {action}"))
            .collect();
        let folder = recorded_actions_folder();
        let file = folder.join(format!("{}-{}", std::process::id(), unique()));
        let saved =
            std::fs::create_dir_all(&folder).and_then(|()| std::fs::write(&file, lines.join("\n")));
        if let Err(error) = saved {
            eprintln!("cannot record IAM actions in {}: {error}", file.display());
        }
    }
}

/// Where tests record the actions each function sent.
pub fn recorded_actions_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/iam-actions")
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The IAM actions a request needs: its operation's, or for a transaction, each item's.
fn iam_actions(operation: &str, body: Option<&[u8]>) -> Vec<String> {
    if operation != "TransactWriteItems" {
        return vec![format!("dynamodb:{operation}")];
    }
    let body: serde_json::Value = body
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .unwrap_or_default();
    body["TransactItems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.as_object()?.keys().next().cloned())
        .map(|kind| match kind.as_str() {
            "ConditionCheck" => "dynamodb:ConditionCheckItem".to_owned(),
            kind => format!("dynamodb:{kind}Item"),
        })
        .collect()
}

impl Intercept for OperationLog {
    fn name(&self) -> &'static str {
        "OperationLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The JSON protocol names the operation in `X-Amz-Target: DynamoDB_20120810.Query`.
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or("");
        let operation = target.rsplit('.').next().unwrap_or(target);
        self.operations.lock().unwrap().push(operation.to_owned());
        if let Some(function) = FUNCTION.try_with(|f| *f).ok().or(self.function) {
            let mut actions = self.actions.lock().unwrap();
            for action in iam_actions(operation, request.body().bytes()) {
                actions.insert((function.to_owned(), action));
            }
        }
        Ok(())
    }
}

/// The embedded engine, which a test may stop and start again on the same port with the
/// same data.
pub(crate) struct Engine {
    pub address: SocketAddr,
    database: dynoxide::Database,
    server: Option<JoinHandle<()>>,
}

impl Engine {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut engine = Self {
            address: listener.local_addr().unwrap(),
            database: dynoxide::Database::memory().expect("an in-memory engine starts"),
            server: None,
        };
        engine.serve(listener);
        engine
    }

    fn serve(&mut self, listener: TcpListener) {
        let server = dynoxide::server::serve_on(listener, self.database.clone());
        self.server = Some(tokio::spawn(server));
    }

    /// Drops the server at once, as a crashed engine would go.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.serve(listener);
    }
}
