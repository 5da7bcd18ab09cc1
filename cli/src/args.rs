//! The command line.

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  the job completed, or the command did what it was asked
  1  the job ended in error (its OperationOutcome is printed)
  2  the job was cancelled
  3  waiting timed out or was interrupted (the job goes on)
  4  usage: a bad command line or input
  5  the service refused the request, or could not be reached";

/// The operator's command line for the AsyncJob service.
#[derive(Debug, Parser)]
#[command(name = "asyncjob", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The API's base URL.
    #[arg(
        long,
        env = "ASYNCJOB_URL",
        default_value = "http://127.0.0.1:9000",
        global = true
    )]
    pub url: String,
    /// A bearer token (never printed or logged).
    #[arg(long, env = "ASYNCJOB_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// A command that prints a bearer token, run once (e.g. one that fetches a
    /// client-credentials token).
    #[arg(long, global = true, conflicts_with = "token")]
    pub token_command: Option<String>,
    /// `json` prints the resources as JSON on stdout, for scripts.
    #[arg(long, value_enum, default_value_t = Output::Human, global = true)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Kick off a data migration (the newest version unless --version says otherwise).
    Migrate {
        /// The data version to reach.
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        wait: Wait,
    },
    /// Where a job stands.
    Status {
        id: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Pause a job that has not finished: its segments stop at their next checkpoint.
    Pause { id: String },
    /// Resume a paused job from its checkpoints.
    Resume { id: String },
    /// Cancel a job that has not finished.
    Cancel { id: String },
    /// List jobs, newest first.
    List {
        /// Statuses, comma separated.
        #[arg(long)]
        status: Option<String>,
        /// Job types, comma separated.
        #[arg(long = "type")]
        job_type: Option<String>,
        /// At most this many jobs (following the pages).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Read one job.
    Get { id: String },
    /// The registered migrations and the data version the data is at.
    Migrations,
}

#[derive(Debug, clap::Args)]
pub struct Wait {
    /// Follow the job until it ends.
    #[arg(long)]
    pub wait: bool,
    /// Stop waiting after this long (e.g. 90s, 15m, 2h).
    #[arg(long, value_parser = duration, requires = "wait")]
    pub timeout: Option<Duration>,
    /// Cancel the job on Ctrl-C, instead of only stopping to wait.
    #[arg(long, requires = "wait")]
    pub cancel_on_interrupt: bool,
}

/// `90s`, `15m`, `2h`, or plain seconds.
fn duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |at| text.split_at(at));
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 15m or 2h"))?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        _ => return Err(format!("{text:?}: the unit is s, m or h")),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "m", "1d", "1.5h", "-1s"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_line_holds_together() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
