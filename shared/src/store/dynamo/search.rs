//! Searches as Queries: which key ranges of which index cover a search, reading `count + 1`
//! jobs from each, merging them into a page, and counting matches for `_total`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use futures_util::future::{join_all, try_join_all};
use time::OffsetDateTime;

use super::errors::{applied, store_error};
use super::item::{self, Item};
use super::schema::{
    EXPIRES_AT, ID, SORT_KEY, STATUS, STATUS_INDEX, TYPE, TYPE_INDEX, TYPE_SORT_KEY, type_sort_key,
};
use super::table::{Table, s};
use crate::model::{AsyncJob, CodeSet, JobId, JobStatus, JobType, StoredJob};
use crate::store::{Order, Position, SearchPage, SearchQuery, StoreError, Total};

/// The live job in an item a Query returned; `None` for an expired one, and for one this
/// release cannot read, which is logged with its id and skipped: one bad item never fails a
/// search page or stops the sweeper.
fn readable(found: Item, now: OffsetDateTime) -> Option<StoredJob> {
    item::from_item(found, now)
        .inspect_err(|error| tracing::warn!(%error, "skipped an item"))
        .ok()
        .flatten()
}

/// One key range of one index, already in request-time order.
#[derive(Clone, Copy, Debug)]
enum KeyRange {
    Status(JobStatus),
    TypeAndStatus(JobType, JobStatus),
}

struct KeyCondition {
    expression: &'static str,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl KeyCondition {
    /// The same condition with `#expires` and `:now` defined, for a filter on expiry.
    fn with_expiry(mut self, now: OffsetDateTime) -> Self {
        self.names.insert("#expires".into(), EXPIRES_AT.into());
        self.values.insert(
            ":now".into(),
            AttributeValue::N(now.unix_timestamp().to_string()),
        );
        self
    }
}

impl KeyRange {
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
                    (Some(after), Order::NewestFirst) => {
                        (format!("{status}#"), type_sort_key(status, after.as_str()))
                    }
                    (Some(after), Order::OldestFirst) => {
                        (type_sort_key(status, after.as_str()), format!("{status}$"))
                    }
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

impl Table {
    /// A Query of `range` under `condition`, the rest left to the caller.
    fn query_range(&self, range: &KeyRange, condition: &KeyCondition) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.name)
            .index_name(range.index())
            .key_condition_expression(condition.expression)
            .set_expression_attribute_names(Some(condition.names.clone()))
            .set_expression_attribute_values(Some(condition.values.clone()))
    }

    /// One page of `query`; an asked-for total is counted only until `count_budget` has
    /// passed, so a search never runs past its function's time.
    pub async fn search(
        &self,
        query: &SearchQuery,
        now: OffsetDateTime,
        count_budget: Duration,
    ) -> Result<SearchPage, StoreError> {
        match &query.ids {
            Some(ids) => self.search_ids(ids, query, now).await,
            None => self.search_ranges(query, now, count_budget).await,
        }
    }

    /// Up to `limit` accepted jobs, oldest first. One Query on the status index.
    pub async fn accepted_jobs(
        &self,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Vec<StoredJob>, StoreError> {
        let range = KeyRange::Status(JobStatus::Accepted);
        let condition = range.key_condition(Order::OldestFirst, None);
        let output = self
            .query_range(&range, &condition)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(store_error)?;
        let mut jobs = Vec::new();
        for found in output.items.unwrap_or_default() {
            jobs.extend(readable(found, now));
        }
        Ok(jobs)
    }

    /// Deletes expired jobs of each final status from the oldest: one Query page of at most
    /// `limit` items a status, then a conditional delete of each expired one (a job that is
    /// not expired after all stays).
    pub async fn reap_expired(&self, limit: usize, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut reaped = 0;
        for status in JobStatus::ALL.iter().filter(|status| status.is_final()) {
            let range = KeyRange::Status(*status);
            let condition = range
                .key_condition(Order::OldestFirst, None)
                .with_expiry(now);
            let output = self
                .query_range(&range, &condition)
                .filter_expression("#expires <= :now")
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(store_error)?;
            for expired in output.items.unwrap_or_default() {
                let Some(id) = expired.get(ID).cloned() else {
                    continue;
                };
                let result = self
                    .client
                    .delete_item()
                    .table_name(&self.name)
                    .key(ID, id)
                    .condition_expression("#expires <= :now")
                    .expression_attribute_names("#expires", EXPIRES_AT)
                    .expression_attribute_values(":now", condition.values[":now"].clone())
                    .send()
                    .await;
                reaped += u64::from(applied(result, |e| {
                    e.is_conditional_check_failed_exception()
                })?);
            }
        }
        Ok(reaped)
    }

    async fn search_ranges(
        &self,
        query: &SearchQuery,
        now: OffsetDateTime,
        count_budget: Duration,
    ) -> Result<SearchPage, StoreError> {
        let ranges = KeyRange::covering(query);
        let need = query.count + 1;
        let pages = try_join_all(
            ranges
                .iter()
                .map(|range| self.fetch(range, query.order, query.after.as_ref(), need, now)),
        )
        .await?;
        let total = if query.total {
            let counting = try_join_all(ranges.iter().map(|range| self.count(range, now)));
            match tokio::time::timeout(count_budget, counting).await {
                Ok(counts) => Total::Counted(counts?.into_iter().sum()),
                Err(_) => Total::OverBudget,
            }
        } else {
            Total::NotAsked
        };
        Ok(query.page(pages.into_iter().flatten().collect(), total))
    }

    /// `_id` searches read each job by key, then filter like the indexes would.
    async fn search_ids(
        &self,
        ids: &[JobId],
        query: &SearchQuery,
        now: OffsetDateTime,
    ) -> Result<SearchPage, StoreError> {
        let mut unique = ids.to_vec();
        unique.sort();
        unique.dedup();
        let mut found = Vec::new();
        for read in join_all(unique.iter().map(|id| self.get(id, now))).await {
            match read {
                Ok(stored) => found.extend(stored.map(|stored| stored.job)),
                // One unreadable job does not fail the page; its error names it.
                Err(StoreError::Failed(reason)) => tracing::warn!(%reason, "skipped an item"),
                Err(error) => return Err(error),
            }
        }
        Ok(query.page_of_found(found))
    }

    /// Up to `need` jobs of one key range that come after `after` in `order`.
    async fn fetch(
        &self,
        range: &KeyRange,
        order: Order,
        after: Option<&Position>,
        need: usize,
        now: OffsetDateTime,
    ) -> Result<Vec<AsyncJob>, StoreError> {
        let condition = range.key_condition(order, after);
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .query_range(range, &condition)
                .scan_index_forward(order == Order::OldestFirst)
                .limit(i32::try_from(need - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in output.items.unwrap_or_default() {
                let Some(stored) = readable(item, now) else {
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

    /// How many unexpired jobs one key range holds.
    async fn count(&self, range: &KeyRange, now: OffsetDateTime) -> Result<u64, StoreError> {
        let condition = range
            .key_condition(Order::NewestFirst, None)
            .with_expiry(now);
        let mut total = 0;
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .query_range(range, &condition)
                .filter_expression("attribute_not_exists(#expires) OR #expires > :now")
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
}
