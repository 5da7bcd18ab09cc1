//! How a followed job is shown while it runs: on a terminal, a progress bar per migration
//! of its plan, in order (items, rate, and an ETA when the total is estimated; full, with
//! its count, once applied); on a pipe, one plain line per change, no escape codes. Both go
//! to stderr, so stdout keeps only the result.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

pub enum Display {
    Bars(Bars),
    Lines { last: Option<String> },
}

/// One bar per migration of the plan, drawn in the plan's order. A migration that started
/// and finished between two polls still gets its bar, drawn full when the command learns
/// of it, so the screen always shows every migration the job applied.
pub struct Bars {
    color: bool,
    /// How many migrations the plan has, once the job has said.
    migrations: Option<usize>,
    /// Migrations whose bars are drawn full, from the first.
    finished: usize,
    /// The bar of the migration under way, by its place in the plan (from 1).
    current: Option<(usize, ProgressBar)>,
}

/// Where a running job stands, from the `progress` part of its output.
#[derive(Debug, Default, PartialEq, Eq)]
struct Progress {
    migration: usize,
    migrations: usize,
    version: i64,
    scanned: u64,
    estimated: Option<u64>,
    per_second: u64,
}

/// A migration the job applied, from a `migration` part of its output.
#[derive(Debug, PartialEq, Eq)]
struct Applied {
    version: i64,
    scanned: u64,
}

/// The parts of the output parameter `name`, as many as there are.
fn parts_named<'a>(job: &'a Value, name: &'a str) -> impl Iterator<Item = &'a [Value]> + 'a {
    job["output"]["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |p| p["name"] == name)
        .filter_map(|p| p["part"].as_array().map(Vec::as_slice))
}

fn integer(parts: &[Value], name: &str) -> Option<i64> {
    parts
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["valueInteger"].as_i64())
}

fn count(parts: &[Value], name: &str) -> Option<u64> {
    integer(parts, name).and_then(|n| u64::try_from(n).ok())
}

impl Progress {
    fn of(job: &Value) -> Option<Self> {
        let parts = parts_named(job, "progress").next()?;
        let place = |name: &str| count(parts, name).and_then(|n| usize::try_from(n).ok());
        Some(Self {
            migration: place("migration")?,
            migrations: place("migrations")?,
            version: integer(parts, "version")?,
            scanned: count(parts, "itemsScanned")?,
            estimated: count(parts, "itemsEstimated"),
            per_second: count(parts, "itemsPerSecond")?,
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

impl Applied {
    /// The migrations the job applied so far, in the plan's order.
    fn all(job: &Value) -> Vec<Self> {
        parts_named(job, "migration")
            .map_while(|parts| {
                Some(Self {
                    version: integer(parts, "version")?,
                    scanned: count(parts, "itemsScanned")?,
                })
            })
            .collect()
    }
}

impl Display {
    /// Bars on a terminal, lines otherwise; `NO_COLOR` keeps the bars plain.
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Bars(Bars {
                color: std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()),
                migrations: None,
                finished: 0,
                current: None,
            })
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
            Self::Bars(bars) => bars.show(job),
        }
    }

    /// The job completed: every migration it applied is drawn full.
    pub fn completed(&mut self, job: &Value) {
        if let Self::Bars(bars) = self {
            let applied = Applied::all(job);
            bars.migrations = Some(applied.len());
            bars.finish_applied(&applied);
            bars.stop();
        }
    }

    /// The job ended otherwise, or the command stopped following it: the bar under way
    /// stops where it is.
    pub fn stopped(&mut self) {
        if let Self::Bars(bars) = self {
            bars.stop();
        }
    }
}

impl Bars {
    fn show(&mut self, job: &Value) {
        let progress = Progress::of(job);
        if let Some(progress) = &progress {
            self.migrations = Some(progress.migrations);
        }
        self.finish_applied(&Applied::all(job));
        if let Some(progress) = progress.filter(|p| p.migration > self.finished) {
            self.advance(&progress);
        }
    }

    /// Draws each applied migration that has no full bar yet, in order: the bar under way
    /// finished at its real count, or a new bar drawn full. Until the job has said how many
    /// migrations its plan has, nothing is drawn, since every bar's label names it.
    fn finish_applied(&mut self, applied: &[Applied]) {
        let Some(migrations) = self.migrations else {
            return;
        };
        for (index, report) in applied.iter().enumerate().skip(self.finished) {
            let place = index + 1;
            let bar = match self.current.take() {
                Some((at, bar)) if at == place => bar,
                other => {
                    self.current = other;
                    labelled(place, migrations, report.version)
                }
            };
            self.draw_full(&bar, Some(report.scanned));
            self.finished = place;
        }
    }

    /// Moves the bar of the migration under way, starting it when it is new.
    fn advance(&mut self, progress: &Progress) {
        if let Some((at, bar)) = self.current.take_if(|(at, _)| *at != progress.migration) {
            // A service that does not list the migrations applied so far: the one before
            // is done, at a count the bar only knows roughly.
            self.draw_full(&bar, None);
            self.finished = self.finished.max(at);
        }
        let (_, bar) = self.current.get_or_insert_with(|| {
            let bar = labelled(progress.migration, progress.migrations, progress.version);
            bar.set_style(style("{prefix} {spinner} {pos} items, {msg}", false));
            (progress.migration, bar)
        });
        if let Some(total) = progress.estimated {
            if bar.length().is_none() {
                bar.set_style(style(
                    "{prefix} [{bar:30}] {pos}/~{len} items, {msg}",
                    self.color,
                ));
            }
            bar.set_length(total.max(progress.scanned));
        }
        bar.set_position(progress.scanned);
        bar.set_message(progress.pace());
    }

    /// Draws `bar` full, at `scanned` items when the job said how many.
    fn draw_full(&self, bar: &ProgressBar, scanned: Option<u64>) {
        let scanned = scanned.unwrap_or_else(|| bar.length().unwrap_or(0).max(bar.position()));
        bar.set_style(style("{prefix} [{bar:30}] {pos} items, {msg}", self.color));
        bar.set_length(scanned);
        bar.set_position(scanned);
        bar.finish_with_message("done");
    }

    fn stop(&mut self) {
        if let Some((_, bar)) = self.current.take() {
            bar.finish();
        }
    }
}

/// A bar for the migration at `place` of a plan of `migrations`.
fn labelled(place: usize, migrations: usize, version: i64) -> ProgressBar {
    let bar = ProgressBar::no_length();
    bar.set_prefix(format!(
        "migration {place}/{migrations} (version {version})"
    ));
    bar
}

/// `template`, with the bar in colour when `color`.
fn style(template: &str, color: bool) -> ProgressStyle {
    let template = if color {
        template.replace("{bar:30}", "{bar:30.cyan/blue}")
    } else {
        template.to_owned()
    };
    ProgressStyle::with_template(&template)
        .expect("the templates are valid")
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn part(name: &str, value: i64) -> Value {
        json!({"name": name, "valueInteger": value})
    }

    #[test]
    fn progress_is_read_from_the_running_job_s_output() {
        let job = json!({"output": {"resourceType": "Parameters", "parameter": [
            {"name": "progress", "part": [
                part("migration", 2), part("migrations", 2), part("version", 2),
                part("itemsScanned", 2600), part("itemsPerSecond", 900),
                part("itemsEstimated", 20000)
            ]},
            {"name": "migration", "part": [
                part("version", 1), {"name": "name", "valueString": "a"},
                part("itemsScanned", 20004)
            ]}
        ]}});
        assert_eq!(
            Progress::of(&job),
            Some(Progress {
                migration: 2,
                migrations: 2,
                version: 2,
                scanned: 2600,
                estimated: Some(20000),
                per_second: 900,
            })
        );
        assert_eq!(Progress::of(&job).unwrap().pace(), "900/s, ETA 20s");
        assert_eq!(
            Applied::all(&job),
            [Applied {
                version: 1,
                scanned: 20004
            }]
        );
        assert_eq!(Progress::of(&json!({"status": "accepted"})), None);
        assert_eq!(Applied::all(&json!({"status": "accepted"})), []);
    }
}
