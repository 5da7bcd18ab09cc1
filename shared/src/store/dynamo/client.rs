//! The DynamoDB client: bounded waits and retries, and TLS that trusts only what it must.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};

/// Bounded waits, so a handler answers `503` well before its Lambda times out.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

/// The roots AWS service endpoints chain to.
const AWS_ROOTS: &str = include_str!("aws-roots.pem");

/// HTTPS that trusts the AWS roots only, unless the endpoint is another HTTPS server: then the
/// system's roots. Loading and parsing the whole system store is most of a cold start.
fn http_client() -> SharedHttpClient {
    let custom_https_endpoint = ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .any(|url| url.starts_with("https://"));
    let trust_store = if custom_https_endpoint {
        TrustStore::default()
    } else {
        TrustStore::empty().with_pem_certificate(AWS_ROOTS)
    };
    let context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .expect("a trust store of PEM certificates makes a TLS context");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https()
}

/// The client the functions use: region, credentials and endpoint from the environment
/// (`AWS_ENDPOINT_URL_DYNAMODB` points it at another engine).
pub async fn dynamodb_client() -> Client {
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeouts())
        .retry_config(retries())
        .load()
        .await;
    Client::new(&shared)
}

/// A client for a local engine at `endpoint`, with placeholder credentials.
pub fn local_client(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "asyncjob"))
        .endpoint_url(endpoint)
        .timeout_config(timeouts())
        .retry_config(retries())
        .build();
    Client::from_conf(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aws_roots_are_five_certificates() {
        assert_eq!(AWS_ROOTS.matches("-----BEGIN CERTIFICATE-----").count(), 5);
        let store = TrustStore::empty().with_pem_certificate(AWS_ROOTS);
        assert!(
            TlsContext::builder()
                .with_trust_store(store)
                .build()
                .is_ok()
        );
    }
}
