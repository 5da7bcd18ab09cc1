//! The real `asyncjob` binary against the real handlers (over HTTP) and the embedded engine:
//! exit codes, messages a person can act on, JSON for scripts, plain lines on a pipe, and a
//! progress bar on a terminal.

use std::process::Output;
use std::time::Duration;

use asyncjob_shared::model::{
    AsyncJob, JobStatus, JobType, Parameter, Parameters, StoredJob, instant,
};
use asyncjob_shared::runner::RunSettings;
use asyncjob_shared::store::test_support::legacy_item;
use asyncjob_tests::TestEnv;
use asyncjob_tests::server::ApiServer;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_asyncjob");

/// A sweeper quick enough for tests, with pages small enough that a few thousand items take
/// a few seconds.
fn settings() -> RunSettings {
    RunSettings {
        page_size: 20,
        retry_delay: Duration::ZERO,
        max_retry_delay: Duration::ZERO,
        stop_before_deadline: Duration::ZERO,
        ..RunSettings::default()
    }
}

fn command(server: &ApiServer, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .env("ASYNCJOB_URL", &server.url)
        .env_remove("ASYNCJOB_TOKEN")
        .kill_on_drop(true);
    command
}

async fn asyncjob(server: &ApiServer, args: &[&str]) -> Output {
    command(server, args).output().await.unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap()
}

/// `n` finished jobs an older release wrote: the migrations' work.
async fn seed(env: &TestEnv, n: usize) {
    for i in 0..n {
        let at = instant::format(instant::now() - time::Duration::seconds(i as i64 + 60));
        let mut job = AsyncJob::accepted(JobType::DataMigration, 1, "urn:seed".into(), &at);
        job.status = JobStatus::Completed;
        env.client
            .put_item()
            .table_name(&env.table)
            .set_item(Some(legacy_item(job)))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_wait_follows_the_job_to_completed_and_exits_0() {
    let env = TestEnv::start().await;
    seed(&env, 30).await;
    let server = ApiServer::start(&env, Some(settings())).await;
    let output = asyncjob(&server, &["migrate", "--wait"]).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(code(&output), 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(": completed"), "{stdout}");
    assert!(
        stdout.contains("migration 1 expire-finished-jobs:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("migration 2 rewrite-index-keys:"),
        "{stdout}"
    );
    assert!(stderr.contains("kicked off"), "{stderr}");
    // On a pipe: plain lines, no escape codes.
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{stderr}"
    );

    // Kicked off again: the same job answers, completed already.
    let again = asyncjob(&server, &["migrate", "--wait", "--output", "json"]).await;
    assert_eq!(code(&again), 0, "{}", text(&again.stderr));
    let job: Value = serde_json::from_slice(&again.stdout).expect("JSON on stdout");
    assert_eq!(job["resourceType"], "AsyncJob");
    assert_eq!(job["status"], "completed");
    assert_eq!(job["output"]["parameter"][0]["valueInteger"], 2);
}

/// Following a job costs a request per change: once it knows the job, every poll asks the
/// service to answer when the job changes (`Prefer: wait`) instead of sleeping between
/// polls.
#[tokio::test(flavor = "multi_thread")]
async fn following_a_job_asks_the_service_to_answer_when_it_changes() {
    let env = TestEnv::start().await;
    seed(&env, 30).await;
    let server = ApiServer::start(&env, Some(settings())).await;
    let output = asyncjob(&server, &["migrate", "--wait"]).await;
    assert_eq!(code(&output), 0, "{}", text(&output.stderr));
    let polls = server.polls.lock().unwrap().clone();
    let (first, rest) = polls.split_first().expect("the job was polled");
    assert_eq!(first, &None, "{polls:?}");
    assert!(!rest.is_empty(), "the job was followed: {polls:?}");
    assert!(
        rest.iter()
            .all(|prefer| prefer.as_deref() == Some("wait=20")),
        "{polls:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_ended_in_error_exits_1_with_its_outcome() {
    let env = TestEnv::start().await;
    let mut job = AsyncJob::accepted(
        JobType::DataMigration,
        1,
        "urn:t".into(),
        &instant::format(instant::now()),
    );
    job.status = JobStatus::Error;
    job.output = Some(Parameters::new(vec![Parameter::resource(
        "outcome",
        json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error",
            "code": "exception", "diagnostics": "migration 1 (x) after 0 items: the disk is full"}]}),
    )]));
    let id = job.id.to_string();
    env.put(&StoredJob::new(job)).await;
    let server = ApiServer::start(&env, None).await;
    let output = asyncjob(&server, &["status", &id, "--wait"]).await;
    assert_eq!(code(&output), 1);
    assert!(
        text(&output.stdout).contains("the disk is full"),
        "{}",
        text(&output.stdout)
    );
    let json = asyncjob(&server, &["status", &id, "--output", "json"]).await;
    assert_eq!(code(&json), 1);
    let outcome: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
}

/// The id of the data migration that runs, once `asyncjob migrations` lists one.
async fn running_job(server: &ApiServer) -> String {
    loop {
        let list = asyncjob(server, &["migrations", "--output", "json"]).await;
        let parameters: Value = serde_json::from_slice(&list.stdout).unwrap();
        let running = parameters["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "running")
            .map(|p| p["part"][0]["valueId"].as_str().unwrap().to_owned());
        if let Some(id) = running {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A served API whose migrations of 300 items run at 20 writes a second, 14 s each at least
/// on any machine (what a test does meanwhile comes while it runs); `migrate --wait`
/// following one of them; and its job's id.
async fn slow_migration_followed(env: &TestEnv) -> (ApiServer, tokio::process::Child, String) {
    seed(env, 300).await;
    let budgeted = RunSettings {
        items_per_second: Some(20),
        ..settings()
    };
    let server = ApiServer::start(env, Some(budgeted)).await;
    let waiting = command(&server, &["migrate", "--wait"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = running_job(&server).await;
    (server, waiting, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_from_another_process_ends_the_wait_with_exit_2() {
    let env = TestEnv::start().await;
    let (server, waiting, id) = slow_migration_followed(&env).await;
    let cancel = asyncjob(&server, &["cancel", &id]).await;
    assert_eq!(code(&cancel), 0, "{}", text(&cancel.stderr));
    let waited = waiting.wait_with_output().await.unwrap();
    assert_eq!(code(&waited), 2, "{}", text(&waited.stderr));
    assert!(text(&waited.stdout).contains("cancelled"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_job_says_so_and_a_resumed_one_runs_to_completed() {
    let env = TestEnv::start().await;
    let (server, waiting, id) = slow_migration_followed(&env).await;

    let pause = asyncjob(&server, &["pause", &id]).await;
    assert_eq!(code(&pause), 0, "{}", text(&pause.stderr));
    assert!(
        text(&pause.stdout).starts_with(&format!("job {id}: paused by local since 20")),
        "{}",
        text(&pause.stdout)
    );
    let status = asyncjob(&server, &["status", &id]).await;
    assert!(
        text(&status.stdout).contains("paused by local"),
        "{}",
        text(&status.stdout)
    );
    let json = asyncjob(&server, &["resume", &id, "--output", "json"]).await;
    assert_eq!(code(&json), 0, "{}", text(&json.stderr));
    let job: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(job["status"], "accepted");

    let waited = waiting.wait_with_output().await.unwrap();
    assert_eq!(code(&waited), 0, "{}", text(&waited.stderr));
    assert!(text(&waited.stdout).contains("completed"));

    // A finished job can no longer be paused: exit 5, the service's reason on one line.
    let late = asyncjob(&server, &["pause", &id]).await;
    assert_eq!(code(&late), 5);
    assert!(
        text(&late.stderr).contains("completed"),
        "{}",
        text(&late.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_past_the_timeout_exits_3_and_the_job_goes_on() {
    let env = TestEnv::start().await;
    // No sweeper: the job stays queued.
    let server = ApiServer::start(&env, None).await;
    let output = asyncjob(&server, &["migrate", "--wait", "--timeout", "2s"]).await;
    assert_eq!(code(&output), 3);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("stopped waiting; the job goes on"),
        "{stderr}"
    );
    assert!(stderr.contains("queued"), "{stderr}");
}

/// `migrate --wait` (with `extra` arguments) on a job that stays queued, interrupted as
/// Ctrl-C would: what it printed, and the job's status afterwards.
async fn interrupted_wait(extra: &[&str]) -> (Output, String, Value) {
    let env = TestEnv::start().await;
    // No sweeper: the job stays queued.
    let server = ApiServer::start(&env, None).await;
    let mut args = vec!["migrate", "--wait"];
    args.extend(extra);
    let mut waiting = command(&server, &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first poll's line: the command listens for Ctrl-C from before it.
    let mut stderr = BufReader::new(waiting.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains(": queued") {
        let read = stderr.read_line(&mut said).await.unwrap();
        assert!(read > 0, "the command ended before its first poll: {said}");
    }
    let id = running_job(&server).await;
    let pid = waiting.id().unwrap().to_string();
    let signal = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(signal.success());
    stderr.read_to_string(&mut said).await.unwrap();
    let mut output = waiting.wait_with_output().await.unwrap();
    output.stderr = said.into_bytes();
    let read = asyncjob(&server, &["get", &id, "--output", "json"]).await;
    (output, id, serde_json::from_slice(&read.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_waiting_exits_3_and_names_the_status_url() {
    let (output, id, job) = interrupted_wait(&[]).await;
    assert_eq!(code(&output), 3, "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&format!("/job/{id}/status")), "{stderr}");
    assert_eq!(job["status"], "accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_with_cancel_on_interrupt_cancels_the_job_and_exits_2() {
    let (output, _, job) = interrupted_wait(&["--cancel-on-interrupt"]).await;
    assert_eq!(code(&output), 2, "{}", text(&output.stderr));
    assert_eq!(job["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_one_line_a_person_can_act_on() {
    let env = TestEnv::start().await;
    let server = ApiServer::start(&env, None).await;
    let started = asyncjob(&server, &["migrate", "--version", "2"]).await;
    assert_eq!(code(&started), 0);
    let location = text(&started.stdout).trim().to_owned();

    // Another version while one runs: which one, and where to watch it.
    let busy = asyncjob(&server, &["migrate", "--version", "1"]).await;
    assert_eq!(code(&busy), 5);
    let said = text(&busy.stderr);
    assert!(said.contains("busy:") && said.contains(&location), "{said}");

    // A version nobody registered: the newest known.
    let unknown = asyncjob(&server, &["migrate", "--version", "9"]).await;
    assert_eq!(code(&unknown), 4);
    assert!(text(&unknown.stderr).contains("newest registered migration is 2"));

    // A token without the admin scope: which scope is missing.
    let claims = "eyJzY29wZSI6ImFzeW5jam9iL3JlYWQifQ"; // {"scope":"asyncjob/read"}
    let token = format!("e30.{claims}.x");
    let reader = asyncjob(&server, &["--token", &token, "cancel", "x"]).await;
    assert_eq!(code(&reader), 5);
    let said = text(&reader.stderr);
    assert!(
        said.contains("asyncjob/admin") && !said.contains(&token),
        "{said}"
    );

    // Nobody there.
    let nowhere = tokio::process::Command::new(BIN)
        .args(["--url", "http://127.0.0.1:9", "migrations"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&nowhere), 5);
    assert!(text(&nowhere.stderr).contains("cannot reach"));
    for output in [&busy, &unknown, &reader, &nowhere] {
        assert_eq!(
            text(&output.stderr).lines().count(),
            1,
            "{}",
            text(&output.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_get_and_migrations_read_the_service() {
    let env = TestEnv::start().await;
    seed(&env, 3).await;
    let server = ApiServer::start(&env, Some(settings())).await;
    assert_eq!(code(&asyncjob(&server, &["migrate", "--wait"]).await), 0);

    let list = asyncjob(&server, &["list", "--status", "completed", "--limit", "2"]).await;
    let table = text(&list.stdout);
    assert!(table.starts_with("ID "), "{table}");
    assert_eq!(table.lines().count(), 3, "a header and two jobs: {table}");
    let jobs = asyncjob(&server, &["list", "--output", "json", "--limit", "50"]).await;
    let jobs: Value = serde_json::from_slice(&jobs.stdout).unwrap();
    assert_eq!(jobs.as_array().unwrap().len(), 4);

    let id = jobs[0]["id"].as_str().unwrap();
    let get = asyncjob(&server, &["get", id]).await;
    assert!(text(&get.stdout).starts_with(&format!("job {id}: ")));

    let migrations = asyncjob(&server, &["migrations"]).await;
    let listed = text(&migrations.stdout);
    assert!(listed.contains("data version: 2"), "{listed}");
    assert!(listed.contains("expire-finished-jobs") && listed.contains("rewrite-index-keys"));
}

/// What the completed job's summary on stdout says migration `place` scanned.
fn items_scanned(screen: &str, place: usize) -> u64 {
    let line = screen
        .lines()
        .find(|line| line.starts_with(&format!("  migration {place} ")))
        .unwrap_or_else(|| panic!("no summary of migration {place}: {screen}"));
    let (before, _) = line.split_once(" items scanned").unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

/// `migrate --wait` on a real pseudo-terminal (`script` gives it one) against a server
/// whose sweeper runs with `settings`: the screen, once the job completed.
async fn migrate_on_a_terminal(env: &TestEnv, settings: RunSettings) -> String {
    let server = ApiServer::start(env, Some(settings)).await;
    let output = tokio::process::Command::new("script")
        .args(["--quiet", "--return", "--command"])
        .arg(format!("{BIN} migrate --wait"))
        .arg("/dev/null")
        .env("ASYNCJOB_URL", &server.url)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .output()
        .await
        .unwrap();
    let screen = text(&output.stdout);
    assert_eq!(code(&output), 0, "{screen}");
    assert!(screen.contains(": completed"), "{screen}");
    screen
}

/// Both migrations of the plan have a bar, migration 1's before migration 2's, and each
/// bar's last drawing is full, with the count the job's summary gives.
fn assert_every_migration_has_a_full_bar(screen: &str) {
    let lines: Vec<&str> = screen.split(['\r', '\n']).collect();
    let drawn = |place: usize| {
        let label = format!("migration {place}/2 (version {place}) [");
        let at: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains(&label))
            .collect();
        assert!(!at.is_empty(), "no bar of migration {place}: {screen}");
        (at[0], at[at.len() - 1])
    };
    let (first, second) = (drawn(1), drawn(2));
    assert!(
        first.1 < second.0,
        "migration 1's bar comes first: {screen}"
    );
    for (place, (_, last)) in [(1, first), (2, second)] {
        let scanned = items_scanned(screen, place);
        let full = format!("[{}] {scanned} items, done", "=".repeat(30));
        assert!(lines[last].contains(&full), "{full}: {}", lines[last]);
    }
}

/// While a migration runs, its bar on a terminal shows the items against the estimate,
/// the rate and an ETA; once the job completed, every migration's bar is full.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_a_running_migration_has_a_live_bar() {
    let env = TestEnv::start().await;
    seed(&env, 1000).await;
    // Each migration writes about 1000 items: at 100 a second it runs for 9 s at least (the
    // budget lets a second of writes catch up), on any machine. A running job is polled at
    // least every 3 s, so some poll sees a migration under way.
    let budgeted = RunSettings {
        items_per_second: Some(100),
        ..settings()
    };
    let screen = migrate_on_a_terminal(&env, budgeted).await;
    assert!(
        screen.contains("/~"),
        "a bar against the estimate: {screen}"
    );
    assert!(screen.contains("/s, ETA "), "a bar while it ran: {screen}");
    assert_every_migration_has_a_full_bar(&screen);
}

/// A migration that started and finished between two polls (here, most likely, the whole
/// job between the first poll and the next, 5 s later) still gets its bar, drawn full.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_a_migration_run_between_two_polls_still_gets_its_bar() {
    let env = TestEnv::start().await;
    seed(&env, 30).await;
    let screen = migrate_on_a_terminal(&env, settings()).await;
    assert_every_migration_has_a_full_bar(&screen);
}
