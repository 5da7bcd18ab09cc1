use lambda_http::Error;
use lambda_http::lambda_runtime::{LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (store, config) = asyncjob_shared::lambda::init().await?;
    let (store, config) = (&store, &config);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        kickoff::events::handle_event(store, config, event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
