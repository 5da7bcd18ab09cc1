use std::convert::Infallible;

use lambda_http::service_fn;

/// The dashboard reads nothing but its own binary: no store, no configuration.
#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    lambda_http::run(service_fn(|request| async move {
        Ok::<_, Infallible>(ui::handle(request).await)
    }))
    .await
}
