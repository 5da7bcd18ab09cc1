//! How a followed job is shown while it runs: on a terminal, a progress bar per migration
//! (items, rate, and an ETA when the total is estimated); on a pipe, one plain line per
//! change, no escape codes. Both go to stderr, so stdout keeps only the result.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

pub enum Display {
    Bars {
        /// The bar of the migration under way, by its place in the plan.
        current: Option<(i64, ProgressBar)>,
        color: bool,
    },
    Lines {
        last: Option<String>,
    },
}

/// Where a running job stands, from the `progress` part of its output.
#[derive(Debug, Default, PartialEq, Eq)]
struct Progress {
    migration: i64,
    migrations: i64,
    version: i64,
    scanned: u64,
    estimated: Option<u64>,
    per_second: u64,
}

impl Progress {
    fn of(job: &Value) -> Option<Self> {
        let parts = job["output"]["parameter"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "progress")?["part"]
            .as_array()?;
        let part = |name: &str| {
            parts
                .iter()
                .find(|p| p["name"] == name)
                .and_then(|p| p["valueInteger"].as_i64())
        };
        Some(Self {
            migration: part("migration")?,
            migrations: part("migrations")?,
            version: part("version")?,
            scanned: u64::try_from(part("itemsScanned")?).ok()?,
            estimated: part("itemsEstimated").and_then(|n| u64::try_from(n).ok()),
            per_second: part("itemsPerSecond").and_then(|n| u64::try_from(n).ok())?,
        })
    }

    /// The rate the service measured, and the time left at that rate when the total is
    /// estimated.
    fn pace(&self) -> String {
        let left = self
            .estimated
            .map(|total| total.saturating_sub(self.scanned));
        match left {
            Some(left) if self.per_second > 0 => format!(
                "{}/s, ETA {}s",
                self.per_second,
                left.div_ceil(self.per_second)
            ),
            _ => format!("{}/s", self.per_second),
        }
    }
}

impl Display {
    /// Bars on a terminal, lines otherwise; `NO_COLOR` keeps the bars plain.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Bars {
                current: None,
                color: std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()),
            }
        } else {
            Self::Lines { last: None }
        }
    }

    /// Shows the job as it stands now; `progress` is its `X-Progress`.
    pub fn show(&mut self, id: &str, job: &Value, progress: Option<&str>) {
        match self {
            Self::Lines { last } => {
                let line = format!("job {id}: {}", progress.unwrap_or("queued"));
                if last.as_deref() != Some(line.as_str()) {
                    eprintln!("{line}");
                    *last = Some(line);
                }
            }
            Self::Bars { current, color } => {
                let Some(progress) = Progress::of(job) else {
                    return;
                };
                if current
                    .as_ref()
                    .is_none_or(|(at, _)| *at != progress.migration)
                {
                    if let Some((_, done)) = current.take() {
                        // The migration before this one is done.
                        if let Some(length) = done.length() {
                            done.set_position(length);
                        }
                        done.set_message("done");
                        done.finish();
                    }
                    *current = Some((progress.migration, bar(&progress, *color)));
                }
                if let Some((_, bar)) = current {
                    if bar.length().is_some_and(|length| progress.scanned > length) {
                        bar.set_length(progress.scanned);
                    }
                    bar.set_position(progress.scanned);
                    bar.set_message(progress.pace());
                }
            }
        }
    }

    /// The job ended: the last bar stops where it is, or full when the job completed.
    pub fn finish(&mut self, completed: bool) {
        if let Self::Bars { current, .. } = self
            && let Some((_, bar)) = current.take()
        {
            if completed && let Some(length) = bar.length() {
                bar.set_position(length);
                bar.set_message("done");
            }
            bar.finish();
        }
    }
}

/// A bar for one migration: against its estimated total, or counting up without one.
fn bar(progress: &Progress, color: bool) -> ProgressBar {
    let label = format!(
        "migration {}/{} (version {})",
        progress.migration, progress.migrations, progress.version
    );
    let (bar, template) = match progress.estimated {
        Some(total) => (
            ProgressBar::new(total),
            if color {
                "{prefix} [{bar:30.cyan/blue}] {pos}/~{len} items, {msg}"
            } else {
                "{prefix} [{bar:30}] {pos}/~{len} items, {msg}"
            },
        ),
        None => (
            ProgressBar::no_length(),
            "{prefix} {spinner} {pos} items, {msg}",
        ),
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("the templates are valid")
            .progress_chars("=> "),
    );
    bar.set_prefix(label);
    bar
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn progress_is_read_from_the_running_job_s_output() {
        let job = json!({"output": {"resourceType": "Parameters", "parameter": [
            {"name": "progress", "part": [
                {"name": "migration", "valueInteger": 1},
                {"name": "migrations", "valueInteger": 2},
                {"name": "version", "valueInteger": 1},
                {"name": "itemsScanned", "valueInteger": 2600},
                {"name": "itemsPerSecond", "valueInteger": 900},
                {"name": "itemsEstimated", "valueInteger": 20000}
            ]}
        ]}});
        assert_eq!(
            Progress::of(&job),
            Some(Progress {
                migration: 1,
                migrations: 2,
                version: 1,
                scanned: 2600,
                estimated: Some(20000),
                per_second: 900,
            })
        );
        assert_eq!(Progress::of(&job).unwrap().pace(), "900/s, ETA 20s");
        assert_eq!(Progress::of(&json!({"status": "accepted"})), None);
    }
}
