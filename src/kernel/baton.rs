//! Waking blocking callers a few at a time (the "baton").
//!
//! A blocking caller waits for its reply with the GIL released. When one
//! read brings the replies of many such callers, waking them all makes them
//! queue for the GIL: each is woken, finds the GIL taken, sleeps on it and
//! is woken again (with 50 threads, ~4 context switches and ~7 futex calls
//! per request, most of the CPU a GET costs). Here at most `TOKENS` callers
//! woken by a reply are awake at a time; the others' slots wait in a queue,
//! and a caller that goes back to wait (its next request sent, the GIL
//! released) wakes the next one, which finds the GIL free.
//!
//! A caller that does not come back (its last request, or other work) would
//! keep its token, so a watcher thread wakes everything queued once the
//! baton has not moved for `STUCK` and forgets the tokens given out: a
//! reply waits at most that long for its thread to be woken (it would wait
//! for the GIL meanwhile anyway). The state is per process generation: a
//! forked child starts with a fresh one (`forget_after_fork`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the baton wakes: a blocking caller's reply slot
/// (`completion::Slot`).
pub trait Waiter: Send + Sync {
    /// Wake the caller; `grant`: it holds a token to hand on.
    fn wake(&self, grant: bool);
}

type Slot = dyn Waiter;

/// Callers woken by a reply and not back yet, at most: one holding the GIL
/// and one waking up meanwhile. Measured at 50 threads (quiet machine, 3
/// runs each): 1 token 58-140 k GETs/s, 2 tokens 83-153 k, 4 tokens 93-134
/// k, every caller woken at once (before) 76-88 k.
const TOKENS: usize = 2;

/// How long the baton may rest with slots queued before all are woken.
pub const STUCK: Duration = Duration::from_millis(2);

pub struct Baton {
    st: Mutex<State>,
    /// Tells the watcher that a slot was queued.
    queued: Condvar,
    tokens: usize,
    stuck: Duration,
}

struct State {
    /// Tokens given out (callers woken, not back yet).
    out: usize,
    /// Slots with a reply whose callers have not been woken.
    queue: VecDeque<Arc<Slot>>,
    /// When the baton last moved (a caller woken).
    moved: Instant,
    watcher: bool,
    /// The watcher thread could not be started: every reply wakes its
    /// caller at once.
    no_watcher: bool,
    /// Counters for tests and status: handed on by a caller, woken by the
    /// watcher.
    handed: u64,
    rescued: u64,
}

static BATON: AtomicPtr<Baton> = AtomicPtr::new(std::ptr::null_mut());

/// This process's baton.
pub fn baton() -> &'static Baton {
    let p = BATON.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: batons are leaked, never freed.
        return unsafe { &*p };
    }
    let b = Box::into_raw(Box::new(Baton::new(TOKENS, STUCK)));
    match BATON.compare_exchange(std::ptr::null_mut(), b, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: just published; never freed.
        Ok(_) => unsafe { &*b },
        Err(other) => {
            // SAFETY: b came from Box::into_raw above and was never shared.
            drop(unsafe { Box::from_raw(b) });
            // SAFETY: published batons are never freed.
            unsafe { &*other }
        }
    }
}

/// In a forked child: the parent's baton (its watcher thread gone, its lock
/// perhaps held) is left alone; the next use makes a new one. Only an
/// atomic store (called from the atfork child handler).
pub fn forget_after_fork() {
    BATON.store(std::ptr::null_mut(), Ordering::SeqCst);
}

impl Baton {
    pub fn new(tokens: usize, stuck: Duration) -> Self {
        Baton {
            st: Mutex::new(State {
                out: 0,
                queue: VecDeque::new(),
                moved: Instant::now(),
                watcher: false,
                no_watcher: false,
                handed: 0,
                rescued: 0,
            }),
            queued: Condvar::new(),
            tokens,
            stuck,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reply is in `slot`: wake its caller now if a token is free, else
    /// queue it.
    pub fn deliver(&'static self, slot: Arc<Slot>) {
        let mut st = self.lock();
        if st.no_watcher {
            drop(st);
            slot.wake(false);
            return;
        }
        if st.out < self.tokens {
            st.out += 1;
            st.moved = Instant::now();
            drop(st);
            slot.wake(true);
            return;
        }
        st.queue.push_back(slot);
        let start = !std::mem::replace(&mut st.watcher, true);
        drop(st);
        if start {
            let spawned = std::thread::Builder::new()
                .name("iokernel-baton".into())
                .spawn(move || self.watch());
            if spawned.is_err() {
                // Nobody could wake a queued caller: none may wait.
                self.lock().no_watcher = true;
                self.wake_all();
                return;
            }
        }
        self.queued.notify_one();
    }

    /// A caller whose reply woke it (`Slot::take_grant`) goes back to wait:
    /// wake the next queued caller, or give the token back.
    pub fn hand_on(&self) {
        let mut st = self.lock();
        match st.queue.pop_front() {
            Some(next) => {
                st.moved = Instant::now();
                st.handed += 1;
                drop(st);
                next.wake(true);
            }
            None => st.out = st.out.saturating_sub(1),
        }
    }

    /// Wake every queued caller. They hold the tokens from now on; those
    /// given out before are forgotten (their callers did not come back).
    fn wake_all(&self) {
        let woken: Vec<Arc<Slot>> = {
            let mut st = self.lock();
            let woken: Vec<_> = st.queue.drain(..).collect();
            st.out = woken.len();
            st.moved = Instant::now();
            st.rescued += woken.len() as u64;
            woken
        };
        for s in woken {
            s.wake(true);
        }
    }

    fn watch(&self) {
        let mut st = self.lock();
        loop {
            if st.queue.is_empty() {
                st = self.queued.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let due = st.moved + self.stuck;
            let now = Instant::now();
            if now < due {
                st = self
                    .queued
                    .wait_timeout(st, due - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            drop(st);
            self.wake_all();
            st = self.lock();
        }
    }

    /// (tokens out, slots queued, handed on by callers, woken by the watcher).
    pub fn counts(&self) -> (usize, usize, u64, u64) {
        let st = self.lock();
        (st.out, st.queue.len(), st.handed, st.rescued)
    }
}

#[cfg(test)]
mod tests;
