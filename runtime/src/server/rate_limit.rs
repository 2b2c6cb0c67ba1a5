//! Sliding-window rate limits, kept per client.
//!
//! Time comes from [`tokio::time::Instant`], so tests drive it with tokio's
//! paused clock instead of sleeping.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// An exact sliding window: remembers the instants of the last `max` allowed
/// hits, so that at most `max` hits fall in any window of length `window`.
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    max: u32,
    window: Duration,
    hits: VecDeque<Instant>,
}

impl SlidingWindow {
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            hits: VecDeque::new(),
        }
    }

    /// Changes the limits (a handler may call with other values for the same key).
    fn reconfigure(&mut self, max: u32, window: Duration) {
        self.max = max;
        self.window = window;
        while self.hits.len() > max as usize {
            self.hits.pop_front();
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&front) = self.hits.front() {
            if now.saturating_duration_since(front) >= self.window {
                self.hits.pop_front();
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
        if self.hits.len() < self.max as usize {
            return Duration::ZERO;
        }
        match self.hits.front() {
            Some(&front) => (front + self.window).saturating_duration_since(now),
            None => Duration::ZERO,
        }
    }

    /// Records a hit if allowed; otherwise returns how long to wait.
    pub(crate) fn check(&mut self, now: Instant) -> Result<(), Duration> {
        let wait = self.wait_time(now);
        if wait.is_zero() {
            self.hits.push_back(now);
            Ok(())
        } else {
            Err(wait)
        }
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
    events: Mutex<HashMap<&'static str, SlidingWindow>>,
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
        let mut map = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(event)
            .or_insert_with(|| SlidingWindow::new(max, window))
            .check(now)
    }

    /// Ad-hoc limit under `key`: records the action and returns `true` when allowed.
    pub(crate) fn allow_action(&self, key: &str, max: u32, window: Duration) -> bool {
        let now = Instant::now();
        let mut map = self.actions.lock().unwrap_or_else(PoisonError::into_inner);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

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

    #[test]
    fn ceil_millis_rounds_up() {
        assert_eq!(ceil_millis(Duration::from_micros(1)), 1);
        assert_eq!(ceil_millis(Duration::from_micros(1500)), 2);
        assert_eq!(ceil_millis(Duration::from_millis(7)), 7);
        assert_eq!(ceil_millis(Duration::ZERO), 1);
    }
}
