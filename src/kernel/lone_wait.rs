//! A lone blocking caller spins briefly before it sleeps.
//!
//! When one blocking call is the only one waiting in the process (a
//! single-threaded script, a sync web worker), its reply from a nearby
//! server comes back within tens of microseconds, and sleeping for it costs
//! a wake-up that can take as long as the round trip (on a virtual machine,
//! a halted vCPU's). Such a caller checks its slot for up to `SPIN` before
//! it sleeps; but only while the last lone caller's reply came within
//! `SPIN` of its wait starting (a remote or slow backend is not spun for:
//! one slow reply turns spinning off until a quick one turns it back on),
//! and never while another caller waits (then threads share the CPUs, and
//! the GIL's hand-offs, not the wake-ups, bound them).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The longest a lone caller spins. Measured with one thread making GETs
/// against a local redis-server (2 vCPUs, idle): 50 µs spun too rarely
/// (13-51 k GETs/s, replies often just over it), 100 µs 40-53 k, 200 µs
/// 30-51 k; without spinning 16-21 k.
pub const SPIN: Duration = Duration::from_micros(100);

/// Who waits, and how quick the last lone reply was: one per process.
pub struct Lone {
    /// Blocking callers inside `Slot::wait` now.
    waiting: AtomicUsize,
    /// How long the last lone caller's reply took, in ns (from its wait
    /// starting to the kernel completing it); 0: none yet.
    last_ns: AtomicU64,
}

pub static LONE: Lone = Lone::new();

impl Lone {
    const fn new() -> Lone {
        Lone {
            waiting: AtomicUsize::new(0),
            last_ns: AtomicU64::new(0),
        }
    }

    /// A caller starts waiting: counted until the `Waiting` is dropped.
    pub fn enter(&self) -> Waiting<'_> {
        Waiting {
            lone: self.waiting.fetch_add(1, Ordering::AcqRel) == 0,
            of: self,
        }
    }
}

/// A caller inside `Slot::wait`.
pub struct Waiting<'a> {
    /// No other caller was waiting when this one started.
    pub lone: bool,
    of: &'a Lone,
}

impl Waiting<'_> {
    /// Spin until `filled` or `SPIN` from `start` has passed, if this
    /// caller is lone and the last lone reply was quick. Whether it is
    /// filled.
    pub fn spin(&self, filled: &AtomicBool, start: Instant) -> bool {
        if !self.lone || self.of.last_ns.load(Ordering::Relaxed) > SPIN.as_nanos() as u64 {
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

    /// A lone caller's reply took `took`: spin next time only if quick.
    pub fn record(&self, took: Duration) {
        if self.lone {
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

    use super::{Lone, SPIN};

    #[test]
    fn only_a_caller_with_nobody_else_waiting_is_lone() {
        let l = Lone::new();
        let a = l.enter();
        let b = l.enter();
        assert!(a.lone && !b.lone);
        drop(a);
        drop(b);
        assert!(l.enter().lone, "both gone: the next is lone again");
    }

    #[test]
    fn a_lone_caller_sees_a_reply_that_comes_while_it_spins() {
        let l = Lone::new();
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
        let l = Lone::new();
        let never = AtomicBool::new(false);
        // The first lone caller spins (no reply known yet): out after SPIN.
        let w = l.enter();
        let start = Instant::now();
        assert!(!w.spin(&never, start));
        assert!(start.elapsed() >= SPIN, "it spun the whole budget");
        w.record(Duration::from_millis(5)); // its reply came late
        drop(w);
        // Now it does not spin at all: given a start an hour ahead (a
        // spinner would stay an hour), it is back at once.
        let w = l.enter();
        let future = Instant::now() + Duration::from_secs(3600);
        let t = Instant::now();
        assert!(!w.spin(&never, future));
        assert!(
            t.elapsed() < Duration::from_secs(3000),
            "no spin after a slow reply"
        );
        w.record(Duration::from_micros(20)); // a quick one
        drop(w);
        let w = l.enter();
        let t = Instant::now();
        assert!(!w.spin(&never, Instant::now()));
        assert!(t.elapsed() >= SPIN, "spinning again after a quick reply");
    }

    #[test]
    fn a_caller_that_is_not_lone_never_spins_nor_records() {
        let l = Lone::new();
        let _first = l.enter();
        let second = l.enter();
        let never = AtomicBool::new(false);
        let future = Instant::now() + Duration::from_secs(3600);
        let t = Instant::now();
        assert!(!second.spin(&never, future));
        assert!(t.elapsed() < Duration::from_secs(3000));
        second.record(Duration::from_secs(1));
        assert_eq!(l.last_ns.load(Ordering::Relaxed), 0, "not recorded");
    }
}
