//! Jobs really run (SPEC §4): the runner, the worker's entrypoints, and event kick-offs,
//! against a real engine.

mod events;
mod runs;
mod support;
