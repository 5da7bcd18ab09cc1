//! The model-based randomized test of a job's whole life: generated schedules of kick-offs
//! (HTTP and events, deliveries repeated), cancels, polls, reads, searches, worker runs that
//! may crash, sweeps and clock jumps, run against the real handlers and runner on the
//! embedded engine while DynamoDB's answers go wrong as each step's faults say. After every
//! step the table and the answers are checked against the rules; at the end, with faults
//! stopped, sweeping must finish every accepted job. A failing schedule is shrunk to the
//! fewest steps that still fail, and printed with the argument that replays it.

mod expect;
mod rng;
mod rules;
mod schedule;
mod world;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};

pub use schedule::Schedule;
pub use world::Counts;
use world::World;

/// A schedule that broke a rule: where, and which.
#[derive(Clone, Debug)]
pub struct Violation {
    pub schedule: Schedule,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {}: {}", self.schedule.seed, self.message)?;
        writeln!(f, "steps:\n{}", self.schedule)?;
        write!(
            f,
            "replay: cargo run -p asyncjob-tests --bin lifecycle -- --replay {}",
            self.schedule.replay_argument()
        )
    }
}

/// Runs `schedule` on a fresh table; the rule it broke, if any.
pub async fn run(schedule: &Schedule) -> (Counts, Option<String>) {
    let mut world = World::new(&schedule.conditions).await;
    for (index, step) in schedule.kept.iter().zip(&schedule.steps) {
        if let Err(message) = world.step(*index, step).await {
            return (world.finish(), Some(format!("step {index}: {message}")));
        }
    }
    let settled = world.settle().await.err();
    (world.finish(), settled)
}

/// The fewest steps of `schedule` that still break a rule, found by leaving steps out one
/// at a time (a step whose removal hides the failure stays).
pub async fn shrink(schedule: Schedule, message: String) -> Violation {
    let mut best = Violation { schedule, message };
    let mut index = best.schedule.kept.len();
    while index > 0 {
        index -= 1;
        let mut kept = best.schedule.kept.clone();
        kept.remove(index);
        let candidate = Schedule::with_steps(best.schedule.seed, &kept);
        if let (_, Some(message)) = run(&candidate).await {
            best = Violation {
                schedule: candidate,
                message,
            };
        }
    }
    best
}

/// What a run of many schedules did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub first_seed: u64,
    pub schedules: u64,
    pub counts: Counts,
    pub violations: Vec<Violation>,
    pub elapsed: Duration,
}

impl Report {
    fn add(&mut self, counts: Counts) {
        self.schedules += 1;
        let total = &mut self.counts;
        total.steps += counts.steps;
        total.crashes += counts.crashes;
        total.takeovers += counts.takeovers;
        total.checks += counts.checks;
        total.requests += counts.requests;
        for (kind, n) in counts.faults {
            *total.faults.entry(kind).or_default() += n;
        }
        for (key, n) in counts.faults_by_operation {
            *total.faults_by_operation.entry(key).or_default() += n;
        }
    }

    pub fn faults_injected(&self) -> u64 {
        self.counts.faults.values().sum()
    }

    pub fn faults_by_kind(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts.faults
    }
}

/// Runs the schedules of `count` seeds from `first_seed`, `parallel` at a time (each on an
/// engine of its own), then shrinks each failure when `shrinking`.
pub async fn run_seeds(first_seed: u64, count: u64, parallel: usize, shrinking: bool) -> Report {
    let started = Instant::now();
    let mut report = Report {
        first_seed,
        ..Report::default()
    };
    let mut failed = Vec::new();
    let mut runs = stream::iter(first_seed..first_seed + count)
        .map(|seed| async move {
            let schedule = Schedule::generate(seed);
            let (counts, violation) = run(&schedule).await;
            (schedule, counts, violation)
        })
        .buffer_unordered(parallel.max(1));
    while let Some((schedule, counts, violation)) = runs.next().await {
        report.add(counts);
        if let Some(message) = violation {
            failed.push((schedule, message));
        }
    }
    failed.sort_by_key(|(schedule, _)| schedule.seed);
    for (schedule, message) in failed {
        report.violations.push(if shrinking {
            shrink(schedule, message).await
        } else {
            Violation { schedule, message }
        });
    }
    report.elapsed = started.elapsed();
    report
}
