use asyncjob_shared::migration::Registry;
use asyncjob_shared::runner::deadline_from_epoch_ms;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use worker::Invocation;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (store, config) = asyncjob_shared::lambda::init().await?;
    let (store, config) = (&store, &config);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation {
            payload: event.payload,
            deadline: deadline_from_epoch_ms(event.context.deadline),
            owner: &event.context.request_id,
        };
        worker::handle(store, &config.run, Registry::built_in(), invocation)
            .await
            .map_err(Error::from)
    }))
    .await
}
