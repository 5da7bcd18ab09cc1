//! What a data migration's `output` says, for machines (people read `X-Progress`): while it
//! runs, the migrations it applied so far, where the one under way stands, and what
//! operators did to it (a pause in force, each action with who took it); once it
//! completed, the version reached and every migration applied. A migration reads the same
//! in both, so a client that missed it running (it started and finished between two polls)
//! still learns what it did.

use super::control::since;
use super::{
    AsyncJob, ControlRecord, MigrationProgress, MigrationReport, Parameter, Parameters, RunState,
};

/// A running job's output: a `progress` part for the migration under way, or about to
/// start (so the plan's size is always there), a `paused` part while it is paused, one
/// `migration` part per migration applied, and one `control` part per operator's action.
pub fn running_output(run: &RunState) -> Parameters {
    let next = run
        .plan
        .as_ref()
        .and_then(|plan| plan.get(run.applied.len()))
        .map(|&version| MigrationProgress::starting(version, None));
    let mut parameter: Vec<Parameter> = run
        .current
        .clone()
        .or(next)
        .map(|current| progress(run, &current))
        .into_iter()
        .collect();
    if let Some(pause) = &run.paused {
        parameter.push(Parameter::parts(
            "paused",
            vec![
                Parameter::string("by", &pause.by),
                Parameter::instant("since", &since(pause.since_ms)),
            ],
        ));
    }
    parameter.extend(run.applied.iter().map(migration));
    parameter.extend(run.controls.iter().map(control));
    Parameters::new(parameter)
}

/// Whether a running job's output says it is paused: what a reader of the resource alone
/// can tell.
pub fn says_paused(job: &AsyncJob) -> bool {
    job.output
        .iter()
        .flat_map(|output| &output.parameter)
        .any(|parameter| parameter.name == "paused")
}

fn control(record: &ControlRecord) -> Parameter {
    Parameter::parts(
        "control",
        vec![
            Parameter::code("action", &record.action.to_string()),
            Parameter::string("by", &record.by),
            Parameter::instant("at", &since(record.at_ms)),
        ],
    )
}

/// A completed job's output: the version reached, one part per migration applied and one
/// per operator's action.
pub fn completion_output(reached: u32, run: &RunState) -> Parameters {
    let mut parameter = vec![Parameter::integer("dataVersion", reached.into())];
    parameter.extend(run.applied.iter().map(migration));
    parameter.extend(run.controls.iter().map(control));
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
    // A paused job has no time left to speak of, as its X-Progress says.
    if let Some(seconds) = run.seconds_left().filter(|_| run.paused.is_none()) {
        parts.push(Parameter::integer("secondsLeft", saturating(seconds)));
    }
    Parameter::parts("progress", parts)
}

fn saturating(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(output: &Parameters) -> Vec<String> {
        let value = serde_json::to_value(output).unwrap();
        value["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// A client polling at any moment learns the plan's size and every migration applied.
    #[test]
    fn a_running_job_s_output_always_says_where_it_stands_in_its_plan() {
        let mut run = RunState {
            plan: Some(vec![1, 2]),
            ..RunState::default()
        };
        assert_eq!(names(&running_output(&run)), ["progress"], "about to start");
        run.applied.push(MigrationReport {
            version: 1,
            name: "a".into(),
            items_scanned: 30,
            items_changed: 3,
            items_skipped: 0,
            duration_ms: 40,
        });
        let between = serde_json::to_value(running_output(&run)).unwrap();
        assert_eq!(between["parameter"][0]["name"], "progress");
        let parts = &between["parameter"][0]["part"];
        assert_eq!(parts[0]["valueInteger"], 2, "migration 2 is next");
        assert_eq!(parts[1]["valueInteger"], 2, "of 2");
        assert_eq!(parts[3]["valueInteger"], 0, "nothing scanned yet");
        assert_eq!(between["parameter"][1]["name"], "migration");
        run.current = Some(MigrationProgress {
            items_scanned: 10,
            duration_ms: 5,
            ..MigrationProgress::starting(2, Some(30))
        });
        assert_eq!(names(&running_output(&run)), ["progress", "migration"]);
        run.current = None;
        run.applied.push(run.applied[0].clone());
        assert_eq!(
            names(&running_output(&run)),
            ["migration", "migration"],
            "finishing"
        );
    }
}
