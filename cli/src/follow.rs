//! Following a job to its end: polling its status URL with `If-None-Match` and
//! `Prefer: wait`, so the service answers when the job changes (a request per change), or,
//! from a service that does not wait, as it asks (`Retry-After`, never more than once a
//! second); backing off when the service is busy or unavailable, until the job ends, the
//! time is up, or Ctrl-C.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Outcome;
use crate::api::{Api, Problem};
use crate::display::Display;

/// How following a job ended.
pub enum Ended {
    /// Completed: the job.
    Completed(Value),
    /// Ended in `error`: its OperationOutcome.
    Failed(Value),
    /// Cancelled: the job.
    Cancelled(Value),
    /// The time given ran out; the job goes on.
    TimedOut,
    /// Ctrl-C; the job goes on.
    Interrupted,
}

const LONGEST_BACK_OFF: Duration = Duration::from_secs(30);

/// How long a poll asks the service to wait for the job to change.
const LONGEST_POLL: Duration = Duration::from_secs(20);

pub async fn follow(
    api: &Api,
    id: &str,
    timeout: Option<Duration>,
    display: &mut Display,
) -> Result<Ended, Problem> {
    let status = format!("/job/{id}/status");
    let mut interrupt = Interrupt::listen()?;
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let mut etag: Option<String> = None;
    let mut job = Value::Null;
    let mut back_off = Duration::from_secs(1);
    loop {
        let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        let poll = async {
            match &etag {
                // Once the job is known, the service answers when it changes.
                Some(seen) => {
                    let wait = left.map_or(LONGEST_POLL, |left| left.min(LONGEST_POLL));
                    api.get_changed(&status, seen, wait).await
                }
                None => api.get(&status, None).await,
            }
        };
        let reply = tokio::select! {
            reply = poll => reply?,
            () = interrupt.pressed() => {
                display.stopped();
                return Ok(Ended::Interrupted);
            }
        };
        let mut wait = Duration::from_secs(reply.retry_after().unwrap_or(1));
        match reply.status {
            200 => {
                display.completed(&reply.body);
                return Ok(Ended::Completed(reply.body));
            }
            202 | 304 => {
                if reply.status == 202 {
                    job = reply.body.clone();
                    etag = reply.header("etag").map(str::to_owned);
                }
                display.show(id, &job, reply.header("x-progress"));
                back_off = Duration::from_secs(1);
                if reply
                    .header("preference-applied")
                    .is_some_and(|p| p.starts_with("wait="))
                {
                    // The service waited already: ask again at once.
                    wait = Duration::ZERO;
                }
            }
            500 if reply.body["resourceType"] == "OperationOutcome" => {
                display.stopped();
                return Ok(Ended::Failed(reply.body));
            }
            404 => {
                display.stopped();
                return ended_without_status(api, id).await;
            }
            429 | 503 => {
                wait = wait.max(back_off);
                back_off = (back_off * 2).min(LONGEST_BACK_OFF);
            }
            _ => return Err(reply.refusal()),
        }
        let out_of_time = |wait: Duration| {
            deadline.is_some_and(|deadline| {
                Instant::now() + wait.max(Duration::from_secs(1)) > deadline
            })
        };
        if out_of_time(wait) {
            display.stopped();
            return Ok(Ended::TimedOut);
        }
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(wait.max(Duration::from_secs(1))) => {}
            () = interrupt.pressed() => {
                display.stopped();
                return Ok(Ended::Interrupted);
            }
        }
    }
}

/// The status URL says a job is gone: cancelled, or unknown.
async fn ended_without_status(api: &Api, id: &str) -> Result<Ended, Problem> {
    let read = api.get(&format!("/AsyncJob/{id}"), None).await?;
    if read.status == 200 && read.body["status"] == "cancelled" {
        Ok(Ended::Cancelled(read.body))
    } else {
        Err(read.refusal())
    }
}

/// Ctrl-C, heard from the moment this is made: a Ctrl-C that comes before the first wait
/// (while the first poll is on its way, say) is kept for it, not lost.
struct Interrupt(#[cfg(unix)] tokio::signal::unix::Signal);

impl Interrupt {
    #[cfg(unix)]
    fn listen() -> Result<Self, Problem> {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map(Self)
            .map_err(|error| {
                Problem::new(
                    Outcome::Refused,
                    format!("cannot listen for Ctrl-C: {error}"),
                )
            })
    }

    #[cfg(not(unix))]
    fn listen() -> Result<Self, Problem> {
        Ok(Self())
    }

    #[cfg(unix)]
    async fn pressed(&mut self) {
        self.0.recv().await;
    }

    #[cfg(not(unix))]
    async fn pressed(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
