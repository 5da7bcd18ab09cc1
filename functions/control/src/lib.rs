//! An operator steers a job that has not finished: `POST /AsyncJob/{id}/$pause` holds it,
//! `POST /AsyncJob/{id}/$resume` lets it go on from its checkpoints, and
//! `DELETE /job/{id}/status` cancels it. Each is recorded in the job with who did it.

use asyncjob_shared::config::Config;
use asyncjob_shared::http::auth::{self, Access};
use asyncjob_shared::http::serve::{answer, record_job};
use asyncjob_shared::http::{ApiError, request, response};
use asyncjob_shared::model::{Action, AsyncJob, Control, OperationOutcome};
use asyncjob_shared::routes;
use asyncjob_shared::store::{Controlled, JobStore};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

pub async fn handle(store: &impl JobStore, config: &Config, request: Request) -> Response<Body> {
    let action = match routes::template_of(request.uri().path()) {
        Some(routes::PAUSE) => Action::Pause,
        Some(routes::RESUME) => Action::Resume,
        Some(routes::JOB_STATUS) => Action::Cancel,
        _ => {
            let unknown = ApiError::NotFound(format!("no operation at {}", request.uri().path()));
            return answer("control", async { Err(unknown) }).await;
        }
    };
    answer(action.name(), control(store, config, &request, action)).await
}

async fn control(
    store: &impl JobStore,
    config: &Config,
    request: &Request,
    action: Action,
) -> Result<Response<Body>, ApiError> {
    let method = match action {
        Action::Cancel => Method::DELETE,
        Action::Pause | Action::Resume => Method::POST,
    };
    request::require_method(request, &[method])?;
    let caller = auth::authorize(request, &config.auth, Access::Admin)?;
    let id = request::job_id_in_path(request, 1)?;
    record_job(&id);
    if action != Action::Cancel {
        require_no_parameters(request, action)?;
    }
    match store.control(&id, &Control::new(action, &caller)).await? {
        Controlled::Done(job) | Controlled::Already(job) => Ok(controlled(action, &job)),
        Controlled::NotFound => Err(ApiError::NotFound(format!(
            "no job {id} is waiting to be {}",
            action.done()
        ))),
        Controlled::Finished(job) => Err(ApiError::Conflict(format!(
            "job {id} is {} and can no longer be {}",
            job.status,
            action.done()
        ))),
    }
}

/// A cancel answers `202` with an OperationOutcome; a pause or a resume `200` with the job
/// as it is now, as a read of it would.
fn controlled(action: Action, job: &AsyncJob) -> Response<Body> {
    let mut response = match action {
        Action::Cancel => response::fhir_response(
            StatusCode::ACCEPTED,
            &OperationOutcome::information(format!("job {} is cancelled", job.id)),
        ),
        Action::Pause | Action::Resume => response::fhir_response(StatusCode::OK, job),
    };
    response::set_validators(&mut response, job);
    response
}

/// `$pause` and `$resume` take no parameters: the body is empty, or a `Parameters`
/// resource without any.
fn require_no_parameters(request: &Request, action: Action) -> Result<(), ApiError> {
    let body = request::body_bytes(request)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let refuse = || {
        ApiError::Invalid(format!(
            "${action} takes no parameters: send no body, or a Parameters resource without any"
        ))
    };
    let resource: Value = serde_json::from_slice(body).map_err(|_| refuse())?;
    let empty_parameters = resource.as_object().is_some_and(|fields| {
        fields.get("resourceType") == Some(&Value::from("Parameters"))
            && fields.iter().all(|(name, value)| match name.as_str() {
                "resourceType" => true,
                "parameter" => value.as_array().is_some_and(Vec::is_empty),
                "id" | "meta" => true,
                _ => false,
            })
    });
    if empty_parameters {
        Ok(())
    } else {
        Err(refuse())
    }
}
