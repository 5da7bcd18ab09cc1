//! Serving an HTTP handler on Lambda: the one log line per request, and the `main` every
//! HTTP function shares.

use std::convert::Infallible;
use std::future::Future;
use std::time::Instant;

use lambda_http::{Body, IntoResponse, Request, Response, service_fn};
use tracing::Instrument;

use super::error::ApiError;
use crate::config::Config;
use crate::model::JobId;
use crate::store::DynamoStore;

/// Runs an HTTP function: starts it once ([`crate::lambda::init`]) and answers every request
/// with `handler`. The store and configuration live as long as the process.
pub async fn serve<F, R>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(&'static DynamoStore, &'static Config, Request) -> R,
    R: Future<Output = Response<Body>> + Send,
{
    let (store, config): &'static (DynamoStore, Config) =
        Box::leak(Box::new(crate::lambda::init().await?));
    lambda_http::run(service_fn(|request| {
        let response = handler(store, config, request);
        async move { Ok::<_, Infallible>(response.await) }
    }))
    .await
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
        let response = match work.await {
            Ok(response) => response,
            Err(error) => error.into_response().await,
        };
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
