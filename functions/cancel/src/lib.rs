//! `DELETE /job/{id}/status`: cancels a job that has not finished (SPEC §3).

use asyncjob_shared::auth::{self, Access};
use asyncjob_shared::config::Config;
use asyncjob_shared::error::ApiError;
use asyncjob_shared::http;
use asyncjob_shared::lambda::answer;
use asyncjob_shared::model::OperationOutcome;
use asyncjob_shared::store::{Cancel, JobStore};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

pub async fn handle(store: &impl JobStore, config: &Config, request: Request) -> Response<Body> {
    answer("cancel", cancel(store, config, &request)).await
}

async fn cancel(
    store: &impl JobStore,
    config: &Config,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    http::require_method(request, &[Method::DELETE])?;
    auth::authorize(request, &config.auth, Access::Admin)?;
    let id = http::job_id_in_path(request, 1)?;
    match store.cancel(&id).await? {
        Cancel::Cancelled(job) => {
            let mut response = http::fhir_response(
                StatusCode::ACCEPTED,
                &OperationOutcome::information(format!("job {id} is cancelled")),
            );
            http::set_validators(&mut response, &job);
            Ok(response)
        }
        Cancel::NotFound => Err(ApiError::NotFound(format!(
            "no job {id} is waiting to be cancelled"
        ))),
        Cancel::Finished(job) => Err(ApiError::Conflict(format!(
            "job {id} is {} and can no longer be cancelled",
            job.status
        ))),
    }
}
