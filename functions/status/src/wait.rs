//! `Prefer: wait=N` on the status URL: a poll that waits for the job to change, so that
//! following a job costs a request per change instead of one a second.

use std::time::Duration;

use asyncjob_shared::http::{ApiError, request, response};
use asyncjob_shared::model::{JobId, JobStatus, StoredJob};
use asyncjob_shared::store::JobStore;
use lambda_http::Request;
use tokio::time::Instant;

/// The longest a poll waits: well inside API Gateway's 29 s and the function's timeout.
pub const LONGEST_WAIT: Duration = Duration::from_secs(20);

/// How often a waiting poll reads the job again: a change shows within this.
const READ_EVERY: Duration = Duration::from_millis(500);

/// The job as the answer shows it, and the wait honoured, in seconds, if any. The job is
/// read at once; when the client asks to wait, the job is accepted, and the client has seen
/// it as it is (its `If-None-Match` names it, or it names nothing), the job is read again
/// until its version changes or the wait is over. A read that fails while waiting ends the
/// wait with the job as last read.
pub async fn read_waiting(
    store: &impl JobStore,
    id: &JobId,
    request: &Request,
) -> Result<(Option<StoredJob>, Option<u64>), ApiError> {
    let first = store.get(id).await?;
    let Some(wait) = request::preferences(request).wait.filter(|wait| *wait > 0) else {
        return Ok((first, None));
    };
    let seen = first
        .as_ref()
        .filter(|stored| stored.job.status == JobStatus::Accepted && has_seen(request, stored));
    let Some(seen) = seen else {
        return Ok((first, None));
    };
    let wait = Duration::from_secs(wait.into()).min(LONGEST_WAIT);
    let version = seen.job.meta.version_id.clone();
    let until = Instant::now() + wait;
    let mut current = first;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(READ_EVERY.min(left)).await;
        match store.get(id).await {
            Ok(read) => current = read,
            Err(_) => break,
        }
        if current.as_ref().map(|stored| &stored.job.meta.version_id) != Some(&version) {
            break;
        }
    }
    Ok((current, Some(wait.as_secs())))
}

/// Whether the client has seen the job as `stored` is: it names that version in
/// `If-None-Match`, or names none.
fn has_seen(request: &Request, stored: &StoredJob) -> bool {
    request.headers().get("if-none-match").is_none()
        || request::if_none_match_hits(request, &response::etag(&stored.job))
}
