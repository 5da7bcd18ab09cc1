//! The response side: a handler's response read back, and the checks every test makes of
//! an error answer.

use lambda_http::{Body, Response};
use serde_json::Value;

/// A handler's response, read back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: lambda_http::http::HeaderMap,
    pub body: Value,
}

impl From<Response<Body>> for Answer {
    fn from(response: Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        let bytes = body.as_ref();
        Self {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(bytes).expect("every body is JSON")
            },
        }
    }
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts the answer is an OperationOutcome error with this status and issue code.
    #[track_caller]
    pub fn assert_outcome(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.body["resourceType"], "OperationOutcome",
            "{}",
            self.body
        );
        assert_eq!(self.body["issue"][0]["code"], code, "{}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/fhir+json; charset=utf-8")
        );
    }
}
