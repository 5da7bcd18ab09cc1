use std::convert::Infallible;

use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (store, config) = asyncjob_shared::lambda::init().await?;
    let (store, config) = (&store, &config);
    run(service_fn(move |request| async move {
        Ok::<_, Infallible>(status::handle(store, config, request).await)
    }))
    .await
}
