//! `Prefer: wait=N` on the status URL: a poll that waits for the job to change, so that
//! following a job costs a request per change instead of one a second.

use std::time::Duration;

use asyncjob_shared::http::{ApiError, request, response};
use asyncjob_shared::model::{JobId, JobStatus, StoredJob};
use asyncjob_shared::store::JobStore;
use lambda_http::Request;
use tokio::time::Instant;

/// The longest a poll waits: with the reads around it, well inside the function's 28 s
/// timeout and API Gateway's 30 s. The CLI asks for this much, and its HTTP client waits
/// 30 s for an answer.
pub const LONGEST_WAIT: Duration = Duration::from_secs(20);

/// How soon a waiting poll first reads the job again, and how far apart its reads grow: a
/// change shows within half a second at first and within two seconds later, for about a
/// dozen reads over a whole wait.
const FIRST_READ_AFTER: Duration = Duration::from_millis(500);
const LONGEST_READ_GAP: Duration = Duration::from_secs(2);

/// The job as the answer shows it, and the longest wait honoured, in seconds, if any. The
/// job is read at once; when the client asks to wait, the job is accepted, and the client
/// has seen it as it is (its `If-None-Match` names it, or it names nothing), the job is
/// read again until its version changes or the wait, counted from the request, is over. A
/// read that fails while waiting ends the wait with the job as last read, and the wait is
/// then not said to be honoured, so the client goes by `Retry-After`.
pub async fn read_waiting(
    store: &impl JobStore,
    id: &JobId,
    request: &Request,
) -> Result<(Option<StoredJob>, Option<u64>), ApiError> {
    let started = Instant::now();
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
    let until = started + wait;
    let mut gap = FIRST_READ_AFTER;
    let mut current = first;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(gap.min(left)).await;
        gap = (gap * 2).min(LONGEST_READ_GAP);
        match store.get(id).await {
            Ok(read) => current = read,
            Err(error) => {
                tracing::warn!(job = %id, %error, "a waiting poll stopped waiting");
                return Ok((current, None));
            }
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
