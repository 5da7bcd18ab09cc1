//! template.yaml deploys what the code serves: every route reaches its function, the local
//! router and the OpenAPI file list the same routes, the Makefile builds every binary, each
//! function's policy grants only what its code uses, and the table is the one the store
//! expects.

use std::collections::{BTreeMap, BTreeSet};

use asyncjob_shared::model::{JobId, SegmentKey};
use asyncjob_shared::routes;
use asyncjob_shared::store::test_support::schema::{
    self, ID, SORT_KEY, STATUS, STATUS_INDEX, TYPE, TYPE_INDEX, TYPE_SORT_KEY,
};
use serde_json::Value;

use asyncjob_tests::recorded_actions_folder;
use asyncjob_tests::template::{TEMPLATE, binary, deployed_binaries, functions, template};

const WORKSPACE: &str = include_str!("../../Cargo.toml");
const MAKEFILE: &str = include_str!("../../Makefile");

type Route = (String, String, String);

/// Each HttpApi event's function and properties.
fn http_api_events(template: &Value) -> Vec<(Value, Value)> {
    functions(template)
        .into_values()
        .flat_map(|function| {
            let events: Vec<Value> = function["Properties"]["Events"]
                .as_object()
                .unwrap()
                .values()
                .filter(|event| event["Type"] == "HttpApi")
                .map(|event| event["Properties"].clone())
                .collect();
            events
                .into_iter()
                .map(move |properties| (function.clone(), properties))
        })
        .collect()
}

fn method_and_path(properties: &Value) -> (String, String) {
    (
        properties["Method"].as_str().unwrap().to_owned(),
        properties["Path"].as_str().unwrap().to_owned(),
    )
}

/// (method, path, binary) for every HttpApi event.
fn template_routes(template: &Value) -> BTreeSet<Route> {
    http_api_events(template)
        .into_iter()
        .map(|(function, properties)| {
            assert_eq!(properties["ApiId"]["Ref"], "HttpApi");
            let (method, path) = method_and_path(&properties);
            (method, path, binary(&function))
        })
        .collect()
}

fn route(method: &str, path: &str, function: &str) -> Route {
    (method.to_owned(), path.to_owned(), function.to_owned())
}

/// The routes the code serves: the one list the others are checked against.
fn api_routes() -> BTreeSet<Route> {
    routes::ROUTES
        .iter()
        .map(|r| route(r.method, r.path, r.function))
        .collect()
}

/// Beside its routes, each path has an `ANY` route to the function that answers 405.
#[test]
fn every_route_reaches_its_function() {
    let mut expected = api_routes();
    expected.extend(routes::paths().map(|path| route("ANY", path, routes::UNSERVED)));
    assert_eq!(template_routes(&template()), expected);
}

/// Only what holds no job data is public: the API's description, the dashboard's files and
/// the 405 answers. Every route that reads or changes a job is behind the JWT authorizer.
#[test]
fn only_routes_that_hold_no_job_data_skip_the_authorizer() {
    let public: BTreeSet<(String, String)> = http_api_events(&template())
        .into_iter()
        .filter(|(_, properties)| properties["Auth"]["Authorizer"] == "NONE")
        .map(|(_, properties)| method_and_path(&properties))
        .collect();
    let mut expected: BTreeSet<(String, String)> = [
        routes::METADATA,
        routes::OPERATION_DEFINITION,
        routes::PAUSE_DEFINITION,
        routes::RESUME_DEFINITION,
        routes::UI,
        routes::UI_ASSET,
    ]
    .into_iter()
    .map(|path| ("GET".to_owned(), path.to_owned()))
    .collect();
    expected.extend(routes::paths().map(|path| ("ANY".to_owned(), path.to_owned())));
    assert_eq!(public, expected);
}

/// Every method on every path reaches the function API Gateway would send it to.
#[test]
fn the_local_router_serves_the_same_routes() {
    let workspace: toml::Table = WORKSPACE.parse().unwrap();
    let router = workspace["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_array()
        .unwrap();
    let mut local = BTreeSet::new();
    for entry in router {
        for method in entry["methods"].as_array().unwrap() {
            let added = local.insert(route(
                method.as_str().unwrap(),
                entry["path"].as_str().unwrap(),
                entry["function"].as_str().unwrap(),
            ));
            assert!(added, "{method} {} is routed twice", entry["path"]);
        }
    }
    let expected: BTreeSet<Route> = routes::paths()
        .flat_map(|path| {
            routes::METHODS
                .iter()
                .map(move |method| route(method, path, routes::function_for(method, path).unwrap()))
        })
        .collect();
    assert_eq!(local, expected);
}

#[test]
fn functions_are_arm64_rust_bootstraps_behind_the_jwt_authorizer() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"], serde_json::json!(["arm64"]));
    assert_eq!(globals["Handler"], "bootstrap");
    for function in functions(&template).values() {
        assert_eq!(function["Metadata"]["BuildMethod"], "rust-cargolambda");
    }
    let auth = &template["Resources"]["HttpApi"]["Properties"]["Auth"];
    assert_eq!(auth["DefaultAuthorizer"], "JwtAuthorizer");
    assert!(auth["Authorizers"]["JwtAuthorizer"]["JwtConfiguration"]["issuer"].is_object());
}

/// `make build` and `make bench` build exactly the binaries the template deploys.
#[test]
fn the_makefile_builds_every_deployed_binary() {
    let line = MAKEFILE
        .lines()
        .find_map(|line| line.strip_prefix("FUNCTIONS :="))
        .expect("the Makefile lists FUNCTIONS");
    let mut listed: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    listed.sort();
    assert_eq!(listed, deployed_binaries());
}

#[test]
fn the_local_auth_mode_is_never_deployed() {
    assert!(!TEMPLATE.contains("ASYNCJOB_AUTH"));
}

/// The DynamoDB actions a function's policy grants, with no wildcard and no resource `*`.
/// A function without policies grants none.
fn granted_actions(function: &Value) -> BTreeSet<String> {
    let mut actions = BTreeSet::new();
    let policies = function["Properties"]["Policies"].as_array();
    for policy in policies.into_iter().flatten() {
        for statement in policy["Statement"].as_array().unwrap() {
            for action in statement["Action"].as_array().unwrap() {
                let action = action.as_str().unwrap();
                assert!(!action.contains('*'), "{} may {action}", binary(function));
                for resource in statement["Resource"].as_array().unwrap() {
                    assert_ne!(
                        resource,
                        "*",
                        "{} may {action} on anything",
                        binary(function)
                    );
                }
                if action.starts_with("dynamodb:") {
                    actions.insert(action.to_owned());
                }
            }
        }
    }
    actions
}

/// Each function's policy grants exactly the DynamoDB actions its code sent while the other
/// tests ran (they record them in `target/iam-actions/`), so `make integration` runs this
/// after them.
#[test]
#[ignore = "make integration runs it after the tests that record the actions"]
fn each_function_is_granted_exactly_the_actions_its_code_sends() {
    let mut recorded: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let folder = recorded_actions_folder();
    let files = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("no actions recorded in {}: {error}", folder.display()));
    for file in files {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        for line in text.lines() {
            let (function, action) = line.split_once(' ').unwrap();
            recorded
                .entry(function.to_owned())
                .or_default()
                .insert(action.to_owned());
        }
    }
    for function in functions(&template()).values() {
        let name = binary(function);
        let sent = recorded.remove(&name).unwrap_or_default();
        let granted = granted_actions(function);
        assert!(
            !sent.is_empty() || granted.is_empty(),
            "no test recorded what {name} sends"
        );
        assert_eq!(granted, sent, "{name}");
    }
    assert!(
        recorded.is_empty(),
        "functions the template lacks: {recorded:?}"
    );
}

#[test]
fn the_table_is_the_one_the_store_expects() {
    let template = template();
    let table = &template["Resources"]["JobsTable"]["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(table["KeySchema"][0]["AttributeName"], ID);
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"],
        "expiresAt"
    );
    assert_eq!(
        table["StreamSpecification"]["StreamViewType"],
        "NEW_AND_OLD_IMAGES"
    );
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    let indexes: BTreeMap<String, (String, String)> = table["GlobalSecondaryIndexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|index| {
            let key = |n: usize| {
                index["KeySchema"][n]["AttributeName"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            };
            (
                index["IndexName"].as_str().unwrap().to_owned(),
                (key(0), key(1)),
            )
        })
        .collect();
    assert_eq!(
        indexes,
        BTreeMap::from([
            (
                STATUS_INDEX.to_owned(),
                (STATUS.to_owned(), SORT_KEY.to_owned())
            ),
            (
                TYPE_INDEX.to_owned(),
                (TYPE.to_owned(), TYPE_SORT_KEY.to_owned())
            ),
        ])
    );
}

#[test]
fn the_worker_runs_from_the_stream_and_the_schedule() {
    let template = template();
    let events = &template["Resources"]["WorkerFunction"]["Properties"]["Events"];
    let stream = &events["NewJobs"]["Properties"];
    assert_eq!(events["NewJobs"]["Type"], "DynamoDB");
    assert_eq!(stream["BisectBatchOnFunctionError"], true);
    assert!(stream["MaximumRetryAttempts"].as_u64().unwrap() <= 10);
    assert_eq!(
        stream["FunctionResponseTypes"],
        serde_json::json!(["ReportBatchItemFailures"])
    );
    assert!(stream["DestinationConfig"]["OnFailure"]["Destination"].is_object());
    let filters: Vec<Value> = stream["FilterCriteria"]["Filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|filter| serde_json::from_str(filter["Pattern"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        filters[0]["dynamodb"]["NewImage"]["status"]["S"],
        serde_json::json!(["accepted"])
    );
    // New segment items, by the prefix of their key.
    let prefix = filters[1]["dynamodb"]["Keys"]["id"]["S"][0]["prefix"]
        .as_str()
        .unwrap();
    let key = SegmentKey::all(&JobId::generate(), 2, 4).remove(0);
    assert!(schema::segment_key(&key).starts_with(prefix), "{prefix}");
    assert_eq!(filters.len(), 2);
    assert_eq!(events["Sweep"]["Type"], "Schedule");
}

/// api/openapi.yaml documents exactly the routes the template deploys.
#[test]
fn the_openapi_contract_covers_every_route() {
    let openapi: Value = serde_yaml_ng::from_str(include_str!("../../api/openapi.yaml")).unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in openapi["paths"].as_object().unwrap() {
        for method in ["get", "post", "delete", "put", "patch"] {
            if item.get(method).is_some() {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    let deployed: BTreeSet<(String, String)> = api_routes()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    assert_eq!(documented, deployed);
}

/// Only the configured publishers may kick off by event: the rule listens on a bus of the
/// stack's own for the configured source from this account, and the bus and the queue deny
/// everyone else, in this account too.
#[test]
fn only_the_configured_publishers_may_kick_off_by_event() {
    let template = template();
    let resources = &template["Resources"];
    let rule = &resources["KickoffEventsFunction"]["Properties"]["Events"]["Bus"]["Properties"];
    assert_eq!(rule["EventBusName"]["Ref"], "KickoffBus");
    assert_eq!(rule["Pattern"]["source"][0]["Ref"], "EventSource");
    assert_eq!(rule["Pattern"]["account"][0]["Ref"], "AWS::AccountId");
    assert_eq!(resources["KickoffBus"]["Type"], "AWS::Events::EventBus");
    let bus = &resources["KickoffBusPolicy"]["Properties"];
    let queue = &resources["KickoffQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
    for (statement, action) in [
        (&bus["Statement"], "events:PutEvents"),
        (queue, "sqs:SendMessage"),
    ] {
        assert_eq!(statement["Effect"], "Deny");
        assert_eq!(statement["Principal"], "*");
        assert_eq!(statement["Action"], action);
        assert_eq!(
            statement["Condition"]["ArnNotLike"]["aws:PrincipalArn"]["Ref"],
            "KickoffPublisherArns"
        );
    }
    assert_eq!(bus["EventBusName"]["Ref"], "KickoffBus");
    // The function checks the source itself too.
    let variables = &template["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(variables["ASYNCJOB_EVENT_SOURCE"]["Ref"], "EventSource");
}

/// Every alarm notifies the topic given as a parameter, and a job that ends in error
/// raises one: the metric the worker writes in embedded metric format.
#[test]
fn every_alarm_notifies_the_topic_and_failed_jobs_raise_one() {
    let template = template();
    let alarms: Vec<&Value> = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|resource| resource["Type"] == "AWS::CloudWatch::Alarm")
        .collect();
    assert!(alarms.len() >= 5);
    for alarm in &alarms {
        let properties = &alarm["Properties"];
        assert_eq!(
            properties["AlarmActions"],
            serde_json::json!([{"Ref": "AlarmTopicArn"}]),
            "{}",
            properties["AlarmDescription"]
        );
    }
    let failed = alarms
        .iter()
        .map(|alarm| &alarm["Properties"])
        .find(|properties| properties["MetricName"] == worker::metrics::JOBS_FAILED)
        .expect("an alarm on failed jobs");
    assert_eq!(failed["Namespace"], worker::metrics::NAMESPACE);
    let (dimension, value) = worker::metrics::SERVICE_DIMENSION;
    assert_eq!(
        failed["Dimensions"],
        serde_json::json!([{"Name": dimension, "Value": value}])
    );
}

/// Search cursors are keyed by a secret the stack generates, not by anything public.
#[test]
fn search_cursors_are_keyed_by_a_generated_secret() {
    let template = template();
    let resources = &template["Resources"];
    let secret = &resources["CursorSecret"];
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    assert!(
        secret["Properties"]["GenerateSecretString"]["PasswordLength"]
            .as_u64()
            .unwrap()
            >= 32
    );
    let key = &resources["SearchFunction"]["Properties"]["Environment"]["Variables"]["ASYNCJOB_CURSOR_SECRET"]
        ["Fn::Sub"];
    assert_eq!(
        key,
        "{{resolve:secretsmanager:${CursorSecret}:SecretString}}"
    );
}
