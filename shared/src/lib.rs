//! What every AsyncJob function shares. The modules depend on each other one way only,
//! from the entrypoints' side down to the model:
//!
//! - [`model`]: the resources and a job's state, with every transition a job goes through;
//! - [`parse`]: what clients send, read from plain text;
//! - [`store`]: where jobs live (DynamoDB, or memory for unit tests);
//! - [`migration`] and [`runner`]: the data migrations and the runner that applies them;
//! - [`config`], [`routes`], [`lambda`]: settings, the API's routes, the start of a function;
//! - [`http`] and [`events`]: the HTTP and the event entrypoints' sides.

pub mod config;
pub mod events;
pub mod http;
pub mod lambda;
pub mod migration;
pub mod model;
pub mod parse;
pub mod routes;
pub mod runner;
pub mod store;
