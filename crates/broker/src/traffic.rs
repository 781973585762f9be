//! [`Traffic`]: messages and bytes per second in and out of each topic on
//! this broker, for the control plane's topic and tenant views. Prometheus
//! has the same counters; this keeps recent rates at hand without a
//! metrics server.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Seconds of history a rate averages over.
const WINDOW_SECS: u64 = 10;

/// Counts in one direction or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    pub messages_in_per_sec: f64,
    pub bytes_in_per_sec: f64,
    pub messages_out_per_sec: f64,
    pub bytes_out_per_sec: f64,
}

impl std::ops::AddAssign for Rates {
    fn add_assign(&mut self, o: Rates) {
        self.messages_in_per_sec += o.messages_in_per_sec;
        self.bytes_in_per_sec += o.bytes_in_per_sec;
        self.messages_out_per_sec += o.messages_out_per_sec;
        self.bytes_out_per_sec += o.bytes_out_per_sec;
    }
}

/// One second of a topic's traffic.
#[derive(Debug, Clone, Copy, Default)]
struct Second {
    /// Unix second this slot holds; a slot from an older second is stale.
    at: u64,
    messages_in: u64,
    bytes_in: u64,
    messages_out: u64,
    bytes_out: u64,
}

/// A ring of the last [`WINDOW_SECS`] seconds (plus the current one).
type Ring = [Second; WINDOW_SECS as usize + 1];

#[derive(Default)]
pub struct Traffic {
    topics: Mutex<HashMap<String, Ring>>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Traffic {
    fn slot(ring: &mut Ring, now: u64) -> &mut Second {
        let s = &mut ring[(now % ring.len() as u64) as usize];
        if s.at != now {
            *s = Second {
                at: now,
                ..Second::default()
            };
        }
        s
    }

    fn record(&self, topic: &str, f: impl FnOnce(&mut Second)) {
        let now = now_secs();
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        let ring = match topics.get_mut(topic) {
            Some(r) => r,
            None => topics.entry(topic.to_string()).or_default(),
        };
        f(Self::slot(ring, now));
    }

    /// Records an acknowledged append.
    pub fn record_in(&self, topic: &str, messages: u64, bytes: u64) {
        self.record(topic, |s| {
            s.messages_in += messages;
            s.bytes_in += bytes;
        });
    }

    /// Records records served to a consumer.
    pub fn record_out(&self, topic: &str, messages: u64, bytes: u64) {
        self.record(topic, |s| {
            s.messages_out += messages;
            s.bytes_out += bytes;
        });
    }

    /// A topic's rates over the last complete seconds.
    pub fn rates(&self, topic: &str) -> Rates {
        let now = now_secs();
        let topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ring) = topics.get(topic) else {
            return Rates::default();
        };
        let mut sum = Second::default();
        for s in ring
            .iter()
            .filter(|s| s.at < now && s.at + WINDOW_SECS >= now)
        {
            sum.messages_in += s.messages_in;
            sum.bytes_in += s.bytes_in;
            sum.messages_out += s.messages_out;
            sum.bytes_out += s.bytes_out;
        }
        let w = WINDOW_SECS as f64;
        Rates {
            messages_in_per_sec: sum.messages_in as f64 / w,
            bytes_in_per_sec: sum.bytes_in as f64 / w,
            messages_out_per_sec: sum.messages_out as f64 / w,
            bytes_out_per_sec: sum.bytes_out as f64 / w,
        }
    }

    /// Forgets a deleted topic.
    pub fn forget(&self, topic: &str) {
        self.topics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(topic);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_second_is_not_counted_until_it_ends() {
        let t = Traffic::default();
        t.record_in("a", 10, 1000);
        assert_eq!(t.rates("a"), Rates::default());
        // Move the recorded second into the past.
        {
            let mut topics = t.topics.lock().unwrap();
            for s in topics.get_mut("a").unwrap().iter_mut() {
                if s.at != 0 {
                    s.at -= 1;
                }
            }
        }
        let r = t.rates("a");
        assert_eq!(r.messages_in_per_sec, 1.0);
        assert_eq!(r.bytes_in_per_sec, 100.0);
        assert_eq!(t.rates("b"), Rates::default());
    }
}
