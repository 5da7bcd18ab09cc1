//! The local stack's DynamoDB: the embedded `dynoxide` engine served on 127.0.0.1:8000, its
//! data in a file under `.local/` so jobs survive a restart, and the jobs table created if
//! missing. It also deletes expired items now and then, as DynamoDB's TTL does.

use std::error::Error;
use std::time::Duration;

use asyncjob_shared::config::Config;
use asyncjob_shared::store::{ensure_table, local_client};
use tokio::net::TcpListener;

const DEFAULT_ADDRESS: &str = "127.0.0.1:8000";
const DEFAULT_DATABASE: &str = ".local/dynamodb.sqlite";
const TTL_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let address = setting("ASYNCJOB_ENGINE_ADDRESS", DEFAULT_ADDRESS);
    let path = setting("ASYNCJOB_ENGINE_DATABASE", DEFAULT_DATABASE);
    if let Some(folder) = std::path::Path::new(&path).parent() {
        std::fs::create_dir_all(folder)?;
    }
    let database = dynoxide::Database::new(&path)?;
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let server = tokio::spawn(dynoxide::server::serve_with_shutdown(
        listener,
        database.clone(),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    ));

    let config = Config::from_env()?;
    let client = local_client(&format!("http://{address}"));
    ensure_table(&client, &config.table_name).await?;
    println!(
        "engine: DynamoDB API on http://{address}, table {:?}, data in {path}",
        config.table_name
    );

    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TTL_SWEEP_INTERVAL).await;
            if let Err(error) = database.sweep_ttl() {
                eprintln!("engine: TTL sweep failed: {error}");
            }
        }
    });
    server.await??;
    Ok(())
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}
