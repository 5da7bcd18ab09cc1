//! Requests as API Gateway (HTTP API, payload v2) delivers them to a function.

use lambda_http::Request;
use lambda_http::http::Method;
use serde_json::{Value, json};

/// The host every test request is addressed to.
pub const HOST: &str = "api.test";
/// The base URL the handlers build absolute URLs from, given [`HOST`] over HTTPS.
pub const BASE: &str = "https://api.test";

/// An HTTP API (API Gateway v2) request, built as the gateway would deliver it.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    pub(crate) method: Method,
    pub(crate) path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    claims: Option<Value>,
}

impl ApiRequest {
    pub fn new(method: Method, path_and_query: &str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Self {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers: vec![
                ("host".into(), HOST.into()),
                ("x-forwarded-proto".into(), "https".into()),
            ],
            body: None,
            claims: None,
        }
    }

    pub fn get(path_and_query: &str) -> Self {
        Self::new(Method::GET, path_and_query)
    }

    pub fn post(path_and_query: &str) -> Self {
        Self::new(Method::POST, path_and_query)
    }

    pub fn delete(path_and_query: &str) -> Self {
        Self::new(Method::DELETE, path_and_query)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    pub fn prefer_async(self) -> Self {
        self.header("prefer", "respond-async")
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn json(self, body: &Value) -> Self {
        self.header("content-type", "application/fhir+json")
            .body(body.to_string())
    }

    /// The claims API Gateway's JWT authorizer would pass on.
    pub fn claims(mut self, claims: Value) -> Self {
        self.claims = Some(claims);
        self
    }

    pub fn build(self) -> Request {
        lambda_http::request::from_str(&self.event().to_string())
            .expect("a valid API Gateway event")
    }

    /// The API Gateway v2 event as Lambda delivers it.
    pub fn event(self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect();
        let mut context = json!({
            "accountId": "123456789012", "apiId": "api", "domainName": HOST,
            "domainPrefix": "api", "requestId": "request", "routeKey": "$default",
            "stage": "$default", "time": "27/Nov/2026:12:00:00 +0000", "timeEpoch": 0,
            "http": {"method": self.method.as_str(), "path": self.path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "asyncjob-tests"}
        });
        if let Some(claims) = self.claims {
            context["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
        }
        json!({
            "version": "2.0", "routeKey": "$default",
            "rawPath": self.path, "rawQueryString": self.query,
            "headers": headers, "requestContext": context,
            "body": self.body, "isBase64Encoded": false
        })
    }
}
