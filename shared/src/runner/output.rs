//! What a data migration's `output` says, for machines (people read `X-Progress`): while it
//! runs, the migrations it applied so far and where the one under way stands; once it
//! completed, the version reached and every migration applied. A migration reads the same
//! in both, so a client that missed it running (it started and finished between two polls)
//! still learns what it did.

use crate::model::{MigrationProgress, MigrationReport, Parameter, Parameters, RunState};

/// A running job's output: one `migration` part per migration applied, and a `progress`
/// part while one is under way.
pub(super) fn running_output(run: &RunState) -> Parameters {
    let mut parameter: Vec<Parameter> = run
        .current
        .iter()
        .map(|current| progress(run, current))
        .collect();
    parameter.extend(run.applied.iter().map(migration));
    Parameters::new(parameter)
}

/// A completed job's output: the version reached and one part per migration applied.
pub(super) fn completion_output(reached: u32, applied: &[MigrationReport]) -> Parameters {
    let mut parameter = vec![Parameter::integer("dataVersion", reached.into())];
    parameter.extend(applied.iter().map(migration));
    Parameters::new(parameter)
}

fn migration(report: &MigrationReport) -> Parameter {
    Parameter::parts(
        "migration",
        vec![
            Parameter::integer("version", report.version.into()),
            Parameter::string("name", &report.name),
            Parameter::integer("itemsScanned", saturating(report.items_scanned)),
            Parameter::integer("itemsChanged", saturating(report.items_changed)),
            Parameter::integer("itemsSkipped", saturating(report.items_skipped)),
            Parameter::integer("durationMs", saturating(report.duration_ms)),
        ],
    )
}

/// Where the migration under way stands: its place in the plan, its counts, its rate, and
/// the estimates when there are some.
fn progress(run: &RunState, current: &MigrationProgress) -> Parameter {
    let migrations = run.plan.as_ref().map_or(0, Vec::len);
    let mut parts = vec![
        Parameter::integer("migration", saturating(run.applied.len() as u64 + 1)),
        Parameter::integer("migrations", saturating(migrations as u64)),
        Parameter::integer("version", current.version.into()),
        Parameter::integer("itemsScanned", saturating(current.items_scanned)),
        Parameter::integer("itemsPerSecond", saturating(current.rate())),
    ];
    if let Some(estimate) = current.estimated_items {
        parts.push(Parameter::integer("itemsEstimated", saturating(estimate)));
    }
    if let Some(segments) = current.segments {
        parts.push(Parameter::integer("segments", segments.into()));
    }
    if let Some(seconds) = run.seconds_left() {
        parts.push(Parameter::integer("secondsLeft", saturating(seconds)));
    }
    Parameter::parts("progress", parts)
}

pub(super) fn saturating(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
