//! One read's replies as a batch: `on_bytes` (dispatch/feed.rs) gathers
//! what each answered waiter did, `settle` records the metrics in runs
//! (one update per run of replies that share a write stamp) and then
//! completes the replies, in order, so a woken caller finds its request
//! counted.

use tokio::time::Instant;

use super::super::{Completion, Protocol, Reply};
use super::{Conn, Waiter};

/// What one read's replies did, gathered by `on_bytes` and recorded by
/// `settle`: their metrics in runs, their completions until then.
///
/// All replies decoded from one read count as complete at that read (`at`,
/// the clock read once when it returned; the decoding of the read is not in
/// their round trip, and is in their pick-up time instead). Requests
/// written in one write share their write stamp too, so a run of replies
/// with the same stamp has one round trip, recorded with one update of each
/// histogram, as many observations as replies: the values are those one
/// update per reply would record.
pub(super) struct Batch {
    at: Instant,
    /// The write stamp of the current run, its replies, and of those the
    /// ones counted for the endpoint (not heartbeats, not timed out).
    written: Option<Instant>,
    run: u64,
    run_counted: u64,
    /// The same for first reply bytes (`first_byte_seconds`).
    first_written: Option<Instant>,
    first: u64,
    /// Waiters finished, and counted for the endpoint, in this batch.
    done: u64,
    counted: u64,
    replies: Vec<(Completion, Reply)>,
}

impl Batch {
    pub(super) fn new(at: Instant, replies: Vec<(Completion, Reply)>) -> Self {
        Batch {
            at,
            written: None,
            run: 0,
            run_counted: 0,
            first_written: None,
            first: 0,
            done: 0,
            counted: 0,
            replies,
        }
    }

    /// The (empty) buffer of completions, to keep for the next batch.
    pub(super) fn into_buffer(self) -> Vec<(Completion, Reply)> {
        debug_assert!(self.replies.is_empty());
        self.replies
    }
}

impl<P: Protocol> Conn<P> {
    /// A reply decoded from the read at `b.at`: the waiter's metrics go
    /// into `b`'s runs and its completion waits in `b` until `settle`
    /// records them, so that a woken caller finds its reply counted.
    pub(super) fn answered(&self, w: Waiter<P>, reply: Reply, b: &mut Batch) {
        let counted = !w.expired && !w.completion.is_none();
        b.done += 1;
        b.counted += u64::from(counted);
        if let Some(t) = w.written {
            if b.written != Some(t) {
                self.record_run(b);
                b.written = Some(t);
            }
            b.run += 1;
            b.run_counted += u64::from(counted);
        }
        drop(w._guard);
        b.replies.push((w.completion, reply));
    }

    /// A waiter's first reply bytes came with the read at `b.at`.
    pub(super) fn first_byte(&self, written: Instant, b: &mut Batch) {
        if b.first_written != Some(written) {
            self.record_first(b);
            b.first_written = Some(written);
        }
        b.first += 1;
    }

    fn record_first(&self, b: &mut Batch) {
        if let Some(t) = b.first_written.take() {
            let d = b.at.saturating_duration_since(t);
            self.metrics.first_byte.observe_n(d.as_secs_f64(), b.first);
        }
        b.first = 0;
    }

    /// Record the run of replies written at `b.written` (one round trip).
    fn record_run(&self, b: &mut Batch) {
        if let Some(t) = b.written.take() {
            let rtt = b.at.saturating_duration_since(t);
            let secs = rtt.as_secs_f64();
            self.metrics.network.observe_n(secs, b.run);
            let health = &self.am.health;
            if b.run_counted > 0 {
                self.am.latency.observe_n(secs, b.run_counted);
                health.ok_n(rtt, b.at, b.run_counted);
            }
            if b.run_counted < b.run {
                health.latency.observe(secs, b.at);
            }
        }
        b.run = 0;
        b.run_counted = 0;
    }

    /// Record what `b` gathered, then complete its replies (in order).
    pub(super) fn settle(&self, b: &mut Batch) {
        self.record_first(b);
        self.record_run(b);
        if b.done > 0 {
            self.metrics.in_flight.add(-(b.done as f64));
            b.done = 0;
        }
        if b.counted > 0 {
            self.am.requests.add(b.counted as f64);
            b.counted = 0;
        }
        let at = b.at.into_std();
        for (c, reply) in b.replies.drain(..) {
            c.complete_at(Ok(reply), at);
        }
    }
}
