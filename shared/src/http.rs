//! Pieces every HTTP handler uses: reading the request, building FHIR responses.

use lambda_http::http::header::{CONTENT_TYPE, HOST, IF_NONE_MATCH};
use lambda_http::http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::config::Config;
use crate::error::ApiError;
use crate::model::{AsyncJob, JobId, instant};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
pub const RETRY_AFTER: &str = "retry-after";
pub const CONTENT_LOCATION: &str = "content-location";
pub const ETAG: &str = "etag";
pub const LAST_MODIFIED: &str = "last-modified";
pub const EXPIRES: &str = "expires";
pub const X_PROGRESS: &str = "x-progress";

/// The largest body a handler reads; anything bigger is refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn fhir_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let json = serde_json::to_string(body).expect("resources serialize to JSON");
    let mut response = Response::new(Body::Text(json));
    *response.status_mut() = status;
    set_header(&mut response, CONTENT_TYPE.as_str(), FHIR_JSON);
    response
}

/// Sets a header the service composed itself. A value that cannot be a header (which the
/// service never builds) is left out rather than failing the request.
pub fn set_header(response: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// Refuses methods a route does not serve; API Gateway only routes the right ones, but the
/// functions must not trust that.
pub fn require_method(request: &Request, allowed: &[Method]) -> Result<(), ApiError> {
    if allowed.contains(request.method()) {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed(format!(
            "{} is not supported on {}",
            request.method(),
            request.uri().path()
        )))
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

pub fn form_pairs(encoded: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(encoded)
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// How the client asked unknown parameters to be treated (`Prefer: handling=...`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Handling {
    #[default]
    Lenient,
    Strict,
}

/// What the `Prefer` headers ask for (RFC 7240); preferences the service does not know
/// are ignored, as the RFC asks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Preferences {
    pub respond_async: bool,
    pub handling: Handling,
}

pub fn preferences(request: &Request) -> Preferences {
    let mut preferences = Preferences::default();
    let values = request.headers().get_all("prefer").into_iter();
    for text in values.filter_map(|value| value.to_str().ok()) {
        for preference in text.split(',') {
            let token = preference.split(';').next().unwrap_or("");
            let (name, value) = match token.split_once('=') {
                Some((name, value)) => (name.trim(), value.trim().trim_matches('"')),
                None => (token.trim(), ""),
            };
            if name.eq_ignore_ascii_case("respond-async") {
                preferences.respond_async = true;
            } else if name.eq_ignore_ascii_case("handling") {
                if value.eq_ignore_ascii_case("strict") {
                    preferences.handling = Handling::Strict;
                } else if value.eq_ignore_ascii_case("lenient") {
                    preferences.handling = Handling::Lenient;
                }
            }
        }
    }
    preferences
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
    let decoded = percent_decode(segment);
    let id = JobId::parse(&decoded).ok_or_else(|| {
        ApiError::Invalid(format!(
            "{decoded:?} is not a valid job id (1 to 64 of A-Z, a-z, 0-9, '-', '.')"
        ))
    })?;
    crate::lambda::record_job(&id);
    Ok(id)
}

fn percent_decode(segment: &str) -> String {
    form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
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

pub fn etag(job: &AsyncJob) -> String {
    format!("W/\"{}\"", job.meta.version_id)
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

/// The validators every answer about one job carries.
pub fn set_validators(response: &mut Response<Body>, job: &AsyncJob) {
    set_header(response, ETAG, &etag(job));
    if let Some(at) = instant::parse(&job.meta.last_updated) {
        set_header(response, LAST_MODIFIED, &instant::http_date(at));
    }
}

/// `304 Not Modified` for a client that already holds the current version.
pub fn not_modified(job: &AsyncJob) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    set_validators(&mut response, job);
    response
}

#[cfg(test)]
mod tests {
    use lambda_http::http;

    use super::*;

    fn request(builder: http::request::Builder) -> Request {
        builder.body(Body::Empty).unwrap()
    }

    #[test]
    fn prefer_is_a_list_of_preferences() {
        let cases = [
            ("respond-async", true, Handling::Lenient),
            ("respond-async, handling=strict", true, Handling::Strict),
            ("handling=lenient, respond-async", true, Handling::Lenient),
            ("RESPOND-ASYNC; wait=10", true, Handling::Lenient),
            ("handling=\"strict\"", false, Handling::Strict),
            ("return=minimal", false, Handling::Lenient),
            ("respond-asyncx", false, Handling::Lenient),
            ("", false, Handling::Lenient),
        ];
        for (header, respond_async, handling) in cases {
            let prefs = preferences(&request(http::Request::builder().header("prefer", header)));
            assert_eq!(prefs.respond_async, respond_async, "{header}");
            assert_eq!(prefs.handling, handling, "{header}");
        }
    }

    #[test]
    fn prefer_headers_may_repeat() {
        let prefs = preferences(&request(
            http::Request::builder()
                .header("prefer", "handling=strict")
                .header("prefer", "respond-async"),
        ));
        assert!(prefs.respond_async);
        assert_eq!(prefs.handling, Handling::Strict);
    }

    proptest::proptest! {
        #[test]
        fn any_prefer_header_is_read_without_panicking(header in "\\PC{0,80}") {
            if let Ok(value) = lambda_http::http::HeaderValue::from_str(&header) {
                let mut request = request(http::Request::builder());
                request.headers_mut().insert("prefer", value);
                let _ = preferences(&request);
            }
        }

        #[test]
        fn respond_async_is_found_anywhere_in_the_list(
            before in proptest::collection::vec("[a-z]{1,8}(=[a-z0-9]{1,5})?", 0..4),
            after in proptest::collection::vec("[a-z]{1,8}(=[a-z0-9]{1,5})?", 0..4),
            upper in proptest::bool::ANY,
        ) {
            let token = if upper { "RESPOND-ASYNC" } else { "respond-async" };
            let list = [before, vec![token.to_owned()], after].concat().join(", ");
            let prefs = preferences(&request(http::Request::builder().header("prefer", list.as_str())));
            proptest::prop_assert!(prefs.respond_async, "{}", list);
        }

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
        let encoded = request(http::Request::builder().uri("/AsyncJob/a%2Fb"));
        assert!(job_id_in_path(&encoded, 0).is_err());
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
