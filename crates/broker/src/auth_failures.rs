//! Failed authentications per source address: each is logged, and an
//! address that fails too often is refused without checking its
//! credentials until its window ends, so passwords cannot be guessed at
//! network speed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per address per window.
const MAX_FAILURES: u32 = 10;
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct AuthFailures {
    by_address: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthFailures {
    /// `Err(seconds to wait)` if `ip` has used up its failures.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&ip) {
            Some((start, n)) if *n >= MAX_FAILURES && start.elapsed() < WINDOW => {
                Err((WINDOW - start.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    pub fn record(&self, ip: IpAddr) {
        let mut map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Forget stale windows so the map stays as small as the attack.
        if map.len() > 10_000 {
            map.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        metrics::counter!("sluice_authentication_failures_total").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_too_many_failures() {
        let f = AuthFailures::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(f.check(a).is_ok());
            f.record(a);
        }
        assert!(f.check(a).unwrap_err() <= 60);
        assert!(f.check(b).is_ok(), "other addresses are not affected");
    }
}
