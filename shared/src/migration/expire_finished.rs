//! Version 1: finished jobs written before retention existed get their TTL attribute, so
//! DynamoDB deletes them once the retention has passed.

use futures_util::future::BoxFuture;
use time::OffsetDateTime;

use super::scan::{Pick, migrate_jobs_page};
use super::{Migration, MigrationContext, Step};
use crate::model::{JobId, instant};
use crate::store::{JobItem, StoreError};

pub struct ExpireFinishedJobs;

impl Migration for ExpireFinishedJobs {
    fn version(&self) -> u32 {
        1
    }

    fn name(&self) -> &'static str {
        "expire-finished-jobs"
    }

    fn description(&self) -> &'static str {
        "gives finished jobs written before retention existed their expiry (TTL)"
    }

    /// Each item is migrated on its own, so any part of the table can go on its own.
    fn segmentable(&self) -> bool {
        true
    }

    fn estimate<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        context.jobs.item_count()
    }

    fn step<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Step, StoreError>> {
        Box::pin(migrate_jobs_page(
            context,
            cursor,
            |item| due_expiry(item, context),
            move |(id, at)| async move { context.jobs.set_expiry(&id, at).await },
        ))
    }
}

/// A finished job without a TTL expires a retention after it last changed.
fn due_expiry(item: JobItem, context: &MigrationContext<'_>) -> Pick<(JobId, OffsetDateTime)> {
    let stored = match item {
        JobItem::Job { stored, .. } if stored.expires_at.is_none() => stored,
        JobItem::Job { .. } | JobItem::NotAJob => return Pick::Keep,
        JobItem::Unreadable => return Pick::Unreadable,
    };
    match instant::parse(&stored.job.meta.last_updated) {
        Some(at) if stored.job.status.is_final() => {
            Pick::Change((stored.job.id, at + context.retention))
        }
        _ => Pick::Keep,
    }
}
