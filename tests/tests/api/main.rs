//! The HTTP API (docs/api.md), driven through the real handlers against a real engine.

mod auth;
mod cancel;
mod control;
mod discovery;
mod faults;
mod kickoff;
mod logs;
mod read;
mod search;
mod status;
mod support;
