//! What the worker makes of a record of the table's stream: a new accepted job, a segment
//! of a migration that runs in parallel, or nothing it runs. Items are told apart by their
//! id, as the table's layout says, not by whether they happen to deserialize as one.

use serde_dynamo::{AttributeValue, Item};

use super::schema::{ID, SEGMENT_PREFIX, STATUS};
use crate::model::{CodeSet, JobId, JobStatus, SegmentKey};

/// Work a stream record hands over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamWork {
    Job(JobId),
    Segment(SegmentKey),
}

/// The work in a record's new image, if any: an accepted job, or a segment item.
pub fn stream_work(image: &Item) -> Option<StreamWork> {
    let text = |name: &str| match image.get(name) {
        Some(AttributeValue::S(text)) => Some(text.as_str()),
        _ => None,
    };
    let id = text(ID)?;
    if id.starts_with(SEGMENT_PREFIX) {
        let key = serde_dynamo::from_item(image.clone()).ok()?;
        return Some(StreamWork::Segment(key));
    }
    (text(STATUS) == Some(JobStatus::Accepted.code()))
        .then(|| JobId::parse(id))
        .flatten()
        .map(StreamWork::Job)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SegmentRun, StoredJob};
    use crate::store::dynamo::item::to_item;
    use crate::store::dynamo::write_id::WriteId;

    fn image(item: crate::store::dynamo::item::Item) -> Item {
        Item::from(item)
    }

    #[test]
    fn a_segment_is_told_by_its_id_and_a_job_by_its_status() {
        let job = crate::model::AsyncJob::accepted(
            crate::model::JobType::DataMigration,
            1,
            "urn:t".into(),
            "2026-12-02T00:00:00.000Z",
        );
        let stored = StoredJob::new(job.clone());
        let accepted = image(to_item(&stored).unwrap());
        assert_eq!(
            stream_work(&accepted),
            Some(StreamWork::Job(job.id.clone()))
        );

        let mut finished = stored.clone();
        finished.job.status = JobStatus::Completed;
        assert_eq!(stream_work(&image(to_item(&finished).unwrap())), None);

        let key = SegmentKey::all(&job.id, 1, 4).remove(2);
        let segment =
            super::super::segments::to_item(&SegmentRun::new(key.clone()), &WriteId::new());
        assert_eq!(
            stream_work(&image(segment.unwrap())),
            Some(StreamWork::Segment(key))
        );
    }
}
