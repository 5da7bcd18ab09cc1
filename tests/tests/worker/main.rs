//! Jobs really run (docs/design.md): the runner, the worker's entrypoints, and event kick-offs,
//! against a real engine.

mod budget;
mod deadlines;
mod events;
mod faults;
mod pauses;
mod runs;
mod segments;
mod support;
mod writes;
