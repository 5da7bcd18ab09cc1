//! The worker's metrics, as CloudWatch's embedded metric format: a JSON log line that
//! CloudWatch turns into a metric, with no call to the CloudWatch API. The template's alarm
//! watches the metric named here.

use serde_json::{Value, json};

pub const NAMESPACE: &str = "AsyncJob";
pub const JOBS_FAILED: &str = "JobsFailed";
pub const SERVICE_DIMENSION: (&str, &str) = ("Service", "asyncjob");

/// The log line that counts `failed` jobs that ended in `error`, at `timestamp_ms`.
pub fn jobs_failed(failed: usize, timestamp_ms: i64) -> Value {
    let (dimension, service) = SERVICE_DIMENSION;
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[dimension]],
                "Metrics": [{"Name": JOBS_FAILED, "Unit": "Count"}]
            }]
        },
        dimension: service,
        JOBS_FAILED: failed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_job_is_a_metric_in_embedded_metric_format() {
        let line = jobs_failed(2, 1_790_000_000_000);
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "AsyncJob");
        // Every dimension and metric the directive names is a member of the line.
        let dimension = directive["Dimensions"][0][0].as_str().unwrap();
        assert_eq!(line[dimension], "asyncjob");
        let metric = directive["Metrics"][0]["Name"].as_str().unwrap();
        assert_eq!(line[metric], 2);
        assert_eq!(line["_aws"]["Timestamp"], 1_790_000_000_000_i64);
    }
}
