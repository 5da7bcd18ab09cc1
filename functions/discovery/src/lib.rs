//! What the API offers: `GET /metadata` (the CapabilityStatement), the
//! OperationDefinitions (`GET /OperationDefinition/data-migration`, `.../AsyncJob-pause`,
//! `.../AsyncJob-resume`), and `GET /$data-migration` (the registered
//! migrations, the stored data version and the migration that runs, if one does).

mod documents;

use asyncjob_shared::config::Config;
use asyncjob_shared::http::auth::{self, Access};
use asyncjob_shared::http::serve::answer;
use asyncjob_shared::http::{ApiError, request, response};
use asyncjob_shared::migration::Registry;
use asyncjob_shared::model::{Action, Parameter, Parameters};
use asyncjob_shared::routes;
use asyncjob_shared::store::JobStore;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

pub async fn handle(store: &impl JobStore, config: &Config, request: Request) -> Response<Body> {
    let template = routes::template_of(request.uri().path());
    match (request.method(), template) {
        (&Method::GET, Some(routes::KICKOFF)) => {
            answer("migrations", migrations(store, config, &request)).await
        }
        (&Method::GET, Some(routes::OPERATION_DEFINITION)) => {
            answer(
                "operation-definition",
                describe(config, &request, documents::operation_definition),
            )
            .await
        }
        (&Method::GET, Some(path @ (routes::PAUSE_DEFINITION | routes::RESUME_DEFINITION))) => {
            let action = if path == routes::PAUSE_DEFINITION {
                Action::Pause
            } else {
                Action::Resume
            };
            answer(
                "operation-definition",
                describe(config, &request, |base| {
                    documents::control_definition(base, action)
                }),
            )
            .await
        }
        (&Method::GET, Some(routes::METADATA)) => {
            answer(
                "metadata",
                describe(config, &request, |base| {
                    documents::capability_statement(base, config)
                }),
            )
            .await
        }
        // Every method a path does not serve is routed here (`routes::UNSERVED`).
        _ => {
            let refusal = request::method_not_allowed(&request, &[Method::GET.as_str()]);
            answer("method-not-allowed", async { Err(refusal) }).await
        }
    }
}

/// A description of the API. Anyone may read it, as FHIR clients expect of `/metadata`.
async fn describe(
    config: &Config,
    request: &Request,
    document: impl Fn(&str) -> serde_json::Value,
) -> Result<Response<Body>, ApiError> {
    let base = request::base_url(request, config)?;
    Ok(response::fhir_response(StatusCode::OK, &document(&base)))
}

/// The registered migrations, the data version the stored data is at, and the migration that
/// runs, if one does.
async fn migrations(
    store: &impl JobStore,
    config: &Config,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    auth::authorize(request, &config.auth, Access::Read)?;
    let base = request::base_url(request, config)?;
    let registry = Registry::built_in();
    let mut parameter = vec![
        Parameter::integer("dataVersion", store.data_version().await?.into()),
        Parameter::integer("newestVersion", registry.newest().into()),
    ];
    parameter.extend(registry.migrations().map(|migration| {
        Parameter::parts(
            "migration",
            vec![
                Parameter::integer("version", migration.version().into()),
                Parameter::string("name", migration.name()),
                Parameter::string("description", migration.description()),
            ],
        )
    }));
    if let Some(running) = store.running_migration().await? {
        parameter.push(Parameter::parts(
            "running",
            vec![
                Parameter::id("job", running.id.as_str()),
                Parameter::integer("dataVersion", running.data_version.unwrap_or(0).into()),
                Parameter::url("status", &format!("{base}/job/{}/status", running.id)),
            ],
        ));
    }
    Ok(response::fhir_response(
        StatusCode::OK,
        &Parameters::new(parameter),
    ))
}
