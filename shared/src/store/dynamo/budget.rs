//! The write budget the segments of a migration share: one bookkeeping item per migration
//! holding where the next free window of writes starts. A segment reserves a window before
//! each page by moving that point with a conditional update, so no two windows overlap,
//! wherever the segments run; the item goes with the segments.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use super::errors::{applied, contention, store_error};
use super::item::Item;
use super::schema::{ID, NEXT_WRITE_AT_MS, budget_key};
use super::table::{Table, s};
use crate::model::SegmentKey;
use crate::store::StoreError;

/// Reservations that found the window moved by another segment before one is given up as
/// contention: each round one of the segments reserving at once gets its window, so this is
/// twice the most segments a migration runs in (64).
const MAX_RESERVE_ATTEMPTS: usize = 128;

impl Table {
    /// Reserves `length_ms` of the budget of `key`'s migration, from no earlier than `now_ms`
    /// and after every window reserved before; says where it starts.
    pub async fn reserve_writes(
        &self,
        key: &SegmentKey,
        length_ms: i64,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let id = s(budget_key(key));
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(ID, id.clone())
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let mut next = output.item.as_ref().and_then(next_write_at);
        for _ in 0..MAX_RESERVE_ATTEMPTS {
            let start = next.map_or(now_ms, |next| next.max(now_ms));
            let update = self
                .client
                .update_item()
                .table_name(&self.name)
                .key(ID, id.clone())
                .update_expression("SET #next = :end")
                .expression_attribute_names("#next", NEXT_WRITE_AT_MS)
                .expression_attribute_values(":end", n(start + length_ms))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            let update = match next {
                Some(next) => update
                    .condition_expression("#next = :seen")
                    .expression_attribute_values(":seen", n(next)),
                None => update.condition_expression("attribute_not_exists(#next)"),
            };
            match update.send().await {
                Ok(_) => return Ok(start),
                Err(error) => match error.as_service_error() {
                    // Another segment reserved first: after its window, then.
                    Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                        next = failed.item().and_then(next_write_at);
                    }
                    _ => return Err(store_error(error)),
                },
            }
        }
        Err(contention())
    }

    /// Hands back the end of a window, from `used_until_ms` to `reserved_until_ms`, unless a
    /// later window was reserved since.
    pub async fn return_writes(
        &self,
        key: &SegmentKey,
        reserved_until_ms: i64,
        used_until_ms: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(ID, s(budget_key(key)))
            .update_expression("SET #next = :used")
            .condition_expression("#next = :reserved")
            .expression_attribute_names("#next", NEXT_WRITE_AT_MS)
            .expression_attribute_values(":used", n(used_until_ms))
            .expression_attribute_values(":reserved", n(reserved_until_ms))
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
