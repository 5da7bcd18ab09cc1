//! A migration's write budget: at most so many item writes a second, so a migration leaves
//! the table's capacity to the traffic it serves.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How far behind the schedule a write may be and still go at once: the time a page's Scan
/// takes is made up for by the writes that follow it, so the average keeps to the rate.
const CATCH_UP: Duration = Duration::from_secs(1);

/// Paces item writes to a rate. Every write of a migration takes a slot first; slots are
/// handed out one interval apart, shared by every write in flight.
#[derive(Debug, Default)]
pub struct WriteBudget {
    /// Between two writes; `None`: no budget.
    interval: Option<Duration>,
    /// The next free slot.
    next: Mutex<Option<Instant>>,
}

impl WriteBudget {
    /// No limit.
    pub fn unlimited() -> Self {
        Self::default()
    }

    pub fn items_per_second(rate: u32) -> Self {
        Self {
            interval: Some(Duration::from_secs(1) / rate.max(1)),
            next: Mutex::new(None),
        }
    }

    /// Waits for the next slot.
    pub async fn take(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            let earliest = now.checked_sub(CATCH_UP).unwrap_or(now);
            let slot = next.map_or(now, |next| next.max(earliest));
            *next = Some(slot + interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use futures_util::future::join_all;

    use super::*;

    async fn seconds_to_take(budget: &WriteBudget, writes: usize) -> f64 {
        let started = Instant::now();
        join_all((0..writes).map(|_| budget.take())).await;
        started.elapsed().as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn writes_keep_to_the_rate_however_many_are_in_flight() {
        let budget = WriteBudget::items_per_second(100);
        let took = seconds_to_take(&budget, 1000).await;
        assert!(
            (9.9..=10.1).contains(&took),
            "1000 writes at 100/s took {took} s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_is_made_up_for_but_only_a_second_of_it() {
        let budget = WriteBudget::items_per_second(100);
        seconds_to_take(&budget, 100).await;
        // A Scan of half a second: the next 50 writes go at once.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let caught_up = seconds_to_take(&budget, 50).await;
        assert!(caught_up < 0.02, "{caught_up} s");
        // A long pause banks no more than a second.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let after_long_pause = seconds_to_take(&budget, 300).await;
        assert!(
            (1.9..=2.1).contains(&after_long_pause),
            "{after_long_pause} s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_budget_nothing_waits() {
        let took = seconds_to_take(&WriteBudget::unlimited(), 10_000).await;
        assert_eq!(took, 0.0);
    }
}
