//! What an answer must be, given the table as it was before the request: the rules of the
//! API, and the one freedom faults give, a `503` with `Retry-After`.

use asyncjob_shared::model::{JobStatus, StoredJob};

use super::world::Snapshot;
use crate::Answer;

pub enum Expectation {
    /// `existing` answers the kick-off; otherwise another version running refuses it, or a
    /// new job is created.
    KickOff {
        existing: Option<String>,
        busy: bool,
        known: Vec<String>,
    },
    Cancel(Option<JobStatus>),
    Poll(Option<JobStatus>),
    Read(Option<JobStatus>),
    Search,
    /// Only the rules every answer follows: no server fault but a 503 that says when to
    /// come back, and errors as OperationOutcomes.
    Any,
}

impl Expectation {
    pub fn kick_off(before: &Snapshot, version: u32) -> Self {
        // The last job started for the version, as the version's bookkeeping item names it.
        let same_version = before
            .jobs
            .values()
            .filter(|stored| stored.job.data_version == Some(version))
            .max_by(|a, b| a.job.id.cmp(&b.job.id));
        let existing = same_version
            .filter(|stored| {
                matches!(
                    stored.job.status,
                    JobStatus::Accepted | JobStatus::Completed
                )
            })
            .map(|stored: &StoredJob| stored.job.id.to_string());
        let busy = before
            .jobs
            .values()
            .any(|stored| stored.job.status == JobStatus::Accepted);
        Self::KickOff {
            existing,
            busy,
            known: before.jobs.keys().cloned().collect(),
        }
    }

    pub fn cancel(before: &Snapshot, id: &str) -> Self {
        Self::Cancel(before.status(id))
    }

    pub fn poll(before: &Snapshot, id: &str) -> Self {
        Self::Poll(before.status(id))
    }

    pub fn read(before: &Snapshot, id: &str) -> Self {
        Self::Read(before.status(id))
    }
}

/// `Ok` when `answer` is one the API may give; otherwise what is wrong with it.
pub fn check_answer(answer: &Answer, expectation: Expectation) -> Result<(), String> {
    let failed_job_poll = matches!(expectation, Expectation::Poll(Some(JobStatus::Error)));
    if answer.status >= 500 && !(answer.status == 503 || (answer.status == 500 && failed_job_poll))
    {
        return Err(format!("answered {}: {}", answer.status, answer.body));
    }
    if answer.status >= 400 && answer.body["resourceType"] != "OperationOutcome" {
        return Err(format!(
            "an error answer without an OperationOutcome: {}",
            answer.body
        ));
    }
    if answer.status == 503 {
        return if answer.header("retry-after").is_some()
            && answer.body["issue"][0]["code"] == "transient"
        {
            Ok(())
        } else {
            Err(format!(
                "a 503 without Retry-After or a transient outcome: {}",
                answer.body
            ))
        };
    }
    let wanted: &[u16] = match &expectation {
        Expectation::KickOff {
            existing: Some(id), ..
        } => {
            return match answer.header("content-location") {
                Some(location) if answer.status == 202 && location.contains(id.as_str()) => Ok(()),
                _ => Err(format!(
                    "a repeat kick-off of the version of {id} answered {} ({:?}), not that job",
                    answer.status,
                    answer.header("content-location")
                )),
            };
        }
        Expectation::KickOff { busy: true, .. } => &[429],
        Expectation::KickOff { known, .. } => {
            let location = answer.header("content-location").unwrap_or_default();
            return if answer.status == 202 && !known.iter().any(|id| location.contains(id.as_str()))
            {
                Ok(())
            } else {
                Err(format!(
                    "a kick-off that should start a job answered {}: {location}",
                    answer.status
                ))
            };
        }
        Expectation::Cancel(Some(JobStatus::Accepted)) => &[202],
        Expectation::Cancel(Some(JobStatus::Completed | JobStatus::Error)) => &[409],
        Expectation::Cancel(_) => &[404],
        Expectation::Poll(Some(JobStatus::Accepted)) => &[202],
        Expectation::Poll(Some(JobStatus::Completed)) => &[200],
        Expectation::Poll(Some(JobStatus::Error)) => &[500],
        Expectation::Poll(_) => &[404],
        Expectation::Read(Some(_)) => &[200],
        Expectation::Read(None) => &[404],
        Expectation::Search => &[200],
        Expectation::Any => return Ok(()),
    };
    if wanted.contains(&answer.status) {
        Ok(())
    } else {
        Err(format!(
            "answered {} where {wanted:?} was due: {}",
            answer.status, answer.body
        ))
    }
}
