//! template.yaml deploys what the code serves: every route reaches its function, the local
//! router and the OpenAPI file list the same routes, the Makefile builds every binary, each
//! function's policy grants only what its code uses, and the table is the one the store
//! expects.

use std::collections::{BTreeMap, BTreeSet};

use asyncjob_shared::routes;
use asyncjob_shared::store::test_support::schema::{
    ID, SORT_KEY, STATUS, STATUS_INDEX, TYPE, TYPE_INDEX, TYPE_SORT_KEY,
};
use serde_json::Value;

use asyncjob_tests::template::{TEMPLATE, binary, deployed_binaries, functions, template};

const WORKSPACE: &str = include_str!("../../Cargo.toml");
const MAKEFILE: &str = include_str!("../../Makefile");

type Route = (String, String, String);

/// (method, path, binary) for every HttpApi event.
fn template_routes(template: &Value) -> BTreeSet<Route> {
    let mut routes = BTreeSet::new();
    for function in functions(template).values() {
        for event in function["Properties"]["Events"]
            .as_object()
            .unwrap()
            .values()
        {
            if event["Type"] == "HttpApi" {
                let properties = &event["Properties"];
                assert_eq!(properties["ApiId"]["Ref"], "HttpApi");
                routes.insert((
                    properties["Method"].as_str().unwrap().to_owned(),
                    properties["Path"].as_str().unwrap().to_owned(),
                    binary(function),
                ));
            }
        }
    }
    routes
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

#[test]
fn every_route_reaches_its_function() {
    assert_eq!(template_routes(&template()), api_routes());
}

#[test]
fn the_local_router_serves_the_same_routes() {
    let workspace: toml::Table = WORKSPACE.parse().unwrap();
    let router = workspace["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .unwrap();
    let mut local = BTreeSet::new();
    for (path, targets) in router {
        for target in targets.as_array().unwrap() {
            local.insert(route(
                target["method"].as_str().unwrap(),
                path,
                target["function"].as_str().unwrap(),
            ));
        }
    }
    assert_eq!(local, api_routes());
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

/// DynamoDB actions each function's code sends, and nothing else.
#[test]
fn each_function_may_do_only_what_it_does() {
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("kickoff", &["dynamodb:GetItem", "dynamodb:PutItem"][..]),
        (
            "kickoff-events",
            &["dynamodb:GetItem", "dynamodb:PutItem"][..],
        ),
        ("status", &["dynamodb:GetItem"][..]),
        ("cancel", &["dynamodb:GetItem", "dynamodb:PutItem"][..]),
        ("search", &["dynamodb:GetItem", "dynamodb:Query"][..]),
        (
            "worker",
            &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:UpdateItem",
            ][..],
        ),
    ]);
    for function in functions(&template()).values() {
        let mut actions = BTreeSet::new();
        for policy in function["Properties"]["Policies"].as_array().unwrap() {
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
        let wanted: BTreeSet<String> = expected[binary(function).as_str()]
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(actions, wanted, "{}", binary(function));
    }
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
    let filter = stream["FilterCriteria"]["Filters"][0]["Pattern"]
        .as_str()
        .unwrap();
    let filter: Value = serde_json::from_str(filter).unwrap();
    assert_eq!(
        filter["dynamodb"]["NewImage"]["status"]["S"],
        serde_json::json!(["accepted"])
    );
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
