use asyncjob_shared::migration::{MigrationContext, Registry};
use asyncjob_shared::runner::{Runner, deadline_from_epoch_ms};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (store, config) = asyncjob_shared::lambda::init().await?;
    let (store, config) = (&store, &config);
    // Checked at start: a registry with a gap stops the function here, not mid-job.
    let registry = Registry::built_in();
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Each invocation is a worker of its own in leases, named by its request id.
        let runner = Runner::new(
            store,
            registry,
            MigrationContext::on(store, config.run.page_size)
                .with_budget(config.run.items_per_second),
            &config.run,
            &event.context.request_id,
        );
        let deadline = deadline_from_epoch_ms(event.context.deadline);
        // Boxed: the run's future is deep, and the runtime nests it further.
        Box::pin(worker::handle(&runner, event.payload, deadline))
            .await
            .map_err(Error::from)
    }))
    .await
}
