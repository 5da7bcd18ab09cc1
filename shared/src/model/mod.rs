//! The resources the service reads and writes, as FHIR JSON, and the state a job carries
//! beside its resource.

pub mod attempts;
pub mod bundle;
pub mod clock;
pub mod control;
pub mod instant;
pub mod job;
pub mod outcome;
pub mod output;
pub mod parameters;
pub mod run;
pub mod segment;
pub mod stored;

pub use attempts::{Attempts, Lease};
pub use bundle::{Bundle, Entry, Link};
pub use clock::Clock;
pub use control::{Action, Control, ControlRecord, Pause};
pub use job::{AsyncJob, CodeSet, JobId, JobStatus, JobType, Meta};
pub use outcome::{IssueCode, OperationOutcome, Severity};
pub use parameters::{Parameter, Parameters};
pub use run::{MigrationProgress, MigrationReport, RunState};
pub use segment::{SegmentKey, SegmentRun};
pub use stored::StoredJob;
