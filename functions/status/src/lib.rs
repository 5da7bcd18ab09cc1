//! `GET /job/{id}/status`: where an asynchronous job stands; with `Prefer: wait=N`, once it
//! has changed or the wait is over.

mod wait;

use asyncjob_shared::config::Config;
use asyncjob_shared::http::auth::{self, Access};
use asyncjob_shared::http::response::{self, EXPIRES, PREFERENCE_APPLIED, RETRY_AFTER, X_PROGRESS};
use asyncjob_shared::http::serve::{answer, record_job};
use asyncjob_shared::http::{ApiError, request};
use asyncjob_shared::model::run::poll_interval_seconds;
use asyncjob_shared::model::{
    AsyncJob, IssueCode, JobStatus, OperationOutcome, StoredJob, instant,
};
use asyncjob_shared::store::JobStore;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

pub async fn handle(store: &impl JobStore, config: &Config, request: Request) -> Response<Body> {
    answer("status", status(store, config, &request)).await
}

async fn status(
    store: &impl JobStore,
    config: &Config,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    request::require_method(request, &[Method::GET])?;
    auth::authorize(request, &config.auth, Access::Read)?;
    let id = request::job_id_in_path(request, 1)?;
    record_job(&id);
    let not_found = || ApiError::NotFound(format!("no job {id} is waiting or finished"));
    let (stored, waited) = wait::read_waiting(store, &id, request).await?;
    let Some(StoredJob {
        job,
        expires_at,
        run,
    }) = stored
    else {
        return Err(not_found());
    };
    let status = match job.status {
        JobStatus::Cancelled => return Err(not_found()),
        JobStatus::Error => return Ok(failure(&job)),
        JobStatus::Accepted => StatusCode::ACCEPTED,
        JobStatus::Completed => StatusCode::OK,
    };
    // A 304 carries the headers the full answer would.
    let mut response = if request::if_none_match_hits(request, &response::etag(&job)) {
        response::not_modified(&job)
    } else {
        let mut full = response::fhir_response(status, &job);
        response::set_validators(&mut full, &job);
        full
    };
    if status == StatusCode::ACCEPTED {
        let now = store.clock().now();
        let wait = poll_interval_seconds(run.as_ref(), &job.meta.last_updated, now);
        response::set_header(&mut response, RETRY_AFTER, &wait.to_string());
        let progress = run.map_or_else(|| "queued".to_owned(), |run| run.progress_at(now));
        response::set_header(&mut response, X_PROGRESS, &progress);
    }
    if let Some(at) = expires_at {
        response::set_header(&mut response, EXPIRES, &instant::http_date(at));
    }
    if let Some(seconds) = waited {
        response::set_header(
            &mut response,
            PREFERENCE_APPLIED,
            &format!("wait={seconds}"),
        );
    }
    Ok(response)
}

/// `500` with the job's own failure: the OperationOutcome in its `outcome` output part.
fn failure(job: &AsyncJob) -> Response<Body> {
    let outcome = job
        .output
        .iter()
        .flat_map(|output| &output.parameter)
        .find(|parameter| parameter.name == "outcome")
        .and_then(|parameter| parameter.resource.clone())
        .and_then(|resource| serde_json::from_value::<OperationOutcome>(resource).ok())
        .unwrap_or_else(|| {
            OperationOutcome::error(IssueCode::Exception, format!("job {} failed", job.id))
        });
    let mut response = response::fhir_response(StatusCode::INTERNAL_SERVER_ERROR, &outcome);
    response::set_validators(&mut response, job);
    response
}
