//! [`QuotaBucket`]: a rate limit that answers with a throttle time (KIP-219)
//! rather than refusing.
//!
//! Design. A bucket holds up to `burst` units (bytes or requests) and fills
//! at `rate` units per second. Recording an amount always succeeds and may
//! drive the level below zero (debt): Kafka appends a throttled producer's
//! data and answers at once, so the broker never drops work it was given.
//! The throttle time is how long the debt takes to repay, `-level / rate`,
//! which is what Kafka's windowed formula `(observed - quota) / quota *
//! window` converges to with a window of one burst. The caller (the broker)
//! puts it in `throttle_time_ms` and mutes the connection for that long, so
//! a client sending at any multiple of its quota gets exactly the rate on
//! average.
//!
//! The burst is one second's worth of rate (Kafka's default
//! `quota.window.size.seconds` is 1): large enough that a client's ordinary
//! batches (linger, a fetch of `fetch.max.bytes`) pass without throttling
//! when the average rate is within the quota, small enough that over a
//! 30-second window it adds at most ~3% to the observed rate.
//!
//! Cluster share. A tenant's plan rate is for the whole cluster; each broker
//! enforces a *share* of it. The share is the bucket's `rate`, which a
//! coordinator may change at any time with [`QuotaBucket::set_rate`] (per
//! ARCHITECTURE.md: every second, re-balanced through the catalog by each
//! broker's observed demand). On one broker the share is the whole rate.
//! The level is kept across a change, clamped to the new burst, so neither
//! a debt nor a credit is forgotten or inflated.

use std::time::{Duration, Instant};

/// Longest throttle one recording may ask for; a larger debt carries over to
/// the next request (Kafka also bounds throttle times).
pub const MAX_THROTTLE: Duration = Duration::from_secs(30);

/// A token bucket with debt, over units per second.
#[derive(Debug, Clone)]
pub struct QuotaBucket {
    rate: f64,
    burst: f64,
    level: f64,
    last: Instant,
}

impl QuotaBucket {
    /// A full bucket at `rate` units per second (a rate of 0 is treated as
    /// one unit per second, so nothing divides by zero).
    pub fn new(rate: u64, now: Instant) -> QuotaBucket {
        let rate = rate.max(1) as f64;
        QuotaBucket {
            rate,
            burst: rate,
            level: rate,
            last: now,
        }
    }

    /// The rate (this broker's share) in units per second.
    pub fn rate(&self) -> u64 {
        self.rate as u64
    }

    /// Changes the rate (a new plan, or a new share of the cluster's rate).
    pub fn set_rate(&mut self, rate: u64, now: Instant) {
        self.refill(now);
        self.rate = rate.max(1) as f64;
        self.burst = self.rate;
        self.level = self.level.min(self.burst);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.level = (self.level + elapsed * self.rate).min(self.burst);
        self.last = now.max(self.last);
    }

    /// Records `amount` units used at `now`; returns how long the caller
    /// should be throttled (zero while within the quota).
    pub fn record(&mut self, amount: u64, now: Instant) -> Duration {
        self.refill(now);
        self.level -= amount as f64;
        self.throttle()
    }

    /// The throttle owed now without recording anything: a fetch checks it
    /// before reading, so an over-quota consumer gets an empty answer.
    pub fn pending(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.throttle()
    }

    fn throttle(&self) -> Duration {
        if self.level >= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(-self.level / self.rate).min(MAX_THROTTLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_the_burst_nothing_is_throttled() {
        let t0 = Instant::now();
        let mut b = QuotaBucket::new(1000, t0);
        assert_eq!(b.record(600, t0), Duration::ZERO);
        assert_eq!(b.record(400, t0), Duration::ZERO);
        // Refills at the rate.
        assert_eq!(
            b.record(500, t0 + Duration::from_millis(500)),
            Duration::ZERO
        );
    }

    #[test]
    fn debt_is_repaid_at_the_rate() {
        let t0 = Instant::now();
        let mut b = QuotaBucket::new(1000, t0);
        // 1000 of burst, then 2000 more: 2 s of debt.
        assert_eq!(b.record(3000, t0), Duration::from_secs(2));
        assert_eq!(
            b.pending(t0 + Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        assert_eq!(b.pending(t0 + Duration::from_secs(2)), Duration::ZERO);
    }

    #[test]
    fn a_client_obeying_throttles_gets_the_rate() {
        // Sends 10 KiB whenever allowed, at a quota of 1 KiB/s: over 60 s it
        // gets 60 KiB plus one burst, whatever it tries.
        let t0 = Instant::now();
        let mut b = QuotaBucket::new(1024, t0);
        let mut now = t0;
        let mut sent = 0u64;
        while now < t0 + Duration::from_secs(60) {
            sent += 10 * 1024;
            now += b.record(10 * 1024, now).max(Duration::from_millis(1));
        }
        let rate = sent as f64 / 60.0;
        assert!((1024.0..1024.0 * 1.2).contains(&rate), "{rate}");
    }

    #[test]
    fn throttles_are_bounded_and_debt_carries_over() {
        let t0 = Instant::now();
        let mut b = QuotaBucket::new(10, t0);
        assert_eq!(b.record(10_000, t0), MAX_THROTTLE);
        let later = t0 + MAX_THROTTLE;
        // 969 s of debt remain; each answer still says at most 30 s.
        assert_eq!(b.pending(later), MAX_THROTTLE);
    }

    #[test]
    fn a_new_share_applies_at_once_and_keeps_the_debt() {
        let t0 = Instant::now();
        let mut b = QuotaBucket::new(1000, t0);
        assert_eq!(b.record(2000, t0), Duration::from_secs(1));
        b.set_rate(500, t0);
        assert_eq!(b.rate(), 500);
        assert_eq!(b.pending(t0), Duration::from_secs(2));
        // A larger share does not mint a credit beyond the new burst.
        b.set_rate(4000, t0 + Duration::from_secs(10));
        assert_eq!(b.record(500, t0 + Duration::from_secs(10)), Duration::ZERO);
        assert!(b.record(1, t0 + Duration::from_secs(10)) > Duration::ZERO);
    }
}
