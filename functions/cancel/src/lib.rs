//! `DELETE /job/{id}/status`: cancels a job that has not finished.

use asyncjob_shared::config::Config;
use asyncjob_shared::http::auth::{self, Access};
use asyncjob_shared::http::serve::{answer, record_job};
use asyncjob_shared::http::{ApiError, request, response};
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
    request::require_method(request, &[Method::DELETE])?;
    auth::authorize(request, &config.auth, Access::Admin)?;
    let id = request::job_id_in_path(request, 1)?;
    record_job(&id);
    match store.cancel(&id).await? {
        Cancel::Cancelled(job) => {
            let mut response = response::fhir_response(
                StatusCode::ACCEPTED,
                &OperationOutcome::information(format!("job {id} is cancelled")),
            );
            response::set_validators(&mut response, &job);
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
