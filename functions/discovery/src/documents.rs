//! The API described as FHIR resources: the `CapabilityStatement` and the
//! `OperationDefinition`s of data migration, pause and resume. They are built from the
//! service's own lists (routes, search parameters), so they say what the code does.

use asyncjob_shared::config::Config;
use asyncjob_shared::model::Action;
use asyncjob_shared::parse::search::{DEFAULT_COUNT, MAX_COUNT, MAX_IDS};
use serde_json::{Value, json};

/// The FHIR release whose JSON the service speaks (`AsyncJob` itself comes from the FHIR
/// asynchronous request pattern).
const FHIR_VERSION: &str = "5.0.0";

/// When what this statement says last changed.
const STATEMENT_DATE: &str = "2026-12-02";

pub fn capability_statement(base: &str, config: &Config) -> Value {
    let instance_operations: Vec<Value> = [Action::Pause, Action::Resume]
        .iter()
        .map(|action| {
            let name = action.name();
            json!({"name": name, "definition": format!("{base}/OperationDefinition/AsyncJob-{name}")})
        })
        .collect();
    let search_param = |name: &str, kind: &str, documentation: String| json!({"name": name, "type": kind, "documentation": documentation});
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "date": STATEMENT_DATE,
        "software": {"name": "asyncjob", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "AsyncJob service", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": {"description": format!(
                "OAuth 2.0 bearer tokens (JWT). The scope {:?} polls, reads and searches; \
                 {:?} kicks off, pauses, resumes and cancels.",
                config.auth.read_scope, config.auth.admin_scope
            )},
            "resource": [{
                "type": "AsyncJob",
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "operation": instance_operations,
                "searchParam": [
                    search_param("type", "token", "AsyncJob.type; a comma is OR".into()),
                    search_param("status", "token", "AsyncJob.status; a comma is OR".into()),
                    search_param("_id", "token", format!("up to {MAX_IDS} ids; a comma is OR")),
                    search_param("_count", "number", format!(
                        "page size, 1 to {MAX_COUNT}, default {DEFAULT_COUNT}"
                    )),
                    search_param("_sort", "special", "-requestTime (default) or requestTime".into()),
                    search_param("_total", "special", "accurate adds the total".into()),
                ]
            }],
            "operation": [{
                "name": "data-migration",
                "definition": format!("{base}/OperationDefinition/data-migration")
            }]
        }]
    })
}

pub fn operation_definition(base: &str) -> Value {
    json!({
        "resourceType": "OperationDefinition",
        "id": "data-migration",
        "url": format!("{base}/OperationDefinition/data-migration"),
        "name": "DataMigration",
        "title": "Data migration",
        "status": "active",
        "kind": "operation",
        "code": "data-migration",
        "system": true,
        "type": false,
        "instance": false,
        "affectsState": true,
        "description": "Brings the stored data to a data version by applying, in order, every \
            registered migration above the version it is at. It runs asynchronously: send \
            `Prefer: respond-async`; the answer is 202 with the job's status URL in \
            Content-Location. One data migration runs at a time (429 for another version \
            meanwhile).",
        "comment": "Idempotent per data version: while a job for the version is accepted or \
            completed, a repeat kick-off creates nothing and answers 202 with that job. After \
            the job was cancelled or failed, a kick-off starts a new one.",
        "parameter": [
            {
                "name": "dataVersion", "use": "in", "min": 0, "max": "1", "type": "integer",
                "documentation": "The data version to reach (1 or more, at most the newest \
                    registered migration's); without it, the newest. Also accepted as \
                    `?dataVersion=N`."
            },
            {
                "name": "job", "use": "out", "min": 1, "max": "1", "type": "Reference",
                "targetProfile": ["http://hl7.org/fhir/StructureDefinition/AsyncJob"],
                "documentation": "The AsyncJob, at the status URL the answer's \
                    Content-Location names; polled there, it carries the migrations applied \
                    in its output."
            }
        ]
    })
}

/// The `OperationDefinition` of `$pause` or `$resume` on an `AsyncJob`.
pub fn control_definition(base: &str, action: Action) -> Value {
    let (title, description) = match action {
        Action::Pause => (
            "Pause a job",
            "Holds an accepted job: each of its segments stops at its next checkpoint and \
             lets go of its lease, no attempt is counted, and no worker takes the job until \
             it is resumed. The job stays `accepted`; its status says who paused it and \
             since when, and it keeps its place (another data version's kick-off answers \
             429). A pause of a paused job changes nothing. A paused job can be cancelled.",
        ),
        _ => (
            "Resume a job",
            "Lets a paused job go on from its checkpoints: a worker takes it at the next \
             sweep. A resume of a job that is not paused changes nothing.",
        ),
    };
    let name = action.name();
    json!({
        "resourceType": "OperationDefinition",
        "id": format!("AsyncJob-{name}"),
        "url": format!("{base}/OperationDefinition/AsyncJob-{name}"),
        "name": format!("{}AsyncJob", if action == Action::Pause { "Pause" } else { "Resume" }),
        "title": title,
        "status": "active",
        "kind": "operation",
        "code": name,
        "resource": ["AsyncJob"],
        "system": false,
        "type": false,
        "instance": true,
        "affectsState": true,
        "description": description,
        "comment": "Needs the admin scope; the job records who did it and when, in its \
            output's `control` parts. 404 for an unknown job, 409 for one that has finished.",
        "parameter": [{
            "name": "return", "use": "out", "min": 1, "max": "1", "type": "AsyncJob",
            "documentation": "The job as it is after the operation."
        }]
    })
}
