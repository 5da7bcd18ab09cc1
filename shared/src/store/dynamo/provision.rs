//! Creating the jobs table with its indexes and TTL, for the local stack and the tests; in
//! AWS the SAM template creates it, with the stream that triggers the worker.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use super::errors::store_error;
use super::schema::{
    EXPIRES_AT, ID, SORT_KEY, STATUS, STATUS_INDEX, TYPE, TYPE_INDEX, TYPE_SORT_KEY,
};
use crate::store::StoreError;

/// Creates the table unless it exists. Locally the sweeper does the stream's job, and the
/// embedded engine's stream bookkeeping would slow every write as the table grows, so no
/// stream is created here.
pub async fn ensure_table(client: &Client, table_name: &str) -> Result<(), StoreError> {
    match client.describe_table().table_name(table_name).send().await {
        Ok(_) => return Ok(()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(error) => return Err(store_error(error)),
    }
    let created = client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(
            [ID, STATUS, TYPE, SORT_KEY, TYPE_SORT_KEY]
                .into_iter()
                .map(string_attribute)
                .collect(),
        ))
        .key_schema(key(ID, KeyType::Hash))
        .global_secondary_indexes(index(STATUS_INDEX, STATUS, SORT_KEY))
        .global_secondary_indexes(index(TYPE_INDEX, TYPE, TYPE_SORT_KEY))
        .send()
        .await;
    match created {
        Ok(_) => {}
        // Someone else created it first: just as good.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(error) => return Err(store_error(error)),
    }
    client
        .update_time_to_live()
        .table_name(table_name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(EXPIRES_AT)
                .build()
                .map_err(|e| StoreError::Failed(e.to_string()))?,
        )
        .send()
        .await
        .map_err(store_error)?;
    Ok(())
}

fn string_attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("name and type are set")
}

fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .expect("name and key type are set")
}

fn index(name: &str, partition: &str, sort: &str) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(partition, KeyType::Hash))
        .key_schema(key(sort, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .expect("name, keys and projection are set")
}
