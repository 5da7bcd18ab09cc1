//! `GET /ui` and `GET /ui/{asset}`: the operator dashboard. The page is static; it calls the
//! API from the browser with the operator's token, so this function reads nothing and holds
//! no secret.

mod assets;

use asyncjob_shared::http::response::{ETAG, set_header};
use asyncjob_shared::http::serve::answer;
use asyncjob_shared::http::{ApiError, request};
use asyncjob_shared::routes;
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use assets::{ASSETS, Asset};

/// Only the page's own files run, style and load; nothing is sent anywhere but the API it
/// came from; no other site may frame it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The page itself is checked on every load, so a deploy shows at once.
const REVALIDATE: &str = "no-cache";
/// A file asked for by its fingerprint never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub async fn handle(request: Request) -> Response<Body> {
    answer("ui", async { serve(&request) }).await
}

fn serve(request: &Request) -> Result<Response<Body>, ApiError> {
    if request.method() != Method::GET {
        return Err(request::method_not_allowed(
            request,
            &[Method::GET.as_str()],
        ));
    }
    let path = request.uri().path();
    if routes::template_of(path) != Some(routes::UI_ASSET) {
        return Ok(respond(request, &ASSETS.page, REVALIDATE));
    }
    let name = path.rsplit('/').next().unwrap_or_default();
    let asset = ASSETS
        .file(name)
        .ok_or_else(|| ApiError::NotFound(format!("the dashboard has no file {name:?}")))?;
    let fingerprinted = request::query_pairs(request)
        .iter()
        .any(|(key, value)| key == "v" && *value == asset.fingerprint);
    let caching = if fingerprinted { IMMUTABLE } else { REVALIDATE };
    Ok(respond(request, asset, caching))
}

/// The file, or `304` when the browser holds it already.
fn respond(request: &Request, asset: &Asset, caching: &str) -> Response<Body> {
    let etag = asset.etag();
    let mut response = if request::if_none_match_hits(request, &etag) {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(Body::Text(asset.body.to_string()));
        set_header(&mut response, CONTENT_TYPE.as_str(), asset.content_type);
        response
    };
    for (name, value) in [
        (ETAG, etag.as_str()),
        ("cache-control", caching),
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        set_header(&mut response, name, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use lambda_http::http;

    use super::*;

    async fn get(uri: &str, headers: &[(&str, &str)]) -> Response<Body> {
        let mut builder = http::Request::builder().uri(uri).header("host", "api.test");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        handle(builder.body(Body::Empty).unwrap()).await
    }

    fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
        response.headers()[name].to_str().unwrap()
    }

    fn text(response: &Response<Body>) -> &str {
        match response.body() {
            Body::Text(text) => text,
            _ => "",
        }
    }

    /// The `src` and `href` of the page's files, as the page names them.
    async fn page_links() -> Vec<String> {
        let page = text(&get("/ui", &[]).await).to_owned();
        page.split(['"', '\''])
            .filter(|part| part.starts_with("ui/"))
            .map(|part| format!("/{part}"))
            .collect()
    }

    #[tokio::test]
    async fn the_page_is_html_that_only_its_own_files_may_script() {
        let page = get("/ui", &[]).await;
        assert_eq!(page.status(), 200);
        assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
        assert_eq!(
            header(&page, "content-security-policy"),
            CONTENT_SECURITY_POLICY
        );
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert_eq!(header(&page, "cache-control"), "no-cache");
        let html = text(&page);
        // No inline script, style or handler, which the policy would block anyway.
        assert!(!html.contains("<script>") && !html.contains("<style"));
        assert!(!html.contains(" style=") && !html.contains(" onclick="));
        assert!(html.contains(r#"data-statuses="accepted error completed cancelled""#));
        assert!(html.contains(r#"data-types="data-migration""#));
        assert!(!html.contains("{{"), "a placeholder was left: {html}");
    }

    #[tokio::test]
    async fn each_file_the_page_names_is_served_for_a_year() {
        let links = page_links().await;
        assert_eq!(links.len(), 3, "{links:?}");
        for link in links {
            let file = get(&link, &[]).await;
            assert_eq!(file.status(), 200, "{link}");
            assert_eq!(
                header(&file, "cache-control"),
                "public, max-age=31536000, immutable"
            );
            assert_eq!(header(&file, "x-content-type-options"), "nosniff");
            assert!(!text(&file).is_empty(), "{link}");
        }
        assert_eq!(
            header(&get("/ui/app.js", &[]).await, "content-type"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            header(&get("/ui/style.css", &[]).await, "content-type"),
            "text/css; charset=utf-8"
        );
    }

    #[tokio::test]
    async fn a_file_asked_for_without_its_current_fingerprint_is_revalidated() {
        for uri in ["/ui/app.js", "/ui/app.js?v=0123456789abcdef"] {
            assert_eq!(
                header(&get(uri, &[]).await, "cache-control"),
                "no-cache",
                "{uri}"
            );
        }
    }

    #[tokio::test]
    async fn a_browser_holding_the_current_file_gets_304() {
        let first = get("/ui/app.js", &[]).await;
        let etag = header(&first, "etag").to_owned();
        assert!(etag.starts_with('"'), "a strong validator: {etag}");
        let again = get("/ui/app.js", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status(), 304);
        assert_eq!(header(&again, "etag"), etag);
        assert!(text(&again).is_empty());
        let changed = get("/ui/app.js", &[("if-none-match", "\"stale\"")]).await;
        assert_eq!(changed.status(), 200);
        // The page and the script are different files with different validators.
        assert_ne!(header(&get("/ui", &[]).await, "etag"), etag);
    }

    #[tokio::test]
    async fn an_unknown_file_is_404_with_an_operation_outcome() {
        for uri in ["/ui/secrets.txt", "/ui/..%2Fbootstrap", "/ui/index.html"] {
            let answer = get(uri, &[]).await;
            assert_eq!(answer.status(), 404, "{uri}");
            assert!(text(&answer).contains("OperationOutcome"), "{uri}");
        }
    }

    #[tokio::test]
    async fn a_stage_prefix_is_kept_in_the_page_links() {
        let page = get("/prod/ui", &[]).await;
        assert_eq!(page.status(), 200);
        // Relative links: from /prod/ui the browser asks for /prod/ui/app.js.
        assert!(text(&page).contains(r#"src="ui/app.js?v="#));
    }

    #[tokio::test]
    async fn only_get_is_served() {
        let request = http::Request::builder()
            .method("POST")
            .uri("/ui")
            .body(Body::Empty)
            .unwrap();
        let refused = handle(request).await;
        assert_eq!(refused.status(), 405);
        assert_eq!(header(&refused, "allow"), "GET");
    }

    #[test]
    fn the_whole_page_stays_small() {
        let total: usize = ASSETS.page.body.len()
            + ASSETS
                .files()
                .map(|(_, asset)| asset.body.len())
                .sum::<usize>();
        assert!(total < 100 * 1024, "{total} bytes");
    }
}
