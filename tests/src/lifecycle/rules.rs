//! The rules every step must leave the table in: data versions, final statuses, one data
//! migration at a time, one job per delivery, and what the migrations promise: each seeded
//! item changed as its migration says, an `error` only after failures that may fail an
//! attempt, no bookkeeping outliving its job, and writes within the budget.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use asyncjob_shared::model::{AsyncJob, JobStatus, StoredJob, instant};
use asyncjob_shared::store::test_support::schema::{EXPIRES_AT, ID, SORT_KEY, TYPE_SORT_KEY};
use asyncjob_shared::store::test_support::to_item;

use super::world::{Snapshot, World};

/// What the checks remember from one step to the next.
#[derive(Default)]
pub struct Model {
    pub(super) max_data_version: u32,
    pub(super) final_status: BTreeMap<String, JobStatus>,
    /// When each finished job expires, as last seen: after that it may be gone.
    pub(super) expiry: BTreeMap<String, i64>,
    /// The seeded legacy jobs, as they were written.
    pub(super) legacy: BTreeMap<String, AsyncJob>,
    /// Events so far that may fail an attempt: crashes, server errors, lost answers (three in
    /// a row on one request fail it), take-overs. Throttling, conflicts and cancelled
    /// transactions are not among them.
    pub(super) failing: u64,
    /// `failing` when each job appeared: a job may end in `error` only after as many more
    /// as its attempts allow.
    pub(super) failing_at_start: BTreeMap<String, u64>,
    /// The jobs that started each migration, each with a write budget of its own.
    pub(super) started: BTreeMap<u32, BTreeSet<String>>,
}

impl World {
    /// The invariants, against what the table holds now.
    pub(super) fn check(&mut self, now: &Snapshot) -> Result<(), String> {
        self.counts.checks += 5;
        if now.data_version < self.model.max_data_version {
            return Err(format!(
                "the stored data version went back from {} to {}",
                self.model.max_data_version, now.data_version
            ));
        }
        self.model.max_data_version = now.data_version;
        let mut accepted = Vec::new();
        let mut deliveries: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, stored) in &now.jobs {
            let job = &stored.job;
            if job.status == JobStatus::Completed
                && job.data_version.unwrap_or(0) > now.data_version
            {
                return Err(format!(
                    "job {id} is completed at data version {:?}, but the stored data version is {}",
                    job.data_version, now.data_version
                ));
            }
            if job.status == JobStatus::Accepted {
                accepted.push(id.as_str());
            }
            if let Some(previous) = self.model.final_status.get(id)
                && *previous != job.status
            {
                return Err(format!("job {id} was {previous} and is {} now", job.status));
            }
            if job.status == JobStatus::Error && !self.model.final_status.contains_key(id) {
                self.check_error(id, stored)?;
            }
            if job.status.is_final() {
                self.model.final_status.insert(id.clone(), job.status);
            }
            if job.request.starts_with("urn:asyncjob:") {
                deliveries.entry(&job.request).or_default().push(id);
            }
        }
        self.model.expiry.extend(now.expiries.clone());
        let now_secs = self.clock.now().unix_timestamp();
        for id in self.model.final_status.keys() {
            let expired = self.model.expiry.get(id).is_some_and(|at| *at <= now_secs);
            if !now.jobs.contains_key(id) && !expired {
                return Err(format!("finished job {id} is gone before its expiry"));
            }
        }
        if accepted.len() > 1 {
            return Err(format!(
                "{} data migrations are accepted at once: {accepted:?}",
                accepted.len()
            ));
        }
        if let Some((delivery, jobs)) = deliveries.iter().find(|(_, jobs)| jobs.len() > 1) {
            return Err(format!(
                "the delivery {delivery} created {} jobs: {jobs:?}",
                jobs.len()
            ));
        }
        self.check_data(now)?;
        self.check_bookkeeping(now)?;
        self.check_budget()
    }

    /// A job ends in `error` only after as many events that may fail an attempt as its
    /// attempts allow, since it appeared: throttling, conflicts and lost answers alone
    /// never end a job.
    fn check_error(&self, id: &str, stored: &StoredJob) -> Result<(), String> {
        let since = self.model.failing - self.model.failing_at_start.get(id).copied().unwrap_or(0);
        if u64::from(self.settings.max_attempts) <= since {
            return Ok(());
        }
        let output = serde_json::to_string(&stored.job.output).unwrap_or_default();
        Err(format!(
            "job {id} ended in error after {since} crashes, server errors or take-overs, \
             fewer than its {} attempts: {output}",
            self.settings.max_attempts
        ))
    }

    /// Every migration the stored data version has reached changed each seeded item as it
    /// says: version 1 gave each finished job its expiry, a retention after it last
    /// changed; version 2 wrote the index keys the current layout has. An item may be gone
    /// only once its expiry has passed.
    fn check_data(&mut self, now: &Snapshot) -> Result<(), String> {
        self.counts.checks += 1;
        let retention = time::Duration::try_from(self.env.config.retention).unwrap_or_default();
        let now_secs = self.clock.now().unix_timestamp();
        for (id, job) in &self.model.legacy {
            let changed = instant::parse(&job.meta.last_updated).expect("a valid instant");
            let expiry = (changed + retention).unix_timestamp();
            let Some(item) = now.legacy.get(id) else {
                // Only the migration gives it an expiry, and only then may it go.
                if expiry <= now_secs {
                    continue;
                }
                return Err(format!("legacy job {id} is gone before its expiry"));
            };
            let attribute = |name: &str| {
                item.get(name)
                    .and_then(|value| value.as_s().or(value.as_n()).ok())
                    .cloned()
            };
            if now.data_version >= 1 && attribute(EXPIRES_AT) != Some(expiry.to_string()) {
                return Err(format!(
                    "the data is at version {}, but legacy job {id} expires at {:?}, not {expiry}",
                    now.data_version,
                    attribute(EXPIRES_AT)
                ));
            }
            if now.data_version >= 2 {
                let current = to_item(&StoredJob::new(job.clone())).expect("a job makes an item");
                for key in [SORT_KEY, TYPE_SORT_KEY] {
                    let wanted = current.get(key).and_then(|v| v.as_s().ok()).cloned();
                    if attribute(key) != wanted {
                        return Err(format!(
                            "the data is at version {}, but legacy job {id} has {key} {:?}, \
                             not {wanted:?}",
                            now.data_version,
                            attribute(key)
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The segments and write budget of a running job never expire; once the job is
    /// finished they are gone (or expire no later than it does), and none is left of a job
    /// that is gone.
    fn check_bookkeeping(&mut self, now: &Snapshot) -> Result<(), String> {
        self.counts.checks += 1;
        for item in &now.bookkeeping {
            let id = item[ID].as_s().expect("an id");
            let job_id = id.split('~').nth(2).unwrap_or_default();
            let expiry = item
                .get(EXPIRES_AT)
                .and_then(|value| value.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok());
            match now.jobs.get(job_id) {
                Some(stored) if stored.job.status == JobStatus::Accepted => {
                    if expiry.is_some() {
                        return Err(format!("{id} of running job {job_id} has an expiry"));
                    }
                }
                Some(stored) => {
                    let job_expiry = stored.expires_at.map(|at| at.unix_timestamp());
                    if expiry.is_none() || expiry > job_expiry {
                        return Err(format!(
                            "{id} outlives job {job_id}, which is {}",
                            stored.job.status
                        ));
                    }
                }
                None => return Err(format!("{id} is left of job {job_id}, which is gone")),
            }
        }
        Ok(())
    }

    /// Under a budget, a migration's item writes keep to it: from each migration's first
    /// write, no more than the budget's rate allows in the time that really passed since
    /// (the budget never reserves a window before now, so the test's jumps of its clock
    /// give it nothing), with a write and a second's
    /// worth to spare for each job that ran the migration (each job's run has a budget of
    /// its own, and a window of it may start before its first write).
    fn check_budget(&mut self) -> Result<(), String> {
        let Some(rate) = self.settings.items_per_second else {
            return Ok(());
        };
        self.counts.checks += 1;
        let mut by_migration: BTreeMap<u32, Vec<Instant>> = BTreeMap::new();
        let mut writes = self.plan.migration_writes();
        writes.extend(self.clean_plan.migration_writes());
        for (at, expression) in writes {
            let version = if expression.contains("#expires") {
                1
            } else {
                2
            };
            by_migration.entry(version).or_default().push(at);
        }
        for (version, mut writes) in by_migration {
            writes.sort();
            let jobs = self
                .model
                .started
                .get(&version)
                .map_or(1, BTreeSet::len)
                .max(1);
            let spare = f64::from(rate + 1) * jobs as f64;
            let first = writes[0];
            for (n, at) in writes.iter().enumerate() {
                let since_first = at.duration_since(first).as_secs_f64();
                let allowed = f64::from(rate) * since_first + spare;
                if (n + 1) as f64 > allowed {
                    return Err(format!(
                        "migration {version} made {} writes in {:.2} s under a budget of \
                         {rate} a second ({jobs} jobs ran it)",
                        n + 1,
                        since_first
                    ));
                }
            }
        }
        Ok(())
    }
}
