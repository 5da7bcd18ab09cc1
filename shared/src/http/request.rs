//! Reading an HTTP request: its method, path, headers, query and body. Everything a client
//! can get wrong is answered with an [`ApiError`].

use lambda_http::Request;
use lambda_http::http::Method;
use lambda_http::http::header::{CONTENT_TYPE, HOST, IF_NONE_MATCH};

use super::error::ApiError;
use crate::config::Config;
use crate::model::JobId;
use crate::parse::form_pairs;
use crate::parse::prefer::Preferences;
use crate::routes;

/// The largest body a handler reads; anything bigger is refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Refuses methods a route does not serve; API Gateway only routes the right ones, but the
/// functions must not trust that.
pub fn require_method(request: &Request, allowed: &[Method]) -> Result<(), ApiError> {
    if allowed.contains(request.method()) {
        return Ok(());
    }
    let served: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    Err(method_not_allowed(request, &served))
}

/// 405 for a method the request's path does not take, naming in `Allow` those it does (or
/// `fallback`, for a path on no route).
pub fn method_not_allowed(request: &Request, fallback: &[&str]) -> ApiError {
    let path = request.uri().path();
    let mut methods: Vec<&str> = routes::at(path).map(|route| route.method).collect();
    if methods.is_empty() {
        methods = fallback.to_vec();
    }
    ApiError::MethodNotAllowed {
        message: format!("{} is not supported on {path}", request.method()),
        allow: methods.join(", "),
    }
}

/// The base of the absolute URLs the service writes: `PUBLIC_BASE_URL` when set, else the
/// request's `X-Forwarded-Proto` and `Host`.
pub fn base_url(request: &Request, config: &Config) -> Result<String, ApiError> {
    if let Some(base) = &config.public_base_url {
        return Ok(base.clone());
    }
    let host = header_text(request, HOST.as_str())
        .filter(|host| is_valid_host(host))
        .ok_or_else(|| ApiError::Invalid("the Host header is missing or not a host".into()))?;
    let scheme = match header_text(request, "x-forwarded-proto") {
        Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    Ok(format!("{scheme}://{host}"))
}

fn is_valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// The request's URL under `base`, query string included.
pub fn request_url(request: &Request, base: &str) -> String {
    match request.uri().query() {
        Some(query) if !query.is_empty() => format!("{base}{}?{query}", request.uri().path()),
        _ => format!("{base}{}", request.uri().path()),
    }
}

pub fn header_text<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// The query string as decoded name/value pairs, in order, repeats kept.
pub fn query_pairs(request: &Request) -> Vec<(String, String)> {
    form_pairs(request.uri().query().unwrap_or("").as_bytes())
}

/// What the request's `Prefer` headers ask for.
pub fn preferences(request: &Request) -> Preferences {
    Preferences::parse(
        request
            .headers()
            .get_all("prefer")
            .into_iter()
            .filter_map(|value| value.to_str().ok()),
    )
}

/// The job id in the path, counted from the end: `/job/{id}/status` has it one segment
/// before the last, `/AsyncJob/{id}` in the last. Counting from the end keeps it right under
/// a stage or base-path prefix.
pub fn job_id_in_path(request: &Request, segments_after_id: usize) -> Result<JobId, ApiError> {
    let segment = request
        .uri()
        .path()
        .trim_end_matches('/')
        .rsplit('/')
        .nth(segments_after_id)
        .unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
    JobId::parse(&decoded).ok_or_else(|| {
        ApiError::Invalid(format!(
            "{decoded:?} is not a valid job id (1 to 64 of A-Z, a-z, 0-9, '-', '.')"
        ))
    })
}

/// The request body, refused past [`MAX_BODY_BYTES`].
pub fn body_bytes(request: &Request) -> Result<&[u8], ApiError> {
    let body = request.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "the body is {} bytes; at most {MAX_BODY_BYTES} are accepted",
            body.len()
        )));
    }
    Ok(body)
}

/// The media type of the body, lower-cased and without parameters.
pub fn media_type(request: &Request) -> Option<String> {
    header_text(request, CONTENT_TYPE.as_str()).map(|value| {
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// Whether `If-None-Match` names the current version (weak comparison, RFC 9110 §13.1.2).
pub fn if_none_match_hits(request: &Request, current_etag: &str) -> bool {
    let current = current_etag.trim_start_matches("W/");
    request
        .headers()
        .get_all(IF_NONE_MATCH)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == current)
}

#[cfg(test)]
mod tests {
    use lambda_http::{Body, http};

    use super::*;

    fn request(builder: http::request::Builder) -> Request {
        builder.body(Body::Empty).unwrap()
    }

    #[test]
    fn every_prefer_header_is_read() {
        let prefs = preferences(&request(
            http::Request::builder()
                .header("prefer", "handling=strict")
                .header("prefer", "respond-async"),
        ));
        assert!(prefs.respond_async);
        assert_eq!(prefs.handling, crate::parse::prefer::Handling::Strict);
    }

    proptest::proptest! {
        #[test]
        fn any_path_yields_an_id_or_a_400(path in "/[ -~]{0,80}") {
            if let Ok(uri) = path.parse::<lambda_http::http::Uri>() {
                let request = request(http::Request::builder().uri(uri));
                match job_id_in_path(&request, 0) {
                    Ok(id) => proptest::prop_assert!(JobId::parse(id.as_str()).is_some()),
                    Err(error) => proptest::prop_assert!(matches!(error, ApiError::Invalid(_))),
                }
            }
        }
    }

    #[test]
    fn ids_are_read_from_the_end_of_the_path() {
        let status = request(http::Request::builder().uri("/prod/job/abc-1.2/status"));
        assert_eq!(job_id_in_path(&status, 1).unwrap().as_str(), "abc-1.2");
        let read = request(http::Request::builder().uri("/AsyncJob/abc/"));
        assert_eq!(job_id_in_path(&read, 0).unwrap().as_str(), "abc");
        let encoded = request(http::Request::builder().uri("/AsyncJob/a%2Eb"));
        assert_eq!(job_id_in_path(&encoded, 0).unwrap().as_str(), "a.b");
        for not_an_id in [
            "/AsyncJob/a%2Fb",
            "/AsyncJob/a&b=c",
            "/AsyncJob/a+b",
            "/AsyncJob/%FF",
        ] {
            let request = request(http::Request::builder().uri(not_an_id));
            assert!(job_id_in_path(&request, 0).is_err(), "{not_an_id}");
        }
        let empty = request(http::Request::builder().uri("/job//status"));
        assert!(job_id_in_path(&empty, 1).is_err());
    }

    #[test]
    fn base_url_prefers_the_configured_one() {
        let mut config = Config::from_lookup(|_| None).unwrap();
        let req = request(
            http::Request::builder()
                .header("host", "api.example.org")
                .header("x-forwarded-proto", "https"),
        );
        assert_eq!(base_url(&req, &config).unwrap(), "https://api.example.org");
        config.public_base_url = Some("https://jobs.example.org/v1".into());
        assert_eq!(
            base_url(&req, &config).unwrap(),
            "https://jobs.example.org/v1"
        );
    }

    #[test]
    fn a_host_that_is_not_a_host_is_refused() {
        let config = Config::from_lookup(|_| None).unwrap();
        let req = request(http::Request::builder().header("host", "evil.org/path?x"));
        assert!(base_url(&req, &config).is_err());
        let missing = request(http::Request::builder());
        assert!(base_url(&missing, &config).is_err());
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        let req = request(http::Request::builder().header("if-none-match", "\"1\", W/\"3\""));
        assert!(if_none_match_hits(&req, "W/\"3\""));
        assert!(if_none_match_hits(&req, "W/\"1\""));
        assert!(!if_none_match_hits(&req, "W/\"2\""));
        let any = request(http::Request::builder().header("if-none-match", "*"));
        assert!(if_none_match_hits(&any, "W/\"9\""));
    }
}
