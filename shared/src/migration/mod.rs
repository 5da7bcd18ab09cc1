//! Data migrations as code: an ordered registry of resumable, page-at-a-time steps.
//!
//! A data-migration job applies, in order, every registered migration above the stored
//! data version up to the version it asks for. Each [`Migration::step`] handles one page and
//! returns a cursor for the next, so a run can stop at any page boundary and resume there.
//! Steps must be idempotent: after a crash, the page in flight is done again.

mod expire_finished;
mod index_keys;

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use crate::store::dynamo::errors::store_error;
use crate::store::dynamo::item::Item;
use crate::store::{DynamoStore, RunStore, StoreError};

pub use expire_finished::ExpireFinishedJobs;
pub use index_keys::RewriteIndexKeys;

/// What a step may use.
pub struct MigrationContext<'a> {
    pub client: &'a Client,
    /// The service's own table.
    pub jobs_table: &'a str,
    /// How long finished jobs stay readable.
    pub retention: Duration,
    /// How many items a step reads at most.
    pub page_size: usize,
}

impl<'a> MigrationContext<'a> {
    /// Migrations over the table of `store`, reached through its client.
    pub fn on(store: &'a DynamoStore, page_size: usize) -> Self {
        Self {
            client: store.client(),
            jobs_table: store.table_name(),
            retention: store.retention(),
            page_size,
        }
    }
}

/// What one step did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub items_scanned: u64,
    pub items_changed: u64,
    /// Where the next step starts; `None` when the migration is done.
    pub next: Option<String>,
}

pub trait Migration: Send + Sync {
    /// The data version the data is at once this migration has run; at least 1.
    fn version(&self) -> u32;

    fn name(&self) -> &'static str;

    /// Migrates the page that starts at `cursor` (`None`: the first page).
    fn step<'a>(
        &'a self,
        context: &'a MigrationContext<'a>,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Step, StoreError>>;
}

/// The migrations, in version order.
pub struct Registry {
    migrations: Vec<Box<dyn Migration>>,
}

impl Registry {
    /// Refuses versions that are not strictly increasing from 1 up.
    pub fn new(migrations: Vec<Box<dyn Migration>>) -> Result<Self, String> {
        let mut previous = 0;
        for migration in &migrations {
            if migration.version() <= previous {
                return Err(format!(
                    "migration {:?} has version {}, which does not follow {previous}",
                    migration.name(),
                    migration.version()
                ));
            }
            previous = migration.version();
        }
        Ok(Self { migrations })
    }

    /// The service's own migrations. Add yours here, with the next version number.
    pub fn built_in() -> &'static Self {
        static BUILT_IN: LazyLock<Registry> = LazyLock::new(|| {
            Registry::new(vec![
                Box::new(ExpireFinishedJobs),
                Box::new(RewriteIndexKeys),
            ])
            .expect("the built-in migrations are in version order")
        });
        &BUILT_IN
    }

    /// The newest data version a migration can bring the data to (0 with no migrations).
    pub fn newest(&self) -> u32 {
        self.migrations.last().map_or(0, |m| m.version())
    }

    pub fn get(&self, version: u32) -> Option<&dyn Migration> {
        self.migrations
            .iter()
            .find(|m| m.version() == version)
            .map(Box::as_ref)
    }

    /// The versions that take data at `stored` to `target`: every one above `stored` up to
    /// `target`, in order; none when the data is there already.
    pub fn plan(&self, stored: u32, target: u32) -> Vec<u32> {
        self.migrations
            .iter()
            .map(|m| m.version())
            .filter(|version| *version > stored && *version <= target)
            .collect()
    }
}

/// Reads one page of `table` in key order, resuming after `cursor`. The cursor is the last
/// key read, as JSON, so it works for any table's key schema.
pub async fn scan_page(
    context: &MigrationContext<'_>,
    table: &str,
    cursor: Option<&str>,
) -> Result<(Vec<Item>, Option<String>), StoreError> {
    let start = cursor.map(decode_cursor).transpose()?;
    let output = context
        .client
        .scan()
        .table_name(table)
        .limit(i32::try_from(context.page_size).unwrap_or(i32::MAX))
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(store_error)?;
    let next = output
        .last_evaluated_key
        .map(|key| encode_cursor(&key))
        .transpose()?;
    Ok((output.items.unwrap_or_default(), next))
}

fn encode_cursor(key: &Item) -> Result<String, StoreError> {
    let value: Value = serde_dynamo::from_item(key.clone())
        .map_err(|e| StoreError::Internal(format!("migration cursor: {e}")))?;
    Ok(value.to_string())
}

fn decode_cursor(cursor: &str) -> Result<Item, StoreError> {
    let value: Value = serde_json::from_str(cursor)
        .map_err(|e| StoreError::Internal(format!("migration cursor: {e}")))?;
    serde_dynamo::to_item(value).map_err(|e| StoreError::Internal(format!("migration cursor: {e}")))
}

/// Writes in flight at once within a page.
const CONCURRENCY: usize = 16;

/// One page of the jobs table: scans it from `cursor`, picks the items to change, writes
/// them (several at once), and counts the writes that landed.
async fn migrate_jobs_page<T, F>(
    context: &MigrationContext<'_>,
    cursor: Option<&str>,
    pick: impl FnMut(Item) -> Option<T>,
    write: impl Fn(T) -> F,
) -> Result<Step, StoreError>
where
    F: Future<Output = Result<bool, StoreError>>,
{
    let (items, next) = scan_page(context, context.jobs_table, cursor).await?;
    let items_scanned = items.len() as u64;
    let picked: Vec<T> = items.into_iter().filter_map(pick).collect();
    let items_changed = stream::iter(picked)
        .map(write)
        .buffer_unordered(CONCURRENCY)
        .try_fold(
            0,
            |count, changed| async move { Ok(count + u64::from(changed)) },
        )
        .await?;
    Ok(Step {
        items_scanned,
        items_changed,
        next,
    })
}

/// A string attribute of an item, if it has one.
pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
}

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(u32);

    impl Migration for Named {
        fn version(&self) -> u32 {
            self.0
        }

        fn name(&self) -> &'static str {
            "named"
        }

        fn step<'a>(
            &'a self,
            _: &'a MigrationContext<'a>,
            _: Option<&'a str>,
        ) -> BoxFuture<'a, Result<Step, StoreError>> {
            Box::pin(async { Ok(Step::default()) })
        }
    }

    fn registry(versions: &[u32]) -> Result<Registry, String> {
        Registry::new(
            versions
                .iter()
                .map(|v| Box::new(Named(*v)) as Box<dyn Migration>)
                .collect(),
        )
    }

    #[test]
    fn versions_must_increase() {
        assert!(registry(&[1, 2, 5]).is_ok());
        assert!(registry(&[0]).is_err());
        assert!(registry(&[1, 1]).is_err());
        assert!(registry(&[2, 1]).is_err());
    }

    #[test]
    fn a_plan_covers_what_lies_between_the_stored_and_the_asked_version() {
        let registry = registry(&[1, 2, 5]).unwrap();
        assert_eq!(registry.plan(0, 5), vec![1, 2, 5]);
        assert_eq!(registry.plan(1, 2), vec![2]);
        assert_eq!(registry.plan(2, 4), Vec::<u32>::new());
        assert_eq!(registry.plan(5, 2), Vec::<u32>::new());
        assert_eq!(registry.newest(), 5);
    }

    #[test]
    fn the_built_in_migrations_reach_version_2() {
        let registry = Registry::built_in();
        assert_eq!(registry.newest(), 2);
        assert_eq!(registry.get(1).unwrap().name(), "expire-finished-jobs");
        assert_eq!(registry.get(2).unwrap().name(), "rewrite-index-keys");
    }

    #[test]
    fn cursors_round_trip_any_key() {
        let key = Item::from([
            ("pk".to_owned(), s("a#b")),
            ("sk".to_owned(), AttributeValue::N("12".into())),
        ]);
        assert_eq!(decode_cursor(&encode_cursor(&key).unwrap()).unwrap(), key);
        assert!(decode_cursor("not json").is_err());
    }
}
