//! What an operator does to a job that runs, and the record of who did it and when. A
//! pause holds the job: its segments stop at their next checkpoint, let go of their leases
//! without counting an attempt, and no worker takes the job until it is resumed. The job
//! stays `accepted` meanwhile (the FHIR status set has no `paused`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::instant::{self, millis};

/// An operator's action on a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pause,
    Resume,
    Cancel,
}

impl Action {
    /// `pause`, as the operation's code and in a job's output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
        }
    }

    /// The action as a past participle, for messages: `job x is paused`.
    pub fn done(self) -> &'static str {
        match self {
            Self::Pause => "paused",
            Self::Resume => "resumed",
            Self::Cancel => "cancelled",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An operator's request: the action, and who asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control {
    pub action: Action,
    pub by: String,
}

impl Control {
    pub fn new(action: Action, by: &str) -> Self {
        Self {
            action,
            by: actor_name(by),
        }
    }
}

/// A pause in force: who paused the job, and when (epoch ms).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pause {
    pub by: String,
    pub since_ms: i64,
}

impl Pause {
    /// `paused by alice since 2026-12-02T16:40:05.000Z`.
    pub fn describe(&self) -> String {
        format!("paused by {} since {}", self.by, since(self.since_ms))
    }
}

/// One action an operator took on the job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlRecord {
    pub action: Action,
    pub by: String,
    pub at_ms: i64,
}

/// Actions a job keeps at most; older ones go first. A job's item must stay well inside
/// DynamoDB's 400 KB, however often it is paused and resumed.
pub const MAX_CONTROL_RECORDS: usize = 50;

impl Control {
    /// Adds this control, taken at `now`, to a job's `controls`, dropping the oldest past
    /// [`MAX_CONTROL_RECORDS`].
    pub fn record_in(&self, controls: &mut Vec<ControlRecord>, now: time::OffsetDateTime) {
        controls.push(ControlRecord {
            action: self.action,
            by: self.by.clone(),
            at_ms: millis(now),
        });
        let over = controls.len().saturating_sub(MAX_CONTROL_RECORDS);
        controls.drain(..over);
    }
}

/// An instant in epoch ms as FHIR writes it.
pub fn since(at_ms: i64) -> String {
    instant::from_millis(at_ms).map_or_else(|| at_ms.to_string(), instant::format)
}

/// Longest name kept of whoever acted: it shows in `X-Progress`, whose line stays short.
pub const MAX_ACTOR_CHARS: usize = 40;

/// `name` as the job keeps it: printable ASCII only (it travels in a header) and at most
/// [`MAX_ACTOR_CHARS`]; `unknown` when nothing is left.
pub fn actor_name(name: &str) -> String {
    let kept: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(MAX_ACTOR_CHARS)
        .collect();
    let kept = kept.trim();
    if kept.is_empty() {
        "unknown".to_owned()
    } else {
        kept.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::run::{RunState, poll_interval_seconds};
    use crate::model::{MigrationProgress, instant};

    #[test]
    fn a_paused_job_says_who_holds_it_first_and_is_polled_slowly() {
        let now = instant::now();
        let mut run = RunState {
            plan: Some((1..=99).collect()),
            current: Some(MigrationProgress {
                items_scanned: 4000,
                duration_ms: 500,
                segments: Some(64),
                ..MigrationProgress::starting(1, Some(u64::MAX))
            }),
            ..RunState::default()
        };
        let running = run.progress_at(now);
        run.paused = Some(Pause {
            by: "alice".into(),
            since_ms: 1_796_229_605_000,
        });
        let paused = run.progress_at(now);
        assert!(
            paused.starts_with("paused by alice since 2026-12-02T16:40:05.000Z"),
            "{paused}"
        );
        assert!(!paused.contains("left"), "a paused job has no time left");
        assert!(paused.len() < 100, "{paused}");
        assert_ne!(paused, running);
        let fresh = instant::format(now);
        assert_eq!(poll_interval_seconds(Some(&run), &fresh, now), 10);

        // The longest name still leaves a line under 100 characters.
        run.paused.as_mut().unwrap().by = actor_name(&"x".repeat(200));
        assert!(run.progress_at(now).len() < 100);
    }

    #[test]
    fn a_job_keeps_its_latest_controls() {
        let mut controls = Vec::new();
        let now = instant::now();
        for i in 0..MAX_CONTROL_RECORDS + 5 {
            Control::new(Action::Pause, &format!("op{i}")).record_in(&mut controls, now);
        }
        assert_eq!(controls.len(), MAX_CONTROL_RECORDS);
        assert_eq!(controls[0].by, "op5");
        assert_eq!(
            controls.last().unwrap().by,
            format!("op{}", MAX_CONTROL_RECORDS + 4)
        );
    }

    #[test]
    fn names_are_kept_short_and_safe_for_a_header() {
        assert_eq!(actor_name("alice"), "alice");
        assert_eq!(actor_name("  "), "unknown");
        assert_eq!(actor_name("zoë\r\nX-Evil: 1"), "zoX-Evil: 1");
        assert_eq!(actor_name(&"a".repeat(100)).len(), MAX_ACTOR_CHARS);
    }

    #[test]
    fn a_pause_says_who_and_since_when() {
        let pause = Pause {
            by: "alice".into(),
            since_ms: 1_796_229_605_000,
        };
        assert_eq!(
            pause.describe(),
            "paused by alice since 2026-12-02T16:40:05.000Z"
        );
    }
}
