//! Faults injected at the DynamoDB boundary: an HTTP client for the SDK that passes each
//! request to the real engine, or answers it the way DynamoDB does when things go wrong.
//! The store code above it is the real one, SDK retries included; the plan says, per
//! operation and occurrence, which request meets which fault.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::http::{HttpRequest, HttpResponse};
use aws_sdk_dynamodb::config::{HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use tokio::sync::Notify;

/// Why DynamoDB cancels a transaction, other than its own conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CancelReason {
    Throttling,
    Conflict,
    Capacity,
}

impl CancelReason {
    fn code(self) -> &'static str {
        match self {
            Self::Throttling => "ThrottlingError",
            Self::Conflict => "TransactionConflict",
            Self::Capacity => "ProvisionedThroughputExceeded",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// `ThrottlingException`; nothing is written.
    Throttle,
    /// `InternalServerError`; nothing is written.
    ServerError,
    /// `TransactionConflictException`: the item is in another transaction; nothing is
    /// written.
    Conflict,
    /// A transaction cancelled: `reason` for the item at `item` (modulo the transaction's
    /// size), `None` for the others. Nothing is written. Other operations pass.
    CancelTransaction { item: u8, reason: CancelReason },
    /// The request is applied, and its answer lost: the client sees a timeout.
    LoseAnswerAsTimeout,
    /// The request is applied, and the client sees a 500 instead of its answer.
    LoseAnswerAs500,
    /// The answer comes this many milliseconds late.
    Latency(u16),
    /// The caller dies at this request, before sending it: it never gets an answer.
    CrashBefore,
    /// The caller dies after the request was applied, before it reads the answer.
    CrashAfter,
    /// The request waits, before it is sent or after it was applied, until the test has
    /// done something else ([`FaultPlan::paused`], [`FaultPlan::resume`]).
    Pause { after: bool },
    /// A `BatchGetItem` answered with every key it asked for left unprocessed, as DynamoDB
    /// answers when the table is busy. Other operations pass.
    LeaveUnprocessed,
}

impl Fault {
    /// Whether the fault can happen to `operation`: only a transaction is cancelled, and only
    /// a batch read leaves keys unprocessed. Any other request goes through, uncounted.
    fn applies_to(self, operation: &str) -> bool {
        match self {
            Self::CancelTransaction { .. } => operation == "TransactWriteItems",
            Self::LeaveUnprocessed => operation == "BatchGetItem",
            _ => true,
        }
    }

    /// A short name, for counting faults by kind.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Throttle => "throttle",
            Self::ServerError => "server error",
            Self::Conflict => "conflict with a transaction",
            Self::CancelTransaction { .. } => "transaction cancelled",
            Self::LoseAnswerAsTimeout => "answer lost (timeout)",
            Self::LoseAnswerAs500 => "answer lost (500)",
            Self::Latency(_) => "latency",
            Self::CrashBefore => "crash before a request",
            Self::CrashAfter => "crash after a request",
            Self::Pause { .. } => "pause for another caller",
            Self::LeaveUnprocessed => "keys left unprocessed",
        }
    }
}

/// A fault for the `occurrence`-th request (from 0) of `operation` in the current step.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FaultRule {
    pub operation: &'static str,
    pub occurrence: u8,
    pub fault: Fault,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<FaultRule>,
    /// A fault every request meets, whatever the rules say.
    always: Option<Fault>,
    /// A fault every request of one operation meets, whatever the rules say.
    always_on: Option<(String, Fault)>,
    seen: BTreeMap<String, u8>,
    /// Faults that took effect, by kind, and by operation and kind.
    injected: BTreeMap<&'static str, u64>,
    injected_on: BTreeMap<(String, &'static str), u64>,
    requests: u64,
    /// When each item write of a migration (an `UpdateItem` of its own, other than a write
    /// budget's) was sent to the engine, on the time that really passes (a test's jumps of
    /// its clock give a budget nothing), and its update expression.
    migration_writes: Vec<(Instant, String)>,
}

/// The plan a [`FaultyClient`] follows, shared with the test that sets it.
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    state: Arc<Mutex<State>>,
    crashed: Arc<Notify>,
    paused: Arc<Notify>,
    resume: Arc<Notify>,
}

impl FaultPlan {
    /// Follows `rules` from now on, counting occurrences afresh.
    pub fn set(&self, rules: Vec<FaultRule>) {
        let mut state = self.state.lock().unwrap();
        state.rules = rules;
        state.seen.clear();
    }

    /// Lets every request through.
    pub fn clear(&self) {
        self.set(Vec::new());
        let mut state = self.state.lock().unwrap();
        state.always = None;
        state.always_on = None;
    }

    /// Every request meets `fault` until [`Self::clear`].
    pub fn always(&self, fault: Fault) {
        self.state.lock().unwrap().always = Some(fault);
    }

    /// Every request of `operation` meets `fault` until [`Self::clear`].
    pub fn always_on(&self, operation: &str, fault: Fault) {
        self.state.lock().unwrap().always_on = Some((operation.to_owned(), fault));
    }

    /// Completes when a request meets a crash fault.
    pub async fn crashed(&self) {
        self.crashed.notified().await;
    }

    /// Completes when a request meets a pause fault; it waits for [`Self::resume`].
    pub async fn paused(&self) {
        self.paused.notified().await;
    }

    pub fn resume(&self) {
        self.resume.notify_one();
    }

    /// Faults that took effect so far, by kind, and the requests seen.
    pub fn counts(&self) -> (BTreeMap<&'static str, u64>, u64) {
        let state = self.state.lock().unwrap();
        (state.injected.clone(), state.requests)
    }

    /// Faults that took effect so far, by DynamoDB operation and kind.
    pub fn counts_by_operation(&self) -> BTreeMap<(String, &'static str), u64> {
        self.state.lock().unwrap().injected_on.clone()
    }

    /// The item writes of migrations sent so far: when, and their update expression.
    pub fn migration_writes(&self) -> Vec<(Instant, String)> {
        self.state.lock().unwrap().migration_writes.clone()
    }

    fn sent(&self, request: &HttpRequest, operation: &str) {
        if operation != "UpdateItem" {
            return;
        }
        let expression = request
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok())
            .and_then(|body| body["UpdateExpression"].as_str().map(str::to_owned))
            .unwrap_or_default();
        // The write budget's own item is bookkeeping, not a migrated item.
        if !expression.contains("#next") {
            let mut state = self.state.lock().unwrap();
            state.migration_writes.push((Instant::now(), expression));
        }
    }

    fn fault_for(&self, operation: &str) -> Option<Fault> {
        let mut state = self.state.lock().unwrap();
        state.requests += 1;
        let occurrence = {
            let seen = state.seen.entry(operation.to_owned()).or_default();
            let occurrence = *seen;
            *seen = seen.saturating_add(1);
            occurrence
        };
        let on_operation = state
            .always_on
            .as_ref()
            .filter(|(faulted, _)| faulted == operation)
            .map(|(_, fault)| *fault);
        let fault = state
            .always
            .or(on_operation)
            .or_else(|| {
                state
                    .rules
                    .iter()
                    .find(|rule| rule.operation == operation && rule.occurrence == occurrence)
                    .map(|rule| rule.fault)
            })
            .filter(|fault| fault.applies_to(operation))?;
        *state.injected.entry(fault.kind()).or_default() += 1;
        *state
            .injected_on
            .entry((operation.to_owned(), fault.kind()))
            .or_default() += 1;
        Some(fault)
    }
}

/// An SDK HTTP client that sends requests on through `inner`, except where the plan says.
#[derive(Clone, Debug)]
pub struct FaultyClient {
    inner: SharedHttpClient,
    plan: FaultPlan,
}

impl FaultyClient {
    pub fn new(plan: FaultPlan) -> Self {
        Self {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            plan,
        }
    }
}

impl HttpClient for FaultyClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            plan: self.plan.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    plan: FaultPlan,
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        // The JSON protocol names the operation in `X-Amz-Target: DynamoDB_20120810.Query`.
        let target = request.headers().get("x-amz-target").unwrap_or("");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        let fault = self.plan.fault_for(&operation);
        let inner = self.inner.clone();
        let plan = self.plan.clone();
        // Every request that reaches the engine goes through here.
        let send = {
            let plan = plan.clone();
            let operation = operation.clone();
            move |request: HttpRequest| {
                plan.sent(&request, &operation);
                inner.call(request)
            }
        };
        HttpConnectorFuture::new(async move {
            match fault {
                None => send(request).await,
                Some(Fault::Throttle) => Ok(error_answer("ThrottlingException", None)),
                Some(Fault::ServerError) => Ok(error_answer("InternalServerError", None)),
                Some(Fault::Conflict) => Ok(error_answer("TransactionConflictException", None)),
                Some(Fault::CancelTransaction { item, reason }) => {
                    let items = transaction_size(&request).max(1);
                    let reasons = (0..items)
                        .map(|i| {
                            let code = if i == usize::from(item) % items {
                                reason.code()
                            } else {
                                "None"
                            };
                            serde_json::json!({ "Code": code })
                        })
                        .collect();
                    Ok(error_answer("TransactionCanceledException", Some(reasons)))
                }
                Some(Fault::LoseAnswerAsTimeout) => {
                    send(request).await?;
                    Err(ConnectorError::timeout("the answer was lost".into()))
                }
                Some(Fault::LoseAnswerAs500) => {
                    send(request).await?;
                    Ok(error_answer("InternalServerError", None))
                }
                Some(Fault::Latency(millis)) => {
                    tokio::time::sleep(Duration::from_millis(millis.into())).await;
                    send(request).await
                }
                Some(Fault::CrashBefore) => {
                    plan.crashed.notify_one();
                    std::future::pending().await
                }
                Some(Fault::CrashAfter) => {
                    let _ = send(request).await;
                    plan.crashed.notify_one();
                    std::future::pending().await
                }
                Some(Fault::Pause { after: false }) => {
                    plan.paused.notify_one();
                    plan.resume.notified().await;
                    send(request).await
                }
                Some(Fault::LeaveUnprocessed) => Ok(unprocessed_answer(&request)),
                Some(Fault::Pause { after: true }) => {
                    let answer = send(request).await;
                    plan.paused.notify_one();
                    plan.resume.notified().await;
                    answer
                }
            }
        })
    }
}

/// How many items a `TransactWriteItems` request writes.
fn transaction_size(request: &HttpRequest) -> usize {
    request
        .body()
        .bytes()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .and_then(|body| body["TransactItems"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// A `BatchGetItem` answer that reads nothing and leaves every key asked for to later.
fn unprocessed_answer(request: &HttpRequest) -> HttpResponse {
    let asked = request
        .body()
        .bytes()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .map(|body| body["RequestItems"].clone())
        .unwrap_or_default();
    let body = serde_json::json!({ "Responses": {}, "UnprocessedKeys": asked });
    let mut response = HttpResponse::new(
        200.try_into().expect("a valid status"),
        SdkBody::from(body.to_string()),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
}

/// DynamoDB's answer for the error `code`, with cancellation reasons for a transaction.
fn error_answer(code: &str, reasons: Option<Vec<serde_json::Value>>) -> HttpResponse {
    let mut body = serde_json::json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
        "message": format!("injected {code}"),
    });
    if let Some(reasons) = reasons {
        body["CancellationReasons"] = serde_json::Value::Array(reasons);
    }
    let status = if code == "InternalServerError" {
        500
    } else {
        400
    };
    let mut response = HttpResponse::new(
        status.try_into().expect("a valid status"),
        SdkBody::from(body.to_string()),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
}
