//! Schedules: what happens to the service, step by step, with the faults each step meets.
//! A schedule is generated from its seed alone, so a seed replays it.

use std::fmt;

use asyncjob_shared::model::{CodeSet, JobStatus};

use super::rng::Rng;
use crate::faults::{CancelReason, Fault, FaultRule};

/// SQS messages and EventBridge events come from small pools, so deliveries repeat: the
/// `k`-th of each pool always asks for [`delivery_version`]`(k)`.
pub const DELIVERY_POOL: u8 = 4;

pub fn delivery_version(k: u8) -> u32 {
    u32::from(k % 2) + 1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Http,
    Sqs(u8),
    EventBridge(u8),
}

/// Jobs are named by their place among the jobs created so far (modulo their number), so a
/// step means something whatever came before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    KickOff {
        version: u32,
        via: Via,
    },
    Cancel {
        job: usize,
    },
    Poll {
        job: usize,
    },
    Read {
        job: usize,
    },
    Search {
        statuses: Vec<JobStatus>,
        oldest_first: bool,
        count: u8,
    },
    /// A worker runs one job; a lagging worker knows only the first migration. A short
    /// deadline is shorter than a budgeted page: Lambda kills the run at it.
    Run {
        job: usize,
        lagging: bool,
        short_deadline: bool,
    },
    Sweep {
        lagging: bool,
    },
    /// Time jumps past every lease and every back-off.
    AdvanceClock,
    /// DynamoDB's TTL deletes every item whose expiry has passed.
    Expire,
    /// A worker runs a job, and while one of its requests waits (the step's pause fault),
    /// someone else acts on the job.
    Interleave {
        job: usize,
        interloper: Interloper,
    },
}

/// Who acts while a worker waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interloper {
    /// A client cancels the job.
    Cancel,
    /// Time jumps past the lease, and another worker takes the job over.
    TakeOver,
    /// A client kicks off a version.
    KickOff(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub faults: Vec<FaultRule>,
}

/// What a schedule's service is set up with, drawn from its seed: how many segments each
/// migration runs in and how many of them a worker runs at once, the write budget (at
/// times below the number of segments), and how long finished jobs are kept (at times
/// shorter than a migration takes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conditions {
    pub segments: u32,
    pub segments_at_once: usize,
    pub items_per_second: Option<u32>,
    pub retention_secs: u64,
}

impl Conditions {
    fn generate(rng: &mut Rng) -> Self {
        let segments = 1 + rng.below(4) as u32;
        Self {
            segments,
            segments_at_once: 1 + rng.below(segments as usize),
            items_per_second: rng.chance(15).then(|| 2 + rng.below(2) as u32),
            retention_secs: if rng.chance(20) { 2 } else { 30 * 24 * 3600 },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub seed: u64,
    pub conditions: Conditions,
    /// Which of the seed's steps are kept (all, unless shrunk), and the steps themselves.
    pub kept: Vec<usize>,
    pub steps: Vec<Step>,
}

impl Action {
    /// The DynamoDB operations the step sends through the faulty store, so its faults land.
    fn operations(&self) -> &'static [&'static str] {
        match self {
            Self::KickOff { .. } => &["GetItem", "TransactWriteItems", "PutItem"],
            Self::Cancel { .. } => &["GetItem", "PutItem", "TransactWriteItems"],
            Self::Poll { .. } | Self::Read { .. } => &["GetItem"],
            Self::Search { .. } => &["Query", "GetItem"],
            Self::Run { .. } | Self::Sweep { .. } | Self::Interleave { .. } => &[
                "GetItem",
                "PutItem",
                "TransactWriteItems",
                "UpdateItem",
                "Scan",
                "Query",
                "BatchGetItem",
                "DescribeTable",
            ],
            Self::AdvanceClock | Self::Expire => &[],
        }
    }
}

impl Schedule {
    pub fn generate(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let conditions = Conditions::generate(&mut rng);
        let length = 8 + rng.below(17);
        let budgeted = conditions.items_per_second.is_some();
        let steps: Vec<Step> = (0..length).map(|_| step(&mut rng, budgeted)).collect();
        Self {
            seed,
            conditions,
            kept: (0..steps.len()).collect(),
            steps,
        }
    }

    /// The seed's schedule with only the steps at `kept`.
    pub fn with_steps(seed: u64, kept: &[usize]) -> Self {
        let all = Self::generate(seed);
        let kept: Vec<usize> = kept
            .iter()
            .copied()
            .filter(|&i| i < all.steps.len())
            .collect();
        Self {
            seed,
            conditions: all.conditions,
            steps: kept.iter().map(|&i| all.steps[i].clone()).collect(),
            kept,
        }
    }

    /// `seed` or `seed:i,j,k`, as `--replay` takes it.
    pub fn replay_argument(&self) -> String {
        let all = Self::generate(self.seed).steps.len();
        if self.kept.len() == all {
            return self.seed.to_string();
        }
        let kept: Vec<String> = self.kept.iter().map(usize::to_string).collect();
        format!("{}:{}", self.seed, kept.join(","))
    }

    pub fn parse_replay(text: &str) -> Option<Self> {
        let (seed, kept) = match text.split_once(':') {
            Some((seed, kept)) => (seed, Some(kept)),
            None => (text, None),
        };
        let seed = seed.trim().parse().ok()?;
        Some(match kept {
            None => Self::generate(seed),
            Some(kept) => {
                let kept: Option<Vec<usize>> =
                    kept.split(',').map(|i| i.trim().parse().ok()).collect();
                Self::with_steps(seed, &kept?)
            }
        })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  {:?}", self.conditions)?;
        for (index, step) in self.kept.iter().zip(&self.steps) {
            write!(f, "  {index:>2}: {:?}", step.action)?;
            for rule in &step.faults {
                write!(
                    f,
                    " | {} #{}: {:?}",
                    rule.operation, rule.occurrence, rule.fault
                )?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

fn step(rng: &mut Rng, budgeted: bool) -> Step {
    let action = action(rng, budgeted);
    let workers = matches!(action, Action::Run { .. } | Action::Sweep { .. });
    let operations = action.operations();
    let mut faults: Vec<FaultRule> = if operations.is_empty() || rng.chance(40) {
        Vec::new()
    } else {
        (0..1 + rng.below(4))
            .map(|_| fault_rule(rng, operations, workers))
            .collect()
    };
    if matches!(action, Action::Interleave { .. }) {
        faults.insert(
            0,
            FaultRule {
                operation: rng.pick(&["GetItem", "PutItem", "TransactWriteItems", "Scan"]),
                occurrence: rng.below(3) as u8,
                fault: Fault::Pause {
                    after: rng.chance(50),
                },
            },
        );
    }
    Step { action, faults }
}

fn action(rng: &mut Rng, budgeted: bool) -> Action {
    let job = rng.below(8);
    match rng.below(100) {
        0..20 => Action::KickOff {
            version: 1 + rng.below(2) as u32,
            via: Via::Http,
        },
        20..30 => Action::KickOff {
            version: 0,
            via: Via::Sqs(rng.below(DELIVERY_POOL.into()) as u8),
        },
        30..35 => Action::KickOff {
            version: 0,
            via: Via::EventBridge(rng.below(DELIVERY_POOL.into()) as u8),
        },
        35..43 => Action::Cancel { job },
        43..49 => Action::Poll { job },
        49..52 => Action::Read { job },
        52..60 => Action::Search {
            statuses: JobStatus::ALL
                .iter()
                .copied()
                .filter(|_| rng.chance(50))
                .collect(),
            oldest_first: rng.chance(50),
            count: 1 + rng.below(4) as u8,
        },
        60..74 => Action::Run {
            job,
            lagging: rng.chance(20),
            // Only a budget makes a page long enough to meet a short deadline.
            short_deadline: budgeted && rng.chance(50),
        },
        74..84 => Action::Interleave {
            job,
            interloper: match rng.below(3) {
                0 => Interloper::Cancel,
                1 => Interloper::TakeOver,
                _ => Interloper::KickOff(1 + rng.below(2) as u32),
            },
        },
        84..93 => Action::Sweep {
            lagging: rng.chance(20),
        },
        93..97 => Action::AdvanceClock,
        _ => Action::Expire,
    }
}

fn fault_rule(rng: &mut Rng, operations: &[&'static str], crashes: bool) -> FaultRule {
    let reasons = [
        CancelReason::Throttling,
        CancelReason::Conflict,
        CancelReason::Capacity,
    ];
    let fault = match rng.below(if crashes { 11 } else { 9 }) {
        0 => Fault::Throttle,
        1 => Fault::ServerError,
        2 => Fault::Conflict,
        3 | 4 => Fault::CancelTransaction {
            item: rng.below(4) as u8,
            reason: rng.pick(&reasons),
        },
        5 => Fault::LoseAnswerAsTimeout,
        6 => Fault::LoseAnswerAs500,
        7 => Fault::Latency(1 + rng.below(20) as u16),
        8 => Fault::LeaveUnprocessed,
        9 => Fault::CrashBefore,
        _ => Fault::CrashAfter,
    };
    FaultRule {
        operation: rng.pick(operations),
        occurrence: rng.below(3) as u8,
        fault,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_makes_the_same_schedule_and_replays_round_trip() {
        let schedule = Schedule::generate(42);
        assert_eq!(schedule, Schedule::generate(42));
        assert_eq!(Schedule::parse_replay("42"), Some(schedule.clone()));
        let shrunk = Schedule::with_steps(42, &[0, 2]);
        assert_eq!(
            shrunk.steps,
            vec![schedule.steps[0].clone(), schedule.steps[2].clone()]
        );
        assert_eq!(
            Schedule::parse_replay(&shrunk.replay_argument()),
            Some(shrunk)
        );
    }
}
