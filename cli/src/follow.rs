//! Following a job to its end: polling its status URL with `If-None-Match` and
//! `Prefer: wait`, so the service answers when the job changes (a request per change), or,
//! from a service that does not wait, as it asks (`Retry-After`, never more than once a
//! second); backing off when the service is busy or unavailable, until the job ends, the
//! time is up, or Ctrl-C.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Outcome;
use crate::api::{Api, Problem, Reply};
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

/// How long a poll asks the service to wait for the job to change: the service's own cap,
/// inside the HTTP client's 30 s.
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
    let mut followed = Followed::default();
    loop {
        let reply = tokio::select! {
            reply = poll(api, &status, followed.etag.as_deref(), deadline) => reply?,
            () = interrupt.pressed() => {
                display.stopped();
                return Ok(Ended::Interrupted);
            }
        };
        let wait = match followed.read(reply, id, display) {
            Next::Ended(ended) => return Ok(ended),
            Next::Gone => return ended_without_status(api, id).await,
            Next::Refused(problem) => return Err(problem),
            Next::PollAfter(wait) => wait,
        };
        let soonest = wait.max(Duration::from_secs(1));
        if deadline.is_some_and(|deadline| Instant::now() + soonest > deadline) {
            display.stopped();
            return Ok(Ended::TimedOut);
        }
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(soonest) => {}
            () = interrupt.pressed() => {
                display.stopped();
                return Ok(Ended::Interrupted);
            }
        }
    }
}

/// One poll of the status URL: once the job is known (`etag`), one the service answers when
/// the job changes, waiting no longer than the time left.
async fn poll(
    api: &Api,
    status: &str,
    etag: Option<&str>,
    deadline: Option<Instant>,
) -> Result<Reply, Problem> {
    let Some(seen) = etag else {
        return api.get(status, None).await;
    };
    let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
    let wait = left.map_or(LONGEST_POLL, |left| left.min(LONGEST_POLL));
    api.get_changed(status, seen, wait).await
}

/// What the polls so far said of the job.
struct Followed {
    job: Value,
    etag: Option<String>,
    back_off: Duration,
}

impl Default for Followed {
    fn default() -> Self {
        Self {
            job: Value::Null,
            etag: None,
            back_off: Duration::from_secs(1),
        }
    }
}

/// What to do after a poll.
enum Next {
    Ended(Ended),
    /// The status URL says the job is gone: cancelled, or unknown.
    Gone,
    Refused(Problem),
    /// Poll again after this long; at once, when the service waited already.
    PollAfter(Duration),
}

impl Followed {
    fn read(&mut self, reply: Reply, id: &str, display: &mut Display) -> Next {
        let asked = Duration::from_secs(reply.retry_after().unwrap_or(1));
        match reply.status {
            200 => {
                display.completed(&reply.body);
                Next::Ended(Ended::Completed(reply.body))
            }
            202 | 304 => {
                if reply.status == 202 {
                    self.job = reply.body.clone();
                    self.etag = reply.header("etag").map(str::to_owned);
                }
                display.show(id, &self.job, reply.header("x-progress"));
                self.back_off = Duration::from_secs(1);
                let waited = reply
                    .header("preference-applied")
                    .is_some_and(|applied| applied.starts_with("wait="));
                Next::PollAfter(if waited { Duration::ZERO } else { asked })
            }
            500 if reply.body["resourceType"] == "OperationOutcome" => {
                display.stopped();
                Next::Ended(Ended::Failed(reply.body))
            }
            404 => {
                display.stopped();
                Next::Gone
            }
            429 | 503 => {
                let wait = asked.max(self.back_off);
                self.back_off = (self.back_off * 2).min(LONGEST_BACK_OFF);
                Next::PollAfter(wait)
            }
            _ => Next::Refused(reply.refusal()),
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
