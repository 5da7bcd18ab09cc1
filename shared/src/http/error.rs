//! The one error type of the HTTP handlers, and the one place it becomes a response.

use std::future::Future;
use std::pin::Pin;

use lambda_http::http::StatusCode;
use lambda_http::{Body, IntoResponse, Response};

use super::response::{ALLOW, RETRY_AFTER, fhir_response, set_header};
use crate::model::{IssueCode, OperationOutcome};
use crate::parse::Invalid;
use crate::store::StoreError;

/// Seconds a client is asked to wait before trying a request that failed for a passing reason.
pub const TRANSIENT_RETRY_AFTER_SECONDS: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Required(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// `allow` lists the methods the path takes, for the `Allow` header.
    #[error("{message}")]
    MethodNotAllowed { message: String, allow: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    Busy { message: String, retry_after: u32 },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, IssueCode) {
        match self {
            Self::Invalid(_) => (StatusCode::BAD_REQUEST, IssueCode::Invalid),
            Self::Required(_) => (StatusCode::BAD_REQUEST, IssueCode::Required),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, IssueCode::TooCostly),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, IssueCode::NotSupported)
            }
            Self::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, IssueCode::NotSupported)
            }
            Self::NotFound(_) => (StatusCode::NOT_FOUND, IssueCode::NotFound),
            Self::Conflict(_) => (StatusCode::CONFLICT, IssueCode::Conflict),
            Self::Busy { .. } => (StatusCode::TOO_MANY_REQUESTS, IssueCode::Throttled),
            Self::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, IssueCode::Login),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, IssueCode::Forbidden),
            Self::Store(error) if error.is_transient() => {
                (StatusCode::SERVICE_UNAVAILABLE, IssueCode::Transient)
            }
            Self::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, IssueCode::Exception),
        }
    }

    fn retry_after(&self) -> Option<u32> {
        match self {
            Self::Busy { retry_after, .. } => Some(*retry_after),
            Self::Store(error) if error.is_transient() => Some(TRANSIENT_RETRY_AFTER_SECONDS),
            _ => None,
        }
    }

    /// The answer a client gets: the status, an OperationOutcome, and `Retry-After` when
    /// trying again later can help. Server faults are logged here, and their details stay in
    /// the log rather than the response.
    fn response(self) -> Response<Body> {
        let (status, code) = self.status_and_code();
        let diagnostics = match &self {
            Self::Store(error) if error.is_transient() => {
                tracing::warn!(%error, "store unavailable");
                format!("{}; try again shortly.", error.summary())
            }
            Self::Store(error) => {
                tracing::error!(%error, "store failure");
                "The server could not complete the request.".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = fhir_response(status, &OperationOutcome::error(code, diagnostics));
        if let Some(seconds) = self.retry_after() {
            set_header(&mut response, RETRY_AFTER, &seconds.to_string());
        }
        if let Self::MethodNotAllowed { allow, .. } = &self {
            set_header(&mut response, ALLOW, allow);
        }
        response
    }
}

impl IntoResponse for ApiError {
    // The trait names its future type privately; this is that type.
    fn into_response(self) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> {
        Box::pin(std::future::ready(self.response()))
    }
}

impl From<Invalid> for ApiError {
    fn from(Invalid(message): Invalid) -> Self {
        Self::Invalid(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Transient;

    fn outcome_of(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[test]
    fn every_error_is_an_operation_outcome_with_a_fitting_code() {
        let cases = [
            (ApiError::Invalid("bad".into()), 400, "invalid"),
            (ApiError::Required("missing".into()), 400, "required"),
            (ApiError::PayloadTooLarge("big".into()), 413, "too-costly"),
            (ApiError::NotFound("gone".into()), 404, "not-found"),
            (ApiError::Conflict("done".into()), 409, "conflict"),
            (ApiError::Unauthenticated("who".into()), 401, "login"),
            (ApiError::Forbidden("no".into()), 403, "forbidden"),
            (
                ApiError::Store(StoreError::unavailable(Transient::Unreachable, "down")),
                503,
                "transient",
            ),
            (
                ApiError::Store(StoreError::Failed("bug".into())),
                500,
                "exception",
            ),
        ];
        for (error, status, code) in cases {
            let response = error.response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(
                response.headers()["content-type"],
                "application/fhir+json; charset=utf-8"
            );
            let outcome = outcome_of(&response);
            assert_eq!(outcome["resourceType"], "OperationOutcome");
            assert_eq!(outcome["issue"][0]["severity"], "error");
            assert_eq!(outcome["issue"][0]["code"], code);
        }
    }

    #[test]
    fn waits_are_announced_with_retry_after() {
        let busy = ApiError::Busy {
            message: "busy".into(),
            retry_after: 7,
        }
        .response();
        assert_eq!(busy.status(), 429);
        assert_eq!(busy.headers()["retry-after"], "7");
        let down = ApiError::Store(StoreError::unavailable(Transient::TimedOut, "t")).response();
        assert_eq!(down.headers()["retry-after"], "2");
    }

    #[test]
    fn server_faults_do_not_leak_details() {
        let refused = ApiError::Store(StoreError::Refused {
            code: "AccessDeniedException".into(),
            detail: "role arn:aws:iam::123456789012:role/secret".into(),
        });
        assert!(
            !outcome_of(&refused.response())
                .to_string()
                .contains("secret")
        );
        let throttled = ApiError::Store(StoreError::unavailable(
            Transient::Throttled,
            "request id 5EC8E7 for table arn:aws:dynamodb:secret",
        ));
        let outcome = outcome_of(&throttled.response()).to_string();
        assert!(
            outcome.contains("throttled") && !outcome.contains("secret"),
            "{outcome}"
        );
    }
}
