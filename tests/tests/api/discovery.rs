//! What the API offers: the CapabilityStatement, the data-migration OperationDefinition, the
//! list of migrations, and 405 with `Allow` for methods a path does not take.

use asyncjob_shared::config::AuthMode;
use asyncjob_shared::migration::{MigrationContext, Registry};
use asyncjob_shared::runner::{RunOutcome, RunSettings, Runner};
use asyncjob_tests::{ApiRequest, BASE, TestEnv};
use lambda_http::http::Method;
use serde_json::Value;

/// The parts of a Parameters resource named `name`.
fn named<'a>(parameters: &'a Value, name: &str) -> Vec<&'a Value> {
    parameters["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == name)
        .collect()
}

#[tokio::test]
async fn metadata_is_a_capability_statement_anyone_may_read() {
    let mut env = TestEnv::start().await;
    env.config.auth.mode = AuthMode::Authorizer;
    let answer = env.send(ApiRequest::get("/metadata")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let statement = &answer.body;
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(statement["kind"], "instance");
    assert_eq!(statement["format"], serde_json::json!(["json"]));
    assert!(statement["fhirVersion"].is_string());
    let rest = &statement["rest"][0];
    let resource = &rest["resource"][0];
    assert_eq!(resource["type"], "AsyncJob");
    let interactions: Vec<&str> = resource["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(interactions, ["read", "search-type"]);
    let parameters: Vec<&str> = resource["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        parameters,
        ["type", "status", "_id", "_count", "_sort", "_total"]
    );
    let operation = &rest["operation"][0];
    assert_eq!(operation["name"], "data-migration");
    let definition = operation["definition"].as_str().unwrap();
    assert_eq!(
        definition,
        format!("{BASE}/OperationDefinition/data-migration")
    );

    // The definition it names is there, with its parameters.
    let answer = env
        .send(ApiRequest::get("/OperationDefinition/data-migration"))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let definition_resource = &answer.body;
    assert_eq!(definition_resource["resourceType"], "OperationDefinition");
    assert_eq!(definition_resource["url"], definition);
    assert_eq!(definition_resource["code"], "data-migration");
    assert_eq!(definition_resource["system"], true);
    let parameters: Vec<(&str, &str)> = definition_resource["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["use"].as_str().unwrap()))
        .collect();
    assert_eq!(parameters, [("dataVersion", "in"), ("job", "out")]);
    assert!(
        definition_resource["comment"]
            .as_str()
            .unwrap()
            .contains("Idempotent")
    );

    // The job's own operations, each with a definition that is there.
    for (at, code) in ["pause", "resume"].into_iter().enumerate() {
        let operation = &resource["operation"][at];
        assert_eq!(operation["name"], code);
        let url = operation["definition"].as_str().unwrap();
        let path = url.strip_prefix(BASE).unwrap();
        let answer = env.send(ApiRequest::get(path)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["url"], url);
        assert_eq!(answer.body["code"], code);
        assert_eq!(answer.body["resource"], serde_json::json!(["AsyncJob"]));
        assert_eq!(
            (
                answer.body["instance"].clone(),
                answer.body["system"].clone()
            ),
            (true.into(), false.into())
        );
    }
}

#[tokio::test]
async fn the_migrations_are_listed_with_the_data_version_and_the_one_that_runs() {
    let env = TestEnv::start().await;
    let list = || env.send(ApiRequest::get("/$data-migration"));
    let before = list().await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(named(&before.body, "dataVersion")[0]["valueInteger"], 0);
    assert_eq!(named(&before.body, "newestVersion")[0]["valueInteger"], 2);
    let migrations = named(&before.body, "migration");
    assert_eq!(migrations.len(), 2);
    for (migration, (version, name)) in migrations
        .iter()
        .zip([(1, "expire-finished-jobs"), (2, "rewrite-index-keys")])
    {
        let part = |n: &str| {
            migration["part"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == n)
                .unwrap()
                .clone()
        };
        assert_eq!(part("version")["valueInteger"], version);
        assert_eq!(part("name")["valueString"], name);
        assert!(
            !part("description")["valueString"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
    assert!(named(&before.body, "running").is_empty());

    let job = env.kick_off(2).await;
    let during = list().await;
    let running = named(&during.body, "running");
    assert_eq!(running.len(), 1);
    let parts = running[0]["part"].as_array().unwrap();
    assert_eq!(parts[0]["valueId"], job.id.as_str());
    assert_eq!(
        parts[2]["valueUrl"],
        format!("{BASE}/job/{}/status", job.id)
    );

    let settings = RunSettings::default();
    let store = env.store_of("worker");
    let context = MigrationContext::on(store, settings.page_size);
    let runner = Runner::new(store, Registry::built_in(), context, &settings, "worker");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    assert_eq!(
        runner.run(&job.id, deadline).await.unwrap(),
        RunOutcome::Completed
    );
    let after = list().await;
    assert_eq!(named(&after.body, "dataVersion")[0]["valueInteger"], 2);
    assert!(named(&after.body, "running").is_empty());
}

#[tokio::test]
async fn a_method_a_path_does_not_take_answers_405_with_allow() {
    let env = TestEnv::start().await;
    for (method, path, allow) in [
        (Method::PUT, "/$data-migration", "POST, GET"),
        (Method::DELETE, "/metadata", "GET"),
        (Method::POST, "/OperationDefinition/data-migration", "GET"),
        (
            Method::PATCH,
            "/job/0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a/status",
            "GET, DELETE",
        ),
        (Method::DELETE, "/AsyncJob", "GET"),
        (Method::GET, "/AsyncJob/_search", "POST"),
        (Method::OPTIONS, "/AsyncJob/abc", "GET"),
        (Method::DELETE, "/AsyncJob/abc/$resume", "POST"),
        (Method::PUT, "/OperationDefinition/AsyncJob-pause", "GET"),
    ] {
        let answer = env.send(ApiRequest::new(method.clone(), path)).await;
        answer.assert_outcome(405, "not-supported");
        assert_eq!(answer.header("allow"), Some(allow), "{method} {path}");
    }
}
