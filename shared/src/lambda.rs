//! What every function's entrypoint does once at start, and around each request.

use std::future::Future;
use std::time::Instant;

use lambda_http::{Body, Response};
use tracing::Instrument;

use crate::config::Config;
use crate::error::ApiError;
use crate::model::JobId;
use crate::store::{DynamoStore, dynamodb_client};

/// Logging (JSON when the function's log format is JSON), the configuration, and the
/// store with its one SDK client.
pub async fn init() -> Result<(DynamoStore, Config), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let store = DynamoStore::new(
        dynamodb_client().await,
        &config.table_name,
        config.retention,
    );
    Ok((store, config))
}

/// Turns a handler's result into its response and logs one line for the request: route,
/// status, latency and, once known, the job id. Nothing from headers or bodies is logged,
/// so no token or payload reaches the logs.
pub async fn answer(
    route: &'static str,
    work: impl Future<Output = Result<Response<Body>, ApiError>>,
) -> Response<Body> {
    let span = tracing::info_span!("request", route, job = tracing::field::Empty);
    async move {
        let started = Instant::now();
        let response = work.await.unwrap_or_else(ApiError::into_response);
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "answered"
        );
        response
    }
    .instrument(span)
    .await
}

/// Names the job the current request is about in its log line.
pub fn record_job(id: &JobId) {
    tracing::Span::current().record("job", id.as_str());
}
