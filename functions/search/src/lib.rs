//! `GET /AsyncJob`, `POST /AsyncJob/_search` and `GET /AsyncJob/{id}`: finding jobs and
//! reading one.

use asyncjob_shared::config::Config;
use asyncjob_shared::http::auth::{self, Access};
use asyncjob_shared::http::serve::{answer, record_job};
use asyncjob_shared::http::{ApiError, request, response};
use asyncjob_shared::model::{AsyncJob, Bundle, Entry, IssueCode, Link, OperationOutcome};
use asyncjob_shared::parse::form_pairs;
use asyncjob_shared::parse::search::Search;
use asyncjob_shared::routes;
use asyncjob_shared::store::{JobStore, SearchPage, Total};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

pub async fn handle(store: &impl JobStore, config: &Config, request: Request) -> Response<Body> {
    match routes::template_of(request.uri().path()) {
        Some(routes::READ) => answer("read", read(store, config, &request)).await,
        Some(routes::SEARCH_FORM) => {
            answer("search", search(store, config, &request, Method::POST)).await
        }
        _ => answer("search", search(store, config, &request, Method::GET)).await,
    }
}

/// A search; `method` is the one its route takes, and POST carries the parameters as a form.
async fn search(
    store: &impl JobStore,
    config: &Config,
    request: &Request,
    method: Method,
) -> Result<Response<Body>, ApiError> {
    request::require_method(request, std::slice::from_ref(&method))?;
    auth::authorize(request, &config.auth, Access::Read)?;
    let mut pairs = request::query_pairs(request);
    if method == Method::POST {
        pairs.extend(form_body(request)?);
    }
    let search = Search::parse(
        &pairs,
        request::preferences(request).handling,
        &config.cursor_key,
    )?;
    let base = request::base_url(request, config)?;
    let page = store.search(&search.query).await?;
    Ok(response::fhir_response(
        StatusCode::OK,
        &bundle(&search, &base, page),
    ))
}

/// The `searchset` Bundle of one page: its links, its matches, and the total when counted.
fn bundle(search: &Search, base: &str, page: SearchPage) -> Bundle {
    let mut links = vec![Link {
        relation: "self",
        url: search.self_url(base),
    }];
    if let Some(next) = &page.next {
        links.push(Link {
            relation: "next",
            url: search.next_url(base, next),
        });
    }
    let mut entries: Vec<Entry> = page
        .jobs
        .into_iter()
        .map(|job| Entry::matched(resource_url(base, &job), job))
        .collect();
    let total = match page.total {
        Total::Counted(total) => Some(total),
        Total::NotAsked => None,
        Total::OverBudget => {
            entries.push(Entry::outcome(OperationOutcome::warning(
                IssueCode::TooCostly,
                "_total=accurate: the matches could not be counted within the time this \
                 request may take; the page is complete, the total is left out",
            )));
            None
        }
    };
    Bundle::searchset(total, links, entries)
}

/// The parameters of a `POST _search`, which come as a form.
fn form_body(request: &Request) -> Result<Vec<(String, String)>, ApiError> {
    let body = request::body_bytes(request)?;
    if body.is_empty() {
        return Ok(Vec::new());
    }
    if request::media_type(request).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(ApiError::UnsupportedMediaType(
            "send search parameters as application/x-www-form-urlencoded".into(),
        ));
    }
    Ok(form_pairs(body))
}

async fn read(
    store: &impl JobStore,
    config: &Config,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    request::require_method(request, &[Method::GET])?;
    auth::authorize(request, &config.auth, Access::Read)?;
    let id = request::job_id_in_path(request, 0)?;
    record_job(&id);
    let Some(stored) = store.get(&id).await? else {
        return Err(ApiError::NotFound(format!("AsyncJob/{id} is not known")));
    };
    let job = stored.job;
    if request::if_none_match_hits(request, &response::etag(&job)) {
        return Ok(response::not_modified(&job));
    }
    let mut response = response::fhir_response(StatusCode::OK, &job);
    response::set_validators(&mut response, &job);
    Ok(response)
}

fn resource_url(base: &str, job: &AsyncJob) -> String {
    format!("{base}/AsyncJob/{}", job.id)
}
