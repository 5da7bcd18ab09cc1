//! Who is calling, and may they: scopes from the JWT authorizer's claims in AWS, or from an
//! unsigned token on the local stack.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;

use super::error::ApiError;
use crate::config::{AuthConfig, AuthMode};
use crate::model::control::actor_name;

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Poll, read, search.
    Read,
    /// Kick off, and steer a job: pause, resume, cancel.
    Admin,
}

/// Lets the request through when its caller holds the scope `access` needs, and says who
/// the caller is: the token's subject, else its client id, as a job records it.
pub fn authorize(request: &Request, auth: &AuthConfig, access: Access) -> Result<String, ApiError> {
    let Some(caller) = caller(request, auth)? else {
        // Only the local stack lets a caller without a token do everything.
        return Ok(LOCAL_CALLER.to_owned());
    };
    let scopes = caller.scopes(&auth.scope_claim);
    let holds = |scope: &str| scopes.iter().any(|held| held == scope);
    let allowed = match access {
        Access::Read => holds(&auth.read_scope) || holds(&auth.admin_scope),
        Access::Admin => holds(&auth.admin_scope),
    };
    if allowed {
        Ok(caller.name())
    } else {
        let needed = match access {
            Access::Read => &auth.read_scope,
            Access::Admin => &auth.admin_scope,
        };
        Err(ApiError::Forbidden(format!(
            "this request needs the scope {needed:?}"
        )))
    }
}

/// Who a caller without a token is, on the local stack.
pub const LOCAL_CALLER: &str = "local";

/// What the caller's token says; `None` means unrestricted (local stack without a token).
fn caller(request: &Request, auth: &AuthConfig) -> Result<Option<Caller>, ApiError> {
    match auth.mode {
        AuthMode::Authorizer => authorizer_claims(request).map(Some),
        AuthMode::Local => match bearer_token(request) {
            None => Ok(None),
            Some(token) => unverified_token_claims(token).map(Some),
        },
    }
}

fn unauthenticated() -> ApiError {
    ApiError::Unauthenticated("this request needs a valid bearer token".into())
}

/// The JWT authorizer's claims, and the scopes it parsed from the token, if any.
fn authorizer_claims(request: &Request) -> Result<Caller, ApiError> {
    let jwt = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .authorizer
            .as_ref()
            .and_then(|authorizer| authorizer.jwt.as_ref()),
        _ => None,
    };
    let jwt = jwt
        .filter(|jwt| !jwt.claims.is_empty())
        .ok_or_else(unauthenticated)?;
    Ok(Caller {
        claims: jwt
            .claims
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect(),
        scopes: jwt.scopes.clone().unwrap_or_default(),
    })
}

/// What a caller's token says.
struct Caller {
    claims: serde_json::Map<String, Value>,
    /// Scopes the authorizer parsed, beside those of the scope claim.
    scopes: Vec<String>,
}

impl Caller {
    /// The scopes the token grants: those API Gateway parsed and those of `scope_claim`
    /// (space separated, or a list).
    fn scopes(&self, scope_claim: &str) -> Vec<String> {
        let claimed: Vec<String> = match self.claims.get(scope_claim) {
            Some(Value::String(text)) => split_scopes(text).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        self.scopes.iter().cloned().chain(claimed).collect()
    }

    /// The token's subject, else its client id, as a job keeps a name.
    fn name(&self) -> String {
        let name = ["sub", "client_id"]
            .iter()
            .find_map(|claim| self.claims.get(*claim).and_then(Value::as_str))
            .unwrap_or("");
        actor_name(name)
    }
}

/// The bearer token; `Some("")` when an `Authorization` header is there but holds none, so
/// that a garbled header is refused rather than treated as no header.
fn bearer_token(request: &Request) -> Option<&str> {
    let value = request.headers().get("authorization")?;
    let text = value.to_str().unwrap_or("").trim();
    Some(match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => "",
    })
}

/// Reads the claims of a JWT without checking its signature: only for the local stack.
fn unverified_token_claims(token: &str) -> Result<Caller, ApiError> {
    let payload = token.split('.').nth(1).ok_or_else(unauthenticated)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| unauthenticated())?;
    let claims = serde_json::from_slice(&bytes).map_err(|_| unauthenticated())?;
    Ok(Caller {
        claims,
        scopes: Vec::new(),
    })
}

/// A scope claim is space separated; API Gateway may also render a list as `[a b]`.
fn split_scopes(claim: &str) -> impl Iterator<Item = String> + '_ {
    claim
        .trim_matches(|c| c == '[' || c == ']')
        .split([' ', ','])
        .filter(|scope| !scope.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use lambda_http::{Body, http};
    use serde_json::json;

    use super::*;
    use crate::config::Config;

    fn auth(mode: AuthMode) -> AuthConfig {
        AuthConfig {
            mode,
            ..Config::from_lookup(|_| None).unwrap().auth
        }
    }

    fn token(claims: Value) -> String {
        format!(
            "Bearer e30.{}.sig",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    fn local_request(authorization: Option<&str>) -> Request {
        let mut builder = http::Request::builder();
        if let Some(value) = authorization {
            builder = builder.header("authorization", value);
        }
        builder.body(Body::Empty).unwrap()
    }

    fn gateway_request(claims: Value) -> Request {
        let event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/AsyncJob",
            "rawQueryString": "", "headers": {"host": "x"},
            "requestContext": {
                "accountId": "1", "apiId": "a", "domainName": "x", "domainPrefix": "x",
                "http": {"method": "GET", "path": "/AsyncJob", "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "t"},
                "requestId": "r", "routeKey": "$default", "stage": "$default",
                "time": "27/Nov/2026:12:00:00 +0000", "timeEpoch": 0,
                "authorizer": {"jwt": {"claims": claims, "scopes": null}}
            },
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    #[test]
    fn local_mode_without_a_token_may_do_everything() {
        let auth = auth(AuthMode::Local);
        let caller = authorize(&local_request(None), &auth, Access::Admin);
        assert_eq!(caller.unwrap(), LOCAL_CALLER);
    }

    #[test]
    fn local_mode_reads_scopes_from_an_unsigned_token() {
        let auth = auth(AuthMode::Local);
        let reader = token(json!({"sub": "r", "scope": "asyncjob/read"}));
        let request = local_request(Some(&reader));
        assert_eq!(authorize(&request, &auth, Access::Read).unwrap(), "r");
        assert!(matches!(
            authorize(&request, &auth, Access::Admin),
            Err(ApiError::Forbidden(_))
        ));
        let admin = token(json!({"client_id": "pipeline", "scope": ["asyncjob/admin"]}));
        let caller = authorize(&local_request(Some(&admin)), &auth, Access::Read);
        assert_eq!(caller.unwrap(), "pipeline", "no subject: the client id");
    }

    #[test]
    fn a_garbled_token_is_unauthenticated() {
        let auth = auth(AuthMode::Local);
        for header in [
            "Bearer nonsense",
            "Bearer a.!!!.c",
            "Basic dXNlcjpwdw==",
            "Bearer",
        ] {
            assert!(
                matches!(
                    authorize(&local_request(Some(header)), &auth, Access::Read),
                    Err(ApiError::Unauthenticated(_))
                ),
                "{header}"
            );
        }
    }

    #[test]
    fn authorizer_mode_needs_claims() {
        let auth = auth(AuthMode::Authorizer);
        assert!(matches!(
            authorize(&local_request(None), &auth, Access::Read),
            Err(ApiError::Unauthenticated(_))
        ));
        let reader = gateway_request(json!({"sub": "u", "scope": "openid asyncjob/read"}));
        assert_eq!(authorize(&reader, &auth, Access::Read).unwrap(), "u");
        assert!(matches!(
            authorize(&reader, &auth, Access::Admin),
            Err(ApiError::Forbidden(_))
        ));
        let nobody = gateway_request(json!({"sub": "u"}));
        assert!(matches!(
            authorize(&nobody, &auth, Access::Read),
            Err(ApiError::Forbidden(_))
        ));
    }
}
