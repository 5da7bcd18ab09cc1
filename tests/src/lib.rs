//! The integration-test harness: a DynamoDB-compatible engine (embedded `dynoxide`, or the
//! endpoint in `ASYNCJOB_TEST_DYNAMODB_ENDPOINT`), a fresh table per test, and API Gateway
//! v2 requests routed to the real handlers as the deployed API routes them.

use std::sync::{Arc, Mutex};

use asyncjob_shared::config::{AuthMode, Config};
use asyncjob_shared::model::{AsyncJob, JobId};
use asyncjob_shared::store::record::{self, Item};
use asyncjob_shared::store::{DynamoStore, JobStore, StoredJob, local_client, table};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::LazyLock;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const ENDPOINT_VARIABLE: &str = "ASYNCJOB_TEST_DYNAMODB_ENDPOINT";
pub const HOST: &str = "api.test";
pub const BASE: &str = "https://api.test";

/// Records the DynamoDB operation of every request the store sends.
#[derive(Clone, Debug, Default)]
pub struct OperationLog(Arc<Mutex<Vec<String>>>);

impl OperationLog {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

impl Intercept for OperationLog {
    fn name(&self) -> &'static str {
        "OperationLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The JSON protocol names the operation in `X-Amz-Target: DynamoDB_20120810.Query`.
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("");
        let operation = target.rsplit('.').next().unwrap_or(target);
        self.0.lock().unwrap().push(operation.to_owned());
        Ok(())
    }
}

/// One test's world: an engine, a table of its own, and the handlers' dependencies.
pub struct TestEnv {
    pub store: DynamoStore,
    pub config: Config,
    /// A client without the operation log, for looking at the table directly.
    pub client: Client,
    pub table: String,
    /// The DynamoDB endpoint the table is on.
    pub endpoint: String,
    pub operations: OperationLog,
    engine: Option<Engine>,
}

/// The embedded engine, which a test may stop and start again on the same port with the
/// same data.
struct Engine {
    address: SocketAddr,
    database: dynoxide::Database,
    server: Option<JoinHandle<()>>,
}

impl Engine {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut engine = Self {
            address: listener.local_addr().unwrap(),
            database: dynoxide::Database::memory().expect("an in-memory engine starts"),
            server: None,
        };
        engine.serve(listener);
        engine
    }

    fn serve(&mut self, listener: TcpListener) {
        let server = dynoxide::server::serve_on(listener, self.database.clone());
        self.server = Some(tokio::spawn(server));
    }

    /// Drops the server at once, as a crashed engine would go.
    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    async fn restart(&mut self) {
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.serve(listener);
    }
}

impl TestEnv {
    pub async fn start() -> Self {
        // The handlers' logs, shown with a failing test's output.
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        let (endpoint, engine) = match std::env::var(ENDPOINT_VARIABLE) {
            Ok(endpoint) if !endpoint.is_empty() => (endpoint, None),
            _ => {
                let engine = Engine::start().await;
                (format!("http://{}", engine.address), Some(engine))
            }
        };
        let client = local_client(&endpoint);
        let table = format!("asyncjob-test-{}", uuid_like());
        table::ensure_table(&client, &table)
            .await
            .expect("the test table can be created");
        let operations = OperationLog::default();
        let logged = Client::from_conf(
            client
                .config()
                .to_builder()
                .interceptor(operations.clone())
                .build(),
        );
        let mut config = Config::from_lookup(|_| None).expect("defaults are valid");
        config.table_name = table.clone();
        config.auth.mode = AuthMode::Local;
        Self {
            store: DynamoStore::new(logged, &table, config.retention),
            config,
            client,
            table,
            endpoint,
            operations,
            engine,
        }
    }

    /// Whether this test runs its own engine (and so may stop it).
    pub fn owns_engine(&self) -> bool {
        self.engine.is_some()
    }

    /// Stops the embedded engine: every request to it fails until [`Self::restart_engine`].
    pub async fn stop_engine(&mut self) {
        self.engine
            .as_mut()
            .expect("an embedded engine")
            .stop()
            .await;
    }

    pub async fn restart_engine(&mut self) {
        self.engine
            .as_mut()
            .expect("an embedded engine")
            .restart()
            .await;
    }

    /// Sends `request` to the function API Gateway would route it to.
    pub async fn send(&self, request: ApiRequest) -> Answer {
        let method = request.method.clone();
        let path = request.path.clone();
        let request = request.build();
        let (store, config) = (&self.store, &self.config);
        let documented = openapi_statuses(&method, &path);
        let response = if path == "/$data-migration" {
            kickoff::handle(store, config, request).await
        } else if path.starts_with("/job/") && method == Method::DELETE {
            cancel::handle(store, config, request).await
        } else if path.starts_with("/job/") {
            status::handle(store, config, request).await
        } else {
            search::handle(store, config, request).await
        };
        let answer = Answer::from(response);
        // Every answer a test sees must be one api/openapi.yaml documents.
        match documented {
            Some(statuses) => assert!(
                statuses.contains(&answer.status),
                "{method} {path} answered {}, which api/openapi.yaml does not document",
                answer.status
            ),
            None => assert_eq!(
                answer.status, 405,
                "{method} {path} is not in api/openapi.yaml"
            ),
        }
        answer
    }

    /// Kicks off a migration to `data_version` and returns the job it points to.
    pub async fn kick_off(&self, data_version: u32) -> AsyncJob {
        let answer = self
            .send(
                ApiRequest::post(&format!("/$data-migration?dataVersion={data_version}"))
                    .prefer_async(),
            )
            .await;
        assert_eq!(answer.status, 202, "kick-off failed: {}", answer.body);
        let id = answer
            .header("content-location")
            .and_then(|url| url.strip_suffix("/status"))
            .and_then(|url| url.rsplit('/').next())
            .expect("Content-Location points at the job");
        self.job(id).await.expect("the kicked-off job exists").job
    }

    pub async fn job(&self, id: &str) -> Option<StoredJob> {
        self.store.get(&JobId::parse(id).unwrap()).await.unwrap()
    }

    /// Writes a job item as the store would, bypassing the handlers: for states no handler
    /// produces yet (completed, error) and for bulk data.
    pub async fn put(&self, stored: &StoredJob) {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record::to_item(stored).unwrap()))
            .send()
            .await
            .unwrap();
    }

    /// Every item in the table, bookkeeping included; a test-side scan to check what the
    /// handlers wrote.
    pub async fn items(&self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// Ids of the job items in the table (bookkeeping items left out).
    pub async fn job_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .items()
            .await
            .iter()
            .filter(|item| item.contains_key("status"))
            .filter_map(|item| item.get("id").and_then(|id| id.as_s().ok()).cloned())
            .collect();
        ids.sort();
        ids
    }

    pub async fn raw_item(&self, id: &str) -> Option<Item> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }
}

fn uuid_like() -> String {
    JobId::generate().to_string()
}

/// The status codes api/openapi.yaml documents for `method` on `path`, or `None` when it
/// documents no such operation.
pub fn openapi_statuses(method: &Method, path: &str) -> Option<Vec<u16>> {
    static OPENAPI: LazyLock<Value> = LazyLock::new(|| {
        serde_yaml_ng::from_str(include_str!("../../api/openapi.yaml")).expect("valid YAML")
    });
    let segments: Vec<&str> = path.split('/').collect();
    let matches = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(part, segment)| part.starts_with('{') || part == segment)
    };
    // The most literal template wins: /AsyncJob/_search before /AsyncJob/{id}.
    let (_, item) = OPENAPI["paths"]
        .as_object()?
        .iter()
        .filter(|(template, _)| matches(template))
        .min_by_key(|(template, _)| template.matches('{').count())?;
    let operation = item.get(method.as_str().to_ascii_lowercase())?;
    Some(
        operation["responses"]
            .as_object()?
            .keys()
            .filter_map(|status| status.parse().ok())
            .collect(),
    )
}

/// An HTTP API (API Gateway v2) request, built as the gateway would deliver it.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    method: Method,
    path: String,
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
