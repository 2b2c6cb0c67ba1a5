//! Aggregated warnings: a failure that a client can cause once per message
//! (a full socket buffer, a closed connection, an unreachable Redis) is
//! logged once per interval with the count of the repeats, never once per
//! delivery, so no client can flood the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How often one kind of repeated warning is written at most.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// One kind of repeated warning.
#[derive(Debug)]
pub(crate) struct LogThrottle {
    interval: Duration,
    /// When the last line was written (`None`: never).
    last: Mutex<Option<Instant>>,
    /// Occurrences since the last line.
    suppressed: AtomicU64,
}

impl Default for LogThrottle {
    fn default() -> Self {
        Self::new(LOG_INTERVAL)
    }
}

impl LogThrottle {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Records one occurrence. Returns `Some(n)` when a line is due, `n`
    /// being the occurrences it stands for (this one included); `None` when
    /// it is counted for a later line.
    pub(crate) fn hit(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match *last {
            Some(at) if now.saturating_duration_since(at) < self.interval => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Ordering::Relaxed) + 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_per_interval_with_the_count() {
        let t = LogThrottle::new(Duration::from_secs(10));
        assert_eq!(t.hit(), Some(1));
        for _ in 0..999 {
            assert_eq!(t.hit(), None);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(t.hit(), Some(1000));
        assert_eq!(t.hit(), None);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(t.hit(), Some(2));
    }
}
