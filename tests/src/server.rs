//! The API over real HTTP, for tests of clients (the CLI): a server on a free port that
//! hands each request to the function the API routes it to, and answers a path no route
//! has as API Gateway does. A sweeper runs jobs in the background, as the local stack's does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asyncjob_shared::config::Config;
use asyncjob_shared::migration::{MigrationContext, Registry};
use asyncjob_shared::routes;
use asyncjob_shared::runner::{RunSettings, Runner};
use asyncjob_shared::store::DynamoStore;
use axum::body::Bytes;
use lambda_http::{Body, Request};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::TestEnv;
use crate::env::dispatch;

/// A running server; it stops when dropped.
pub struct ApiServer {
    pub url: String,
    /// The `Prefer` header of every status poll served so far, in order.
    pub polls: Arc<Mutex<Vec<Option<String>>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl ApiServer {
    /// Serves `env`'s API; with `settings`, a sweeper runs its jobs every 50 ms.
    pub async fn start(env: &TestEnv, settings: Option<RunSettings>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let api = Arc::new((env.store.clone(), env.config.clone()));
        let polls = Arc::new(Mutex::new(Vec::new()));
        let log = polls.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (api, log) = (api.clone(), log.clone());
            async move { logged(&log, request, |request| answer(&api.0, &api.1, request)).await }
        });
        let mut tasks = vec![tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        })];
        if let Some(settings) = settings {
            tasks.push(tokio::spawn(sweep(
                env.store_of("worker").clone(),
                settings,
            )));
        }
        Self {
            url: format!("http://{address}"),
            polls,
            tasks,
        }
    }
}

/// `serve(request)`, noted in `log` when it is a status poll.
async fn logged<F>(
    log: &Mutex<Vec<Option<String>>>,
    request: axum::extract::Request,
    serve: impl FnOnce(axum::extract::Request) -> F,
) -> axum::response::Response
where
    F: Future<Output = axum::response::Response>,
{
    let is_poll = routes::template_of(request.uri().path()) == Some(routes::JOB_STATUS)
        && request.method() == axum::http::Method::GET;
    let prefer = request
        .headers()
        .get("prefer")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if is_poll {
        log.lock().unwrap().push(prefer);
    }
    serve(request).await
}

async fn answer(
    store: &DynamoStore,
    config: &Config,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    if routes::template_of(parts.uri.path()).is_none() {
        let mut missing = axum::response::Response::new(r#"{"message":"Not Found"}"#.into());
        *missing.status_mut() = axum::http::StatusCode::NOT_FOUND;
        return missing;
    }
    let bytes: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let request = Request::from_parts(parts, Body::from(bytes.to_vec()));
    let (parts, body) = dispatch(store, config, request).await.into_parts();
    axum::response::Response::from_parts(parts, body.to_vec().into())
}

/// The local stack's sweeper, quicker: runs what is accepted every 50 ms.
async fn sweep(store: DynamoStore, settings: RunSettings) {
    loop {
        let context =
            MigrationContext::on(&store, settings.page_size).with_budget(settings.items_per_second);
        let runner = Runner::new(&store, Registry::built_in(), context, &settings, "server");
        let _ = runner.sweep(Instant::now() + Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
