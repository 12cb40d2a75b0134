//! Retry safety, in one place: what happens to the requests of a shared
//! connection that is lost (closed, reset, stalled) before they were
//! answered.
//!
//! * Never written: nothing happened on the server, so the request goes back
//!   to the service and is sent on another connection (to the same
//!   endpoint once it reconnects, or another that fits its route), with its
//!   original deadline. The caller sees nothing.
//! * Written, no answer: the server may or may not have acted on it. It is
//!   sent again only if it is idempotent — the client was made with
//!   `idempotent=True` (`Link::idempotent`), or the protocol says the
//!   request only reads (`Protocol::idempotent`: Redis commands its command
//!   table flags `readonly`). Otherwise its caller gets `ConnectionError`
//!   at stage `written`, saying the outcome is unknown.
//! * Requests with a streamed body (COPY), on a dedicated connection
//!   (transactions, blocking commands, leases) or whose caller has gone are
//!   never sent again. A resent request keeps its deadline, which bounds
//!   how often it can be resent.

use super::{Conn, Waiter};
use crate::kernel::stats::Outstanding;
use crate::kernel::{Protocol, Request};

/// A request to send again, with its place in the service's limits.
pub type Resend<P> = (Request<P>, Option<Outstanding>);

impl<P: Protocol> Conn<P> {
    /// The waiters the connection's `close` set aside: the ones that may be
    /// sent again are returned, the others fail with the close's error.
    pub(crate) fn take_lost(&self, proto: &P, all_idempotent: bool) -> Vec<Resend<P>> {
        let lost = std::mem::take(&mut *self.lost.borrow_mut());
        let mut again = Vec::new();
        for (w, err) in lost {
            if may_resend(proto, &w, all_idempotent) {
                if let Some(r) = self.unanswered(w) {
                    again.push(r);
                }
            } else {
                let written = w.written.is_some();
                self.finish(w, Err(err.unknown_outcome(written)));
            }
        }
        again
    }
}

fn may_resend<P: Protocol>(proto: &P, w: &Waiter<P>, all_idempotent: bool) -> bool {
    let Some((payload, _)) = &w.resend else {
        return false; // it had a body: cannot be replayed
    };
    if w.completion.is_none() || w.expired {
        return false; // nobody waits for it (heartbeat, timed out)
    }
    if w.parted {
        return false; // its caller already has part of the reply
    }
    w.written.is_none() || all_idempotent || proto.idempotent(&w.pending, payload)
}
