//! Runs the randomized lifecycle test outside the test harness: many schedules (`make soak`,
//! which writes RELIABILITY.md), or one schedule again.
//!
//! ```text
//! lifecycle [--schedules N] [--first-seed S] [--parallel P] [--report PATH] [--no-shrink]
//! lifecycle --replay SEED[:STEP,STEP,...]
//! ```

use std::fmt::Write;
use std::process::ExitCode;

use asyncjob_tests::lifecycle::{Report, Schedule, run, run_seeds, shrink};

#[tokio::main]
async fn main() -> ExitCode {
    // The service's own logs stay quiet unless RUST_LOG asks for them.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        arguments
            .iter()
            .position(|a| a == name)
            .and_then(|i| arguments.get(i + 1))
            .cloned()
    };
    if let Some(replay) = value("--replay") {
        let Some(schedule) = Schedule::parse_replay(&replay) else {
            eprintln!("--replay takes SEED or SEED:STEP,STEP,...");
            return ExitCode::from(2);
        };
        println!("seed {}:\n{schedule}", schedule.seed);
        return match run(&schedule).await {
            (_, None) => {
                println!("no rule broken");
                ExitCode::SUCCESS
            }
            (_, Some(message)) => {
                println!("{}", shrink(schedule, message).await);
                ExitCode::FAILURE
            }
        };
    }
    let number =
        |name: &str, default: u64| value(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let report = run_seeds(
        number("--first-seed", 1),
        number("--schedules", 10_000),
        number("--parallel", cores) as usize,
        !arguments.iter().any(|a| a == "--no-shrink"),
    )
    .await;
    for violation in &report.violations {
        println!("{violation}\n");
    }
    println!("{}", markdown(&report));
    if let Some(path) = value("--report")
        && let Err(error) = std::fs::write(&path, markdown(&report))
    {
        eprintln!("cannot write {path}: {error}");
        return ExitCode::FAILURE;
    }
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The faults injected, one row per DynamoDB operation and one column per kind.
fn by_operation(report: &Report) -> String {
    let counts = &report.counts.faults_by_operation;
    let kinds: std::collections::BTreeSet<&str> = counts.keys().map(|(_, kind)| *kind).collect();
    let operations: std::collections::BTreeSet<&str> = counts
        .keys()
        .map(|(operation, _)| operation.as_str())
        .collect();
    let mut out = String::from("## Faults by DynamoDB operation\n\n| operation |");
    for kind in &kinds {
        let _ = write!(out, " {kind} |");
    }
    out.push_str(" all |\n|---|");
    out.push_str(&"---|".repeat(kinds.len() + 1));
    for operation in operations {
        let _ = write!(out, "\n| {operation} |");
        let mut all = 0;
        for kind in &kinds {
            let n = counts
                .get(&(operation.to_owned(), *kind))
                .copied()
                .unwrap_or(0);
            all += n;
            let _ = write!(out, " {n} |");
        }
        let _ = write!(out, " {all} |");
    }
    out
}

fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let date = time::OffsetDateTime::now_utc().date();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(out, "# Reliability\n");
    let _ = writeln!(
        out,
        "Written by `make soak` on {date}, on a {cores}-core {} {} machine, in {:.0} s: the \
         randomized lifecycle test (`tests/src/lifecycle/`) over seeds {} to {}. Each schedule \
         runs the real handlers, runner and event entrypoints against the embedded engine, \
         with faults injected at the DynamoDB boundary, and checks every rule after every \
         step; `docs/design.md` lists the rules.\n",
        std::env::consts::OS,
        std::env::consts::ARCH,
        report.elapsed.as_secs_f64(),
        report.first_seed,
        report.first_seed + report.schedules.saturating_sub(1),
    );
    let _ = writeln!(out, "| figure | value |\n|---|---|");
    let _ = writeln!(out, "| schedules | {} |", report.schedules);
    let _ = writeln!(out, "| steps | {} |", report.counts.steps);
    let _ = writeln!(out, "| DynamoDB requests | {} |", report.counts.requests);
    let _ = writeln!(out, "| faults injected | {} |", report.faults_injected());
    let _ = writeln!(out, "| worker crashes | {} |", report.counts.crashes);
    let _ = writeln!(
        out,
        "| take-overs of a paused worker | {} |",
        report.counts.takeovers
    );
    let _ = writeln!(out, "| invariant checks | {} |", report.counts.checks);
    let _ = writeln!(
        out,
        "| violations (target 0) | {} |",
        report.violations.len()
    );
    let _ = writeln!(
        out,
        "\n## Faults by kind\n\n| fault | injected |\n|---|---|"
    );
    for (kind, count) in report.faults_by_kind() {
        let _ = writeln!(out, "| {kind} | {count} |");
    }
    let _ = writeln!(out, "\n{}", by_operation(report));
    for violation in &report.violations {
        let _ = writeln!(out, "\n## Violation\n\n```text\n{violation}\n```");
    }
    out
}
