//! [`JobStore`] on DynamoDB.

use std::collections::HashMap;
use std::fmt::Debug;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, Select, TransactWriteItem, Update};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use futures_util::future::try_join_all;
use time::OffsetDateTime;

use super::record::{self, Item};
use super::table::{
    DATA_VERSION, EXPIRES_AT, ID, JOB_ID, META, SORT_KEY, STATUS, STATUS_INDEX, TYPE, TYPE_INDEX,
    TYPE_SORT_KEY, VERSION_ID,
};
use super::{
    Cancel, JobStore, Kickoff, Order, Position, SearchPage, SearchQuery, StoreError, StoredJob,
    page,
};
use crate::model::{AsyncJob, CodeSet, JobId, JobStatus, JobType, Meta, instant};

/// How often a write that lost a race is tried again before the caller is told to retry.
const MAX_WRITE_ATTEMPTS: usize = 8;

/// Bounded waits, so a handler answers `503` well before its Lambda times out.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

/// The roots AWS service endpoints chain to.
const AWS_ROOTS: &str = include_str!("aws-roots.pem");

/// HTTPS that trusts the AWS roots only, unless the endpoint is another HTTPS server: then the
/// system's roots. Loading and parsing the whole system store is most of a cold start.
fn http_client() -> SharedHttpClient {
    let custom_https_endpoint = ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .any(|url| url.starts_with("https://"));
    let trust_store = if custom_https_endpoint {
        TrustStore::default()
    } else {
        TrustStore::empty().with_pem_certificate(AWS_ROOTS)
    };
    let context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .expect("a trust store of PEM certificates makes a TLS context");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https()
}

/// The client the functions use: region, credentials and endpoint from the environment
/// (`AWS_ENDPOINT_URL_DYNAMODB` points it at another engine).
pub async fn dynamodb_client() -> Client {
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeouts())
        .retry_config(retries())
        .load()
        .await;
    Client::new(&shared)
}

/// A client for a local engine at `endpoint`, with placeholder credentials.
pub fn local_client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "asyncjob"))
        .endpoint_url(endpoint)
        .timeout_config(timeouts())
        .retry_config(retries())
        .build();
    Client::from_conf(config)
}

pub(crate) fn store_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let passing = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
            )
        ),
        _ => false,
    };
    let detail = DisplayErrorContext(&error).to_string();
    if passing {
        StoreError::Unavailable(detail)
    } else {
        StoreError::Internal(detail)
    }
}

/// Whether a conditional write landed: `Ok(false)` when `lost_race` says its condition
/// failed because someone wrote first; nothing was written then.
pub(crate) fn landed<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    lost_race: impl Fn(&E) -> bool,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(error) if error.as_service_error().is_some_and(&lost_race) => Ok(false),
        Err(error) => Err(store_error(error)),
    }
}

fn contention() -> StoreError {
    StoreError::Unavailable("the job changed under every attempt to write it".into())
}

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention: Duration,
}

impl DynamoStore {
    /// `retention` is how long finished jobs stay readable.
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            retention,
        }
    }

    /// The job a bookkeeping item points at.
    async fn pointer(&self, key: &str) -> Result<Option<JobId>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, s(key))
            .projection_expression("#job")
            .expression_attribute_names("#job", JOB_ID)
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(output.item.and_then(|item| {
            item.get(JOB_ID)?
                .as_s()
                .ok()
                .and_then(|id| JobId::parse(id))
        }))
    }

    async fn job_at(&self, pointer: Option<&JobId>) -> Result<Option<AsyncJob>, StoreError> {
        Ok(match pointer {
            Some(id) => self.get(id).await?.map(|stored| stored.job),
            None => None,
        })
    }

    /// A Put that moves a bookkeeping item from `expected` to `job`; fails if someone moved
    /// it first.
    fn move_pointer(&self, key: &str, expected: Option<&JobId>, job: &JobId) -> Put {
        let builder = Put::builder()
            .table_name(&self.table)
            .item(ID, s(key))
            .item(JOB_ID, s(job.as_str()));
        match expected {
            None => builder
                .condition_expression("attribute_not_exists(#id)")
                .expression_attribute_names("#id", ID),
            Some(expected) => builder
                .condition_expression("#job = :expected")
                .expression_attribute_names("#job", JOB_ID)
                .expression_attribute_values(":expected", s(expected.as_str())),
        }
        .build()
        .expect("table and item are set")
    }

    /// Writes the job and points both bookkeeping items at it, all or nothing.
    async fn create_migration(
        &self,
        job: &AsyncJob,
        active: (&str, Option<&JobId>),
        version: (&str, Option<&JobId>),
    ) -> Result<bool, StoreError> {
        let item = record::to_item(&StoredJob::new(job.clone()))?;
        let put_job = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", ID)
            .build()
            .expect("table and item are set");
        let puts = [
            put_job,
            self.move_pointer(active.0, active.1, &job.id),
            self.move_pointer(version.0, version.1, &job.id),
        ];
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(
                puts.into_iter()
                    .map(|put| TransactWriteItem::builder().put(put).build())
                    .collect(),
            ))
            .send()
            .await;
        landed(result, |e| e.is_transaction_canceled_exception())
    }

    /// Writes `next` over the job if it is still at `expected_version`; `false` when someone
    /// wrote it first (a cancel, another worker), and nothing was written.
    pub async fn save(&self, expected_version: &str, next: &StoredJob) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record::to_item(next)?))
            .condition_expression("#meta.#version = :expected")
            .expression_attribute_names("#meta", META)
            .expression_attribute_names("#version", VERSION_ID)
            .expression_attribute_values(":expected", s(expected_version))
            .send()
            .await;
        landed(result, |e| e.is_conditional_check_failed_exception())
    }

    /// [`save`](Self::save), and in the same transaction moves the stored data version up to
    /// `data_version`. `false` when the job changed or the data is at `data_version` or beyond
    /// already; nothing was written then.
    pub async fn save_advancing(
        &self,
        expected_version: &str,
        next: &StoredJob,
        data_version: u32,
    ) -> Result<bool, StoreError> {
        let put_job = Put::builder()
            .table_name(&self.table)
            .set_item(Some(record::to_item(next)?))
            .condition_expression("#meta.#version = :expected")
            .expression_attribute_names("#meta", META)
            .expression_attribute_names("#version", VERSION_ID)
            .expression_attribute_values(":expected", s(expected_version))
            .build()
            .expect("table and item are set");
        let advance = Update::builder()
            .table_name(&self.table)
            .key(ID, s(DATA_VERSION_KEY))
            .update_expression("SET #version = :version")
            .condition_expression("attribute_not_exists(#version) OR #version < :version")
            .expression_attribute_names("#version", DATA_VERSION)
            .expression_attribute_values(":version", AttributeValue::N(data_version.to_string()))
            .build()
            .expect("table, key and expression are set");
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_job).build())
            .transact_items(TransactWriteItem::builder().update(advance).build())
            .send()
            .await;
        landed(result, |e| e.is_transaction_canceled_exception())
    }

    /// The data version the stored data has reached; 0 before any migration.
    pub async fn data_version(&self) -> Result<u32, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, s(DATA_VERSION_KEY))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(output
            .item
            .as_ref()
            .and_then(|item| item.get(DATA_VERSION)?.as_n().ok()?.parse().ok())
            .unwrap_or(0))
    }

    /// Up to `limit` accepted jobs, oldest first: what the sweeper looks at. One Query on
    /// the status index.
    pub async fn accepted_jobs(&self, limit: usize) -> Result<Vec<StoredJob>, StoreError> {
        let stream = Stream::Status(JobStatus::Accepted);
        let condition = stream.key_condition(Order::OldestFirst, None);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(stream.index())
            .key_condition_expression(condition.expression)
            .set_expression_attribute_names(Some(condition.names))
            .set_expression_attribute_values(Some(condition.values))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(store_error)?;
        let now = instant::now();
        let mut jobs = Vec::new();
        for item in output.items.unwrap_or_default() {
            jobs.extend(record::from_item(item, now)?);
        }
        Ok(jobs)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// How long finished jobs stay readable.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Up to `need` jobs of one stream that come after `after` in `order`.
    async fn fetch(
        &self,
        stream: &Stream,
        order: Order,
        after: Option<&Position>,
        need: usize,
        now: OffsetDateTime,
    ) -> Result<Vec<AsyncJob>, StoreError> {
        let condition = stream.key_condition(order, after);
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(stream.index())
                .key_condition_expression(condition.expression)
                .set_expression_attribute_names(Some(condition.names.clone()))
                .set_expression_attribute_values(Some(condition.values.clone()))
                .scan_index_forward(order == Order::OldestFirst)
                .limit(i32::try_from(need - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in output.items.unwrap_or_default() {
                let Some(stored) = record::from_item(item, now)? else {
                    continue;
                };
                // A BETWEEN range includes the position itself.
                if after.is_some_and(|after| *after == Position::of(&stored.job)) {
                    continue;
                }
                found.push(stored.job);
            }
            start = output.last_evaluated_key;
            if found.len() >= need || start.is_none() {
                return Ok(found);
            }
        }
    }

    /// How many unexpired jobs one stream holds.
    async fn count(&self, stream: &Stream, now: OffsetDateTime) -> Result<u64, StoreError> {
        let condition = stream.key_condition(Order::NewestFirst, None);
        let mut names = condition.names.clone();
        names.insert("#expires".into(), EXPIRES_AT.into());
        let mut values = condition.values.clone();
        values.insert(
            ":now".into(),
            AttributeValue::N(now.unix_timestamp().to_string()),
        );
        let mut total = 0;
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(stream.index())
                .key_condition_expression(condition.expression)
                .filter_expression("attribute_not_exists(#expires) OR #expires > :now")
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            total += u64::try_from(output.count).unwrap_or(0);
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(total);
            }
        }
    }

    async fn search_streams(
        &self,
        query: &SearchQuery,
        now: OffsetDateTime,
    ) -> Result<SearchPage, StoreError> {
        let streams = Stream::covering(query);
        let need = query.count + 1;
        let pages = try_join_all(
            streams
                .iter()
                .map(|stream| self.fetch(stream, query.order, query.after.as_ref(), need, now)),
        )
        .await?;
        let total = if query.total {
            let counts = try_join_all(streams.iter().map(|stream| self.count(stream, now))).await?;
            Some(counts.into_iter().sum())
        } else {
            None
        };
        Ok(page(pages.into_iter().flatten().collect(), query, total))
    }

    /// `_id` searches read each job by key, then filter like the indexes would.
    async fn search_ids(
        &self,
        ids: &[JobId],
        query: &SearchQuery,
    ) -> Result<SearchPage, StoreError> {
        let mut unique = ids.to_vec();
        unique.sort();
        unique.dedup();
        let found = try_join_all(unique.iter().map(|id| self.get(id))).await?;
        let matching: Vec<AsyncJob> = found
            .into_iter()
            .flatten()
            .map(|stored| stored.job)
            .filter(|job| query.matches(job))
            .collect();
        let total = query.total.then_some(matching.len() as u64);
        let after_cursor = matching
            .into_iter()
            .filter(|job| query.comes_after_cursor(job))
            .collect();
        Ok(page(after_cursor, query, total))
    }
}

/// One key range of one index, already in request-time order.
#[derive(Clone, Copy, Debug)]
enum Stream {
    Status(JobStatus),
    TypeAndStatus(JobType, JobStatus),
}

struct KeyCondition {
    expression: &'static str,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Stream {
    /// The ranges whose union is exactly the query's matches.
    fn covering(query: &SearchQuery) -> Vec<Self> {
        let statuses = query.statuses.as_deref().unwrap_or(JobStatus::ALL);
        match &query.types {
            None => statuses
                .iter()
                .map(|&status| Self::Status(status))
                .collect(),
            Some(types) => types
                .iter()
                .flat_map(|&job_type| {
                    statuses
                        .iter()
                        .map(move |&status| Self::TypeAndStatus(job_type, status))
                })
                .collect(),
        }
    }

    fn index(self) -> &'static str {
        match self {
            Self::Status(_) => STATUS_INDEX,
            Self::TypeAndStatus(..) => TYPE_INDEX,
        }
    }

    fn key_condition(self, order: Order, after: Option<&Position>) -> KeyCondition {
        match self {
            Self::Status(status) => {
                let mut names = HashMap::from([("#pk".to_owned(), STATUS.to_owned())]);
                let mut values = HashMap::from([(":pk".to_owned(), s(status.code()))]);
                let expression = match (after, order) {
                    (None, _) => "#pk = :pk",
                    (Some(_), Order::NewestFirst) => "#pk = :pk AND #sk < :after",
                    (Some(_), Order::OldestFirst) => "#pk = :pk AND #sk > :after",
                };
                // DynamoDB refuses names and values an expression does not use.
                if let Some(after) = after {
                    names.insert("#sk".into(), SORT_KEY.into());
                    values.insert(":after".into(), s(after.as_str()));
                }
                KeyCondition {
                    expression,
                    names,
                    values,
                }
            }
            Self::TypeAndStatus(job_type, status) => {
                let status = status.code();
                // `$` sorts right after `#`, so `{status}$` bounds every key of the status.
                let (low, high) = match (after, order) {
                    (None, _) => (format!("{status}#"), format!("{status}$")),
                    (Some(after), Order::NewestFirst) => (
                        format!("{status}#"),
                        record::type_sort_key(status, after.as_str()),
                    ),
                    (Some(after), Order::OldestFirst) => (
                        record::type_sort_key(status, after.as_str()),
                        format!("{status}$"),
                    ),
                };
                KeyCondition {
                    expression: "#pk = :pk AND #sk BETWEEN :low AND :high",
                    names: HashMap::from([
                        ("#pk".to_owned(), TYPE.to_owned()),
                        ("#sk".to_owned(), TYPE_SORT_KEY.to_owned()),
                    ]),
                    values: HashMap::from([
                        (":pk".to_owned(), s(job_type.code())),
                        (":low".to_owned(), s(low)),
                        (":high".to_owned(), s(high)),
                    ]),
                }
            }
        }
    }
}

/// The bookkeeping item that holds the stored data version.
const DATA_VERSION_KEY: &str = "~data-version";

fn active_key(job_type: JobType) -> String {
    format!("~active~{job_type}")
}

fn version_key(job_type: JobType, data_version: u32) -> String {
    format!("~version~{job_type}~{data_version}")
}

impl JobStore for DynamoStore {
    async fn get(&self, id: &JobId) -> Result<Option<StoredJob>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ID, s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        match output.item {
            Some(item) => record::from_item(item, instant::now()),
            None => Ok(None),
        }
    }

    async fn start_migration(&self, job: AsyncJob) -> Result<Kickoff, StoreError> {
        let (Some(job_type), Some(data_version)) = (job.job_type, job.data_version) else {
            return Err(StoreError::Internal(
                "a data migration needs a type and a data version".into(),
            ));
        };
        let active_key = active_key(job_type);
        let version_key = version_key(job_type, data_version);
        for _ in 0..MAX_WRITE_ATTEMPTS {
            // The active pointer names the last migration started; it holds the slot only
            // while that job is accepted.
            let active = self.pointer(&active_key).await?;
            if let Some(running) = self.job_at(active.as_ref()).await?
                && running.status == JobStatus::Accepted
            {
                return Ok(if running.data_version == job.data_version {
                    Kickoff::Existing(running)
                } else {
                    Kickoff::Busy(running)
                });
            }
            let previous = self.pointer(&version_key).await?;
            if let Some(existing) = self.job_at(previous.as_ref()).await?
                && matches!(existing.status, JobStatus::Accepted | JobStatus::Completed)
            {
                return Ok(Kickoff::Existing(existing));
            }
            let created = self
                .create_migration(
                    &job,
                    (&active_key, active.as_ref()),
                    (&version_key, previous.as_ref()),
                )
                .await?;
            if created {
                return Ok(Kickoff::Created(job));
            }
            // Another kick-off got there first: look again at what it wrote.
        }
        Err(contention())
    }

    async fn cancel(&self, id: &JobId) -> Result<Cancel, StoreError> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let Some(current) = self.get(id).await? else {
                return Ok(Cancel::NotFound);
            };
            match current.job.status {
                JobStatus::Cancelled => return Ok(Cancel::NotFound),
                JobStatus::Completed | JobStatus::Error => {
                    return Ok(Cancel::Finished(current.job));
                }
                JobStatus::Accepted => {}
            }
            let now = instant::now();
            let mut next = current.clone();
            next.job.status = JobStatus::Cancelled;
            next.job.meta = Meta {
                version_id: current.job.next_version_id(),
                last_updated: instant::format(now),
            };
            next.expires_at = Some(now + self.retention);
            if self.save(&current.job.meta.version_id, &next).await? {
                return Ok(Cancel::Cancelled(next.job));
            }
        }
        Err(contention())
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        match &query.ids {
            Some(ids) => self.search_ids(ids, query).await,
            None => self.search_streams(query, instant::now()).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aws_roots_are_five_certificates() {
        assert_eq!(AWS_ROOTS.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        let store = TrustStore::empty().with_pem_certificate(AWS_ROOTS);
        assert!(
            TlsContext::builder()
                .with_trust_store(store)
                .build()
                .is_ok()
        );
    }
}
