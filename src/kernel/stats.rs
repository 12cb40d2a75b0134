//! The kernel's own metrics, per service and per address, kept in the shared
//! metrics file next to the application's (names are documented in
//! docs/operations.md). Each is a handle to one atomic value: updating one
//! from the kernel thread or a submitting thread is a single atomic add.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::health::Health;

use super::transport::Addr;
use super::ErrorKind;
use crate::metrics::layout::{render_labels, Kind};
use crate::metrics::{register_or_dummy, Series, LATENCY_BUCKETS};

pub struct ServiceMetrics {
    pub service: String,
    pub requests: Series,
    errors: [Series; 5],
    pub in_flight: Series,
    pub queued: Series,
    /// Request written → reply complete.
    pub network: Series,
    /// Request written → first byte of its reply.
    pub first_byte: Series,
    /// Reply complete → Python picked it up.
    pub pickup: Series,
    /// Submitted → written.
    pub queue_wait: Series,
    /// Writes to connections (requests_total / writes_total: how many
    /// requests a write carries).
    pub writes: Series,
}

fn series(name: &str, help: &str, labels: &[(&str, &str)], kind: Kind) -> Series {
    register_or_dummy(
        name,
        help,
        &render_labels(labels),
        kind,
        LATENCY_BUCKETS,
        true,
    )
}

const KINDS: [(ErrorKind, &str); 5] = [
    (ErrorKind::Connection, "connection"),
    (ErrorKind::Timeout, "timeout"),
    (ErrorKind::Protocol, "protocol"),
    (ErrorKind::Overloaded, "overloaded"),
    (ErrorKind::Closed, "closed"),
];

impl ServiceMetrics {
    pub fn new(service: &str) -> Arc<Self> {
        let s = [("service", service)];
        let c = |n: &str, h: &str| series(n, h, &s, Kind::Counter);
        let g = |n: &str, h: &str| series(n, h, &s, Kind::Gauge);
        let h = |n: &str, help: &str| series(n, help, &s, Kind::Histogram);
        Arc::new(ServiceMetrics {
            service: service.to_string(),
            requests: c(
                "iokernel_requests_total",
                "Requests admitted by the kernel.",
            ),
            errors: KINDS.map(|(_, k)| {
                series(
                    "iokernel_errors_total",
                    "Requests that failed, by kind of failure.",
                    &[("service", service), ("kind", k)],
                    Kind::Counter,
                )
            }),
            in_flight: g(
                "iokernel_in_flight",
                "Requests written or waiting on a connection, not yet answered.",
            ),
            queued: g(
                "iokernel_queued",
                "Requests waiting for a connection to become available.",
            ),
            network: h(
                "iokernel_network_seconds",
                "From writing a request to its complete reply.",
            ),
            first_byte: h(
                "iokernel_first_byte_seconds",
                "From writing a request to the first byte of its reply.",
            ),
            pickup: h(
                "iokernel_pickup_seconds",
                "From a complete reply to Python picking it up.",
            ),
            queue_wait: h(
                "iokernel_queue_seconds",
                "From submission to the request being written.",
            ),
            writes: c(
                "iokernel_writes_total",
                "Writes to the service's connections, each carrying every request queued since the last.",
            ),
        })
    }

    pub fn error(&self, kind: ErrorKind) {
        let i = KINDS.iter().position(|(k, _)| *k == kind).unwrap_or(0);
        self.errors[i].add(1.0);
    }

    /// A reply was picked up by Python; `completed` is when the kernel had it.
    pub fn picked_up(&self, completed: Instant) {
        self.picked_up_after(completed.elapsed());
    }

    pub fn picked_up_after(&self, waited: Duration) {
        self.pickup.observe(waited.as_secs_f64());
    }

    /// `n` replies picked up, each after `waited`.
    pub fn picked_up_n(&self, waited: Duration, n: u64) {
        self.pickup.observe_n(waited.as_secs_f64(), n);
    }

    pub fn for_addr(&self, addr: &Addr) -> AddrMetrics {
        let a = addr.to_string();
        let l = [("service", self.service.as_str()), ("address", a.as_str())];
        let c = |n: &str, h: &str| series(n, h, &l, Kind::Counter);
        AddrMetrics {
            connections: series("iokernel_connections", "Open connections.", &l, Kind::Gauge),
            connects: c(
                "iokernel_connects_total",
                "Connections established (handshake done).",
            ),
            connect_failures: c(
                "iokernel_connect_failures_total",
                "Connection attempts that failed.",
            ),
            disconnects: c("iokernel_disconnects_total", "Connections lost or closed."),
            bytes_written: c("iokernel_bytes_written_total", "Bytes written to the peer."),
            bytes_read: c("iokernel_bytes_read_total", "Bytes read from the peer."),
            requests: c(
                "iokernel_endpoint_requests_total",
                "Requests answered or failed on connections to this endpoint.",
            ),
            errors: c(
                "iokernel_endpoint_errors_total",
                "Requests that failed on this endpoint (connection lost, timeout), and failed connection attempts.",
            ),
            latency: series(
                "iokernel_endpoint_latency_seconds",
                "From writing a request to this endpoint to its complete reply.",
                &l,
                Kind::Histogram,
            ),
            health: Rc::new(Health::default()),
        }
    }
}

#[derive(Clone)]
pub struct AddrMetrics {
    pub connections: Series,
    pub connects: Series,
    pub connect_failures: Series,
    pub disconnects: Series,
    pub bytes_written: Series,
    pub bytes_read: Series,
    pub requests: Series,
    pub errors: Series,
    pub latency: Series,
    /// Latency estimate, errors and ejection, for the balancer (kernel
    /// thread only).
    pub health: Rc<Health>,
}

/// Process-wide kernel metrics.
pub fn stalls() -> &'static Series {
    static S: std::sync::OnceLock<Series> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        series(
            "iokernel_stalls_total",
            "Times replies waited longer than the watchdog threshold for Python to pick them up.",
            &[],
            Kind::Counter,
        )
    })
}

/// Counters shared between the kernel and submitting threads.
#[derive(Default, Debug)]
pub struct Stats {
    pub outstanding: AtomicUsize,
    /// Requests in the service queue (the kernel thread's last count, for
    /// the process-wide total in `limits`).
    pub queued: AtomicUsize,
    /// The admission limit (`ServiceConfig::limit` of the current endpoints).
    pub limit: AtomicUsize,
    pub requests: AtomicU64,
    pub connects: AtomicU64,
    pub connect_failures: AtomicU64,
    pub disconnects: AtomicU64,
    pub connections: AtomicUsize,
    pub dedicated: AtomicUsize,
    /// What discovery says beyond the endpoints (`Discovery`).
    pub discovery: std::sync::Mutex<Discovery>,
}

/// Discovery's state as callers see it.
#[derive(Default, Debug, Clone)]
pub struct Discovery {
    /// Why discovery has no endpoints for the service yet (a sentinel
    /// that knows no such master, ...); empty when it has them.
    pub problem: String,
    /// The TLS reason (`TlsReason::name`) when TLS failures are why.
    pub tls: Option<&'static str>,
    /// Watches not in place yet ("" when none): `ready()` waits for them.
    pub pending: String,
}

/// One admitted request's share of the outstanding count.
pub struct Outstanding(Arc<Stats>);

impl Outstanding {
    /// Take one share of `stats.outstanding` and of the process's
    /// (`limits::PROCESS`; both already counted by the caller).
    pub fn held(stats: Arc<Stats>) -> Self {
        Outstanding(stats)
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
        super::limits::PROCESS
            .outstanding
            .fetch_sub(1, Ordering::Relaxed);
    }
}
