//! The engine the tests run against: the embedded `dynoxide`, served over HTTP on a free
//! port, which a test may stop and start again with the same data; and a log of the
//! DynamoDB operations a client sends.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Records the DynamoDB operation of every request the store sends.
#[derive(Clone, Debug, Default)]
pub struct OperationLog(Arc<Mutex<Vec<String>>>);

impl OperationLog {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
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
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("");
        let operation = target.rsplit('.').next().unwrap_or(target);
        self.0.lock().unwrap().push(operation.to_owned());
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
