//! The randomized lifecycle test (`asyncjob_tests::lifecycle`): a few hundred generated
//! schedules under faults, every rule checked after every step; a failing schedule is
//! printed shrunk, with the command that replays it. `make soak` runs many more.
//! `ASYNCJOB_SCHEDULES` and `ASYNCJOB_FIRST_SEED` choose others.

use asyncjob_tests::lifecycle::run_seeds;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[test]
fn no_schedule_breaks_a_rule() {
    let first_seed = setting("ASYNCJOB_FIRST_SEED", 1);
    let schedules = setting("ASYNCJOB_SCHEDULES", 300);
    // The handlers', runner's and store's futures nest deep in a debug build: the schedules
    // run on worker threads with room for them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(16 << 20)
        .build()
        .unwrap();
    let report = runtime
        .block_on(async { tokio::spawn(run_seeds(first_seed, schedules, 2, true)).await })
        .unwrap();
    assert!(
        report.faults_injected() > report.schedules,
        "too few faults were injected: {:?}",
        report.faults_by_kind()
    );
    assert!(report.counts.crashes > 0, "no worker crashed");
    let found: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
    assert!(
        found.is_empty(),
        "{} schedules broke a rule:\n\n{}",
        found.len(),
        found.join("\n\n")
    );
}
