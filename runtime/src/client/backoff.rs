//! Reconnection delays: exponential backoff with jitter, as socket.io-client
//! computes them (`min * 2^attempt`, moved by up to `± factor`, capped).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The delay before reconnection attempt `attempt` (1-based), given a random
/// number `rand` in `[0, 1)`.
pub(crate) fn delay(
    attempt: u32,
    base: Duration,
    max: Duration,
    factor: f64,
    rand: f64,
) -> Duration {
    let exp = attempt.saturating_sub(1).min(62);
    let ms = base.as_secs_f64() * 1000.0 * 2f64.powi(exp as i32);
    let deviation = (rand * factor * ms).floor();
    // socket.io-client picks the sign from the same random number.
    let ms = if ((rand * 10.0).floor() as u64) & 1 == 0 {
        ms - deviation
    } else {
        ms + deviation
    };
    let max_ms = max.as_secs_f64() * 1000.0;
    Duration::try_from_secs_f64(ms.clamp(0.0, max_ms) / 1000.0).unwrap_or(max)
}

/// A random number in `[0, 1)`, from the standard library's per-process
/// random hash keys (no extra dependency; jitter needs no strong randomness).
pub(crate) fn random_unit() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    hasher.write_u32(nanos);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(5);

    #[test]
    fn grows_and_caps_without_jitter() {
        let d: Vec<_> = (1..=5).map(|a| delay(a, S, MAX, 0.0, 0.3)).collect();
        assert_eq!(d, [1000, 2000, 4000, 5000, 5000].map(Duration::from_millis));
        assert_eq!(delay(u32::MAX, S, MAX, 0.5, 0.99), MAX);
        // Absurd settings do not panic.
        assert_eq!(
            delay(u32::MAX, Duration::MAX, Duration::MAX, 1.0, 0.99),
            Duration::MAX
        );
        assert_eq!(delay(3, Duration::ZERO, MAX, 0.5, 0.5), Duration::ZERO);
    }

    #[test]
    fn jitter_stays_in_bounds() {
        for i in 0..1000 {
            let r = random_unit();
            assert!((0.0..1.0).contains(&r));
            let d = delay(1 + i % 4, S, MAX, 0.5, r);
            assert!(d <= MAX, "{d:?}");
            let nominal = 1000.0 * 2f64.powi((i % 4) as i32);
            let ms = d.as_secs_f64() * 1000.0;
            assert!(ms >= nominal * 0.5 - 1.0, "{ms} < half of {nominal}");
        }
        // Both directions happen: 0.05 -> floor(0.5) = 0 (even, shorter),
        // 0.15 -> floor(1.5) = 1 (odd, longer).
        assert!(delay(1, S, MAX, 0.5, 0.05) < S);
        assert!(delay(1, S, MAX, 0.5, 0.15) > S);
    }
}
