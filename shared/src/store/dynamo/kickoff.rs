//! Kick-off bookkeeping: items that make kick-offs idempotent and one-at-a-time even under
//! concurrent requests. The active item names the last job of a type started, the version
//! item the last job started for a data version; a new job is written together with both,
//! in one transaction conditional on what they named when it was read. An event kick-off
//! also writes a delivery item, in the same transaction, naming the job its delivery
//! started: a redelivery finds it and starts nothing.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use time::OffsetDateTime;

use super::errors::{Cancellation, applied, contention, store_error, transaction};
use super::item;
use super::schema::{EXPIRES_AT, ID, JOB_ID, active_key, delivery_key, version_key};
use super::table::{Table, s};
use crate::model::{AsyncJob, JobId, JobStatus, JobType, StoredJob};
use crate::store::{
    DELIVERY_MEMORY, Delivery, Kickoff, StoreError, Transient, answer_without_writing,
};

/// How often a kick-off that lost a race looks again before the caller is told to retry.
const MAX_ATTEMPTS: usize = 8;

/// What a bookkeeping item names now, and the job it names, if that still exists.
struct Pointer {
    key: String,
    names: Option<JobId>,
    job: Option<AsyncJob>,
}

impl Table {
    pub async fn start_migration(
        &self,
        job: AsyncJob,
        delivery: Option<&Delivery>,
        now: OffsetDateTime,
    ) -> Result<Kickoff, StoreError> {
        let (Some(job_type), Some(data_version)) = (job.job_type, job.data_version) else {
            return Err(StoreError::Failed(
                "a data migration needs a type and a data version".into(),
            ));
        };
        for _ in 0..MAX_ATTEMPTS {
            if let Some(delivery) = delivery {
                let delivered = self.pointer(delivery_key(delivery), now).await?;
                if let Some(started) = delivered.names {
                    return Ok(delivered
                        .job
                        .map_or(Kickoff::Delivered(started), Kickoff::Existing));
                }
            }
            let active = self.pointer(active_key(job_type), now).await?;
            let version = self
                .pointer(version_key(job_type, data_version), now)
                .await?;
            match answer_without_writing(active.job.clone(), version.job.clone()) {
                Some(Kickoff::Existing(existing)) => match delivery {
                    Some(delivery) if !self.remember(delivery, &existing.id, now).await? => {
                        continue;
                    }
                    _ => return Ok(Kickoff::Existing(existing)),
                },
                Some(refused) => return Ok(refused),
                None => {}
            }
            let writes = [
                Some(self.put_new_job(&job)?),
                Some(self.move_pointer(&active, &job.id)),
                Some(self.move_pointer(&version, &job.id)),
                delivery.map(|delivery| self.delivery_record(delivery, &job.id, now)),
            ];
            if self.create(writes.into_iter().flatten()).await? {
                return Ok(Kickoff::Created(job));
            }
            // Another kick-off got there first: look again at what it wrote.
        }
        Err(contention())
    }

    /// The accepted job of `job_type` the active item names, if it is still accepted.
    pub async fn running(
        &self,
        job_type: JobType,
        now: OffsetDateTime,
    ) -> Result<Option<AsyncJob>, StoreError> {
        let active = self.pointer(active_key(job_type), now).await?;
        Ok(active.job.filter(|job| job.status == JobStatus::Accepted))
    }

    async fn pointer(&self, key: String, now: OffsetDateTime) -> Result<Pointer, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(ID, s(&key))
            .projection_expression("#job")
            .expression_attribute_names("#job", JOB_ID)
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let names = output.item.and_then(|item| {
            item.get(JOB_ID)?
                .as_s()
                .ok()
                .and_then(|id| JobId::parse(id))
        });
        let job = match &names {
            Some(id) => self.get(id, now).await?.map(|stored| stored.job),
            None => None,
        };
        Ok(Pointer { key, names, job })
    }

    /// A Put that moves a bookkeeping item from what it named when read to `job`; it fails
    /// if someone moved it first.
    fn move_pointer(&self, pointer: &Pointer, job: &JobId) -> Put {
        let builder = Put::builder()
            .table_name(&self.name)
            .item(ID, s(&pointer.key))
            .item(JOB_ID, s(job.as_str()));
        match &pointer.names {
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

    fn put_new_job(&self, job: &AsyncJob) -> Result<Put, StoreError> {
        Ok(Put::builder()
            .table_name(&self.name)
            .set_item(Some(item::to_item(&StoredJob::new(job.clone()))?))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", ID)
            .build()
            .expect("table and item are set"))
    }

    /// A Put of the item that remembers `delivery` started `job`, unless it is remembered
    /// already; DynamoDB's TTL deletes it once redeliveries can no longer come.
    fn delivery_record(&self, delivery: &Delivery, job: &JobId, now: OffsetDateTime) -> Put {
        let forget_at = (now + DELIVERY_MEMORY).unix_timestamp();
        Put::builder()
            .table_name(&self.name)
            .item(ID, s(delivery_key(delivery)))
            .item(JOB_ID, s(job.as_str()))
            .item(EXPIRES_AT, AttributeValue::N(forget_at.to_string()))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", ID)
            .build()
            .expect("table and item are set")
    }

    /// Remembers that `delivery` is answered by the existing `job`; `false` when another
    /// delivery of it was remembered first.
    async fn remember(
        &self,
        delivery: &Delivery,
        job: &JobId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let result = self
            .put_alone(self.delivery_record(delivery, job, now))
            .await;
        applied(result, |e| e.is_conditional_check_failed_exception())
    }

    /// Writes the new job and its bookkeeping, all or nothing.
    async fn create(&self, writes: impl Iterator<Item = Put>) -> Result<bool, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(
                writes
                    .map(|put| TransactWriteItem::builder().put(put).build())
                    .collect(),
            ))
            .send()
            .await;
        match transaction(result) {
            Ok(()) => Ok(true),
            // Another kick-off moved a bookkeeping item first, or wrote with ours at once.
            Err(
                Cancellation::ConditionFailed(..)
                | Cancellation::Failed(StoreError::Unavailable {
                    kind: Transient::Conflict,
                    ..
                }),
            ) => Ok(false),
            Err(Cancellation::Failed(error)) => Err(error),
        }
    }
}
