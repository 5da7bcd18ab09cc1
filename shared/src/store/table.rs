//! The jobs table: its attribute names, its indexes, and how to create it.
//!
//! Every search is a Query on one of two sparse GSIs, both ordered by request time then id:
//! - `status-index`: partition `status`, sort `sortKey` = `{requestTime}#{id}`;
//! - `type-index`: partition `type`, sort `typeSortKey` = `{status}#{requestTime}#{id}`, so a
//!   search on type and status is one key range.
//!
//! Items that are not jobs (the kick-off's bookkeeping) carry neither `status` nor `type`, so
//! no index holds them, and their ids contain `~`, which no job id can.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use super::StoreError;
use super::dynamo::store_error;

pub const ID: &str = "id";
pub const STATUS: &str = "status";
pub const TYPE: &str = "type";
pub const META: &str = "meta";
pub const VERSION_ID: &str = "versionId";
pub const SORT_KEY: &str = "sortKey";
pub const TYPE_SORT_KEY: &str = "typeSortKey";
/// Epoch seconds after which DynamoDB's TTL deletes a finished job.
pub const EXPIRES_AT: &str = "expiresAt";
/// The worker's lease and checkpoint ([`crate::runner::state::RunState`]).
pub const RUN: &str = "run";
/// The data version the stored data has reached, on the `~data-version` item.
pub const DATA_VERSION: &str = "dataVersion";
/// The job a bookkeeping item points at.
pub const JOB_ID: &str = "jobId";

pub const STATUS_INDEX: &str = "status-index";
pub const TYPE_INDEX: &str = "type-index";

/// Attributes the store adds to a job item; they are not part of the resource.
pub const STORE_ONLY_ATTRIBUTES: &[&str] = &[SORT_KEY, TYPE_SORT_KEY, EXPIRES_AT, RUN];

/// Creates the table (with its indexes and TTL) unless it exists. Used by the local stack and
/// the tests; in AWS the SAM template creates it, with the stream that triggers the worker.
/// Locally the sweeper does the stream's job, and the embedded engine's stream bookkeeping
/// would slow every write as the table grows, so no stream is created here.
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
                .map_err(|e| StoreError::Internal(e.to_string()))?,
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
