//! What the kernel knows of one endpoint's health, kept on the kernel
//! thread and shared by the endpoint's connections (which record every
//! reply here) and its service (which balances and ejects by it).
//!
//! * Latency: a Peak-EWMA of request round trips (as Finagle and tower):
//!   a slower reply than the estimate replaces it at once (the peak), a
//!   faster one pulls it down with a weight that grows with the time since
//!   the last one; with no reply the estimate decays towards zero, so an
//!   endpoint that lost its traffic for being slow is tried again.
//! * Ejection (outlier detection, as Envoy's): `EJECT_AFTER` consecutive
//!   timeouts or connection errors eject the endpoint for a time that
//!   doubles with each ejection in a row (from `EJECT_BASE`, capped at
//!   `EJECT_MAX`); a success resets the count, a new connection lifts the
//!   ejection. An endpoint whose connection attempts fail is out anyway
//!   (it has no connection); its reconnect backoff re-admits it.
//!
//! No atomics: only the kernel thread touches this. `EndpointInfo` is what
//! `/status` and a client's `endpoints()` show of one endpoint.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use tokio::time::Instant;

use super::ErrorKind;

/// Time constant of the latency average: a reply this old weighs 1/e.
const DECAY: Duration = Duration::from_secs(2);
/// The estimate of an endpoint that has not answered yet (its first reply
/// replaces it).
const FIRST_RTT: Duration = Duration::from_millis(5);
/// Consecutive timeouts / connection errors that eject an endpoint.
pub const EJECT_AFTER: u32 = 5;
pub const EJECT_BASE: Duration = Duration::from_secs(1);
pub const EJECT_MAX: Duration = Duration::from_secs(30);

/// A peak-sensitive moving average of round trips, in seconds.
#[derive(Debug)]
pub struct PeakEwma {
    estimate: Cell<f64>,
    at: Cell<Instant>,
    /// No reply seen yet: the first one is the estimate.
    fresh: Cell<bool>,
}

impl Default for PeakEwma {
    fn default() -> Self {
        PeakEwma {
            estimate: Cell::new(FIRST_RTT.as_secs_f64()),
            at: Cell::new(Instant::now()),
            fresh: Cell::new(true),
        }
    }
}

fn decay(since: Duration) -> f64 {
    (-since.as_secs_f64() / DECAY.as_secs_f64()).exp()
}

impl PeakEwma {
    /// A round trip of `rtt` seconds ended at `now`.
    pub fn observe(&self, rtt: f64, now: Instant) {
        let est = self.estimate.get();
        let next = if self.fresh.replace(false) || rtt >= est {
            rtt
        } else {
            let w = decay(now.saturating_duration_since(self.at.get()));
            est * w + rtt * (1.0 - w)
        };
        self.estimate.set(next);
        self.at.set(now);
    }

    /// The estimate at `now`, in seconds (decayed since the last reply).
    pub fn estimate(&self, now: Instant) -> f64 {
        self.estimate.get() * decay(now.saturating_duration_since(self.at.get()))
    }
}

/// One endpoint's health (see the module comment).
#[derive(Debug, Default)]
pub struct Health {
    pub latency: PeakEwma,
    /// Requests answered or failed, and failed (incl. connect attempts).
    pub requests: Cell<u64>,
    pub errors: Cell<u64>,
    pub last_error: RefCell<Option<String>>,
    consecutive: Cell<u32>,
    ejections: Cell<u32>,
    ejected_until: Cell<Option<Instant>>,
}

impl Health {
    /// A reply after `rtt` (written → complete).
    #[inline]
    pub fn ok(&self, rtt: Duration, now: Instant) {
        self.ok_n(rtt, now, 1);
    }

    /// `n` replies, each after `rtt`, all complete at `now`: the same as
    /// `n` calls of `ok` (the average takes a sample equal to the one
    /// before it at the same instant without change).
    #[inline]
    pub fn ok_n(&self, rtt: Duration, now: Instant, n: u64) {
        self.requests.set(self.requests.get() + n);
        self.latency.observe(rtt.as_secs_f64(), now);
        if self.consecutive.get() != 0 {
            self.consecutive.set(0);
        }
        if self.ejections.get() != 0 && !self.is_ejected(now) {
            self.ejections.set(0);
        }
    }

    /// A request failed with `kind` after `waited` on this endpoint.
    pub fn failed(&self, kind: ErrorKind, detail: &str, waited: Option<Duration>, now: Instant) {
        self.requests.set(self.requests.get() + 1);
        self.note(detail);
        if let Some(w) = waited.filter(|_| kind == ErrorKind::Timeout) {
            self.latency.observe(w.as_secs_f64(), now); // at least this slow
        }
        if matches!(kind, ErrorKind::Timeout | ErrorKind::Connection) {
            let n = self.consecutive.get() + 1;
            self.consecutive.set(n);
            if n >= EJECT_AFTER && !self.is_ejected(now) {
                let k = self.ejections.get();
                self.ejections.set(k + 1);
                let time = EJECT_BASE.saturating_mul(1 << k.min(5)).min(EJECT_MAX);
                self.ejected_until.set(Some(now + time));
                self.consecutive.set(0);
            }
        }
    }

    /// A connection attempt failed.
    pub fn connect_failed(&self, detail: &str) {
        self.note(detail);
    }

    fn note(&self, detail: &str) {
        self.errors.set(self.errors.get() + 1);
        *self.last_error.borrow_mut() = Some(detail.to_string());
    }

    /// A new connection is up: the endpoint is back.
    pub fn connected(&self) {
        self.ejected_until.set(None);
        self.consecutive.set(0);
    }

    #[inline]
    pub fn is_ejected(&self, now: Instant) -> bool {
        self.ejected_until.get().is_some_and(|t| t > now)
    }

    /// Whether an ejection may be in force (no clock read).
    #[inline]
    pub fn maybe_ejected(&self) -> bool {
        self.ejected_until.get().is_some()
    }
}

/// One endpoint of a service, now.
#[derive(Debug, Clone)]
pub struct EndpointInfo {
    /// "ip:port" or a socket path.
    pub address: String,
    /// The name it came from.
    pub origin: String,
    /// "up", "ejected" (up, but failing: takes no traffic for a while),
    /// "down" (its connection attempts fail) or "connecting".
    pub state: &'static str,
    pub role: &'static str,
    /// Whether its server said it is read-only by default (PostgreSQL's
    /// `default_transaction_read_only`); None: not said.
    pub read_only: Option<bool>,
    pub connections: usize,
    pub in_flight: usize,
    /// The balancer's latency estimate (Peak-EWMA), in ms.
    pub latency_ms: f64,
    pub requests: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

impl EndpointInfo {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "address": self.address, "origin": self.origin, "state": self.state,
            "role": self.role, "read_only": self.read_only, "connections": self.connections, "in_flight": self.in_flight,
            "latency_ms": self.latency_ms, "requests": self.requests, "errors": self.errors,
            "last_error": self.last_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_ewma_jumps_up_and_decays_down() {
        let e = PeakEwma::default();
        let t0 = Instant::now();
        e.observe(0.050, t0);
        assert!((e.estimate(t0) - 0.050).abs() < 1e-9);
        // A fast reply right after barely moves it; after 2 s it counts 63 %.
        e.observe(0.001, t0 + Duration::from_millis(1));
        assert!(e.estimate(t0 + Duration::from_millis(1)) > 0.049);
        e.observe(0.001, t0 + Duration::from_secs(2));
        let est = e.estimate(t0 + Duration::from_secs(2));
        assert!(est > 0.015 && est < 0.02, "{est}");
        // Unobserved, it decays towards zero.
        assert!(e.estimate(t0 + Duration::from_secs(20)) < 0.001);
    }

    #[test]
    fn consecutive_failures_eject_with_doubling_time_and_a_connection_readmits() {
        let h = Health::default();
        let t0 = Instant::now();
        for _ in 0..EJECT_AFTER - 1 {
            h.failed(ErrorKind::Timeout, "slow", None, t0);
        }
        assert!(!h.is_ejected(t0));
        h.ok(Duration::from_millis(1), t0); // a success resets the count
        for _ in 0..EJECT_AFTER - 1 {
            h.failed(ErrorKind::Connection, "reset", None, t0);
        }
        assert!(!h.is_ejected(t0));
        h.failed(ErrorKind::Connection, "reset", None, t0);
        assert!(h.is_ejected(t0));
        assert!(!h.is_ejected(t0 + EJECT_BASE));
        let t1 = t0 + EJECT_BASE;
        for _ in 0..EJECT_AFTER {
            h.failed(ErrorKind::Timeout, "slow", None, t1);
        }
        assert!(h.is_ejected(t1 + EJECT_BASE)); // twice as long now
        assert!(!h.is_ejected(t1 + EJECT_BASE * 2));
        h.connected();
        assert!(!h.is_ejected(t1));
        assert_eq!(
            h.errors.get(),
            2 * EJECT_AFTER as u64 + EJECT_AFTER as u64 - 1
        );
        assert_eq!(h.last_error.borrow().as_deref(), Some("slow"));
    }
}
