//! The resources the service reads and writes, as FHIR JSON.

pub mod bundle;
pub mod instant;
pub mod job;
pub mod outcome;
pub mod parameters;

pub use bundle::{Bundle, Entry, Link};
pub use job::{AsyncJob, CodeSet, JobId, JobStatus, JobType, Meta};
pub use outcome::{IssueCode, OperationOutcome, Severity};
pub use parameters::{Parameter, Parameters};
