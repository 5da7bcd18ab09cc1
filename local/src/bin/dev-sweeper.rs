//! The local stack's worker: the sweeper every second, as the schedule runs it in AWS (the
//! local engine has no stream to trigger the worker).

use std::time::{Duration, Instant};

use asyncjob_shared::migration::{MigrationContext, Registry};
use asyncjob_shared::runner::Runner;

const INTERVAL: Duration = Duration::from_secs(1);
/// A local run yields after this long, like a Lambda nearing its timeout; the next sweep
/// resumes it.
const RUN_BUDGET: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let (store, config) = asyncjob_shared::lambda::init().await?;
    let owner = format!("dev-sweeper-{}", std::process::id());
    let context =
        MigrationContext::on(&store, config.run.page_size).with_budget(config.run.items_per_second);
    let runner = Runner::new(&store, Registry::built_in(), context, &config.run, owner);
    loop {
        match runner.sweep(Instant::now() + RUN_BUDGET).await {
            Ok(outcomes) => {
                for (id, outcome) in outcomes {
                    tracing::info!(job = %id, ?outcome, "swept");
                }
            }
            Err(error) => tracing::warn!(%error, "sweep failed"),
        }
        tokio::time::sleep(INTERVAL).await;
    }
}
