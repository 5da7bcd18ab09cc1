//! `POST /$data-migration`: starts a data migration and answers `202 Accepted` with where
//! to poll. [`events`] starts the same jobs from SQS and EventBridge.

pub mod events;

use asyncjob_shared::config::Config;
use asyncjob_shared::http::ApiError;
use asyncjob_shared::http::auth::{self, Access};
use asyncjob_shared::http::request;
use asyncjob_shared::http::response::{self, CONTENT_LOCATION};
use asyncjob_shared::http::serve::{answer, record_job};
use asyncjob_shared::migration::Registry;
use asyncjob_shared::model::output::says_paused;
use asyncjob_shared::model::{AsyncJob, JobStatus, JobType, OperationOutcome, instant};
use asyncjob_shared::parse::kickoff::requested_data_version;
use asyncjob_shared::store::{Delivery, JobStore, Kickoff, StoreError};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

/// Seconds a client should wait before kicking off another version while one runs.
const BUSY_RETRY_AFTER_SECONDS: u32 = 30;

pub async fn handle(store: &impl JobStore, config: &Config, request: Request) -> Response<Body> {
    answer("kickoff", kickoff(store, config, &request)).await
}

async fn kickoff(
    store: &impl JobStore,
    config: &Config,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    request::require_method(request, &[Method::POST])?;
    auth::authorize(request, &config.auth, Access::Admin)?;
    let preferences = request::preferences(request);
    if !preferences.respond_async {
        return Err(ApiError::Required(
            "this operation runs asynchronously: send the header 'Prefer: respond-async'".into(),
        ));
    }
    let body = request::body_bytes(request)?;
    if !body.is_empty()
        && !matches!(
            request::media_type(request).as_deref(),
            None | Some("application/fhir+json" | "application/json")
        )
    {
        return Err(ApiError::UnsupportedMediaType(
            "send the Parameters body as application/fhir+json".into(),
        ));
    }
    let data_version = requested_data_version(
        &request::query_pairs(request),
        body,
        preferences.handling,
        Registry::built_in().newest(),
    )?;
    let base = request::base_url(request, config)?;
    let url = request::request_url(request, &base);
    match start_data_migration(store, data_version, url, None).await? {
        Kickoff::Created(job) => {
            record_job(&job.id);
            Ok(accepted(&base, &job, None))
        }
        Kickoff::Existing(job) => {
            record_job(&job.id);
            let state = if job.status == JobStatus::Completed {
                "completed already"
            } else {
                "already under way"
            };
            let note = format!(
                "no new job was started: the data migration to version {} is {state} (job {})",
                job.data_version.unwrap_or_default(),
                job.id
            );
            Ok(accepted(&base, &job, Some(note)))
        }
        Kickoff::Delivered(id) => Err(ApiError::Store(StoreError::Failed(format!(
            "an HTTP kick-off was answered as an event delivery (job {id})"
        )))),
        Kickoff::Busy(running) => Err(ApiError::Busy {
            message: format!(
                "the data migration to version {} is {} ({base}/job/{}/status); \
                 one data migration runs at a time",
                running.data_version.unwrap_or_default(),
                if says_paused(&running) {
                    "paused, and holds its place until it is resumed or cancelled"
                } else {
                    "still running"
                },
                running.id
            ),
            retry_after: BUSY_RETRY_AFTER_SECONDS,
        }),
    }
}

/// Writes a new accepted data-migration job, unless the store finds one that answers the
/// request already (see [`JobStore::start_migration`]). `request` is the kick-off's URL, or
/// its event's name; an event kick-off names its `delivery`.
pub async fn start_data_migration(
    store: &impl JobStore,
    data_version: u32,
    request: String,
    delivery: Option<&Delivery>,
) -> Result<Kickoff, StoreError> {
    let job = AsyncJob::accepted(
        JobType::DataMigration,
        data_version,
        request,
        &instant::format(store.clock().now()),
    );
    store.start_migration(job, delivery).await
}

/// `202 Accepted` pointing at the job's status URL. A repeat kick-off says in a second
/// issue that it started nothing, so a person reading the answer is not misled.
fn accepted(base: &str, job: &AsyncJob, repeat: Option<String>) -> Response<Body> {
    let status_url = format!("{base}/job/{}/status", job.id);
    let outcome = OperationOutcome::information(&status_url);
    let outcome = match repeat {
        Some(note) => outcome.and_information(note),
        None => outcome,
    };
    let mut response = response::fhir_response(StatusCode::ACCEPTED, &outcome);
    response::set_header(&mut response, CONTENT_LOCATION, &status_url);
    response
}
