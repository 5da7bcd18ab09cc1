//! `asyncjob`: the operator's command line for the AsyncJob service. It kicks off a data
//! migration and follows it to the end with a progress bar (plain lines on a pipe), polls,
//! cancels, lists and reads jobs, and lists the migrations, with exit codes a deploy
//! pipeline can trust.

mod api;
mod args;
mod commands;
mod display;
mod follow;

use std::process::ExitCode;

use clap::Parser;

use args::Cli;

/// What the command came to, as its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The job completed, or the command did what it was asked.
    Success = 0,
    /// The job ended in `error`.
    Failed = 1,
    /// The job was cancelled.
    Cancelled = 2,
    /// Waiting ran out of time, or was interrupted (the job goes on).
    StoppedWaiting = 3,
    /// The command line or its input was wrong.
    Usage = 4,
    /// The service refused the request, or could not be reached.
    Refused = 5,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                Outcome::Usage as u8
            } else {
                0
            });
        }
    };
    let outcome = match commands::run(cli).await {
        Ok(outcome) => outcome,
        Err(problem) => {
            eprintln!("asyncjob: {}", problem.message);
            problem.outcome
        }
    };
    ExitCode::from(outcome as u8)
}
