//! Job items: a job's FHIR JSON, flattened into attributes by `serde_dynamo`, plus the
//! attributes the indexes and TTL need.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::schema::{
    EXPIRES_AT, ID, RUN, SORT_KEY, STORE_ONLY_ATTRIBUTES, TYPE_SORT_KEY, WRITE_ID, type_sort_key,
};
use crate::model::{AsyncJob, CodeSet, StoredJob};
use crate::store::{Position, StoreError};

pub type Item = HashMap<String, AttributeValue>;

pub fn to_item(stored: &StoredJob) -> Result<Item, StoreError> {
    let job = &stored.job;
    let Value::Object(mut attributes) = serde_json::to_value(job).map_err(internal)? else {
        unreachable!("a resource serializes to a JSON object");
    };
    // Every item is an AsyncJob; storing the constant would only cost bytes.
    attributes.remove("resourceType");
    let (sort_key, type_sort_key) = index_keys(job);
    attributes.insert(SORT_KEY.into(), sort_key.into());
    if let Some(type_sort_key) = type_sort_key {
        attributes.insert(TYPE_SORT_KEY.into(), type_sort_key.into());
    }
    if let Some(expires_at) = stored.expires_at {
        attributes.insert(EXPIRES_AT.into(), expires_at.unix_timestamp().into());
    }
    if let Some(run) = &stored.run {
        attributes.insert(RUN.into(), serde_json::to_value(run).map_err(internal)?);
    }
    serde_dynamo::to_item(attributes).map_err(internal)
}

/// The keys the search indexes sort `job` by: its position in every search, and, for a
/// job with a type, its position within its status in the type's index.
pub fn index_keys(job: &AsyncJob) -> (String, Option<String>) {
    let position = Position::of(job);
    let type_sort_key = job
        .job_type
        .map(|_| type_sort_key(job.status.code(), position.as_str()));
    (position.as_str().to_owned(), type_sort_key)
}

/// The job in `item`, or `None` when it has expired (DynamoDB deletes expired items only
/// eventually).
pub fn from_item(item: Item, now: OffsetDateTime) -> Result<Option<StoredJob>, StoreError> {
    let stored = decode(item)?;
    Ok(stored.is_live_at(now).then_some(stored))
}

/// The job in `item`, expired or not. An item this release cannot read is a
/// [`StoreError::Failed`] that names it.
pub fn decode(item: Item) -> Result<StoredJob, StoreError> {
    let id = item
        .get(ID)
        .and_then(|id| id.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let unreadable = |error: &dyn std::fmt::Display| {
        StoreError::Failed(format!(
            "the item {id:?} is not a job this release can read: {error}"
        ))
    };
    let mut attributes: Map<String, Value> =
        serde_dynamo::from_item(item).map_err(|e| unreadable(&e))?;
    let expires_at = match attributes.get(EXPIRES_AT).and_then(Value::as_i64) {
        Some(seconds) => {
            Some(OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| unreadable(&e))?)
        }
        None => None,
    };
    let run = match attributes.remove(RUN) {
        Some(Value::Object(mut run)) => {
            // The mark of the write that put the item there is the store's, not the run's.
            run.remove(WRITE_ID);
            if run.is_empty() {
                None
            } else {
                let run = serde_json::from_value(Value::Object(run));
                Some(run.map_err(|e| unreadable(&e))?)
            }
        }
        Some(other) => Some(serde_json::from_value(other).map_err(|e| unreadable(&e))?),
        None => None,
    };
    for name in STORE_ONLY_ATTRIBUTES {
        attributes.remove(*name);
    }
    attributes.insert("resourceType".into(), "AsyncJob".into());
    let job: AsyncJob =
        serde_json::from_value(Value::Object(attributes)).map_err(|e| unreadable(&e))?;
    Ok(StoredJob {
        job,
        expires_at,
        run,
    })
}

fn internal(error: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(format!("a job could not be written as an item: {error}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::super::write_id::WriteId;
    use super::*;
    use crate::model::{Attempts, RunState};
    use crate::model::{JobStatus, JobType};

    fn stored() -> StoredJob {
        let mut job = AsyncJob::accepted(
            JobType::DataMigration,
            2,
            "http://localhost/$data-migration".into(),
            "2026-11-27T12:00:00.000Z",
        );
        job.extension = Some(vec![
            serde_json::from_value(json!({"url": "http://example.org/x", "valueDecimal": 1.5}))
                .unwrap(),
        ]);
        StoredJob {
            job,
            expires_at: Some(datetime!(2026-12-27 12:00:00 UTC)),
            run: Some(RunState {
                attempts: Attempts {
                    failures: 1,
                    ..Attempts::default()
                },
                plan: Some(vec![1, 2]),
                ..RunState::default()
            }),
        }
    }

    #[test]
    fn a_job_survives_the_trip_through_an_item() {
        let stored = stored();
        let item = to_item(&stored).unwrap();
        assert_eq!(item["status"].as_s().unwrap(), "accepted");
        assert_eq!(item["dataVersion"].as_n().unwrap(), "2");
        assert_eq!(item[EXPIRES_AT].as_n().unwrap(), "1798372800");
        let back = from_item(item, datetime!(2026-11-28 00:00:00 UTC)).unwrap();
        assert_eq!(back, Some(stored));
    }

    #[test]
    fn index_keys_sort_by_request_time_then_id() {
        let stored = stored();
        let item = to_item(&stored).unwrap();
        let position = format!("2026-11-27T12:00:00.000Z#{}", stored.job.id);
        assert_eq!(item[SORT_KEY].as_s().unwrap(), &position);
        assert_eq!(
            item[TYPE_SORT_KEY].as_s().unwrap(),
            &format!("accepted#{position}")
        );
    }

    /// A marked job reads back as it was written, with or without a run, and beside its
    /// store-only attributes carries only the resource's: what a release that predates the
    /// mark reads.
    #[test]
    fn a_job_marked_by_its_write_reads_as_it_was_written_by_every_release() {
        let write = WriteId::new();
        for stored in [stored(), StoredJob::new(stored().job)] {
            let item = write.mark_job(to_item(&stored).unwrap());
            assert!(write.landed_in(Some(&item)));
            let mut resource: Map<String, Value> = serde_dynamo::from_item(item.clone()).unwrap();
            for name in STORE_ONLY_ATTRIBUTES {
                resource.remove(*name);
            }
            resource.insert("resourceType".into(), "AsyncJob".into());
            let job: AsyncJob = serde_json::from_value(Value::Object(resource)).unwrap();
            assert_eq!(job, stored.job);
            assert_eq!(decode(item).unwrap(), stored);
        }
    }

    #[test]
    fn an_expired_job_reads_as_gone() {
        let mut stored = stored();
        stored.job.status = JobStatus::Completed;
        let item = to_item(&stored).unwrap();
        assert_eq!(
            from_item(item, datetime!(2026-12-27 12:00:00 UTC)).unwrap(),
            None
        );
    }
}
