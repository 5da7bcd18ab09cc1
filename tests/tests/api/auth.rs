//! The caller as API Gateway's JWT authorizer hands it over.

use asyncjob_shared::config::AuthMode;
use asyncjob_tests::{ApiRequest, TestEnv};
use serde_json::json;

const SOME_ID: &str = "0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a";

fn routes() -> Vec<(ApiRequest, bool)> {
    vec![
        (ApiRequest::post("/$data-migration").prefer_async(), true),
        (ApiRequest::delete(&format!("/job/{SOME_ID}/status")), true),
        (
            ApiRequest::post(&format!("/AsyncJob/{SOME_ID}/$pause")),
            true,
        ),
        (
            ApiRequest::post(&format!("/AsyncJob/{SOME_ID}/$resume")),
            true,
        ),
        (ApiRequest::get(&format!("/job/{SOME_ID}/status")), false),
        (ApiRequest::get(&format!("/AsyncJob/{SOME_ID}")), false),
        (ApiRequest::get("/AsyncJob"), false),
        (ApiRequest::post("/AsyncJob/_search"), false),
        (ApiRequest::get("/$data-migration"), false),
    ]
}

async fn env_behind_authorizer() -> TestEnv {
    let mut env = TestEnv::start().await;
    env.config.auth.mode = AuthMode::Authorizer;
    env
}

#[tokio::test]
async fn every_route_needs_claims() {
    let env = env_behind_authorizer().await;
    for (request, _) in routes() {
        env.send(request).await.assert_outcome(401, "login");
    }
    assert!(env.items().await.is_empty());
}

#[tokio::test]
async fn every_route_needs_its_scope() {
    let env = env_behind_authorizer().await;
    for (request, admin) in routes() {
        let nobody = env
            .send(
                request
                    .clone()
                    .claims(json!({"sub": "u", "scope": "openid"})),
            )
            .await;
        nobody.assert_outcome(403, "forbidden");
        let reader = env
            .send(
                request
                    .clone()
                    .claims(json!({"sub": "u", "scope": "asyncjob/read"})),
            )
            .await;
        if admin {
            reader.assert_outcome(403, "forbidden");
        } else {
            assert_ne!(reader.status, 403, "{}", reader.body);
        }
        let admin_answer = env
            .send(request.claims(json!({"sub": "u", "scope": "asyncjob/read asyncjob/admin"})))
            .await;
        assert!(
            ![401, 403].contains(&admin_answer.status),
            "{}",
            admin_answer.body
        );
    }
}

#[tokio::test]
async fn scope_names_are_configurable() {
    let mut env = env_behind_authorizer().await;
    env.config.auth.admin_scope = "jobs.admin".into();
    env.config.auth.scope_claim = "scp".into();
    let kick_off = ApiRequest::post("/$data-migration").prefer_async();
    env.send(kick_off.clone().claims(json!({"scope": "asyncjob/admin"})))
        .await
        .assert_outcome(403, "forbidden");
    let answer = env
        .send(kick_off.claims(json!({"scp": "jobs.admin"})))
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
}
