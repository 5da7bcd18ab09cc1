//! A search as the store runs it, and the page it answers with. The same ordering and
//! paging rules serve both stores.

use crate::model::{AsyncJob, JobId, JobStatus, JobType, instant};

/// The order of search results, by `requestTime` then id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// A place in a search's order: results continue after it. Clients see it only inside an
/// opaque cursor.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position(String);

impl Position {
    pub fn of(job: &AsyncJob) -> Self {
        Self(format!("{}#{}", job.request_time, job.id))
    }

    /// Accepts only what [`Position::of`] writes, so a cursor cannot smuggle anything into a
    /// query.
    pub fn parse(text: &str) -> Option<Self> {
        let (time, id) = text.split_once('#')?;
        instant::parse(time)?;
        JobId::parse(id)?;
        Some(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A search, already validated. `None` means "any"; an empty list matches nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchQuery {
    pub ids: Option<Vec<JobId>>,
    pub types: Option<Vec<JobType>>,
    pub statuses: Option<Vec<JobStatus>>,
    pub count: usize,
    pub order: Order,
    pub after: Option<Position>,
    pub total: bool,
}

impl SearchQuery {
    /// Whether `job` matches the search's ids, types and statuses.
    pub(crate) fn matches(&self, job: &AsyncJob) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&job.id))
            && self
                .statuses
                .as_ref()
                .is_none_or(|s| s.contains(&job.status))
            && self
                .types
                .as_ref()
                .is_none_or(|t| job.job_type.is_some_and(|jt| t.contains(&jt)))
    }

    /// Whether `job` lies after the cursor in the search's order.
    pub(crate) fn comes_after_cursor(&self, job: &AsyncJob) -> bool {
        match (&self.after, self.order) {
            (None, _) => true,
            (Some(after), Order::NewestFirst) => Position::of(job) < *after,
            (Some(after), Order::OldestFirst) => Position::of(job) > *after,
        }
    }

    /// Orders the candidates and cuts the page. Given at least `count + 1` candidates in
    /// every key range, whether another page exists is known without another read. A job
    /// whose status changed between the reads of two ranges is in both: only its newer
    /// version is kept, so no job is listed twice.
    pub(crate) fn page(&self, mut candidates: Vec<AsyncJob>, total: Total) -> SearchPage {
        let version = |job: &AsyncJob| job.meta.version_id.parse::<u64>().unwrap_or(0);
        candidates.sort_by(|a, b| a.id.cmp(&b.id).then(version(b).cmp(&version(a))));
        candidates.dedup_by(|later, kept| later.id == kept.id);
        candidates.sort_by_cached_key(Position::of);
        if self.order == Order::NewestFirst {
            candidates.reverse();
        }
        let next =
            (candidates.len() > self.count).then(|| Position::of(&candidates[self.count - 1]));
        candidates.truncate(self.count);
        SearchPage {
            jobs: candidates,
            next,
            total,
        }
    }

    /// The page of `found`, every job of which exists; for searches the store answers by
    /// reading jobs rather than an index.
    pub(crate) fn page_of_found(&self, found: Vec<AsyncJob>) -> SearchPage {
        let matching: Vec<AsyncJob> = found.into_iter().filter(|job| self.matches(job)).collect();
        let total = if self.total {
            Total::Counted(matching.len() as u64)
        } else {
            Total::NotAsked
        };
        let after_cursor = matching
            .into_iter()
            .filter(|job| self.comes_after_cursor(job))
            .collect();
        self.page(after_cursor, total)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SearchPage {
    pub jobs: Vec<AsyncJob>,
    /// Where the next page starts, when there is one.
    pub next: Option<Position>,
    pub total: Total,
}

/// The number of matches in all pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Total {
    NotAsked,
    Counted(u64),
    /// Counting would have taken longer than the request may.
    OverBudget,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobType, Meta};

    #[test]
    fn a_job_read_in_two_ranges_is_listed_once_in_its_newer_version() {
        let job = |minute: u32| {
            AsyncJob::accepted(
                JobType::DataMigration,
                1,
                "urn:test".into(),
                &format!("2026-11-27T12:{minute:02}:00.000Z"),
            )
        };
        let (first, second) = (job(1), job(2));
        let mut moved_on = first.clone();
        moved_on.status = JobStatus::Completed;
        moved_on.meta = Meta {
            version_id: "7".into(),
            last_updated: "2026-11-27T12:05:00.000Z".into(),
        };
        let query = SearchQuery {
            ids: None,
            types: None,
            statuses: Some(vec![JobStatus::Accepted, JobStatus::Completed]),
            count: 10,
            order: Order::NewestFirst,
            after: None,
            total: false,
        };
        for candidates in [
            vec![first.clone(), second.clone(), moved_on.clone()],
            vec![moved_on.clone(), second.clone(), first.clone()],
        ] {
            let page = query.page(candidates, Total::NotAsked);
            assert_eq!(page.jobs, vec![second.clone(), moved_on.clone()]);
        }
    }

    #[test]
    fn positions_accept_only_their_own_shape() {
        let good = "2026-11-27T12:00:00.123Z#0193a5c2-7d4e-7c3a-9b1f-2f9e8d7c6b5a";
        assert_eq!(Position::parse(good).unwrap().as_str(), good);
        for bad in [
            "",
            "#",
            "2026-11-27T12:00:00.123Z",
            "2026-11-27T12:00:00Z#abc",
            "2026-11-27T12:00:00.123Z#a/b",
            "2026-11-27T12:00:00.123Z#a#b",
        ] {
            assert!(Position::parse(bad).is_none(), "{bad:?}");
        }
    }
}
