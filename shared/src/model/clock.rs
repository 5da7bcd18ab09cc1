//! Where the service reads the wall-clock time: leases, back-offs, expiries and write
//! budgets all follow it.
//!
//! Every function runs on the system's clock. A test runs the same code on a clock it can
//! move ahead, so that leases run out, back-offs end and finished jobs expire without
//! waiting and without rewriting what the store holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

use super::instant;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// How far a movable clock, and every copy of it, has been moved ahead of the system's.
    ahead_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that starts at the system's time and that [`advance`](Self::advance) moves.
    pub fn movable() -> Self {
        Self {
            ahead_ms: Some(Arc::default()),
        }
    }

    /// The current time, truncated to what an instant can carry.
    pub fn now(&self) -> OffsetDateTime {
        let now = instant::now();
        match &self.ahead_ms {
            None => now,
            Some(ahead) => now + time::Duration::milliseconds(ahead.load(Ordering::Relaxed)),
        }
    }

    /// Epoch milliseconds, as leases and back-offs are stored.
    pub fn now_ms(&self) -> i64 {
        instant::millis(self.now())
    }

    /// Moves this clock and its copies `by` ahead.
    ///
    /// # Panics
    /// On the system's clock, which no one moves.
    pub fn advance(&self, by: Duration) {
        let ahead = self
            .ahead_ms
            .as_ref()
            .expect("only a movable clock is moved");
        let by_ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        ahead.fetch_add(by_ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_movable_clock_and_its_copies_move_together_and_the_system_clock_stays() {
        let clock = Clock::movable();
        let copy = clock.clone();
        let before = Clock::system().now();
        clock.advance(Duration::from_secs(3600));
        assert!(copy.now() - before >= time::Duration::seconds(3600));
        assert!(Clock::system().now() - before < time::Duration::seconds(3600));
    }
}
