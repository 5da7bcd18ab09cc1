//! The integration-test harness: a DynamoDB-compatible engine (embedded `dynoxide`, or the
//! endpoint in `ASYNCJOB_TEST_DYNAMODB_ENDPOINT`), a fresh table per test, and API Gateway
//! v2 requests routed to the real handlers as the deployed API routes them, every answer
//! checked against api/openapi.yaml.

mod answer;
mod engine;
mod env;
pub mod faults;
pub mod lifecycle;
mod openapi;
mod request;
pub mod server;
pub mod template;

pub use answer::Answer;
pub use engine::{OperationLog, as_function, recorded_actions_folder};
pub use env::{ENDPOINT_VARIABLE, TestEnv};
pub use openapi::openapi_statuses;
pub use request::{ApiRequest, BASE, HOST};
