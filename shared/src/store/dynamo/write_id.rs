//! A conditional write's mark of its own: a fresh id in every item it writes. When the
//! condition of a write fails, the item as it is now tells whether the write that put it
//! there was this one (sent again by the SDK after its answer was lost) or another writer's.
//! Comparing the stored item with the one meant cannot tell: two writers often compute the
//! same item (two cancels of a job in the same millisecond do), and only one of them wrote.

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::Item;
use super::schema::WRITE_ID;

pub(crate) struct WriteId(String);

impl WriteId {
    /// A mark no other write carries.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// `item`, marked as written by this write.
    pub fn mark(&self, mut item: Item) -> Item {
        item.insert(WRITE_ID.into(), AttributeValue::S(self.0.clone()));
        item
    }

    /// Whether `stored`, the item a failed condition handed back, is the one this write put
    /// there.
    pub fn landed_in(&self, stored: Option<&Item>) -> bool {
        stored
            .and_then(|item| item.get(WRITE_ID))
            .and_then(|id| id.as_s().ok())
            .is_some_and(|id| *id == self.0)
    }
}
