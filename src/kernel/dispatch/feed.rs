//! Reading replies into a connection's queue: each decoded message goes to
//! the request at the head (or, unsolicited, to the subscription sink), and
//! what the protocol's `feed` answers decides what happens to that request:
//! done, a part of a stream, done-then-close, written again, or redirected.

use std::rc::Rc;
use std::sync::Arc;

use bytes::BytesMut;

use super::batch::Batch;
use super::{Conn, Inner, Waiter};
use crate::kernel::completion::Parts;
use crate::kernel::transport::Addr;
use crate::kernel::{Feed, KernelError, Protocol, Reason, Request};

impl<P: Protocol> Conn<P> {
    /// Feed decoded bytes to waiters and the subscription sink. Stops early
    /// (leaving bytes in `buf`) when a stream's consumer is full: the reader
    /// waits for `Fed::blocked` to have room, then calls again.
    ///
    /// The replies are completed when the whole buffer is decoded (or
    /// decoding failed), after their metrics are recorded (`Batch`).
    pub(crate) fn on_bytes(
        self: &Rc<Self>,
        proto: &P,
        buf: &mut BytesMut,
    ) -> Result<Fed, KernelError> {
        let spare = std::mem::take(&mut *self.settled.borrow_mut());
        let mut b = Batch::new(self.last_read.get(), spare);
        let fed = self.decode_all(proto, buf, &mut b);
        self.settle(&mut b);
        *self.settled.borrow_mut() = b.into_buffer();
        fed
    }

    fn decode_all(
        self: &Rc<Self>,
        proto: &P,
        buf: &mut BytesMut,
        b: &mut Batch,
    ) -> Result<Fed, KernelError> {
        let mut fed = Fed::default();
        while fed.blocked.is_none() {
            let step = {
                let mut g = self.inner.borrow_mut();
                let g = &mut *g;
                let msg = match proto.decode(&mut g.state, buf) {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(KernelError::protocol(format!("{}: {e}", self.addr))
                            .because(Reason::ConnectionLost))
                    }
                };
                if proto.is_unsolicited(&msg) {
                    let sink = self.sink.borrow().clone();
                    if let Some(sink) = sink {
                        if let Some(item) = proto.push(&mut g.state, msg) {
                            if !sink.push(Ok(item)) {
                                fed.blocked = Some(sink as Arc<dyn Parts>);
                            }
                        }
                    }
                    continue;
                }
                let Some(w) = g.waiters.front_mut() else {
                    if let Some(why) = proto.farewell(&msg) {
                        // The server is ending the session on its own.
                        return Err(KernelError::connection(format!("{}: {why}", self.addr))
                            .because(Reason::ConnectionLost));
                    }
                    return Err(KernelError::protocol(format!(
                        "{}: the server sent a reply nobody asked for; the connection was reset",
                        self.addr
                    )));
                };
                if !w.got_first_byte {
                    // Its first message arrived with the read being decoded.
                    w.got_first_byte = true;
                    if let Some(t) = w.written {
                        self.first_byte(t, b);
                    }
                }
                let feed = proto.feed(&mut g.state, &mut w.pending, msg);
                if let Feed::Item(item) = feed {
                    w.parted = true;
                    match w.completion.item(item) {
                        Ok(true) => {}
                        Ok(false) => fed.blocked = w.completion.parts().cloned(),
                        // Its caller gave up (or did not ask for a stream):
                        // the part is read and dropped, like a late reply.
                        Err(_) => {}
                    }
                    continue;
                }
                match feed {
                    Feed::More | Feed::Item(_) => continue,
                    Feed::Fail(why) => {
                        return Err(KernelError::protocol(format!(
                            "{}: {why}; the connection was reset",
                            self.addr
                        ))
                        .because(Reason::ConnectionLost))
                    }
                    Feed::Done(r) => Step::Done(Self::pop(g), r),
                    Feed::DoneThenClose(r) => Step::Close(Self::pop(g), r),
                    Feed::Retry => Step::Retry(Self::pop(g)),
                    Feed::Redirect(to) => Step::Redirect(Self::pop(g), to),
                }
            };
            match step {
                Step::Done(w, reply) => {
                    self.answered(w, reply, b);
                    fed.done += 1;
                }
                Step::Close(w, reply) => {
                    self.answered(w, reply, b);
                    return Err(KernelError::connection(format!(
                        "{}: the server closed the connection after answering the request before this one \
                         (as it said it would); this request was not answered",
                        self.addr
                    ))
                    .because(Reason::ConnectionLost));
                }
                Step::Retry(w) => {
                    if let Some((req, guard)) = self.unanswered(w) {
                        self.push(proto, req, guard);
                    }
                }
                Step::Redirect(w, to) => {
                    if let Some((req, guard)) = self.unanswered(w) {
                        self.redirects
                            .borrow_mut()
                            .push(Redirected { req, guard, to });
                    }
                }
            }
        }
        Ok(fed)
    }

    fn pop(g: &mut Inner<P>) -> Waiter<P> {
        g.front_seq += 1;
        // Answered requests leave the deadlines as soon as they reach the
        // front (with one timeout for all, at once): they then hold
        // about the requests in flight, not every request of the last
        // `timeout` seconds (hundreds of thousands at full speed, each one
        // later popped by `expire` for nothing).
        g.deadlines.drop_answered(g.front_seq);
        g.waiters.pop_front().expect("front exists")
    }

    /// The server closed the connection: the request at the head may end
    /// well by that (`Protocol::eof`). Returns whether it did.
    pub(crate) fn on_eof(&self, proto: &P) -> bool {
        let head = {
            let mut g = self.inner.borrow_mut();
            let g = &mut *g;
            let Some(w) = g.waiters.front_mut() else {
                return false;
            };
            match proto.eof(&mut g.state, &mut w.pending) {
                Some(reply) => Some((Self::pop(g), reply)),
                None => None,
            }
        };
        match head {
            Some((w, reply)) => {
                self.finish(w, Ok(reply));
                true
            }
            None => false,
        }
    }
}

/// What `on_bytes` did with a batch.
#[derive(Default)]
pub(crate) struct Fed {
    /// Requests completed.
    pub done: usize,
    /// A consumer that is full: read nothing more until it has room.
    pub blocked: Option<Arc<dyn Parts>>,
}

enum Step<P: Protocol> {
    Done(Waiter<P>, crate::kernel::Reply),
    Close(Waiter<P>, crate::kernel::Reply),
    Retry(Waiter<P>),
    Redirect(Waiter<P>, Addr),
}

/// A request a server sent to another endpoint, on its way back to the
/// service (with its place in the service's limits).
pub struct Redirected<P: Protocol> {
    pub req: Request<P>,
    pub guard: Option<crate::kernel::stats::Outstanding>,
    pub to: Addr,
}
