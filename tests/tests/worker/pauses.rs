//! An operator's pause of a migration that runs in several segments, against the engine:
//! every segment stops at its next checkpoint and lets go without counting an attempt, no
//! worker takes the job while it is paused, and a resume finishes it from the checkpoints
//! with every item migrated once.

use std::sync::atomic::Ordering;

use asyncjob_shared::model::{JobId, JobStatus, SegmentKey, SegmentRun};
use asyncjob_shared::runner::{RunOutcome, RunSettings};
use asyncjob_shared::store::{JobStore, SegmentRuns};
use asyncjob_tests::{ApiRequest, TestEnv};
use serde_json::Value;

use crate::support::{
    expiring, far_deadline, legacy_jobs, pausing_registry, put_items, run_to_end, runner_on,
};

const SEGMENTS: u32 = 4;
const LEGACY_JOBS: usize = 200;

async fn segments_of(env: &TestEnv, job: &JobId) -> Vec<SegmentRun> {
    env.store
        .segments(&SegmentKey::all(job, 1, SEGMENTS))
        .await
        .unwrap()
}

/// Items the first migration changed, as the completed job's output says.
fn first_migration_changed(output: &Value) -> Value {
    let migration = output["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|part| part["name"] == "migration")
        .unwrap();
    migration["part"]
        .as_array()
        .unwrap()
        .iter()
        .find(|part| part["name"] == "itemsChanged")
        .unwrap()["valueInteger"]
        .clone()
}

#[tokio::test]
async fn a_paused_migration_stops_at_its_checkpoints_and_a_resume_finishes_it() {
    let env = TestEnv::start().await;
    put_items(&env, &legacy_jobs(LEGACY_JOBS)).await;
    let job = env.kick_off(2).await.id;
    // Two of the four segments at once; the second page migrated, wherever it runs, waits
    // until the pause has landed. No segment is done by then: each has about 50 items, in
    // pages of ten.
    let hook = pausing_registry(2);
    let settings = RunSettings {
        segments: Some(SEGMENTS),
        segments_at_once: 2,
        ..crate::support::settings()
    };
    let runner = runner_on(&env, &hook.registry, &settings, "worker");
    let running = runner.run(&job, far_deadline());
    let pause = async {
        hook.paused.notified().await;
        let answer = env
            .send(ApiRequest::post(&format!("/AsyncJob/{job}/$pause")))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        hook.resume.notify_one();
    };
    let (outcome, ()) = tokio::join!(running, pause);
    assert_eq!(outcome.unwrap(), RunOutcome::Paused);

    // Every segment let go at its checkpoint; none counted an attempt; the data stays at 0.
    let segments = segments_of(&env, &job).await;
    assert_eq!(segments.len(), SEGMENTS as usize);
    for segment in &segments {
        assert_eq!(segment.attempts.lease, None, "{segment:?}");
        assert_eq!(segment.attempts.failures, 0, "{segment:?}");
    }
    assert!(segments.iter().any(|segment| !segment.done));
    assert!(segments.iter().any(|segment| segment.items_scanned > 0));
    assert_eq!(env.store.data_version().await.unwrap(), 0);
    let stored = env.job(job.as_str()).await.unwrap();
    assert_eq!(stored.job.status, JobStatus::Accepted);
    assert_eq!(stored.run.as_ref().unwrap().attempts.lease, None);

    // While it is paused, no worker takes the job or its segments, and the sweeper skips it.
    let pages = hook.pages.load(Ordering::SeqCst);
    let other = runner_on(&env, &hook.registry, &settings, "other-worker");
    assert_eq!(
        other.run(&job, far_deadline()).await.unwrap(),
        RunOutcome::Paused
    );
    let undone = segments.iter().find(|segment| !segment.done).unwrap();
    assert_eq!(
        other
            .run_segment(&undone.key, far_deadline())
            .await
            .unwrap(),
        RunOutcome::Paused
    );
    let swept = other.sweep(far_deadline()).await.unwrap();
    assert!(swept.iter().all(|(id, _)| *id != job), "{swept:?}");
    assert_eq!(hook.pages.load(Ordering::SeqCst), pages, "nothing migrated");
    assert_eq!(segments_of(&env, &job).await, segments, "nothing written");

    let answer = env
        .send(ApiRequest::post(&format!("/AsyncJob/{job}/$resume")))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(run_to_end(&other, &job).await, RunOutcome::Completed);

    let done = env.job(job.as_str()).await.unwrap().job;
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(env.store.data_version().await.unwrap(), 2);
    assert_eq!(expiring(&env, &job).await, LEGACY_JOBS);
    let output = serde_json::to_value(&done.output).unwrap();
    assert_eq!(
        first_migration_changed(&output),
        LEGACY_JOBS as u64,
        "each item changed once: {output}"
    );
    let actions: Vec<&str> = output["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|part| part["name"] == "control")
        .map(|part| part["part"][0]["valueCode"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["pause", "resume"]);
}
