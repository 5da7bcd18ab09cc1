//! The write budget the segments of a migration share: one bookkeeping item per migration
//! holding where the next free window of writes starts. A segment reserves a window before
//! each page by moving that point with a conditional update, so no two windows overlap,
//! wherever the segments run; the item goes with the segments.

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};

use super::errors::{Cancellation, applied, store_error};
use super::item::Item;
use super::schema::{ID, NEXT_WRITE_AT_MS, WRITE_ID, budget_key, segment_key};
use super::table::{Table, s};
use crate::model::{Clock, SegmentKey};
use crate::store::{Reservation, StoreError, Transient};

/// Reservations that found the window moved by another segment before the budget counts
/// as crowded: each round one of the segments reserving at once gets its window, so this is
/// twice the most segments a migration runs in (64).
const MAX_RESERVE_ATTEMPTS: usize = 128;

impl Table {
    /// Reserves `length_ms` of the budget of `key`'s migration, from no earlier than now (on
    /// `clock`) and
    /// after every window reserved before; says where it starts, and the reservation's own
    /// mark for [`Self::return_writes`]. Only while `key`'s segment exists: a job's final
    /// write deletes the segments and the budget together, and a page still running then
    /// must not bring the budget back.
    pub async fn reserve_writes(
        &self,
        key: &SegmentKey,
        length_ms: i64,
        clock: &Clock,
    ) -> Result<Reservation, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(ID, s(budget_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let mut next = output.item.as_ref().and_then(next_write_at);
        for _ in 0..MAX_RESERVE_ATTEMPTS {
            let reservation = Reservation {
                start_ms: next.map_or_else(|| clock.now_ms(), |next| next.max(clock.now_ms())),
                mark: uuid::Uuid::now_v7().to_string(),
            };
            let items = self.reservation(key, &reservation, length_ms, next);
            match self.transact(items).await {
                Ok(()) => return Ok(reservation),
                Err(Cancellation::ConditionFailed(0, _)) => {
                    return Err(StoreError::Failed(format!(
                        "{key} is gone: its job ended or its migration was applied"
                    )));
                }
                // Another segment reserved first: after its window, then.
                Err(Cancellation::ConditionFailed(_, moved)) => {
                    next = moved.as_ref().and_then(next_write_at);
                }
                Err(Cancellation::Failed(error)) => return Err(error),
            }
        }
        // As many segments at once as the budget can serve: they ask for less, as throttling
        // does, and never give up for it.
        Err(StoreError::unavailable(
            Transient::Throttled,
            "every window of the shared write budget was taken first",
        ))
    }

    /// The transaction that reserves `reservation`'s window of `length_ms`: on the condition
    /// that `key`'s segment exists and the budget's next window still starts at `seen`.
    fn reservation(
        &self,
        key: &SegmentKey,
        reservation: &Reservation,
        length_ms: i64,
        seen: Option<i64>,
    ) -> Vec<TransactWriteItem> {
        let segment_exists = ConditionCheck::builder()
            .table_name(&self.name)
            .key(ID, s(segment_key(key)))
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", ID)
            .build()
            .expect("table, key and condition are set");
        let update = Update::builder()
            .table_name(&self.name)
            .key(ID, s(budget_key(key)))
            .update_expression("SET #next = :end, #mark = :mark")
            .expression_attribute_names("#next", NEXT_WRITE_AT_MS)
            .expression_attribute_names("#mark", WRITE_ID)
            .expression_attribute_values(":end", n(reservation.start_ms + length_ms))
            .expression_attribute_values(":mark", s(&reservation.mark))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let update = match seen {
            Some(seen) => update
                .condition_expression("#next = :seen")
                .expression_attribute_values(":seen", n(seen)),
            None => update.condition_expression("attribute_not_exists(#next)"),
        };
        let update = update.build().expect("table, key and expression are set");
        vec![
            TransactWriteItem::builder()
                .condition_check(segment_exists)
                .build(),
            TransactWriteItem::builder().update(update).build(),
        ]
    }

    /// Hands back the end of the window of `reservation`, from `used_until_ms` to
    /// `reserved_until_ms`, unless a later window was reserved since.
    pub async fn return_writes(
        &self,
        key: &SegmentKey,
        reservation: &Reservation,
        reserved_until_ms: i64,
        used_until_ms: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(ID, s(budget_key(key)))
            .update_expression("SET #next = :used REMOVE #mark")
            .condition_expression("#next = :reserved AND #mark = :mark")
            .expression_attribute_names("#next", NEXT_WRITE_AT_MS)
            .expression_attribute_names("#mark", WRITE_ID)
            .expression_attribute_values(":used", n(used_until_ms))
            .expression_attribute_values(":reserved", n(reserved_until_ms))
            .expression_attribute_values(":mark", s(&reservation.mark))
            .send()
            .await;
        applied(result, |e| e.is_conditional_check_failed_exception()).map(drop)
    }

    /// A delete, for a transaction, of the budget of `key`'s migration.
    pub fn delete_budget(&self, key: &SegmentKey) -> TransactWriteItem {
        let delete = Delete::builder()
            .table_name(&self.name)
            .key(ID, s(budget_key(key)))
            .build()
            .expect("table and key are set");
        TransactWriteItem::builder().delete(delete).build()
    }
}

fn next_write_at(item: &Item) -> Option<i64> {
    item.get(NEXT_WRITE_AT_MS)?.as_n().ok()?.parse().ok()
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
