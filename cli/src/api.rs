//! The API over HTTP, and its answers read for a person: every refusal becomes one line that
//! says what to do, and an exit code.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Client, Method};
use serde_json::Value;

use crate::Outcome;

/// Why a command could not do what it was asked, in one line, and its exit code.
#[derive(Debug)]
pub struct Problem {
    pub outcome: Outcome,
    pub message: String,
}

impl Problem {
    pub fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Self {
            outcome,
            message: message.into(),
        }
    }
}

pub struct Api {
    base: String,
    token: Option<String>,
    http: Client,
}

/// An answer: its status, headers and JSON body (`Null` when it had none).
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Result<Self, Problem> {
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| Problem::new(Outcome::Usage, format!("no HTTP client: {error}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    /// `path` under the base URL; an absolute URL (a `next` link, a status URL) as it is.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn get(&self, path: &str, if_none_match: Option<&str>) -> Result<Reply, Problem> {
        self.send(Method::GET, path, if_none_match, None).await
    }

    /// A GET of a status URL that asks the service to answer once the job has changed from
    /// `seen`, or after `wait` (`Prefer: wait`).
    pub async fn get_changed(
        &self,
        path: &str,
        seen: &str,
        wait: Duration,
    ) -> Result<Reply, Problem> {
        let prefer = format!("wait={}", wait.as_secs());
        self.send(Method::GET, path, Some(seen), Some(&prefer))
            .await
    }

    pub async fn post(&self, path: &str) -> Result<Reply, Problem> {
        self.send(Method::POST, path, None, Some("respond-async"))
            .await
    }

    /// A FHIR operation that answers at once (`$pause`, `$resume`).
    pub async fn invoke(&self, path: &str) -> Result<Reply, Problem> {
        self.send(Method::POST, path, None, None).await
    }

    pub async fn delete(&self, path: &str) -> Result<Reply, Problem> {
        self.send(Method::DELETE, path, None, None).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        if_none_match: Option<&str>,
        prefer: Option<&str>,
    ) -> Result<Reply, Problem> {
        let url = self.url(path);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("accept", "application/fhir+json");
        if let Some(prefer) = prefer {
            request = request.header("prefer", prefer);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(etag) = if_none_match {
            request = request.header("if-none-match", etag);
        }
        let response = request
            .send()
            .await
            .map_err(|error| unreachable(&url, &error))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| unreachable(&url, &error))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// The service could not be reached: the deepest cause says why (refused, no such host,
/// timed out).
fn unreachable(url: &str, error: &reqwest::Error) -> Problem {
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let hint = if url.contains("127.0.0.1") || url.contains("localhost") {
        " (is the local stack running? `make dev` serves it)"
    } else {
        ""
    };
    Problem::new(
        Outcome::Refused,
        format!("cannot reach {url}: {cause}{hint}"),
    )
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// What the service said, from the first issue of an OperationOutcome.
    pub fn diagnostics(&self) -> String {
        self.body["issue"][0]["diagnostics"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the service answered {}", self.status))
    }

    /// A refusal read for a person: what went wrong, and what to do.
    pub fn refusal(&self) -> Problem {
        let said = self.diagnostics();
        match self.status {
            401 => Problem::new(
                Outcome::Refused,
                "the API needs a token: pass --token or --token-command, or set ASYNCJOB_TOKEN",
            ),
            403 => Problem::new(Outcome::Refused, format!("not allowed: {said}")),
            429 => Problem::new(Outcome::Refused, format!("busy: {said}")),
            400 | 413 | 415 => Problem::new(Outcome::Usage, said),
            status if status >= 500 => Problem::new(
                Outcome::Refused,
                format!("the service failed ({status}): {said}"),
            ),
            _ => Problem::new(Outcome::Refused, said),
        }
    }

    /// Seconds the service asks to wait, if it says.
    pub fn retry_after(&self) -> Option<u64> {
        self.header("retry-after")?.trim().parse().ok()
    }
}

/// The token: given, or printed by `command` (run once by the shell). Never shown.
pub fn token(given: Option<String>, command: Option<&str>) -> Result<Option<String>, Problem> {
    let Some(command) = command else {
        return Ok(given);
    };
    let output = std::process::Command::new("sh")
        .args(["-c", command])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|error| Problem::new(Outcome::Usage, format!("--token-command: {error}")))?;
    if !output.status.success() {
        return Err(Problem::new(
            Outcome::Usage,
            format!("--token-command failed ({})", output.status),
        ));
    }
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if token.is_empty() {
        return Err(Problem::new(
            Outcome::Usage,
            "--token-command printed no token",
        ));
    }
    Ok(Some(token))
}
