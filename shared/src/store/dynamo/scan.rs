//! A table a page at a time, for any table's key schema: the Scan page, its cursor, and the
//! table's item count. The job table's migrations and a migration of a table of its own
//! read through the same code.

use aws_sdk_dynamodb::Client;
use serde_json::Value;

use super::errors::store_error;
use super::item::Item;
use crate::store::{ScanSegment, StoreError};

/// The item count DynamoDB reports for `table` (refreshed every few hours).
pub async fn table_item_count(client: &Client, table: &str) -> Result<Option<u64>, StoreError> {
    let output = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(store_error)?;
    Ok(output
        .table
        .and_then(|table| table.item_count)
        .and_then(|count| u64::try_from(count).ok()))
}

/// Reads up to `limit` items of `table` (of `segment` of it, if set) in key order, resuming
/// after `cursor`. The cursor is the last key read, as JSON, so it works for any table's key
/// schema, and a cursor an older release stored still reads.
pub async fn table_page(
    client: &Client,
    table: &str,
    segment: Option<ScanSegment>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<(Vec<Item>, Option<String>), StoreError> {
    let start = cursor.map(decode_cursor).transpose()?;
    let output = client
        .scan()
        .table_name(table)
        .limit(i32::try_from(limit).unwrap_or(i32::MAX))
        .set_exclusive_start_key(start)
        .set_segment(segment.map(|part| part.segment as i32))
        .set_total_segments(segment.map(|part| part.total as i32))
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
        .map_err(|e| StoreError::Failed(format!("a migration cursor is not one: {e}")))?;
    Ok(value.to_string())
}

fn decode_cursor(cursor: &str) -> Result<Item, StoreError> {
    let value: Value = serde_json::from_str(cursor)
        .map_err(|e| StoreError::Failed(format!("a migration cursor is not one: {e}")))?;
    serde_dynamo::to_item(value)
        .map_err(|e| StoreError::Failed(format!("a migration cursor is not one: {e}")))
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    #[test]
    fn cursors_round_trip_any_key() {
        let key = Item::from([
            ("pk".to_owned(), AttributeValue::S("a#b".into())),
            ("sk".to_owned(), AttributeValue::N("12".into())),
        ]);
        assert_eq!(decode_cursor(&encode_cursor(&key).unwrap()).unwrap(), key);
        assert!(decode_cursor("not json").is_err());
    }
}
