//! The HTTP side of the functions: reading requests, building FHIR responses, turning
//! errors into OperationOutcomes, the caller's authorization, and serving a handler.

pub mod auth;
pub mod error;
pub mod request;
pub mod response;
pub mod serve;

pub use error::ApiError;
