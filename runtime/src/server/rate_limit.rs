//! Sliding-window rate limits, kept per client.
//!
//! Time comes from [`tokio::time::Instant`], so tests drive it with tokio's
//! paused clock instead of sleeping.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Sub-windows per window: bounds the memory of one limit whatever its `max`.
const BUCKETS_PER_WINDOW: u32 = 64;

/// Ad-hoc keys kept per client before expired ones are pruned.
const PRUNE_AT: usize = 128;

/// Hits recorded close together (within one sub-window of the first).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    first: Instant,
    last: Instant,
    count: u32,
}

/// A sliding window: at most `max` hits fall in any window of length
/// `window`.
///
/// Hits are grouped in buckets of `window / 64`; a bucket leaves the window
/// when its *last* hit does. This keeps at most ~65 buckets per limit (not one
/// entry per hit) and errs on the safe side: never more than `max` hits per
/// window, and when hits were grouped, a wait at most `window / 64` longer
/// than an exact log would give. Hits spaced by more than a sub-window are
/// tracked exactly.
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    max: u32,
    window: Duration,
    buckets: VecDeque<Bucket>,
    total: u32,
}

impl SlidingWindow {
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            buckets: VecDeque::new(),
            total: 0,
        }
    }

    /// Changes the limits (a handler may call with other values for the same key).
    fn reconfigure(&mut self, max: u32, window: Duration) {
        self.max = max;
        self.window = window;
    }

    fn expire(&mut self, now: Instant) {
        while let Some(front) = self.buckets.front() {
            if now.saturating_duration_since(front.last) >= self.window {
                self.total = self.total.saturating_sub(front.count);
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    /// Time until one more hit would be allowed (zero if allowed now).
    pub(crate) fn wait_time(&mut self, now: Instant) -> Duration {
        self.expire(now);
        if self.max == 0 {
            return self.window;
        }
        if self.total < self.max {
            return Duration::ZERO;
        }
        self.buckets.front().map_or(Duration::ZERO, |front| {
            (front.last + self.window).saturating_duration_since(now)
        })
    }

    /// Records a hit if allowed; otherwise returns how long to wait.
    pub(crate) fn check(&mut self, now: Instant) -> Result<(), Duration> {
        let wait = self.wait_time(now);
        if !wait.is_zero() {
            return Err(wait);
        }
        let width = self.window / BUCKETS_PER_WINDOW;
        match self.buckets.back_mut() {
            Some(back) if now.saturating_duration_since(back.first) < width => {
                back.last = now;
                back.count += 1;
            }
            _ => self.buckets.push_back(Bucket {
                first: now,
                last: now,
                count: 1,
            }),
        }
        self.total += 1;
        Ok(())
    }

    fn is_idle(&mut self, now: Instant) -> bool {
        self.expire(now);
        self.buckets.is_empty()
    }
}

/// Rounds a wait up to whole milliseconds (never 0 for a refused hit).
pub(crate) fn ceil_millis(d: Duration) -> u64 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

/// The rate-limit state of one client: contract limits per event and the
/// ad-hoc limits handlers ask for through `SocketContext::should_allow_action`.
#[derive(Debug, Default)]
pub(crate) struct ClientLimits {
    /// One window per rate-limited event the client used. A contract has a
    /// handful of limited events, so a scan beats hashing the name on every
    /// event.
    events: Mutex<Vec<(&'static str, SlidingWindow)>>,
    actions: Mutex<HashMap<String, SlidingWindow>>,
}

impl ClientLimits {
    /// Contract limit of `event`: `Err(wait)` when refused.
    pub(crate) fn check_event(
        &self,
        event: &'static str,
        max: u32,
        window: Duration,
    ) -> Result<(), Duration> {
        let now = Instant::now();
        let mut windows = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, w)) = windows.iter_mut().find(|(name, _)| *name == event) {
            return w.check(now);
        }
        let mut w = SlidingWindow::new(max, window);
        let result = w.check(now);
        windows.push((event, w));
        result
    }

    /// Ad-hoc limit under `key`: records the action and returns `true` when allowed.
    pub(crate) fn allow_action(&self, key: &str, max: u32, window: Duration) -> bool {
        let now = Instant::now();
        let mut map = self.actions.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= PRUNE_AT && !map.contains_key(key) {
            map.retain(|_, window| !window.is_idle(now));
        }
        let entry = match map.get_mut(key) {
            Some(entry) => {
                entry.reconfigure(max, window);
                entry
            }
            None => map
                .entry(key.to_owned())
                .or_insert_with(|| SlidingWindow::new(max, window)),
        };
        entry.check(now).is_ok()
    }

    /// Time until the action under `key` is allowed again (zero if it is now,
    /// or if the key was never used).
    pub(crate) fn action_wait(&self, key: &str) -> Duration {
        let now = Instant::now();
        let mut map = self.actions.lock().unwrap_or_else(PoisonError::into_inner);
        map.get_mut(key)
            .map_or(Duration::ZERO, |entry| entry.wait_time(now))
    }
}

/// Whom a shared limit counts: a user, or (anonymous connections, and
/// `per: ip` limits) an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Holder {
    User(Arc<str>),
    Ip(IpAddr),
}

/// Contract limits shared by the connections of one user or one IP address
/// on this node, so that several connections, or reconnecting, never give
/// more than the limit.
///
/// Memory is bounded by the active holders: when the map doubles, entries
/// whose window is empty (no hit within the window) are dropped.
#[derive(Debug)]
pub(crate) struct SharedLimits {
    windows: Mutex<SharedMap>,
}

#[derive(Debug)]
struct SharedMap {
    map: HashMap<(Holder, &'static str), SlidingWindow>,
    /// Size at which idle entries are pruned next.
    prune_at: usize,
}

impl Default for SharedLimits {
    fn default() -> Self {
        Self {
            windows: Mutex::new(SharedMap {
                map: HashMap::new(),
                prune_at: PRUNE_AT,
            }),
        }
    }
}

impl SharedLimits {
    /// Contract limit of `event` for `holder`: `Err(wait)` when refused.
    pub(crate) fn check(
        &self,
        holder: Holder,
        event: &'static str,
        max: u32,
        window: Duration,
    ) -> Result<(), Duration> {
        let now = Instant::now();
        let mut shared = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.map.len() >= shared.prune_at {
            shared.map.retain(|_, w| !w.is_idle(now));
            shared.prune_at = (shared.map.len() * 2).max(PRUNE_AT);
        }
        shared
            .map
            .entry((holder, event))
            .or_insert_with(|| SlidingWindow::new(max, window))
            .check(now)
    }

    /// Entries kept now (for tests of the memory bound).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    #[tokio::test(start_paused = true)]
    async fn shared_limits_count_every_connection_of_a_holder_and_forget_idle_ones() {
        let shared = SharedLimits::default();
        let window = Duration::from_secs(10);
        let alice = || Holder::User("alice".into());
        for _ in 0..5 {
            assert!(shared.check(alice(), "send", 5, window).is_ok());
        }
        // Whatever connection asks next, alice is over her limit.
        assert!(shared.check(alice(), "send", 5, window).is_err());
        assert!(shared.check(alice(), "other", 5, window).is_ok());
        assert!(
            shared
                .check(Holder::User("bob".into()), "send", 5, window)
                .is_ok()
        );
        // 10,000 one-off holders, each idle after the window: the map is
        // pruned as it grows and never holds them all.
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            assert!(shared.check(Holder::Ip(ip), "send", 5, window).is_ok());
            if i % 100 == 99 {
                advance(Duration::from_secs(1)).await;
            }
        }
        assert!(shared.len() < 3_000, "{} entries kept", shared.len());
    }

    #[tokio::test(start_paused = true)]
    async fn exactly_max_in_window_then_retry_after() {
        let limits = ClientLimits::default();
        let window = Duration::from_millis(1000);
        for _ in 0..3 {
            assert!(limits.check_event("send", 3, window).is_ok());
            advance(Duration::from_millis(100)).await;
        }
        // Hits at t=0,100,200; now t=300: the 4th is refused until t=1000.
        let wait = limits.check_event("send", 3, window).unwrap_err();
        assert_eq!(wait, Duration::from_millis(700));
        assert_eq!(ceil_millis(wait), 700);
        // Just before the first hit leaves the window: still refused.
        advance(Duration::from_millis(699)).await;
        assert_eq!(
            limits.check_event("send", 3, window).unwrap_err(),
            Duration::from_millis(1)
        );
        // At t=1000 the first hit expired: one more is allowed, then refused
        // until the second hit (t=100) expires at t=1100.
        advance(Duration::from_millis(1)).await;
        assert!(limits.check_event("send", 3, window).is_ok());
        assert_eq!(
            limits.check_event("send", 3, window).unwrap_err(),
            Duration::from_millis(100)
        );
        // Other events have their own window.
        assert!(limits.check_event("other", 3, window).is_ok());
        // After a full window everything is allowed again.
        advance(window).await;
        for _ in 0..3 {
            assert!(limits.check_event("send", 3, window).is_ok());
        }
        assert!(limits.check_event("send", 3, window).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn refused_hits_do_not_extend_the_window() {
        let limits = ClientLimits::default();
        let window = Duration::from_millis(500);
        assert!(limits.check_event("e", 1, window).is_ok());
        for _ in 0..10 {
            advance(Duration::from_millis(10)).await;
            assert!(limits.check_event("e", 1, window).is_err());
        }
        advance(Duration::from_millis(400)).await;
        assert!(limits.check_event("e", 1, window).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn zero_max_always_refuses() {
        let limits = ClientLimits::default();
        let window = Duration::from_millis(250);
        assert_eq!(limits.check_event("e", 0, window), Err(window));
    }

    #[tokio::test(start_paused = true)]
    async fn ad_hoc_actions() {
        let limits = ClientLimits::default();
        let window = Duration::from_secs(10);
        assert_eq!(limits.action_wait("typing"), Duration::ZERO);
        assert!(limits.allow_action("typing", 2, window));
        advance(Duration::from_secs(1)).await;
        assert!(limits.allow_action("typing", 2, window));
        assert!(!limits.allow_action("typing", 2, window));
        assert_eq!(limits.action_wait("typing"), Duration::from_secs(9));
        assert!(limits.allow_action("other", 2, window));
        advance(Duration::from_secs(9)).await;
        assert_eq!(limits.action_wait("typing"), Duration::ZERO);
        assert!(limits.allow_action("typing", 2, window));
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_bounded_and_errs_on_the_safe_side() {
        let window = Duration::from_millis(6400); // sub-window: 100 ms
        let mut w = SlidingWindow::new(10_000, window);
        // 10 000 hits over 6.4 s, one every 640 us.
        for _ in 0..10_000 {
            assert!(w.check(Instant::now()).is_ok());
            advance(Duration::from_micros(640)).await;
        }
        assert!(w.buckets.len() <= 65, "{} buckets", w.buckets.len());
        assert!(w.check(Instant::now()).is_err());
        // Grouped hits: the wait is never shorter than the exact one and at
        // most one sub-window longer.
        let mut w = SlidingWindow::new(3, window);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(w.check(Instant::now()).is_ok());
            advance(Duration::from_millis(30)).await;
        }
        let wait = w.check(Instant::now()).unwrap_err();
        let exact = (start + window).saturating_duration_since(Instant::now());
        assert!(
            wait >= exact && wait <= exact + window / 64,
            "{wait:?} vs {exact:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_ad_hoc_keys_are_pruned() {
        let limits = ClientLimits::default();
        for i in 0..PRUNE_AT {
            assert!(limits.allow_action(&format!("k{i}"), 1, Duration::from_secs(1)));
        }
        advance(Duration::from_secs(2)).await;
        assert!(limits.allow_action("fresh", 1, Duration::from_secs(1)));
        assert_eq!(limits.actions.lock().unwrap().len(), 1);
    }

    #[test]
    fn ceil_millis_rounds_up() {
        assert_eq!(ceil_millis(Duration::from_micros(1)), 1);
        assert_eq!(ceil_millis(Duration::from_micros(1500)), 2);
        assert_eq!(ceil_millis(Duration::from_millis(7)), 7);
        assert_eq!(ceil_millis(Duration::ZERO), 1);
    }
}
