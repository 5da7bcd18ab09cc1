//! One schedule's world: the real handlers, runner and event entrypoints on a store whose
//! requests meet the schedule's faults, a fresh table on the embedded engine, and the
//! checks made after every step.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use asyncjob_shared::migration::{ExpireFinishedJobs, MigrationContext, Registry};
use asyncjob_shared::model::{
    AsyncJob, Clock, CodeSet, JobId, JobStatus, JobType, StoredJob, instant,
};
use asyncjob_shared::runner::{RunOutcome, RunSettings, Runner};
use asyncjob_shared::store::DynamoStore;
use asyncjob_shared::store::test_support::schema::{
    DATA_VERSION, DATA_VERSION_KEY, EXPIRES_AT, ID, STATUS,
};
use asyncjob_shared::store::test_support::{Item, from_item, legacy_item};
use aws_sdk_dynamodb::types::AttributeValue;

use super::expect::{Expectation, check_answer};
use super::rules::Model;
use super::schedule::{Action, Conditions, Interloper, Step, Via, delivery_version};
use crate::faults::FaultPlan;
use crate::{ApiRequest, TestEnv};

/// The table as one step left it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The jobs of the schedule, live ones only (an expired one is gone to a reader).
    pub jobs: BTreeMap<String, StoredJob>,
    pub data_version: u32,
    /// The items seeded as an older release wrote them, that the migrations bring up to date.
    pub legacy: BTreeMap<String, Item>,
    /// Items kept for one job's run: its segments and its write budget.
    pub bookkeeping: Vec<Item>,
    /// The expiry of every job item that has one, expired or not: a job may finish and
    /// expire within one step.
    pub expiries: BTreeMap<String, i64>,
}

impl Snapshot {
    pub fn status(&self, id: &str) -> Option<JobStatus> {
        self.jobs.get(id).map(|stored| stored.job.status)
    }
}

/// Legacy jobs seeded into each schedule's table.
const LEGACY_JOBS: usize = 6;

/// How long before its deadline a run stops, and the deadline of a short-deadline run:
/// shorter than a budgeted page (up to two seconds of writes).
const STOP_MARGIN: Duration = Duration::from_millis(1500);
const SHORT_DEADLINE: Duration = Duration::from_secs(2);

/// Counts for the reliability report.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub steps: u64,
    pub crashes: u64,
    pub takeovers: u64,
    pub checks: u64,
    pub requests: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub faults_by_operation: BTreeMap<(String, &'static str), u64>,
}

pub struct World {
    pub(super) env: TestEnv,
    pub(super) plan: FaultPlan,
    store: DynamoStore,
    /// The same table without faults, for whoever acts while a worker waits.
    clean: DynamoStore,
    pub(super) clean_plan: FaultPlan,
    pub(super) settings: RunSettings,
    /// The clock of both stores, which the schedule moves ahead.
    pub(super) clock: Clock,
    lagging: Registry,
    /// Job ids in the order they appeared.
    jobs: Vec<String>,
    pub(super) model: Model,
    pub counts: Counts,
}

const FAR: Duration = Duration::from_secs(600);

impl World {
    pub async fn new(conditions: &Conditions) -> Self {
        let mut env = TestEnv::start().await;
        env.config.retention = Duration::from_secs(conditions.retention_secs);
        let clock = Clock::movable();
        let plan = FaultPlan::default();
        let store = env.faulty_store(&plan).with_clock(clock.clone());
        // Through a fault plan of its own that injects nothing: its migration writes count
        // towards the budget too.
        let clean_plan = FaultPlan::default();
        let clean = env.faulty_store(&clean_plan).with_clock(clock.clone());
        let settings = RunSettings {
            lease: Duration::from_secs(60),
            max_attempts: 3,
            retry_delay: Duration::from_secs(5),
            max_retry_delay: Duration::from_secs(30),
            // Several pages a segment, so that crashes land between them; under a budget,
            // pages of two seconds' writes, longer than a short deadline leaves.
            page_size: if conditions.items_per_second.is_some() {
                6
            } else {
                3
            },
            items_per_second: conditions.items_per_second,
            segments: Some(conditions.segments),
            segments_at_once: conditions.segments_at_once,
            stop_before_deadline: STOP_MARGIN,
        };
        let lagging = Registry::new(vec![Box::new(ExpireFinishedJobs)]).expect("version 1");
        let mut model = Model::default();
        for i in 0..LEGACY_JOBS {
            let minutes = i64::try_from(LEGACY_JOBS - i).unwrap_or(1);
            let at = instant::format(clock.now() - time::Duration::minutes(minutes));
            let mut job = AsyncJob::accepted(JobType::DataMigration, 1, "urn:old".into(), &at);
            job.status = [JobStatus::Completed, JobStatus::Error, JobStatus::Cancelled][i % 3];
            env.client
                .put_item()
                .table_name(&env.table)
                .set_item(Some(legacy_item(job.clone())))
                .send()
                .await
                .expect("the clean client reaches the engine");
            model.legacy.insert(job.id.to_string(), job);
        }
        Self {
            env,
            plan,
            store,
            clean,
            clean_plan,
            settings,
            clock,
            lagging,
            jobs: Vec::new(),
            model,
            counts: Counts::default(),
        }
    }

    /// Runs `step` and checks what it did; `Err` names what went wrong.
    pub async fn step(&mut self, index: usize, step: &Step) -> Result<(), String> {
        self.counts.steps += 1;
        let before = self.snapshot().await;
        let failing_before = self.model.failing;
        self.plan.set(step.faults.clone());
        // Boxed: the handlers', runner's and store's futures nest deep, and a test thread's
        // stack is small.
        let result = Box::pin(self.act(index, &step.action, &before)).await;
        self.plan.clear();
        self.count_failing_faults();
        let after = self.snapshot().await;
        self.learn_jobs(&after, failing_before);
        result?;
        self.check(&after)
    }

    /// With faults stopped, sweeping to quiescence finishes every accepted job.
    pub async fn settle(&mut self) -> Result<(), String> {
        self.plan.clear();
        for round in 0..12 {
            self.advance_clock();
            let registry = Registry::built_in();
            let runner = self.runner(registry, format!("settle-{round}"));
            let _ = Box::pin(runner.sweep(Instant::now() + FAR)).await;
            drop(runner);
            let after = self.snapshot().await;
            self.check(&after)?;
            if !after
                .jobs
                .values()
                .any(|s| s.job.status == JobStatus::Accepted)
            {
                return Ok(());
            }
        }
        Err("accepted jobs are left after faults stopped and the sweeper ran 12 times".into())
    }

    pub fn finish(&mut self) -> Counts {
        let (faults, requests) = self.plan.counts();
        self.counts.faults = faults;
        self.counts.faults_by_operation = self.plan.counts_by_operation();
        self.counts.requests = requests;
        self.counts.clone()
    }

    /// Adds the faults injected so far that may fail an attempt to the model's count.
    fn count_failing_faults(&mut self) {
        let (faults, _) = self.plan.counts();
        let failing: u64 = [
            "server error",
            "crash before a request",
            "crash after a request",
        ]
        .iter()
        .filter_map(|kind| faults.get(kind))
        .sum();
        self.model.failing = failing + self.counts.takeovers;
    }

    fn runner<'a>(&'a self, registry: &'a Registry, owner: String) -> Runner<'a, DynamoStore> {
        let context = MigrationContext::on(&self.store, self.settings.page_size);
        Runner::new(&self.store, registry, context, &self.settings, owner)
    }

    fn job(&self, index: usize) -> String {
        match self.jobs.len() {
            0 => "0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a".to_owned(),
            n => self.jobs[index % n].clone(),
        }
    }

    async fn act(
        &mut self,
        index: usize,
        action: &Action,
        before: &Snapshot,
    ) -> Result<(), String> {
        match action {
            Action::KickOff { version, via } => self.kick_off(*version, *via, before).await,
            Action::Cancel { job } => {
                let id = self.job(*job);
                let answer = self
                    .env
                    .send_to(
                        &self.store,
                        ApiRequest::delete(&format!("/job/{id}/status")),
                    )
                    .await;
                if answer.status == 202 {
                    self.expect_final(&id, JobStatus::Cancelled)?;
                }
                check_answer(&answer, Expectation::cancel(before, &id))
            }
            Action::Poll { job } => {
                let id = self.job(*job);
                let answer = self
                    .env
                    .send_to(&self.store, ApiRequest::get(&format!("/job/{id}/status")))
                    .await;
                check_answer(&answer, Expectation::poll(before, &id))
            }
            Action::Read { job } => {
                let id = self.job(*job);
                let answer = self
                    .env
                    .send_to(&self.store, ApiRequest::get(&format!("/AsyncJob/{id}")))
                    .await;
                check_answer(&answer, Expectation::read(before, &id))
            }
            Action::Search {
                statuses,
                oldest_first,
                count,
            } => self.search(statuses, *oldest_first, *count).await,
            Action::Run {
                job,
                lagging,
                short_deadline,
            } => {
                let id = self.job(*job);
                let registry = if *lagging {
                    &self.lagging
                } else {
                    Registry::built_in()
                };
                let runner = self.runner(registry, format!("worker-{index}"));
                let id = JobId::parse(&id).expect("a job id");
                let deadline = Instant::now() + if *short_deadline { SHORT_DEADLINE } else { FAR };
                let outcome = tokio::select! {
                    outcome = runner.run(&id, deadline) => Some(outcome.ok()),
                    () = self.plan.crashed() => None,
                    // Lambda kills the invocation at its deadline.
                    () = tokio::time::sleep_until(deadline.into()) => {
                        return Err(format!(
                            "a run of {id} was still going at its deadline, {} ms after it began",
                            SHORT_DEADLINE.as_millis()
                        ));
                    }
                };
                drop(runner);
                let Some(outcome) = outcome else {
                    self.counts.crashes += 1;
                    return Ok(());
                };
                self.no_lease_left(&format!("worker-{index}")).await?;
                self.expect_outcome(id.as_str(), outcome.as_ref())
            }
            Action::Sweep { lagging } => {
                let registry = if *lagging {
                    &self.lagging
                } else {
                    Registry::built_in()
                };
                let runner = self.runner(registry, format!("sweeper-{index}"));
                let crashed = tokio::select! {
                    _ = runner.sweep(Instant::now() + FAR) => false,
                    () = self.plan.crashed() => true,
                };
                drop(runner);
                self.counts.crashes += u64::from(crashed);
                if crashed {
                    return Ok(());
                }
                self.no_lease_left(&format!("sweeper-{index}")).await
            }
            Action::AdvanceClock => {
                self.advance_clock();
                Ok(())
            }
            Action::Expire => {
                self.expire_items().await;
                Ok(())
            }
            Action::Interleave { job, interloper } => {
                // The paused worker's leases run out under it: a run that died, to the rules.
                self.counts.takeovers += u64::from(*interloper == Interloper::TakeOver);
                let id = JobId::parse(&self.job(*job)).expect("a job id");
                let ended = self.interleave(index, &id, *interloper).await?;
                for (id, status) in ended {
                    self.expect_final(&id, status)?;
                }
                Ok(())
            }
        }
    }

    /// Runs `id` and, while one of the run's requests waits, lets `interloper` act; then the
    /// run goes on. The interloper uses the store without faults. Returns the statuses the
    /// answers promised for good.
    async fn interleave(
        &self,
        index: usize,
        id: &JobId,
        interloper: Interloper,
    ) -> Result<Vec<(String, JobStatus)>, String> {
        let runner = self.runner(Registry::built_in(), format!("worker-{index}"));
        let run = runner.run(id, Instant::now() + FAR);
        tokio::pin!(run);
        // `Some` when the run ended before any request paused.
        let ended_early = tokio::select! {
            outcome = &mut run => Some(outcome.ok()),
            () = self.plan.paused() => None,
        };
        let mut ended = Vec::new();
        let acted = match interloper {
            Interloper::Cancel => {
                let answer = self
                    .env
                    .send_to(
                        &self.clean,
                        ApiRequest::delete(&format!("/job/{id}/status")),
                    )
                    .await;
                if answer.status == 202 {
                    ended.push((id.to_string(), JobStatus::Cancelled));
                }
                check_answer(&answer, Expectation::Any)
            }
            Interloper::TakeOver => {
                self.advance_clock();
                let context = MigrationContext::on(&self.clean, self.settings.page_size);
                let other = Runner::new(
                    &self.clean,
                    Registry::built_in(),
                    context,
                    &self.settings,
                    format!("takeover-{index}"),
                );
                let outcome = other.run(id, Instant::now() + FAR).await.ok();
                ended.extend(final_status(outcome.as_ref()).map(|status| (id.to_string(), status)));
                Ok(())
            }
            Interloper::KickOff(version) => {
                let request = ApiRequest::post(&format!("/$data-migration?dataVersion={version}"))
                    .prefer_async();
                let answer = self.env.send_to(&self.clean, request).await;
                check_answer(&answer, Expectation::Any)
            }
        };
        let outcome = match ended_early {
            Some(outcome) => outcome,
            // Only a paused request may be resumed: a resume with nothing waiting would let
            // the next step's pause through at once.
            None => {
                self.plan.resume();
                run.await.ok()
            }
        };
        ended.extend(final_status(outcome.as_ref()).map(|status| (id.to_string(), status)));
        acted.map(|()| ended)
    }

    /// A run's outcome promises the job's status for good.
    fn expect_outcome(&mut self, id: &str, outcome: Option<&RunOutcome>) -> Result<(), String> {
        match final_status(outcome) {
            Some(status) => self.expect_final(id, status),
            None => Ok(()),
        }
    }

    /// Someone was told the job is `status` now: it must stay so.
    fn expect_final(&mut self, id: &str, status: JobStatus) -> Result<(), String> {
        match self.model.final_status.get(id) {
            Some(previous) if *previous != status => Err(format!(
                "job {id} was reported {previous}, and now {status}"
            )),
            _ => {
                self.model.final_status.insert(id.to_owned(), status);
                Ok(())
            }
        }
    }

    async fn kick_off(&mut self, version: u32, via: Via, before: &Snapshot) -> Result<(), String> {
        match via {
            Via::Http => {
                let request = ApiRequest::post(&format!("/$data-migration?dataVersion={version}"))
                    .prefer_async();
                let answer = self.env.send_to(&self.store, request).await;
                check_answer(&answer, Expectation::kick_off(before, version))
            }
            Via::Sqs(k) => {
                let body = serde_json::json!({"type": "data-migration", "dataVersion": delivery_version(k)});
                let payload = serde_json::json!({"Records": [{
                    "messageId": format!("m{k}"), "receiptHandle": "h", "body": body.to_string(),
                    "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
                    "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                    "awsRegion": "us-east-1"
                }]});
                // A failure is reported for SQS to deliver again; any answer is allowed here,
                // and the checks after the step say whether it created a job it should not.
                kickoff::events::handle_event(&self.store, &self.env.config, payload)
                    .await
                    .map(drop)
                    .map_err(|error| format!("an SQS batch failed as a whole: {error}"))
            }
            Via::EventBridge(k) => {
                let payload = serde_json::json!({
                    "version": "0", "id": format!("e{k}"), "detail-type": "kick-off",
                    "source": "asyncjob.kickoff", "account": "123456789012",
                    "time": "2026-11-28T00:00:00Z", "region": "us-east-1", "resources": [],
                    "detail": {"type": "data-migration", "dataVersion": delivery_version(k)}
                });
                let _ = kickoff::events::handle_event(&self.store, &self.env.config, payload).await;
                Ok(())
            }
        }
    }

    async fn search(
        &mut self,
        statuses: &[JobStatus],
        oldest_first: bool,
        count: u8,
    ) -> Result<(), String> {
        let mut query = format!("/AsyncJob?_count={count}");
        if !statuses.is_empty() {
            let codes: Vec<&str> = statuses.iter().map(|s| s.code()).collect();
            query.push_str(&format!("&status={}", codes.join(",")));
        }
        if oldest_first {
            query.push_str("&_sort=requestTime");
        }
        let mut seen = BTreeSet::new();
        for _page in 0..4 {
            let answer = self.env.send_to(&self.store, ApiRequest::get(&query)).await;
            check_answer(&answer, Expectation::Search)?;
            if answer.status != 200 {
                return Ok(());
            }
            for entry in answer.body["entry"].as_array().into_iter().flatten() {
                let id = entry["resource"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let status = entry["resource"]["status"].as_str().unwrap_or_default();
                if !statuses.is_empty() && !statuses.iter().any(|s| s.to_string() == status) {
                    return Err(format!(
                        "search for {statuses:?} listed {id} in status {status}"
                    ));
                }
                if !seen.insert(id.clone()) {
                    return Err(format!("search listed job {id} twice"));
                }
            }
            let next = answer.body["link"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|link| link["relation"] == "next")
                .and_then(|link| link["url"].as_str())
                .and_then(|url| url.strip_prefix(crate::BASE));
            match next {
                Some(next) => query = next.to_owned(),
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// Moves the clock past every lease and back-off: every run still holding a job or a
    /// segment now counts as one that died.
    fn advance_clock(&self) {
        let longest = self.settings.lease.max(self.settings.max_retry_delay);
        self.clock.advance(longest + Duration::from_secs(1));
    }

    pub async fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for item in self.env.items().await {
            let id = item
                .get(ID)
                .and_then(|id| id.as_s().ok())
                .cloned()
                .unwrap_or_default();
            if id == DATA_VERSION_KEY {
                snapshot.data_version = number(&item, DATA_VERSION);
            } else if self.model.legacy.contains_key(&id) {
                snapshot.legacy.insert(id, item);
            } else if id.starts_with("~segment~") || id.starts_with("~budget~") {
                snapshot.bookkeeping.push(item);
            } else if item.contains_key(STATUS) {
                if let Some(at) = item.get(EXPIRES_AT).and_then(|at| at.as_n().ok()) {
                    let at = at.parse().expect("an expiry is whole seconds");
                    snapshot.expiries.insert(id.clone(), at);
                }
                if let Ok(Some(stored)) = from_item(item, self.clock.now()) {
                    snapshot.jobs.insert(id, stored);
                }
            }
        }
        snapshot
    }

    /// Learns the jobs that appeared in the step, which began with `failing` failing events
    /// so far, and which migrations each has started.
    fn learn_jobs(&mut self, after: &Snapshot, failing: u64) {
        for (id, stored) in &after.jobs {
            self.model
                .failing_at_start
                .entry(id.clone())
                .or_insert(failing);
            let run = stored.run.iter();
            let versions = run
                .clone()
                .flat_map(|run| run.applied.iter().map(|a| a.version));
            let current = run.flat_map(|run| run.current.iter().map(|c| c.version));
            for version in versions.chain(current) {
                let started = self.model.started.entry(version).or_default();
                started.insert(id.clone());
            }
        }
        let mut new: Vec<(&String, &StoredJob)> = after
            .jobs
            .iter()
            .filter(|(id, _)| !self.jobs.contains(id))
            .collect();
        new.sort_by(|a, b| a.1.job.id.cmp(&b.1.job.id));
        self.jobs.extend(new.into_iter().map(|(id, _)| id.clone()));
    }

    /// A worker that returned holds no lease: whatever it did, it let go of the job and of
    /// every segment it ran. A lease left behind would run out and count as a run that died.
    async fn no_lease_left(&self, owner: &str) -> Result<(), String> {
        for item in self.env.items().await {
            let lease = match item.get("run").and_then(|run| run.as_m().ok()) {
                Some(run) => run.get("lease"),
                None => item.get("lease"),
            };
            let holder = lease
                .and_then(|lease| lease.as_m().ok())
                .and_then(|lease| lease.get("owner"))
                .and_then(|owner| owner.as_s().ok());
            if holder.is_some_and(|holder| holder == owner) {
                let id = item[ID].as_s().map(String::as_str).unwrap_or_default();
                return Err(format!(
                    "{owner} returned, and still holds the lease of {id}"
                ));
            }
        }
        Ok(())
    }

    /// Deletes every item whose expiry has passed, as DynamoDB's TTL does (late, and with
    /// nothing to say it did).
    async fn expire_items(&self) {
        let now_secs = self.clock.now().unix_timestamp();
        for item in self.env.items().await {
            let Some(expiry) = item.get(EXPIRES_AT).and_then(|value| value.as_n().ok()) else {
                continue;
            };
            if expiry.parse::<i64>().is_ok_and(|at| at <= now_secs) {
                let id = item[ID].as_s().expect("an id").clone();
                let _ = self
                    .env
                    .client
                    .delete_item()
                    .table_name(&self.env.table)
                    .key(ID, AttributeValue::S(id))
                    .condition_expression("#expires = :expiry")
                    .expression_attribute_names("#expires", EXPIRES_AT)
                    .expression_attribute_values(":expiry", AttributeValue::N(expiry.clone()))
                    .send()
                    .await;
            }
        }
    }
}

/// The status a run's outcome reports a job ended in.
fn final_status(outcome: Option<&RunOutcome>) -> Option<JobStatus> {
    match outcome? {
        RunOutcome::Completed => Some(JobStatus::Completed),
        RunOutcome::Cancelled => Some(JobStatus::Cancelled),
        RunOutcome::GaveUp => Some(JobStatus::Error),
        _ => None,
    }
}

fn number(item: &Item, name: &str) -> u32 {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
