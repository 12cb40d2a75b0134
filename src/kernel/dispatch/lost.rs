//! Retry safety, in one place: what happens to the requests of a connection
//! that is lost (closed, reset, stalled) before they were answered.
//!
//! * Never written: nothing happened on the server, so the request goes back
//!   to the service and is sent on another connection (to the same
//!   endpoint once it reconnects, or another that fits its route), with its
//!   original deadline. The caller sees nothing.
//! * Written, no answer: the server may or may not have acted on it. It is
//!   sent again only if it is idempotent — the client was made with
//!   `idempotent=True` (`Link::idempotent`), the call was
//!   (`Protocol::idempotent`, which also says yes for Redis commands its
//!   command table flags `readonly`), or the server said it never read it
//!   (`Protocol::unread`: PostgreSQL's FATAL for an idle session it ends).
//!   Otherwise its caller gets `ConnectionError` at stage `written`, saying
//!   the outcome is unknown.
//! * At most `MAX_RESENDS` times: an idempotent request whose connections
//!   keep dying under it (a server that crashes on it, a proxy that cuts
//!   every reply) then fails with `ConnectionError` (reason
//!   `resend_limit`) saying so — even with no deadline (`timeout=None`).
//! * Requests with a streamed body (COPY), on a dedicated connection
//!   (transactions, blocking commands, leases) or whose caller has gone are
//!   never sent again. A dedicated connection's callers are told that it is
//!   gone with its session (a transaction on it is over), and, when the
//!   server ended the session before reading their request, that it was not
//!   executed.

use super::{Conn, Waiter};
use crate::kernel::stats::Outstanding;
use crate::kernel::{Protocol, Request};

/// A request to send again, with its place in the service's limits.
pub type Resend<P> = (Request<P>, Option<Outstanding>);

/// How often one request is sent again after its connection was lost with
/// it written and unanswered.
pub const MAX_RESENDS: u8 = 3;

impl<P: Protocol> Conn<P> {
    /// The waiters the connection's `close` set aside: the ones that may be
    /// sent again are returned, the others fail with the close's error.
    pub(crate) fn take_lost(&self, proto: &P, all_idempotent: bool) -> Vec<Resend<P>> {
        let lost = std::mem::take(&mut *self.lost.borrow_mut());
        let mut again = Vec::new();
        for (w, err) in lost {
            let written = w.written.is_some();
            if self.dedicated {
                let e = err.lost_dedicated(written, written && proto.unread(&w.pending));
                self.finish(w, Err(e));
            } else if !may_resend(proto, &w, all_idempotent) {
                self.finish(w, Err(err.unknown_outcome(written)));
            } else if written && w.resends >= MAX_RESENDS {
                self.finish(w, Err(err.resend_limit(MAX_RESENDS)));
            } else {
                let resends = w.resends + u8::from(written);
                if let Some((mut req, guard)) = self.unanswered(w) {
                    req.resends = resends;
                    again.push((req, guard));
                }
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
    w.written.is_none()
        || all_idempotent
        || proto.unread(&w.pending)
        || proto.idempotent(&w.pending, payload)
}
