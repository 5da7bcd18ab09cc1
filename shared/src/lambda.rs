//! What every function's entrypoint does once at start.

use crate::config::Config;
use crate::store::{DynamoStore, dynamodb_client};

/// Logging (JSON when the function's log format is JSON), the configuration, and the
/// store with its one SDK client.
pub async fn init() -> Result<(DynamoStore, Config), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let store = DynamoStore::new(
        dynamodb_client().await,
        &config.table_name,
        config.retention,
    );
    Ok((store, config))
}
