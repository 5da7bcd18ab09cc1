use std::collections::BTreeSet;
use std::time::Duration;

use asyncjob_shared::model::{AsyncJob, CodeSet, JobStatus, instant};
use asyncjob_tests::faults::{Fault, FaultPlan, FaultRule};
use asyncjob_tests::{Answer, ApiRequest, BASE, TestEnv};

use crate::support::job;

/// `n` jobs, one second apart, cycling through every status; newest last.
async fn seed(env: &TestEnv, n: usize) -> Vec<AsyncJob> {
    let mut jobs = Vec::new();
    for i in 0..n {
        let status = JobStatus::ALL[i % JobStatus::ALL.len()];
        let stored = job(status, 1, (n - i) as i64);
        env.put(&stored).await;
        jobs.push(stored.job);
    }
    jobs
}

/// The ids of the matches (outcome entries left out).
fn ids(answer: &Answer) -> Vec<String> {
    answer.body["entry"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter(|entry| entry["search"]["mode"] == "match")
        .map(|entry| entry["resource"]["id"].as_str().unwrap().to_owned())
        .collect()
}

fn link(answer: &Answer, relation: &str) -> Option<String> {
    answer.body["link"]
        .as_array()?
        .iter()
        .find(|link| link["relation"] == relation)
        .map(|link| link["url"].as_str().unwrap().to_owned())
}

/// The ids of `jobs` that `keep` selects, newest first.
fn newest_first(jobs: &[AsyncJob], keep: impl Fn(&AsyncJob) -> bool) -> Vec<String> {
    jobs.iter()
        .rev()
        .filter(|job| keep(job))
        .map(|job| job.id.to_string())
        .collect()
}

/// Follows `next` links from `first`, returning every id in order.
async fn all_pages(env: &TestEnv, first: &str) -> (Vec<String>, usize) {
    let mut found = Vec::new();
    let mut pages = 0;
    let mut url = Some(first.to_owned());
    while let Some(path) = url {
        let answer = env.send(ApiRequest::get(&path)).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        found.extend(ids(&answer));
        pages += 1;
        assert!(pages < 100, "the paging never ends");
        url = link(&answer, "next").map(|next| next.strip_prefix(BASE).unwrap().to_owned());
    }
    (found, pages)
}

#[tokio::test]
async fn a_search_answers_a_searchset_bundle() {
    let env = TestEnv::start().await;
    let jobs = seed(&env, 6).await;
    let answer = env.send(ApiRequest::get("/AsyncJob")).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["resourceType"], "Bundle");
    assert_eq!(answer.body["type"], "searchset");
    assert_eq!(ids(&answer), newest_first(&jobs, |_| true));
    let entry = &answer.body["entry"][0];
    assert_eq!(entry["search"]["mode"], "match");
    assert_eq!(
        entry["fullUrl"],
        format!(
            "{BASE}/AsyncJob/{}",
            entry["resource"]["id"].as_str().unwrap()
        )
    );
    assert_eq!(
        link(&answer, "self").unwrap(),
        format!("{BASE}/AsyncJob?_count=20&_sort=-requestTime")
    );
    assert_eq!(link(&answer, "next"), None);
    assert!(answer.body.get("total").is_none());
}

#[tokio::test]
async fn filters_by_status_and_type() {
    let env = TestEnv::start().await;
    let jobs = seed(&env, 12).await;
    let is = |statuses: &'static [JobStatus]| move |job: &AsyncJob| statuses.contains(&job.status);
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "status=completed",
            newest_first(&jobs, is(&[JobStatus::Completed])),
        ),
        (
            "status=accepted,cancelled",
            newest_first(&jobs, is(&[JobStatus::Accepted, JobStatus::Cancelled])),
        ),
        (
            "status=http://hl7.org/fhir/async-job-status|error",
            newest_first(&jobs, is(&[JobStatus::Error])),
        ),
        (
            "status=accepted&status=accepted,error",
            newest_first(&jobs, is(&[JobStatus::Accepted])),
        ),
        ("status=accepted&status=completed", vec![]),
        ("type=data-migration", newest_first(&jobs, |_| true)),
        (
            "type=data-migration&status=error,completed",
            newest_first(&jobs, is(&[JobStatus::Error, JobStatus::Completed])),
        ),
    ];
    for (query, expected) in cases {
        let answer = env
            .send(ApiRequest::get(&format!("/AsyncJob?{query}")))
            .await;
        assert_eq!(answer.status, 200, "{query}: {}", answer.body);
        assert_eq!(ids(&answer), expected, "{query}");
    }
}

#[tokio::test]
async fn filters_by_id() {
    let env = TestEnv::start().await;
    let jobs = seed(&env, 4).await;
    let (a, b) = (&jobs[0], &jobs[1]);
    let both = env
        .send(ApiRequest::get(&format!("/AsyncJob?_id={},{}", a.id, b.id)))
        .await;
    assert_eq!(ids(&both), vec![b.id.to_string(), a.id.to_string()]);
    let filtered = env
        .send(ApiRequest::get(&format!(
            "/AsyncJob?_id={},{}&status={}",
            a.id, b.id, b.status
        )))
        .await;
    assert_eq!(ids(&filtered), vec![b.id.to_string()]);
    let unknown = env.send(ApiRequest::get("/AsyncJob?_id=nope")).await;
    assert_eq!(ids(&unknown), Vec::<String>::new());
}

#[tokio::test]
async fn pages_reach_every_match_once_in_order() {
    let env = TestEnv::start().await;
    let jobs = seed(&env, 23).await;
    let mut oldest_first = newest_first(&jobs, |_| true);
    oldest_first.reverse();
    let id_list: Vec<String> = jobs.iter().take(9).map(|job| job.id.to_string()).collect();
    let cases: Vec<(String, Vec<String>)> = vec![
        ("/AsyncJob?_count=4".into(), newest_first(&jobs, |_| true)),
        ("/AsyncJob?_count=4&_sort=requestTime".into(), oldest_first),
        (
            "/AsyncJob?_count=2&status=completed,error".into(),
            newest_first(&jobs, |job| {
                matches!(job.status, JobStatus::Completed | JobStatus::Error)
            }),
        ),
        (
            "/AsyncJob?_count=3&type=data-migration".into(),
            newest_first(&jobs, |_| true),
        ),
        (
            "/AsyncJob?_count=1&type=data-migration&status=cancelled".into(),
            newest_first(&jobs, |job| job.status == JobStatus::Cancelled),
        ),
        (
            format!("/AsyncJob?_count=2&_id={}", id_list.join(",")),
            newest_first(&jobs[..9], |_| true),
        ),
    ];
    for (first, expected) in cases {
        let (found, pages) = all_pages(&env, &first).await;
        assert_eq!(found, expected, "{first}");
        let unique: BTreeSet<_> = found.iter().collect();
        assert_eq!(unique.len(), found.len(), "{first} repeats a job");
        assert!(pages > 1, "{first} should need several pages");
    }
}

#[tokio::test]
async fn total_is_counted_when_asked() {
    let env = TestEnv::start().await;
    seed(&env, 10).await;
    let answer = env
        .send(ApiRequest::get(
            "/AsyncJob?_total=accurate&_count=2&status=accepted,error",
        ))
        .await;
    assert_eq!(answer.body["total"], 6);
    assert_eq!(ids(&answer).len(), 2);
    let all = env
        .send(ApiRequest::get("/AsyncJob?_total=accurate&_count=1"))
        .await;
    assert_eq!(all.body["total"], 10);
}

/// Counting stops at the request's budget: the page comes whole, without `total`, and with
/// an OperationOutcome entry that says why.
#[tokio::test]
async fn a_total_that_takes_too_long_is_left_out_and_said_so() {
    let env = TestEnv::start().await;
    seed(&env, 6).await;
    let plan = FaultPlan::default();
    let slow = env
        .faulty_store(&plan)
        .with_count_budget(Duration::from_millis(50));
    // The page's Query comes first, then the count's.
    plan.set(vec![FaultRule {
        operation: "Query",
        occurrence: 1,
        fault: Fault::Latency(500),
    }]);
    let answer = env
        .send_to(
            &slow,
            ApiRequest::get("/AsyncJob?status=accepted&_total=accurate&_count=2"),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.get("total").is_none(), "{}", answer.body);
    assert!(!ids(&answer).is_empty(), "the page itself is there");
    let entries = answer.body["entry"].as_array().unwrap();
    let outcome = entries.last().unwrap();
    assert_eq!(outcome["search"]["mode"], "outcome");
    assert_eq!(outcome["resource"]["resourceType"], "OperationOutcome");
    assert_eq!(outcome["resource"]["issue"][0]["code"], "too-costly");
}

#[tokio::test]
async fn expired_jobs_are_not_found() {
    let env = TestEnv::start().await;
    let mut expired = job(JobStatus::Completed, 1, 10);
    expired.expires_at = Some(instant::now() - time::Duration::seconds(1));
    env.put(&expired).await;
    let live = job(JobStatus::Completed, 1, 5);
    env.put(&live).await;
    let answer = env.send(ApiRequest::get("/AsyncJob?_total=accurate")).await;
    assert_eq!(ids(&answer), vec![live.job.id.to_string()]);
    assert_eq!(answer.body["total"], 1);
}

#[tokio::test]
async fn unknown_parameters_are_ignored_unless_strict() {
    let env = TestEnv::start().await;
    seed(&env, 2).await;
    let lenient = env
        .send(ApiRequest::get(
            "/AsyncJob?foo=bar&status:not=error&_count=5",
        ))
        .await;
    assert_eq!(lenient.status, 200);
    assert_eq!(ids(&lenient).len(), 2);
    assert_eq!(
        link(&lenient, "self").unwrap(),
        format!("{BASE}/AsyncJob?_count=5&_sort=-requestTime")
    );

    let strict = env
        .send(ApiRequest::get("/AsyncJob?foo=bar").header("prefer", "handling=strict"))
        .await;
    strict.assert_outcome(400, "invalid");
    assert!(
        strict.body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("foo")
    );
}

#[tokio::test]
async fn bad_values_are_invalid() {
    let env = TestEnv::start().await;
    seed(&env, 1).await;
    let forged = asyncjob_cursor("not a position");
    for query in [
        "status=bogus",
        "status=accepted,bogus",
        "type=export",
        "_count=0",
        "_count=1001",
        "_count=ten",
        "_count=5&_count=6",
        "_sort=status",
        "_total=maybe",
        "_cursor=%%%",
        &format!("_cursor={forged}"),
        "_id=a_b",
        "status=",
        "_total=",
        "_count=",
    ] {
        env.send(ApiRequest::get(&format!("/AsyncJob?{query}")))
            .await
            .assert_outcome(400, "invalid");
    }
}

fn asyncjob_cursor(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn post_search_takes_a_form() {
    let env = TestEnv::start().await;
    let jobs = seed(&env, 8).await;
    let answer = env
        .send(
            ApiRequest::post("/AsyncJob/_search?_count=10")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("status=completed%2Cerror"),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        ids(&answer),
        newest_first(&jobs, |job| matches!(
            job.status,
            JobStatus::Completed | JobStatus::Error
        ))
    );
    assert_eq!(
        link(&answer, "self").unwrap(),
        format!("{BASE}/AsyncJob?status=error%2Ccompleted&_count=10&_sort=-requestTime")
    );

    let json = env
        .send(
            ApiRequest::post("/AsyncJob/_search")
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
    json.assert_outcome(415, "not-supported");
    let get_search = env.send(ApiRequest::get("/AsyncJob/_search")).await;
    get_search.assert_outcome(405, "not-supported");
}

#[tokio::test]
async fn searches_query_indexes_and_never_scan() {
    let env = TestEnv::start().await;
    let jobs = seed(&env, 40).await;
    let queries = [
        "/AsyncJob?_count=5",
        "/AsyncJob?_count=5&status=accepted",
        "/AsyncJob?_count=5&type=data-migration",
        "/AsyncJob?_count=5&type=data-migration&status=completed,error&_sort=requestTime",
        "/AsyncJob?_count=5&_total=accurate",
    ];
    let mut operations_per_query = Vec::new();
    for query in queries {
        env.operations.take();
        let answer = env.send(ApiRequest::get(query)).await;
        assert_eq!(ids(&answer).len(), 5, "{query}");
        let operations = env.operations.take();
        assert!(
            operations.iter().all(|operation| operation == "Query"),
            "{query} sent {operations:?}"
        );
        operations_per_query.push(operations.len());
    }
    let by_id = format!("/AsyncJob?_id={}", jobs[0].id);
    env.send(ApiRequest::get(&by_id)).await;
    assert_eq!(env.operations.take(), vec!["GetItem"]);

    // One Query per index range: the page, not the table, decides the work.
    assert_eq!(&operations_per_query[..4], &[4, 1, 4, 2]);
}

#[tokio::test]
async fn the_work_of_a_page_does_not_grow_with_the_table() {
    let env = TestEnv::start().await;
    seed(&env, 8).await;
    env.operations.take();
    env.send(ApiRequest::get(
        "/AsyncJob?_count=3&status=accepted,completed",
    ))
    .await;
    let small = env.operations.take().len();
    seed(&env, 120).await;
    env.operations.take();
    let answer = env
        .send(ApiRequest::get(
            "/AsyncJob?_count=3&status=accepted,completed",
        ))
        .await;
    assert_eq!(ids(&answer).len(), 3);
    assert_eq!(env.operations.take().len(), small);
}

#[tokio::test]
async fn a_cursor_reads_only_the_search_it_came_from() {
    let env = TestEnv::start().await;
    seed(&env, 10).await;
    let first = env
        .send(ApiRequest::get("/AsyncJob?status=completed&_count=1"))
        .await;
    let next = link(&first, "next").unwrap();
    let cursor = next.split("_cursor=").nth(1).unwrap();
    let elsewhere = env
        .send(ApiRequest::get(&format!(
            "/AsyncJob?status=error&_count=1&_cursor={cursor}"
        )))
        .await;
    elsewhere.assert_outcome(400, "invalid");
    let larger_page = env
        .send(ApiRequest::get(&format!(
            "/AsyncJob?status=completed&_count=50&_cursor={cursor}"
        )))
        .await;
    larger_page.assert_outcome(400, "invalid");
}
