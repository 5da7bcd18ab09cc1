//! Direct access to the jobs table's items, for what must go around the store: tests that
//! plant or inspect raw items, benchmarks that seed tables, and the local stack's seeding
//! tool. Behind the `test-support` feature, so no function is built with it.

pub use super::dynamo::item::{Item, from_item, to_item};

use crate::model::{AsyncJob, StoredJob};

/// Attribute, index and bookkeeping names of the jobs table.
pub mod schema {
    pub use crate::store::dynamo::schema::*;
}

/// `job`'s item as a release before retention and the search indexes wrote it: no TTL and no
/// index keys. The built-in migrations exist to bring such items up to date.
pub fn legacy_item(job: AsyncJob) -> Item {
    let mut item = to_item(&StoredJob::new(job)).expect("a job makes an item");
    for missing in [schema::SORT_KEY, schema::TYPE_SORT_KEY, schema::EXPIRES_AT] {
        item.remove(missing);
    }
    item
}
