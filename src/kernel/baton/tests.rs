//! The baton's bookkeeping on its own (no kernel, no Python): tokens given
//! and handed on in order, and the watcher waking what a caller that never
//! came back left queued.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Baton, Waiter};

/// A caller: remembers whether it was woken with a token.
#[derive(Default)]
struct Slot(AtomicBool);

impl Slot {
    fn new() -> Arc<Slot> {
        Arc::new(Slot::default())
    }
    fn take_grant(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

impl Waiter for Slot {
    fn wake(&self, grant: bool) {
        if grant {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

fn leaked(tokens: usize, stuck: Duration) -> &'static Baton {
    Box::leak(Box::new(Baton::new(tokens, stuck)))
}

#[test]
fn one_token_goes_from_caller_to_caller_in_order() {
    let b = leaked(1, Duration::from_secs(3600));
    let (x, y, z) = (Slot::new(), Slot::new(), Slot::new());
    b.deliver(x.clone());
    b.deliver(y.clone());
    b.deliver(z.clone());
    assert!(x.take_grant(), "the first reply wakes its caller at once");
    assert!(
        !y.take_grant() && !z.take_grant(),
        "the others wait their turn"
    );
    assert_eq!(b.counts(), (1, 2, 0, 0));
    b.hand_on(); // x's caller goes back to wait
    assert!(y.take_grant() && !z.take_grant());
    b.hand_on(); // y's
    assert!(z.take_grant());
    assert_eq!(b.counts(), (1, 0, 2, 0));
    b.hand_on(); // z's: nobody queued, the token comes back
    assert_eq!(b.counts(), (0, 0, 2, 0));
    let w = Slot::new();
    b.deliver(w.clone());
    assert!(
        w.take_grant(),
        "a free token wakes the next reply's caller at once"
    );
}

#[test]
fn two_tokens_wake_two_callers() {
    let b = leaked(2, Duration::from_secs(3600));
    let s: Vec<_> = (0..3).map(|_| Slot::new()).collect();
    for x in &s {
        b.deliver(x.clone());
    }
    let granted: Vec<bool> = s.iter().map(|x| x.take_grant()).collect();
    assert_eq!(granted, [true, true, false]);
    assert_eq!(b.counts().1, 1);
}

#[test]
fn a_caller_that_never_comes_back_does_not_strand_the_others() {
    let b = leaked(1, Duration::from_millis(20));
    let (x, y, z) = (Slot::new(), Slot::new(), Slot::new());
    b.deliver(x.clone()); // its caller keeps the token and never hands it on
    b.deliver(y.clone());
    b.deliver(z.clone());
    let end = Instant::now() + Duration::from_secs(20);
    while b.counts().1 > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(b.counts().1, 0, "the watcher woke the queued callers");
    assert!(y.take_grant() && z.take_grant());
    assert_eq!(b.counts().3, 2, "both counted as rescued");
    // The woken two now hold the tokens; when they are back, all is free.
    b.hand_on();
    b.hand_on();
    assert_eq!(b.counts().0, 0);
}
