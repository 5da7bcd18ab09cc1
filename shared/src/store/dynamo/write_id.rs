//! A conditional write's mark of its own: a fresh id in every item it writes. When the
//! condition of a write fails, the item as it is now tells whether the write that put it
//! there was this one (sent again by the SDK after its answer was lost) or another writer's.
//! Comparing the stored item with the one meant cannot tell: two writers often compute the
//! same item (two cancels of a job in the same millisecond do), and only one of them wrote.
//!
//! A job keeps the mark in its `run` map, not beside the resource's attributes: a release
//! that predates the mark reads `run` leniently but refuses a job attribute it does not
//! know, so a rollback or a deployment still under way keeps reading every job.

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::Item;
use super::schema::{RUN, WRITE_ID};

pub(crate) struct WriteId(String);

impl WriteId {
    /// A mark no other write carries.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// A job's `item`, marked as written by this write.
    pub fn mark_job(&self, mut item: Item) -> Item {
        let run = item
            .entry(RUN.to_owned())
            .or_insert_with(|| AttributeValue::M(Item::new()));
        if let AttributeValue::M(run) = run {
            run.insert(WRITE_ID.into(), self.value());
        }
        item
    }

    /// A segment's `item`, marked as written by this write.
    pub fn mark_segment(&self, mut item: Item) -> Item {
        item.insert(WRITE_ID.into(), self.value());
        item
    }

    /// Whether `stored`, the job or segment item a failed condition handed back, is the one
    /// this write put there.
    pub fn landed_in(&self, stored: Option<&Item>) -> bool {
        let Some(item) = stored else {
            return false;
        };
        let in_run = || item.get(RUN)?.as_m().ok()?.get(WRITE_ID);
        item.get(WRITE_ID)
            .or_else(in_run)
            .and_then(|id| id.as_s().ok())
            .is_some_and(|id| *id == self.0)
    }

    fn value(&self) -> AttributeValue {
        AttributeValue::S(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_write_that_put_its_mark_on_an_item_recognises_it() {
        let (this, other) = (WriteId::new(), WriteId::new());
        let job = this.mark_job(Item::from([(
            "status".to_owned(),
            AttributeValue::S("accepted".into()),
        )]));
        assert!(this.landed_in(Some(&job)));
        assert!(!other.landed_in(Some(&job)));
        assert!(!job.contains_key(WRITE_ID), "a job keeps it in its run map");
        let segment = this.mark_segment(Item::new());
        assert!(this.landed_in(Some(&segment)) && !other.landed_in(Some(&segment)));
        assert!(!this.landed_in(Some(&Item::new())), "an unmarked item");
        assert!(!this.landed_in(None), "no item handed back");
        let odd = Item::from([(WRITE_ID.to_owned(), AttributeValue::N("1".into()))]);
        assert!(!this.landed_in(Some(&odd)));
    }
}
