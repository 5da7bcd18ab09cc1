//! `GET /AsyncJob`, `POST /AsyncJob/_search` and `GET /AsyncJob/{id}`: finding jobs and
//! reading one (SPEC §3).

use asyncjob_shared::auth::{self, Access};
use asyncjob_shared::config::Config;
use asyncjob_shared::error::ApiError;
use asyncjob_shared::http;
use asyncjob_shared::lambda::answer;
use asyncjob_shared::model::{AsyncJob, Bundle, Entry, Link};
use asyncjob_shared::search::Search;
use asyncjob_shared::store::JobStore;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

pub async fn handle(store: &impl JobStore, config: &Config, request: Request) -> Response<Body> {
    let path = request.uri().path().trim_end_matches('/');
    if path.ends_with("/AsyncJob") || path.ends_with("/AsyncJob/_search") {
        answer("search", search(store, config, &request)).await
    } else {
        answer("read", read(store, config, &request)).await
    }
}

async fn search(
    store: &impl JobStore,
    config: &Config,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let posted = request
        .uri()
        .path()
        .trim_end_matches('/')
        .ends_with("/_search");
    http::require_method(
        request,
        if posted {
            &[Method::POST]
        } else {
            &[Method::GET]
        },
    )?;
    auth::authorize(request, &config.auth, Access::Read)?;
    let mut pairs = http::query_pairs(request);
    if posted {
        pairs.extend(form_body(request)?);
    }
    let search = Search::parse(
        &pairs,
        http::preferences(request).handling,
        &config.cursor_key,
    )?;
    let base = http::base_url(request, config)?;
    let page = store.search(&search.query).await?;
    let mut links = vec![Link {
        relation: "self",
        url: search.self_url(&base),
    }];
    if let Some(next) = &page.next {
        links.push(Link {
            relation: "next",
            url: search.next_url(&base, next),
        });
    }
    let entries = page
        .jobs
        .into_iter()
        .map(|job| Entry::matched(resource_url(&base, &job), job))
        .collect();
    Ok(http::fhir_response(
        StatusCode::OK,
        &Bundle::searchset(page.total, links, entries),
    ))
}

/// The parameters of a `POST _search`, which come as a form.
fn form_body(request: &Request) -> Result<Vec<(String, String)>, ApiError> {
    let body = http::body_bytes(request)?;
    if body.is_empty() {
        return Ok(Vec::new());
    }
    if http::media_type(request).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(ApiError::UnsupportedMediaType(
            "send search parameters as application/x-www-form-urlencoded".into(),
        ));
    }
    Ok(http::form_pairs(body))
}

async fn read(
    store: &impl JobStore,
    config: &Config,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    http::require_method(request, &[Method::GET])?;
    auth::authorize(request, &config.auth, Access::Read)?;
    let id = http::job_id_in_path(request, 0)?;
    let Some(stored) = store.get(&id).await? else {
        return Err(ApiError::NotFound(format!("AsyncJob/{id} is not known")));
    };
    let job = stored.job;
    if http::if_none_match_hits(request, &http::etag(&job)) {
        return Ok(http::not_modified(&job));
    }
    let mut response = http::fhir_response(StatusCode::OK, &job);
    http::set_validators(&mut response, &job);
    Ok(response)
}

fn resource_url(base: &str, job: &AsyncJob) -> String {
    format!("{base}/AsyncJob/{}", job.id)
}
