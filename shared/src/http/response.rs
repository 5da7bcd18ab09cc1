//! Building FHIR responses: the body, the headers the service sets, the validators of one
//! job's answers and `304 Not Modified`. Depends only on the model.

use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::model::{AsyncJob, instant};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
pub const RETRY_AFTER: &str = "retry-after";
pub const CONTENT_LOCATION: &str = "content-location";
pub const ETAG: &str = "etag";
pub const LAST_MODIFIED: &str = "last-modified";
pub const EXPIRES: &str = "expires";
pub const X_PROGRESS: &str = "x-progress";
pub const PREFERENCE_APPLIED: &str = "preference-applied";
pub const ALLOW: &str = "allow";

pub fn fhir_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let json = serde_json::to_string(body).expect("resources serialize to JSON");
    let mut response = Response::new(Body::Text(json));
    *response.status_mut() = status;
    set_header(&mut response, CONTENT_TYPE.as_str(), FHIR_JSON);
    response
}

/// Sets a header the service composed itself. A value that cannot be a header (which the
/// service never builds) is left out rather than failing the request.
pub fn set_header(response: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

pub fn etag(job: &AsyncJob) -> String {
    format!("W/\"{}\"", job.meta.version_id)
}

/// The validators every answer about one job carries.
pub fn set_validators(response: &mut Response<Body>, job: &AsyncJob) {
    set_header(response, ETAG, &etag(job));
    if let Some(at) = instant::parse(&job.meta.last_updated) {
        set_header(response, LAST_MODIFIED, &instant::http_date(at));
    }
}

/// `304 Not Modified` for a client that already holds the current version.
pub fn not_modified(job: &AsyncJob) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    set_validators(&mut response, job);
    response
}
