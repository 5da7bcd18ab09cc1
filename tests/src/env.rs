//! One test's world: an engine, a table of its own, the handlers' dependencies, and
//! requests routed to the real handlers as the deployed API routes them.

use asyncjob_shared::config::{AuthMode, Config};
use asyncjob_shared::model::{AsyncJob, JobId, StoredJob};
use asyncjob_shared::routes;
use asyncjob_shared::store::test_support::{Item, to_item};
use asyncjob_shared::store::{DynamoStore, JobStore, ensure_table, local_client};
use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Request, Response};

use crate::answer::Answer;
use crate::engine::{Engine, OperationLog, as_function};
use crate::faults::{FaultPlan, FaultyClient};
use crate::openapi::openapi_statuses;
use crate::request::ApiRequest;

/// Names another DynamoDB endpoint to run the tests against, instead of the embedded engine.
pub const ENDPOINT_VARIABLE: &str = "ASYNCJOB_TEST_DYNAMODB_ENDPOINT";

/// One test's world: an engine, a table of its own, and the handlers' dependencies.
pub struct TestEnv {
    /// The store the handlers use; its requests count as the function's they route to.
    pub store: DynamoStore,
    /// The same store for code that runs outside the HTTP routes, by function (the worker,
    /// the event kick-off): its requests count as that function's.
    functions: BTreeMap<&'static str, DynamoStore>,
    pub config: Config,
    /// A client without the operation log, for looking at the table directly.
    pub client: Client,
    pub table: String,
    /// The DynamoDB endpoint the table is on.
    pub endpoint: String,
    pub operations: OperationLog,
    engine: Option<Engine>,
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
        ensure_table(&client, &table)
            .await
            .expect("the test table can be created");
        let operations = OperationLog::default();
        let mut config = Config::from_lookup(|_| None).expect("defaults are valid");
        config.table_name = table.clone();
        config.auth.mode = AuthMode::Local;
        let logged = |log: OperationLog| {
            let logged = client.config().to_builder().interceptor(log).build();
            DynamoStore::new(Client::from_conf(logged), &table, config.retention)
        };
        let functions = ["worker", "kickoff-events"]
            .into_iter()
            .map(|function| (function, logged(operations.tagged(function))))
            .collect();
        Self {
            store: logged(operations.clone()),
            functions,
            config,
            client,
            table,
            endpoint,
            operations,
            engine,
        }
    }

    /// The store as `function`'s code outside the HTTP routes uses it: `worker` or
    /// `kickoff-events`.
    pub fn store_of(&self, function: &str) -> &DynamoStore {
        &self.functions[function]
    }

    /// A store on this test's table whose requests meet the faults `plan` says. SDK retries
    /// back off only briefly, so faulty runs stay quick.
    pub fn faulty_store(&self, plan: &FaultPlan) -> DynamoStore {
        let retries = RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(2));
        let client = Client::from_conf(
            self.client
                .config()
                .to_builder()
                .http_client(FaultyClient::new(plan.clone()))
                .retry_config(retries)
                .build(),
        );
        DynamoStore::new(client, &self.table, self.config.retention)
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
        self.send_to(&self.store, request).await
    }

    /// [`Self::send`] with the handlers using `store`.
    pub async fn send_to(&self, store: &DynamoStore, request: ApiRequest) -> Answer {
        let method = request.method.clone();
        let path = request.path.clone();
        let request = request.build();
        let config = &self.config;
        let documented = openapi_statuses(&method, &path);
        let answer = Answer::from(dispatch(store, config, request).await);
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
            .set_item(Some(to_item(stored).unwrap()))
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

/// Hands `request` to the function the API routes it to, as that function's code.
pub(crate) async fn dispatch(
    store: &DynamoStore,
    config: &Config,
    request: Request,
) -> Response<Body> {
    let path = request.uri().path();
    let function = routes::function_for(request.method().as_str(), path)
        .unwrap_or_else(|| panic!("{path} is on no route of the API"));
    // Boxed: a handler's future is large in a debug build, and a test thread's stack is
    // small.
    Box::pin(as_function(function, async {
        match function {
            "kickoff" => kickoff::handle(store, config, request).await,
            "status" => status::handle(store, config, request).await,
            "control" => control::handle(store, config, request).await,
            "search" => search::handle(store, config, request).await,
            "discovery" => discovery::handle(store, config, request).await,
            other => panic!("no test routing for the function {other:?}"),
        }
    }))
    .await
}

/// The function the API routes `method` on `path` to. A method no route of the path takes
/// goes to a function of the path, which must answer 405.
impl Drop for TestEnv {
    fn drop(&mut self) {
        self.operations.save_actions();
    }
}

fn uuid_like() -> String {
    JobId::generate().to_string()
}
