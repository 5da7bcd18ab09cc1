//! Version 2: jobs whose index keys are missing or in an older layout get them rewritten,
//! so every search finds them again.

use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::BoxFuture;

use super::scan::{Pick, Scanned, migrate_jobs_page, scanned, table_item_count, text};
use super::{Migration, MigrationContext, Step};
use crate::model::{AsyncJob, CodeSet};
use crate::store::dynamo::errors::applied;
use crate::store::dynamo::item::Item;
use crate::store::dynamo::schema::{self, ID, META, SORT_KEY, TYPE_SORT_KEY, VERSION_ID};
use crate::store::dynamo::table::s;
use crate::store::{Position, StoreError};

pub struct RewriteIndexKeys;

impl Migration for RewriteIndexKeys {
    fn version(&self) -> u32 {
        2
    }

    fn name(&self) -> &'static str {
        "rewrite-index-keys"
    }

    fn description(&self) -> &'static str {
        "writes the search index keys of jobs that lack them or have an older layout"
    }

    /// Each item is migrated on its own, so any part of the table can go on its own.
    fn segmentable(&self) -> bool {
        true
    }

    fn estimate<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(table_item_count(context, context.jobs_table))
    }

    fn step<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Step, StoreError>> {
        Box::pin(migrate_jobs_page(
            context,
            cursor,
            stale_keys,
            |(job, keys)| rewrite(context, job, keys),
        ))
    }
}

struct Keys {
    sort_key: String,
    type_sort_key: Option<String>,
}

/// The job in `item` and the keys it should have, when they differ from what it has.
fn stale_keys(item: Item) -> Pick<(AsyncJob, Keys)> {
    let has = (
        text(&item, SORT_KEY).map(str::to_owned),
        text(&item, TYPE_SORT_KEY).map(str::to_owned),
    );
    let job = match scanned(item) {
        Scanned::Job(stored) => stored.job,
        Scanned::NotAJob => return Pick::Keep,
        Scanned::Unreadable => return Pick::Unreadable,
    };
    let position = Position::of(&job);
    let keys = Keys {
        type_sort_key: job
            .job_type
            .map(|_| schema::type_sort_key(job.status.code(), position.as_str())),
        sort_key: position.as_str().to_owned(),
    };
    let wanted = (Some(keys.sort_key.clone()), keys.type_sort_key.clone());
    if has == wanted {
        Pick::Keep
    } else {
        Pick::Change((job, keys))
    }
}

/// `false` when the job changed meanwhile; whoever changed it wrote current keys.
async fn rewrite(
    context: &MigrationContext<'_>,
    job: AsyncJob,
    keys: Keys,
) -> Result<bool, StoreError> {
    let update = match keys.type_sort_key {
        Some(_) => "SET #sort = :sort, #typeSort = :typeSort",
        None => "SET #sort = :sort REMOVE #typeSort",
    };
    let mut request = context
        .client
        .update_item()
        .table_name(context.jobs_table)
        .key(ID, s(job.id.as_str()))
        .update_expression(update)
        .condition_expression("#meta.#version = :version")
        .expression_attribute_names("#sort", SORT_KEY)
        .expression_attribute_names("#typeSort", TYPE_SORT_KEY)
        .expression_attribute_names("#meta", META)
        .expression_attribute_names("#version", VERSION_ID)
        .expression_attribute_values(":sort", s(keys.sort_key))
        .expression_attribute_values(":version", s(job.meta.version_id));
    if let Some(type_sort_key) = keys.type_sort_key {
        request =
            request.expression_attribute_values(":typeSort", AttributeValue::S(type_sort_key));
    }
    applied(request.send().await, |e| {
        e.is_conditional_check_failed_exception()
    })
}
