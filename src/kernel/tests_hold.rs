//! The writer's hold (`conn::Hold`, used over TLS, and in plain text by
//! protocols that ask for it): requests that arrive
//! while enough written ones are unanswered wait for the first reply bytes
//! and then go out together in one write; a full record's worth, or the
//! time limit, releases them too; with no hold every request is written at
//! once. Run on an in-memory pipe with a toy line protocol (`tests::Lines`),
//! counting the writes the connection makes.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

use super::conn::{self, Hold, Link, Wire};
use super::dispatch::{Conn, Redirected};
use super::stats::ServiceMetrics;
use super::tests::Lines;
use super::transport::{plain, Addr};
use super::{Completion, Request, Route, Summary};

/// A writer that counts the writes that carried bytes.
struct Counting(Box<dyn AsyncWrite + Unpin>, Rc<Cell<usize>>);

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.0).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.1.set(self.1.get() + 1);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

struct NoLink;

impl Link<Lines> for NoLink {
    fn progress(&self) {}
    fn redirect(&self, _: Redirected<Lines>) {}
    fn resend(&self, _: Request<Lines>, _: Option<super::stats::Outstanding>) {}
}

fn push(c: &Rc<Conn<Lines>>, line: &str) {
    let req = Request {
        payload: Bytes::from(format!("{line}\n")),
        pending: (),
        completion: Completion::none(),
        deadline: None,
        route: Route::Shared,
        submitted: std::time::Instant::now(),
        summary: Summary::new(b"LINE"),
        body: None,
        resends: 0,
    };
    c.push(&Lines, req, None);
}

/// Read from the server's end until `want` bytes came (or 10 s passed).
async fn expect(server: &mut DuplexStream, want: &str) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want.len() {
        let n = tokio::time::timeout(Duration::from_secs(10), server.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "waited for {want:?}, got {:?}",
                    String::from_utf8_lossy(&got)
                )
            })
            .unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&got), want);
}

/// Nothing arrives at the server's end for a while.
async fn silent(server: &mut DuplexStream) {
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_millis(100), server.read(&mut buf)).await;
    assert!(
        r.is_err(),
        "written early: {:?}",
        r.map(|n| String::from_utf8_lossy(&buf[..n.unwrap()]).to_string())
    );
}

/// Run `body` against a connection with `hold`, given the server's end and
/// the write count.
fn with_conn<F>(
    hold: Option<Hold>,
    body: impl FnOnce(Rc<Conn<Lines>>, DuplexStream, Rc<Cell<usize>>) -> F,
) where
    F: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (r, w) = tokio::io::split(client);
        let writes = Rc::new(Cell::new(0));
        let addr = Addr::Tcp("hold.test".into(), 1);
        let metrics = ServiceMetrics::new("hold");
        let am = metrics.for_addr(&addr);
        let c = Conn::new(1, addr, false, metrics, am, (), plain());
        let wire = Wire {
            reader: Box::new(r),
            writer: Box::new(Counting(Box::new(w), writes.clone())),
            buf: BytesMut::new(),
            hold,
        };
        let run = conn::run(c.clone(), &Lines, wire, None, &NoLink);
        tokio::select! {
            why = run => panic!("the connection ended: {}", why.detail),
            () = body(c, server, writes) => {}
        }
    });
}

const FOREVER: Hold = Hold {
    min: 4,
    max: Duration::from_secs(3600),
    bytes: 16 * 1024,
};

#[test]
fn requests_wait_for_the_first_reply_then_go_out_in_one_write() {
    with_conn(Some(FOREVER), |c, mut server, writes| async move {
        for i in 0..4 {
            push(&c, &format!("a{i}"));
        }
        // nothing unanswered yet: written at once
        expect(&mut server, "a0\na1\na2\na3\n").await;
        let first = writes.get();
        // four written and unanswered: these wait
        for i in 0..3 {
            push(&c, &format!("b{i}"));
        }
        silent(&mut server).await;
        assert_eq!(writes.get(), first);
        // the first reply releases them, together
        server.write_all(b"a0\n").await.unwrap();
        expect(&mut server, "b0\nb1\nb2\n").await;
        assert_eq!(writes.get(), first + 1);
        assert_eq!(c.in_flight(), 6);
    });
}

#[test]
fn few_unanswered_requests_are_never_held() {
    with_conn(Some(FOREVER), |c, mut server, _| async move {
        for i in 0..3 {
            push(&c, &format!("a{i}"));
            expect(&mut server, &format!("a{i}\n")).await;
        }
        // three unanswered (< min 4): the next is written at once too
        push(&c, "b");
        expect(&mut server, "b\n").await;
    });
}

#[test]
fn a_full_record_is_written_without_waiting() {
    with_conn(Some(FOREVER), |c, mut server, _| async move {
        for i in 0..4 {
            push(&c, &format!("a{i}"));
        }
        expect(&mut server, "a0\na1\na2\na3\n").await;
        let line = "x".repeat(1000);
        let mut want = String::new();
        for _ in 0..17 {
            push(&c, &line);
            want.push_str(&line);
            want.push('\n');
        }
        // 17 KB waiting (over `bytes`): out without a reply
        expect(&mut server, &want).await;
    });
}

#[test]
fn held_requests_go_out_after_the_time_limit() {
    let hold = Hold {
        max: Duration::from_millis(5),
        ..FOREVER
    };
    with_conn(Some(hold), |c, mut server, _| async move {
        for i in 0..4 {
            push(&c, &format!("a{i}"));
        }
        expect(&mut server, "a0\na1\na2\na3\n").await;
        // no reply ever comes: the timer releases it
        push(&c, "b");
        expect(&mut server, "b\n").await;
    });
}

#[test]
fn without_a_hold_every_request_is_written_at_once() {
    with_conn(None, |c, mut server, _| async move {
        for i in 0..4 {
            push(&c, &format!("a{i}"));
        }
        expect(&mut server, "a0\na1\na2\na3\n").await;
        push(&c, "b");
        expect(&mut server, "b\n").await;
    });
}

#[test]
fn tls_always_holds_plain_text_only_when_the_protocol_asks() {
    use crate::kernel::Protocol;

    // The default is no (PostgreSQL's, the toy protocol's); Redis asks
    // (protocols::redis's own test).
    assert!(!Lines.hold_plain_writes());
    let held = |tls, plain| conn::Hold::for_stream(tls, plain).is_some();
    assert!(held(true, false) && held(true, true));
    assert!(held(false, true));
    assert!(!held(false, false));
}
