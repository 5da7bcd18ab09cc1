use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use asyncjob_shared::migration::Registry;
use asyncjob_shared::model::{AsyncJob, JobStatus, JobType, StoredJob, instant};
use asyncjob_shared::runner::{RunOutcome, RunSettings};
use asyncjob_shared::store::JobStore;
use asyncjob_shared::store::test_support::Item;
use asyncjob_shared::store::test_support::schema::{EXPIRES_AT, SORT_KEY, TYPE_SORT_KEY};
use asyncjob_tests::{ApiRequest, TestEnv};
use serde_json::{Value, json};

use crate::support::{
    Broken, expire_lease, far_deadline, legacy_jobs, pausing_registry, put_items, runner_on,
    settings,
};

fn status_of(id: &impl std::fmt::Display) -> ApiRequest {
    ApiRequest::get(&format!("/job/{id}/status"))
}

/// What the migrations write on each legacy job: its TTL and index keys.
async fn migrated_attributes(
    env: &TestEnv,
    legacy: &[Item],
) -> BTreeMap<String, Vec<Option<String>>> {
    let mut found = BTreeMap::new();
    for item in legacy {
        let id = item["id"].as_s().unwrap();
        let now = env.raw_item(id).await.unwrap();
        let attribute = |name: &str| {
            now.get(name)
                .map(|value| value.as_s().or(value.as_n()).unwrap().clone())
        };
        found.insert(
            id.clone(),
            vec![
                attribute(EXPIRES_AT),
                attribute(SORT_KEY),
                attribute(TYPE_SORT_KEY),
            ],
        );
    }
    found
}

fn migration_parts(output: &Value) -> Vec<Value> {
    output["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "migration")
        .cloned()
        .collect()
}

fn part(migration: &Value, name: &str) -> Value {
    migration["part"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| {
            p.get("valueInteger")
                .or(p.get("valueString"))
                .unwrap()
                .clone()
        })
        .unwrap()
}

#[tokio::test]
async fn a_job_runs_to_completed_with_what_each_migration_did() {
    let env = TestEnv::start().await;
    let legacy = legacy_jobs(35);
    put_items(&env, &legacy).await;
    // Written before the indexes knew them: no search finds them yet.
    let before = env
        .send(ApiRequest::get(
            "/AsyncJob?_total=accurate&status=completed,error,cancelled",
        ))
        .await;
    assert_eq!(before.body["total"], 0);

    let job = env.kick_off(2).await;
    let settings = settings();
    let runner = runner_on(&env, Registry::built_in(), &settings, "worker-1");
    assert_eq!(
        runner.run(&job.id, far_deadline()).await.unwrap(),
        RunOutcome::Completed
    );

    let answer = env.send(status_of(&job.id)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body["transactionTime"].is_string());
    assert!(answer.header("expires").is_some());
    let output = &answer.body["output"];
    assert_eq!(
        output["parameter"][0],
        json!({"name": "dataVersion", "valueInteger": 2})
    );
    let migrations = migration_parts(output);
    assert_eq!(migrations.len(), 2);
    for (migration, (version, name)) in migrations
        .iter()
        .zip([(1, "expire-finished-jobs"), (2, "rewrite-index-keys")])
    {
        assert_eq!(part(migration, "version"), version);
        assert_eq!(part(migration, "name"), name);
        assert!(part(migration, "itemsScanned").as_u64().unwrap() >= 35);
        assert_eq!(part(migration, "itemsChanged"), 35);
        assert!(part(migration, "durationMs").as_u64().is_some());
    }
    assert_eq!(env.store.data_version().await.unwrap(), 2);

    // Every legacy job has its TTL and is found again.
    for values in migrated_attributes(&env, &legacy).await.values() {
        assert!(values.iter().all(Option::is_some), "{values:?}");
    }
    let after = env
        .send(ApiRequest::get(
            "/AsyncJob?_total=accurate&status=completed,error,cancelled",
        ))
        .await;
    assert_eq!(
        after.body["total"], 36,
        "35 legacy jobs and the migration job"
    );
}

/// A write budget paces a migration's writes, across pages and migrations; every item is
/// still migrated.
#[tokio::test]
async fn a_write_budget_paces_the_migration_and_it_still_migrates_everything() {
    let env = TestEnv::start().await;
    let legacy = legacy_jobs(60);
    put_items(&env, &legacy).await;
    let job = env.kick_off(2).await;
    let settings = RunSettings {
        items_per_second: Some(50),
        segments: None,
        segments_at_once: 8,
        ..settings()
    };
    let runner = runner_on(&env, Registry::built_in(), &settings, "worker-1");
    let started = Instant::now();
    assert_eq!(
        runner.run(&job.id, far_deadline()).await.unwrap(),
        RunOutcome::Completed
    );
    // Each migration writes the 60 jobs: 120 writes at 50 a second take 2.4 s at least.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2350), "{took:?}");
    for values in migrated_attributes(&env, &legacy).await.values() {
        assert!(values.iter().all(Option::is_some), "{values:?}");
    }
}

#[tokio::test]
async fn a_version_already_reached_completes_at_once() {
    let env = TestEnv::start().await;
    let settings = settings();
    let runner = runner_on(&env, Registry::built_in(), &settings, "worker-1");
    let first = env.kick_off(2).await;
    assert_eq!(
        runner.run(&first.id, far_deadline()).await.unwrap(),
        RunOutcome::Completed
    );

    let lower = env.kick_off(1).await;
    assert_ne!(lower.id, first.id);
    assert_eq!(
        runner.run(&lower.id, far_deadline()).await.unwrap(),
        RunOutcome::Completed
    );
    let answer = env.send(status_of(&lower.id)).await;
    assert_eq!(answer.status, 200);
    assert!(migration_parts(&answer.body["output"]).is_empty());
    // The data version never goes back.
    assert_eq!(answer.body["output"]["parameter"][0]["valueInteger"], 2);
    assert_eq!(env.store.data_version().await.unwrap(), 2);
}

#[tokio::test]
async fn progress_is_visible_while_the_job_runs() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(35)).await;
    let job = env.kick_off(2).await;
    let paused = pausing_registry(2);
    let settings = settings();
    let runner = runner_on(&env, &paused.registry, &settings, "worker-1");

    let watch = async {
        paused.paused.notified().await;
        // The job's runner sums its segment's checkpoints into the job every 2 s.
        let mut answer = env.send(status_of(&job.id)).await;
        for _ in 0..600 {
            if answer
                .header("x-progress")
                .is_some_and(|p| p.contains(": 10 of"))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            answer = env.send(status_of(&job.id)).await;
        }
        paused.resume.notify_one();
        answer
    };
    let (outcome, mid_run) = tokio::join!(runner.run(&job.id, far_deadline()), watch);
    assert_eq!(outcome.unwrap(), RunOutcome::Completed);
    assert_eq!(mid_run.status, 202);
    // The first page is checkpointed; the second is in flight. The estimate is the table's
    // item count: 35 legacy jobs, the job, and its two bookkeeping items.
    let x_progress = mid_run.header("x-progress").unwrap();
    assert!(
        x_progress.starts_with("migration 1/2: 10 of ~38 items (26%)"),
        "{x_progress}"
    );
    assert_eq!(mid_run.header("retry-after"), Some("1"));
    assert!(mid_run.body["transactionTime"].is_string());
    // The same, for machines, in the running job's output.
    let progress = &mid_run.body["output"]["parameter"][0];
    assert_eq!(progress["name"], "progress");
    let part = |name: &str| {
        progress["part"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["valueInteger"].clone())
    };
    assert_eq!(part("migration"), Some(json!(1)));
    assert_eq!(part("migrations"), Some(json!(2)));
    assert_eq!(part("itemsScanned"), Some(json!(10)));
    assert_eq!(part("itemsEstimated"), Some(json!(38)));
    // The time left covers the rest of this scan and the whole scan of migration 2.
    let rate = part("itemsPerSecond").unwrap().as_u64().unwrap();
    if rate > 0 {
        let left = (38 - 10 + 38_u64).div_ceil(rate);
        assert_eq!(part("secondsLeft"), Some(json!(left)));
        assert!(
            x_progress.ends_with(&format!(", ~{left} s left")),
            "{x_progress}"
        );
    }
}

#[tokio::test]
async fn a_cancel_stops_the_run_at_the_next_checkpoint() {
    let env = TestEnv::start().await;
    let legacy = legacy_jobs(60);
    put_items(&env, &legacy).await;
    let job = env.kick_off(2).await;
    let paused = pausing_registry(2);
    let settings = settings();
    let runner = runner_on(&env, &paused.registry, &settings, "worker-1");

    let cancel = async {
        paused.paused.notified().await;
        let answer = env
            .send(ApiRequest::delete(&format!("/job/{}/status", job.id)))
            .await;
        paused.resume.notify_one();
        answer
    };
    let (outcome, cancelled) = tokio::join!(runner.run(&job.id, far_deadline()), cancel);
    assert_eq!(cancelled.status, 202);
    assert_eq!(outcome.unwrap(), RunOutcome::Cancelled);
    assert_eq!(
        paused.pages.load(Ordering::SeqCst),
        2,
        "no page after the cancel"
    );

    let expired = |attributes: &BTreeMap<String, Vec<Option<String>>>| {
        attributes
            .values()
            .filter(|values| values[0].is_some())
            .count()
    };
    let touched = expired(&migrated_attributes(&env, &legacy).await);
    assert!(
        (1..=20).contains(&touched),
        "{touched} items changed in two pages of 10"
    );

    // Nothing brings it back: the sweeper leaves it, and it stays cancelled.
    let sweeper = runner_on(&env, Registry::built_in(), &settings, "sweeper");
    assert!(sweeper.sweep(far_deadline()).await.unwrap().is_empty());
    let stored = env.job(job.id.as_str()).await.unwrap();
    assert_eq!(stored.job.status, JobStatus::Cancelled);
    assert!(stored.job.output.is_none());
    assert_eq!(expired(&migrated_attributes(&env, &legacy).await), touched);
}

#[tokio::test]
async fn a_dead_worker_is_resumed_by_the_sweeper_with_the_same_result() {
    let legacy = legacy_jobs(45);
    let settings = settings();

    let uninterrupted = TestEnv::start().await;
    put_items(&uninterrupted, &legacy).await;
    let job = uninterrupted.kick_off(2).await;
    let runner = runner_on(&uninterrupted, Registry::built_in(), &settings, "worker-1");
    assert_eq!(
        runner.run(&job.id, far_deadline()).await.unwrap(),
        RunOutcome::Completed
    );

    let crashed = TestEnv::start().await;
    put_items(&crashed, &legacy).await;
    let job = crashed.kick_off(2).await;
    let paused = pausing_registry(3);
    let dying = runner_on(&crashed, &paused.registry, &settings, "worker-1");
    tokio::select! {
        outcome = dying.run(&job.id, far_deadline()) => panic!("the run should pause, not end: {outcome:?}"),
        // Dropping the run mid-page is the crash.
        _ = paused.paused.notified() => {}
    }
    let sweeper = runner_on(&crashed, Registry::built_in(), &settings, "sweeper");
    assert!(
        sweeper.sweep(far_deadline()).await.unwrap().is_empty(),
        "the lease still holds"
    );
    expire_lease(&crashed, &job.id).await;
    let outcomes = sweeper.sweep(far_deadline()).await.unwrap();
    assert_eq!(outcomes, vec![(job.id.clone(), RunOutcome::Completed)]);

    assert_eq!(
        migrated_attributes(&crashed, &legacy).await,
        migrated_attributes(&uninterrupted, &legacy).await
    );
    assert_eq!(crashed.store.data_version().await.unwrap(), 2);
}

#[tokio::test]
async fn two_workers_never_both_run_a_job() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(30)).await;
    let job = env.kick_off(2).await;
    let settings = settings();
    let (first, second) = (pausing_registry(usize::MAX), pausing_registry(usize::MAX));
    let a = runner_on(&env, &first.registry, &settings, "worker-a");
    let b = runner_on(&env, &second.registry, &settings, "worker-b");

    let (outcome_a, outcome_b) = tokio::join!(
        a.run(&job.id, far_deadline()),
        b.run(&job.id, far_deadline())
    );
    let mut outcomes = [outcome_a.unwrap(), outcome_b.unwrap()];
    outcomes.sort_by_key(|outcome| format!("{outcome:?}"));
    assert_eq!(outcomes, [RunOutcome::Completed, RunOutcome::NotRunnable]);
    let pages = [
        first.pages.load(Ordering::SeqCst),
        second.pages.load(Ordering::SeqCst),
    ];
    assert!(pages.contains(&0), "both workers migrated pages: {pages:?}");
}

/// A worker that stalls (its renewals do not get through) loses its lease to another;
/// when it wakes, it writes nothing more.
#[tokio::test]
async fn a_worker_that_lost_its_lease_writes_nothing_more() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(30)).await;
    let job = env.kick_off(2).await;
    let settings = settings();
    let slow = pausing_registry(1);
    let a = runner_on(&env, &slow.registry, &settings, "worker-a");
    let b = runner_on(&env, Registry::built_in(), &settings, "worker-b");

    let take_over = async {
        slow.paused.notified().await;
        expire_lease(&env, &job.id).await;
        let outcome = b.run(&job.id, far_deadline()).await.unwrap();
        slow.resume.notify_one();
        outcome
    };
    let (outcome_a, outcome_b) = tokio::join!(a.run(&job.id, far_deadline()), take_over);
    assert_eq!(outcome_b, RunOutcome::Completed);
    assert_eq!(outcome_a.unwrap(), RunOutcome::NotRunnable);
    assert_eq!(slow.pages.load(Ordering::SeqCst), 1);
    assert_eq!(
        env.job(job.id.as_str()).await.unwrap().job.status,
        JobStatus::Completed
    );
}

#[tokio::test]
async fn a_run_stops_before_its_deadline_and_the_next_resumes() {
    let env = TestEnv::start().await;
    let legacy = legacy_jobs(35);
    put_items(&env, &legacy).await;
    let job = env.kick_off(2).await;
    let settings = settings();
    let paused = pausing_registry(2);
    let runner = runner_on(&env, &paused.registry, &settings, "worker-1");

    // The second page outlasts the deadline: the run holds there until it has passed. The
    // deadline is real, since the runner reads the clock: 5 s leaves a machine many times
    // slower than needed to claim the job and scan two pages of ten before it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let run = runner.run(&job.id, deadline);
    tokio::pin!(run);
    let outcome = tokio::select! {
        outcome = &mut run => panic!("the run ended before its second page: {outcome:?}"),
        () = paused.paused.notified() => {
            tokio::time::sleep_until((deadline + Duration::from_millis(50)).into()).await;
            paused.resume.notify_one();
            run.await
        }
    };
    assert_eq!(outcome.unwrap(), RunOutcome::Yielded);
    let stored = env.job(job.id.as_str()).await.unwrap();
    let run = stored.run.unwrap();
    assert!(
        run.attempts.lease.is_none(),
        "a yielding run lets go of its lease"
    );
    let progress = run.progress();
    assert!(
        progress.starts_with("migration 1/2: 20 of ~38 items (52%)"),
        "{progress}"
    );

    assert_eq!(
        runner.run(&job.id, far_deadline()).await.unwrap(),
        RunOutcome::Completed
    );
    let output = env.job(job.id.as_str()).await.unwrap().job.output.unwrap();
    let output = serde_json::to_value(output).unwrap();
    // Resumed from the checkpoint: every legacy job changed exactly once.
    assert_eq!(part(&migration_parts(&output)[0], "itemsChanged"), 35);
}

#[tokio::test]
async fn a_job_that_keeps_failing_ends_in_error() {
    let env = TestEnv::start().await;
    let job = env.kick_off(1).await;
    let settings = settings();
    let registry = Registry::new(vec![Box::new(Broken)]).unwrap();
    let runner = runner_on(&env, &registry, &settings, "worker-1");
    // With no wait between attempts, one run tries again until it gives up.
    assert_eq!(
        runner.run(&job.id, far_deadline()).await.unwrap(),
        RunOutcome::GaveUp
    );

    let answer = env.send(status_of(&job.id)).await;
    answer.assert_outcome(500, "exception");
    let diagnostics = answer.body["issue"][0]["diagnostics"].as_str().unwrap();
    // Which migration, where, and what went wrong, in words.
    assert_eq!(
        diagnostics,
        "gave up after 3 failed attempts in a row; the last: migration 1 (broken) after 0 \
         items: the disk is full"
    );
    // A failed job frees the way for a retry.
    assert_ne!(env.kick_off(1).await.id, job.id);
}

/// DynamoDB's TTL deletes expired jobs only eventually; the sweeper deletes them itself, so
/// an oldest-first search does not read past them: once swept, its page is one Query.
#[tokio::test]
async fn the_sweeper_deletes_expired_jobs_so_oldest_first_searches_skip_nothing() {
    let env = TestEnv::start().await;
    let finished = |minutes_ago: i64, expired: bool| {
        let at = instant::now() - time::Duration::minutes(minutes_ago);
        let mut job = AsyncJob::accepted(
            JobType::DataMigration,
            1,
            "urn:t".into(),
            &instant::format(at),
        );
        job.status = JobStatus::Completed;
        let mut stored = StoredJob::new(job);
        let expiry = if expired { -1 } else { 3600 };
        stored.expires_at = Some(instant::now() + time::Duration::seconds(expiry));
        stored
    };
    for minutes_ago in 100..130 {
        env.put(&finished(minutes_ago, true)).await;
    }
    let oldest_live = finished(50, false);
    env.put(&oldest_live).await;
    env.put(&finished(10, false)).await;

    let search = "/AsyncJob?status=completed&_sort=requestTime&_count=1";
    let queries = |operations: Vec<String>| operations.iter().filter(|o| *o == "Query").count();
    env.operations.take();
    let before = env.send(ApiRequest::get(search)).await;
    assert_eq!(
        before.body["entry"][0]["resource"]["id"],
        oldest_live.job.id.as_str()
    );
    assert!(
        queries(env.operations.take()) > 1,
        "it read past the expired jobs"
    );

    let settings = settings();
    let sweeper = runner_on(&env, Registry::built_in(), &settings, "sweeper");
    sweeper.sweep(far_deadline()).await.unwrap();
    assert_eq!(env.job_ids().await.len(), 2, "the expired jobs are gone");

    env.operations.take();
    let after = env.send(ApiRequest::get(search)).await;
    assert_eq!(
        after.body["entry"][0]["resource"]["id"],
        oldest_live.job.id.as_str()
    );
    assert_eq!(queries(env.operations.take()), 1);
}
