//! A migration's write budget: at most so many item writes a second, so a migration leaves
//! the table's capacity to the traffic it serves.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use crate::store::StoreError;

/// How far behind the schedule a write may be and still go at once: the time a page's Scan
/// takes is made up for by the writes that follow it, so the average keeps to the rate.
const CATCH_UP: Duration = Duration::from_secs(1);

/// Slots reserved in a budget shared beyond this process: `writes` of them, one interval
/// apart from `start`, which no other holder of the budget writes in.
pub struct Window {
    pub start: Instant,
    pub writes: u64,
}

/// A budget the segments of a migration share wherever they run: it hands out windows that
/// never overlap.
pub trait SharedBudget: Send + Sync {
    /// Reserves the next `writes` slots.
    fn reserve(&self, writes: u64) -> BoxFuture<'_, Result<Window, StoreError>>;

    /// Hands back the slots of `window` after its first `used`, unless a later window was
    /// reserved since.
    fn give_back(&self, window: &Window, used: u64) -> BoxFuture<'_, ()>;
}

/// Paces item writes to a rate. Every write of a migration takes a slot first; slots are
/// handed out one interval apart, shared by every write in flight. A shared budget's slots
/// come from the windows it reserves: one for the writes a page says it will make
/// ([`Self::reserve`]), or one per write when it does not say.
#[derive(Default)]
pub struct WriteBudget<'a> {
    /// Between two writes; `None`: no budget.
    interval: Option<Duration>,
    /// The next free slot of a budget of this process alone.
    next: Mutex<Option<Instant>>,
    shared: Option<Shared<'a>>,
    /// Slots handed out so far.
    taken: AtomicU64,
}

struct Shared<'a> {
    budget: Box<dyn SharedBudget + 'a>,
    /// The window slots come from, and how many of them are taken.
    window: tokio::sync::Mutex<Option<(Window, u64)>>,
}

impl std::fmt::Debug for WriteBudget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBudget")
            .field("interval", &self.interval)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> WriteBudget<'a> {
    /// No limit.
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// `rate` writes a second, for this process's writes alone.
    pub fn items_per_second(rate: u32) -> Self {
        Self {
            interval: Some(interval(rate)),
            ..Self::default()
        }
    }

    /// `rate` writes a second, shared through `budget` with whoever else holds it.
    pub fn shared(rate: u32, budget: impl SharedBudget + 'a) -> Self {
        Self {
            interval: Some(interval(rate)),
            shared: Some(Shared {
                budget: Box::new(budget),
                window: tokio::sync::Mutex::new(None),
            }),
            ..Self::default()
        }
    }

    /// Says that the next `writes` writes come now: a shared budget reserves one window for
    /// them all, instead of one per write. Nothing to do for any other budget.
    pub async fn reserve(&self, writes: u64) -> Result<(), StoreError> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let mut window = shared.window.lock().await;
        if let Some((old, used)) = window.take() {
            shared.budget.give_back(&old, used).await;
        }
        if writes > 0 {
            *window = Some((shared.budget.reserve(writes).await?, 0));
        }
        Ok(())
    }

    /// Waits for the next slot.
    pub async fn take(&self) -> Result<(), StoreError> {
        self.taken.fetch_add(1, Ordering::Relaxed);
        let Some(interval) = self.interval else {
            return Ok(());
        };
        let Some(shared) = &self.shared else {
            tokio::time::sleep_until(self.local_slot(interval)).await;
            return Ok(());
        };
        loop {
            let slot = shared.slot(interval).await?;
            tokio::time::sleep_until(slot).await;
            // Woken well past its slot, the worker was frozen while it waited: windows
            // reserved since may be running now, and this write would go beside them.
            if Instant::now() <= slot + CATCH_UP {
                return Ok(());
            }
        }
    }

    /// Hands back what a shared budget's window has left: the page is over.
    pub async fn settle(&self) {
        if self.shared.is_some() {
            // Reserving nothing hands back the window without taking another.
            let _ = self.reserve(0).await;
        }
    }

    /// How many slots writes have taken.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    fn local_slot(&self, interval: Duration) -> Instant {
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let earliest = now.checked_sub(CATCH_UP).unwrap_or(now);
        let slot = next.map_or(now, |next| next.max(earliest));
        *next = Some(slot + interval);
        slot
    }
}

impl Shared<'_> {
    /// The next slot of the window, reserving a window of one first when it has none left.
    /// A window's slots are never moved later, so they stay inside it; a holder that fell
    /// behind its window by more than [`CATCH_UP`] (frozen, or paused for a lease's length)
    /// reserves a new one for the writes it has left, since later windows may be running
    /// now and its old slots would write beside them.
    async fn slot(&self, interval: Duration) -> Result<Instant, StoreError> {
        let mut window = self.window.lock().await;
        let slot_of = |window: &Window, used: u64| {
            window.start + interval * u32::try_from(used).unwrap_or(u32::MAX)
        };
        let left = match window.as_ref() {
            Some((window, used)) if *used < window.writes => {
                let late = slot_of(window, *used) + CATCH_UP < Instant::now();
                late.then_some(window.writes - used)
            }
            _ => Some(1),
        };
        if let Some(writes) = left {
            *window = Some((self.budget.reserve(writes).await?, 0));
        }
        let (window, used) = window.as_mut().expect("a window was just reserved");
        let slot = slot_of(window, *used);
        *used += 1;
        Ok(slot)
    }
}

fn interval(rate: u32) -> Duration {
    Duration::from_secs(1) / rate.max(1)
}

#[cfg(test)]
mod tests {
    use futures_util::future::join_all;

    use super::*;

    async fn seconds_to_take(budget: &WriteBudget<'_>, writes: usize) -> f64 {
        let started = Instant::now();
        for taken in join_all((0..writes).map(|_| budget.take())).await {
            taken.unwrap();
        }
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

    /// One point in time that only moves forward, as the store keeps a shared budget's.
    #[derive(Clone, Default)]
    struct OnePoint(std::sync::Arc<Mutex<Option<Instant>>>);

    const SHARED_RATE: u32 = 10;

    impl SharedBudget for OnePoint {
        fn reserve(&self, writes: u64) -> BoxFuture<'_, Result<Window, StoreError>> {
            let mut next = self.0.lock().unwrap();
            let start = next.map_or(Instant::now(), |next| next.max(Instant::now()));
            *next = Some(start + interval(SHARED_RATE) * writes as u32);
            Box::pin(async move { Ok(Window { start, writes }) })
        }

        fn give_back(&self, window: &Window, used: u64) -> BoxFuture<'_, ()> {
            let mut next = self.0.lock().unwrap();
            let step = interval(SHARED_RATE);
            if *next == Some(window.start + step * window.writes as u32) {
                *next = Some(window.start + step * used as u32);
            }
            Box::pin(async {})
        }
    }

    #[tokio::test(start_paused = true)]
    async fn holders_of_a_shared_budget_keep_to_its_rate_together() {
        let point = OnePoint::default();
        let holders: Vec<WriteBudget> = (0..4)
            .map(|_| WriteBudget::shared(SHARED_RATE, point.clone()))
            .collect();
        let started = Instant::now();
        // Each says it writes 5, and writes them, all at once: 20 writes at 10 a second.
        join_all(holders.iter().map(|budget| async move {
            budget.reserve(5).await.unwrap();
            seconds_to_take(budget, 5).await;
        }))
        .await;
        let took = started.elapsed().as_secs_f64();
        assert!((1.9..=2.0).contains(&took), "{took} s");
        // A holder that does not say reserves a window per write, in the same budget.
        let unsaid = seconds_to_take(&holders[0], 3).await;
        assert!((0.29..=0.31).contains(&unsaid), "{unsaid} s");
    }

    #[tokio::test(start_paused = true)]
    async fn what_a_page_did_not_write_goes_to_the_next() {
        let point = OnePoint::default();
        let (first, second) = (
            WriteBudget::shared(SHARED_RATE, point.clone()),
            WriteBudget::shared(SHARED_RATE, point.clone()),
        );
        let started = Instant::now();
        first.reserve(10).await.unwrap();
        seconds_to_take(&first, 2).await;
        first.settle().await;
        // The second starts after the first's two writes, not after its ten.
        second.reserve(1).await.unwrap();
        seconds_to_take(&second, 1).await;
        let took = started.elapsed().as_secs_f64();
        assert!((0.19..=0.21).contains(&took), "{took} s");
        assert_eq!((first.taken(), second.taken()), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_holder_frozen_past_its_window_writes_after_the_windows_reserved_since() {
        let point = OnePoint::default();
        let (frozen, other) = (
            WriteBudget::shared(SHARED_RATE, point.clone()),
            WriteBudget::shared(SHARED_RATE, point.clone()),
        );
        frozen.reserve(10).await.unwrap();
        seconds_to_take(&frozen, 2).await;
        // Frozen for 5 s, long past its window; meanwhile another reserves the next second.
        tokio::time::sleep(Duration::from_secs(5)).await;
        other.reserve(10).await.unwrap();
        let (late, on_time) =
            futures_util::join!(seconds_to_take(&frozen, 8), seconds_to_take(&other, 10));
        assert!((0.89..=0.91).contains(&on_time), "{on_time} s");
        // Its 8 writes left go after the other's 10, not at once beside them.
        assert!((1.69..=1.71).contains(&late), "{late} s");
    }

    #[tokio::test(start_paused = true)]
    async fn writes_frozen_while_they_wait_for_their_slots_go_after_the_windows_reserved_since() {
        let point = OnePoint::default();
        let (frozen, other) = (
            WriteBudget::shared(SHARED_RATE, point.clone()),
            WriteBudget::shared(SHARED_RATE, point.clone()),
        );
        frozen.reserve(10).await.unwrap();
        let waiting = seconds_to_take(&frozen, 10);
        tokio::pin!(waiting);
        // Every write takes its slot and waits for it; then the worker freezes for 5 s.
        assert!(futures_util::poll!(&mut waiting).is_pending());
        tokio::time::sleep(Duration::from_secs(5)).await;
        other.reserve(10).await.unwrap();
        let woken = Instant::now();
        let (late, on_time) = futures_util::join!(
            async {
                waiting.await;
                woken.elapsed().as_secs_f64()
            },
            seconds_to_take(&other, 10)
        );
        assert!((0.89..=0.91).contains(&on_time), "{on_time} s");
        // Its writes left go after the other's window, not all at once beside it.
        assert!(
            late > on_time,
            "{late} s after waking, the other's in {on_time} s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_budget_nothing_waits() {
        let took = seconds_to_take(&WriteBudget::unlimited(), 10_000).await;
        assert_eq!(took, 0.0);
    }
}
