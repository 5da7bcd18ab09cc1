//! Jobs in states the handlers cannot produce on their own yet.

use asyncjob_shared::model::StoredJob;
use asyncjob_shared::model::{AsyncJob, JobStatus, JobType, Parameter, Parameters, instant};
use asyncjob_tests::TestEnv;
use serde_json::json;
use time::Duration;

/// A data-migration job as the kick-off writes it, `seconds_ago` old, in `status`.
pub fn job(status: JobStatus, data_version: u32, seconds_ago: i64) -> StoredJob {
    let at = instant::now() - Duration::seconds(seconds_ago);
    let mut job = AsyncJob::accepted(
        JobType::DataMigration,
        data_version,
        "https://api.test/$data-migration".into(),
        &instant::format(at),
    );
    job.status = status;
    let expires_at = status
        .is_final()
        .then(|| instant::now() + Duration::days(30));
    if status == JobStatus::Completed {
        job.transaction_time = Some(instant::format(at));
        job.output = Some(Parameters::new(vec![Parameter::integer(
            "dataVersion",
            data_version.into(),
        )]));
    }
    if status == JobStatus::Error {
        job.output = Some(Parameters::new(vec![Parameter::resource(
            "outcome",
            json!({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "exception", "diagnostics": "migration 1 failed: boom"}
            ]}),
        )]));
    }
    StoredJob {
        job,
        expires_at,
        run: None,
    }
}

pub async fn seeded(env: &TestEnv, status: JobStatus, data_version: u32) -> AsyncJob {
    let stored = job(status, data_version, 0);
    env.put(&stored).await;
    stored.job
}
