//! What every AsyncJob function shares: the resource model, its validation and FHIR JSON,
//! the DynamoDB store, HTTP helpers and the caller's authorization.

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod kickoff;
pub mod lambda;
pub mod migration;
pub mod model;
mod params;
pub mod runner;
pub mod search;
pub mod store;
