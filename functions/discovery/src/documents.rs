//! The API described as FHIR resources: the `CapabilityStatement` and the data-migration
//! `OperationDefinition`. Both are built from the service's own lists (routes, search
//! parameters), so they say what the code does.

use asyncjob_shared::config::Config;
use asyncjob_shared::parse::search::{DEFAULT_COUNT, MAX_COUNT, MAX_IDS};
use serde_json::{Value, json};

/// The FHIR release whose JSON the service speaks (`AsyncJob` itself comes from the FHIR
/// asynchronous request pattern).
const FHIR_VERSION: &str = "5.0.0";

/// When what this statement says last changed.
const STATEMENT_DATE: &str = "2026-11-28";

pub fn capability_statement(base: &str, config: &Config) -> Value {
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
                 {:?} kicks off and cancels.",
                config.auth.read_scope, config.auth.admin_scope
            )},
            "resource": [{
                "type": "AsyncJob",
                "interaction": [{"code": "read"}, {"code": "search-type"}],
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
