//! The deadlines of one connection's waiters, earliest first.
//!
//! Requests mostly arrive in the order of their deadlines (one timeout for
//! all, counted from submission), so a deadline no earlier than the last
//! one queued goes to a FIFO: pushing and popping it costs O(1) instead of
//! a heap's O(log n) sift. One that is earlier (a shorter timeout, a request
//! sent again with its old deadline) goes to a heap. The earliest is the
//! earlier of the two fronts (ties by sequence number, as in one heap).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use tokio::time::Instant;

#[derive(Default)]
pub(super) struct Deadlines {
    /// In order of deadline and of sequence number.
    fifo: VecDeque<(Instant, u64)>,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Deadlines {
    /// Waiter `seq` must be answered by `at`.
    pub(super) fn push(&mut self, at: Instant, seq: u64) {
        if self.fifo.back().is_none_or(|(b, _)| at >= *b) {
            self.fifo.push_back((at, seq));
        } else {
            self.heap.push(Reverse((at, seq)));
        }
    }

    /// The earliest deadline and its waiter.
    pub(super) fn peek(&self) -> Option<(Instant, u64)> {
        let f = self.fifo.front().copied();
        let h = self.heap.peek().map(|Reverse(e)| *e);
        match (f, h) {
            (Some(f), Some(h)) => Some(f.min(h)),
            (f, h) => f.or(h),
        }
    }

    /// Remove the earliest (the one `peek` shows).
    pub(super) fn pop(&mut self) {
        let f = self.fifo.front().copied();
        let h = self.heap.peek().map(|Reverse(e)| *e);
        match (f, h) {
            (Some(f), Some(h)) if h < f => {
                self.heap.pop();
            }
            (Some(_), _) => {
                self.fifo.pop_front();
            }
            (None, _) => {
                self.heap.pop();
            }
        }
    }

    /// Drop the deadlines of answered waiters (sequence numbers below
    /// `front_seq`) that are at the front: with one timeout for all that is
    /// every answered one, so this holds about the requests in flight.
    pub(super) fn drop_answered(&mut self, front_seq: u64) {
        while self.fifo.front().is_some_and(|(_, s)| *s < front_seq) {
            self.fifo.pop_front();
        }
        while self
            .heap
            .peek()
            .is_some_and(|Reverse((_, s))| *s < front_seq)
        {
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_whichever_side_holds_it() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut d = Deadlines::default();
        for (ms, seq) in [(10, 0), (20, 1), (5, 2), (20, 3), (15, 4), (30, 5)] {
            d.push(at(ms), seq);
        }
        let mut order = Vec::new();
        while let Some((t, seq)) = d.peek() {
            order.push((t, seq));
            d.pop();
        }
        let want = [(5, 2), (10, 0), (15, 4), (20, 1), (20, 3), (30, 5)];
        assert_eq!(order, want.map(|(ms, s)| (at(ms), s)).to_vec());
    }

    #[test]
    fn answered_ones_leave_from_the_front() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut d = Deadlines::default();
        for seq in 0..4 {
            d.push(at(10 + seq), seq);
        }
        d.push(at(1), 4); // earlier: on the heap
        d.drop_answered(2);
        assert_eq!(d.peek(), Some((at(1), 4)));
        d.pop();
        assert_eq!(d.peek(), Some((at(12), 2)));
        d.drop_answered(5);
        assert_eq!(d.peek(), None);
    }
}
