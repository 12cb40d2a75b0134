//! A blocking caller with few others waiting spins briefly before it sleeps.
//!
//! When one or two blocking calls are all that wait in the process (a
//! single-threaded script, a sync web worker, two threads), a reply from a
//! nearby server comes back within tens of microseconds, and sleeping for it
//! costs a wake-up that can take as long as the round trip (on a virtual
//! machine, a halted vCPU's). Such a caller checks its slot for up to `SPIN`
//! before it sleeps; but only while the last spinning caller's reply came
//! within `SPIN` of its wait starting (a remote or slow backend is not spun
//! for: one slow reply turns spinning off until a quick one turns it back
//! on; meanwhile one wait in `PROBE_EVERY` spins to find out), only while
//! fewer than `SPINNERS` callers wait (with more, the GIL's hand-offs, not
//! the wake-ups, bound them), and never on a single CPU (there the spinner
//! would hold off the kernel thread that brings its reply).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The longest a caller spins. Measured with one thread making GETs
/// against a local redis-server (2 vCPUs, idle): 50 µs spun too rarely
/// (13-51 k GETs/s, replies often just over it), 100 µs 40-53 k, 200 µs
/// 30-51 k; without spinning 16-21 k.
pub const SPIN: Duration = Duration::from_micros(100);

/// How many callers may spin at once where there are two CPUs or more.
/// Measured on 2 vCPUs: two threads' GETs/s 22 k with one spinner, 40 k
/// with two; three spinners gave nothing at 3 threads (26 k against 33 k);
/// 5, 10 and 50 threads unchanged within noise (they rarely see so few
/// waiting). Not measured on more CPUs.
pub const SPINNERS: usize = 2;

/// While the last reply was slow, one wait in this many spins anyway: a
/// probe. Without it a process could stay off: sleeping callers let the
/// vCPUs halt, which itself slows the replies past `SPIN` (GETs/s, 4
/// alternating runs each, bimodal either way: two threads 20-49 k, median
/// 45 k, with the probe, 24-49 k, median 32 k, without; one thread 14-49
/// k, median 49 k, against 25-49 k, median 30 k). The cost against a slow
/// server: up to `SPIN` of CPU every `PROBE_EVERY` calls.
pub const PROBE_EVERY: u32 = 16;

/// How many callers may spin with `cpus` CPUs: none on one (the spinner
/// holds off the kernel thread: one thread's GETs fell from 15 k to 9 k
/// pinned to one CPU), `SPINNERS` otherwise.
pub fn spinners_for(cpus: usize) -> usize {
    if cpus >= 2 {
        SPINNERS
    } else {
        0
    }
}

/// Who waits, and how quick the last spinner's reply was: one per process.
pub struct SpinWait {
    /// Blocking callers inside `Slot::wait` now.
    waiting: AtomicUsize,
    /// How long the last spinning caller's reply took, in ns (from its wait
    /// starting to the kernel completing it); 0: none yet.
    last_ns: AtomicU64,
    /// `spinners_for` this process's CPUs (its affinity and cgroup quota),
    /// found at the first wait.
    spinners: OnceLock<usize>,
    /// Waits that did not spin because the last reply was slow.
    skipped: AtomicU32,
}

pub static SPIN_WAIT: SpinWait = SpinWait::new();

impl SpinWait {
    const fn new() -> SpinWait {
        SpinWait {
            waiting: AtomicUsize::new(0),
            last_ns: AtomicU64::new(0),
            spinners: OnceLock::new(),
            skipped: AtomicU32::new(0),
        }
    }

    fn spinners(&self) -> usize {
        *self.spinners.get_or_init(|| {
            spinners_for(std::thread::available_parallelism().map_or(1, |n| n.get()))
        })
    }

    /// The last spinner's reply came later than `SPIN`.
    fn slow(&self) -> bool {
        self.last_ns.load(Ordering::Relaxed) > SPIN.as_nanos() as u64
    }

    /// Whether this wait, one that would not spin since replies are slow,
    /// is the one in `PROBE_EVERY` that spins anyway.
    fn probe(&self) -> bool {
        self.skipped.fetch_add(1, Ordering::Relaxed) % PROBE_EVERY == PROBE_EVERY - 1
    }

    /// A caller starts waiting: counted until the `Waiting` is dropped.
    pub fn enter(&self) -> Waiting<'_> {
        Waiting {
            may_spin: self.waiting.fetch_add(1, Ordering::AcqRel) < self.spinners(),
            of: self,
        }
    }
}

/// A caller inside `Slot::wait`.
pub struct Waiting<'a> {
    /// Fewer than the allowed spinners were waiting when this one started.
    pub may_spin: bool,
    of: &'a SpinWait,
}

impl Waiting<'_> {
    /// Spin until `filled` or `SPIN` from `start` has passed, if this
    /// caller may spin and the last spinner's reply was quick (while it was
    /// slow: one wait in `PROBE_EVERY`). Whether it is filled.
    pub fn spin(&self, filled: &AtomicBool, start: Instant) -> bool {
        if !self.spins() {
            return filled.load(Ordering::Acquire);
        }
        let end = start + SPIN;
        let mut n = 0u32;
        loop {
            if filled.load(Ordering::Acquire) {
                return true;
            }
            std::hint::spin_loop();
            n = n.wrapping_add(1);
            if n % 64 == 0 && Instant::now() >= end {
                return false;
            }
        }
    }

    /// Whether this wait spins (asked once per wait: a probe counts).
    fn spins(&self) -> bool {
        self.may_spin && (!self.of.slow() || self.of.probe())
    }

    /// A spinner's reply took `took`: spin next time only if quick.
    pub fn record(&self, took: Duration) {
        if self.may_spin {
            let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
            self.of.last_ns.store(ns, Ordering::Relaxed);
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.of.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{spinners_for, SpinWait, Waiting, PROBE_EVERY, SPIN, SPINNERS};

    /// A process's `SpinWait` with `n` spinners allowed.
    fn with(n: usize) -> SpinWait {
        let w = SpinWait::new();
        w.spinners.set(n).unwrap();
        w
    }

    /// `w` does not spin: given a reply that never comes and a start an
    /// hour ahead (a spinner would stay an hour), it is back at once.
    fn returns_without_spinning(w: &Waiting<'_>) -> bool {
        let never = AtomicBool::new(false);
        let t = Instant::now();
        let caught = w.spin(&never, Instant::now() + Duration::from_secs(3600));
        !caught && t.elapsed() < Duration::from_secs(3000)
    }

    #[test]
    fn the_first_two_callers_waiting_may_spin_and_the_third_not() {
        let l = with(SPINNERS);
        let a = l.enter();
        let b = l.enter();
        let c = l.enter();
        assert!(a.may_spin && b.may_spin && !c.may_spin);
        drop((a, c));
        let d = l.enter();
        assert!(d.may_spin, "one still waits: the next may spin");
        drop((b, d));
        assert!(l.enter().may_spin, "all gone: the next may spin");
    }

    #[test]
    fn one_cpu_allows_no_spinner_and_two_or_more_allow_two() {
        assert_eq!(spinners_for(0), 0);
        assert_eq!(spinners_for(1), 0);
        assert_eq!(spinners_for(2), 2);
        assert_eq!(spinners_for(64), 2);
        let l = with(spinners_for(1));
        let w = l.enter();
        assert!(!w.may_spin, "alone, but on one CPU");
        assert!(returns_without_spinning(&w));
    }

    #[test]
    fn a_spinner_sees_a_reply_that_comes_while_it_spins() {
        let l = with(SPINNERS);
        let filled = Arc::new(AtomicBool::new(false));
        let f = filled.clone();
        let w = l.enter();
        // A start an hour ahead: the budget cannot run out first, so the
        // spin ends only when the reply is in.
        let start = Instant::now() + Duration::from_secs(3600);
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            f.store(true, Ordering::Release);
        });
        assert!(w.spin(&filled, start), "it saw the reply come in");
        setter.join().unwrap();
    }

    #[test]
    fn one_slow_reply_stops_the_spinning_and_a_quick_one_restarts_it() {
        let l = with(SPINNERS);
        let never = AtomicBool::new(false);
        // The first caller spins (no reply known yet): out after SPIN.
        let w = l.enter();
        let start = Instant::now();
        assert!(!w.spin(&never, start));
        assert!(start.elapsed() >= SPIN, "it spun the whole budget");
        w.record(Duration::from_millis(5)); // its reply came late
        drop(w);
        let w = l.enter();
        assert!(returns_without_spinning(&w), "no spin after a slow reply");
        w.record(Duration::from_micros(20)); // a quick one
        drop(w);
        let w = l.enter();
        let t = Instant::now();
        assert!(!w.spin(&never, Instant::now()));
        assert!(t.elapsed() >= SPIN, "spinning again after a quick reply");
    }

    #[test]
    fn while_replies_are_slow_one_wait_in_probe_every_spins() {
        let l = with(SPINNERS);
        assert!(l.enter().spins(), "no reply known yet: spins");
        l.enter().record(Duration::from_millis(5)); // a slow reply
        let spun: Vec<bool> = (0..2 * PROBE_EVERY).map(|_| l.enter().spins()).collect();
        let want: Vec<bool> = (1..=2 * PROBE_EVERY)
            .map(|i| i % PROBE_EVERY == 0)
            .collect();
        assert_eq!(spun, want, "the 16th and 32nd wait spin, no other");
        // A probe that finds a quick reply turns spinning back on.
        l.enter().record(Duration::from_micros(20));
        assert!(l.enter().spins() && l.enter().spins(), "spinning again");
    }

    #[test]
    fn a_caller_past_the_spinners_never_spins_nor_records() {
        let l = with(SPINNERS);
        let _first = l.enter();
        let _second = l.enter();
        let third = l.enter();
        assert!(returns_without_spinning(&third));
        third.record(Duration::from_secs(1));
        assert_eq!(l.last_ns.load(Ordering::Relaxed), 0, "not recorded");
    }
}
