#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    asyncjob_shared::http::serve::serve(control::handle).await
}
