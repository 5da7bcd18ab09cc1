//! A segment page's part of its migration's write budget. The segments of a migration share
//! one budget wherever they run: a page reserves a window of it in the store for the writes
//! it makes (no two windows overlap), and hands back what it did not write. So the migration
//! as a whole keeps to its budget whatever the number of segments and however many of them
//! run at once.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::Runner;
use crate::migration::{MigrationContext, ScanSegment, SharedBudget, Window, WriteBudget};
use crate::model::SegmentKey;
use crate::store::{Reservation, RunStore, StoreError};

/// How much of the budget one page writes at most: short pages keep the segments' turns
/// short, and a page's writes well inside its run's deadline.
const PAGE_TIME: Duration = Duration::from_secs(2);

/// A migration's budget as its segments share it through the store.
struct StoredBudget<'s, S> {
    store: &'s S,
    migration: SegmentKey,
    rate: u32,
    /// The window last reserved: where it starts here, its reservation, its end. The
    /// budget hands back only its current window, before it reserves the next.
    reserved: Mutex<Option<(tokio::time::Instant, Reservation, i64)>>,
}

impl<S: RunStore> SharedBudget for StoredBudget<'_, S> {
    fn reserve(&self, writes: u64) -> BoxFuture<'_, Result<Window, StoreError>> {
        Box::pin(async move {
            let length_ms = duration_ms(writes, self.rate);
            let reservation = self
                .store
                .reserve_writes(&self.migration, length_ms)
                .await?;
            // The window where the store put it, in the past by the reservation's time when
            // it started at once: those slots go at once, inside the window, never after it.
            let now = tokio::time::Instant::now();
            let offset_ms = reservation.start_ms - self.store.clock().now_ms();
            let offset = Duration::from_millis(offset_ms.unsigned_abs());
            let start = if offset_ms >= 0 {
                now + offset
            } else {
                now.checked_sub(offset).unwrap_or(now)
            };
            let end_ms = reservation.start_ms + length_ms;
            *self
                .reserved
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) =
                Some((start, reservation, end_ms));
            Ok(Window { start, writes })
        })
    }

    fn give_back(&self, window: &Window, used: u64) -> BoxFuture<'_, ()> {
        let reserved = self
            .reserved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .filter(|(start, ..)| *start == window.start)
            .map(|(_, reservation, end_ms)| (reservation, end_ms));
        Box::pin(async move {
            let Some((reservation, end_ms)) = reserved else {
                return;
            };
            let used_until_ms = reservation.start_ms + duration_ms(used, self.rate);
            if used_until_ms >= end_ms {
                return;
            }
            let key = &self.migration;
            if let Err(error) = self
                .store
                .return_writes(key, &reservation, end_ms, used_until_ms)
                .await
            {
                // The rest of the window goes unused: the migration goes slower, never faster.
                tracing::warn!(job = %key.job_id, %error, "could not hand back unused writes");
            }
        })
    }
}

impl<S: RunStore> Runner<'_, S> {
    /// The context of a segment's next page: its part of the table and, under a budget, the
    /// budget its migration's segments share, with no more items than that writes in
    /// [`PAGE_TIME`].
    pub(super) fn page_context(&self, key: &SegmentKey) -> MigrationContext<'_> {
        // A migration in one segment walks the whole table, as one that cannot be split must.
        let scan = (key.total > 1).then_some(ScanSegment {
            segment: key.segment,
            total: key.total,
        });
        let page_size = self.context.page_size;
        let Some(rate) = self.settings.items_per_second else {
            return self
                .context
                .for_page(scan, page_size, WriteBudget::unlimited());
        };
        let shared = StoredBudget {
            store: self.store,
            migration: key.clone(),
            rate,
            reserved: Mutex::default(),
        };
        let page_size = page_writes(rate).min(page_size.max(1));
        self.context
            .for_page(scan, page_size, WriteBudget::shared(rate, shared))
    }
}

/// The writes a page makes at most at `rate` a second: [`PAGE_TIME`]'s, at least one.
fn page_writes(rate: u32) -> usize {
    let writes = u128::from(rate) * PAGE_TIME.as_millis() / 1000;
    usize::try_from(writes).unwrap_or(usize::MAX).max(1)
}

/// How long `writes` writes take at `rate` a second, rounded up.
fn duration_ms(writes: u64, rate: u32) -> i64 {
    let ms = (u128::from(writes) * 1000).div_ceil(u128::from(rate.max(1)));
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_writes_two_seconds_of_its_budget_and_at_least_one_item() {
        assert_eq!(page_writes(50), 100);
        assert_eq!(page_writes(1), 2);
        assert_eq!(duration_ms(100, 50), 2000);
        // A write at 3 a second takes a third of a second, rounded up.
        assert_eq!(duration_ms(1, 3), 334);
    }
}
