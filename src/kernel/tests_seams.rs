//! The kernel's seams, proven with a toy protocol ("Toy": text lines) that
//! uses each of them, against a toy server on loopback: server pushes to a
//! subscription, a reply streamed in parts with backpressure, done-then-
//! close, a reply that ends at close, a stream upgraded mid-handshake (an
//! XOR layer standing in for TLS), typed decode errors, and where a failed
//! request got to (stage, reason). Nothing here names Redis or PostgreSQL.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::handshake::HandshakeIo;
use super::items::{Items, Next};
use super::service::{ServiceConfig, ServiceHandle};
use super::transport::{Addr, Stream};
use super::{
    Completion, DecodeError, ErrorKind, Feed, KernelError, Protocol, Reason, Reply, Request, Route,
    Slot, Stage,
};

const KEY: u8 = 0x5a;

// ------------------------------------------------------------ protocol
/// `upgrade`: after the greeting, ask the server to XOR the stream and wrap
/// ours the same way. `early`: ask for a server that misbehaves by sending
/// bytes right after its "ok", before the upgrade.
struct Toy {
    upgrade: Option<&'static str>,
}

#[derive(Default)]
struct ToyConn {
    /// The head request reads raw bytes until the server closes.
    raw: bool,
}

struct ToyPending {
    line: Bytes,
    raw: bool,
    got: Vec<u8>,
    /// Redirects followed so far (the protocol bounds them).
    hops: u8,
}

fn pending(line: &str) -> ToyPending {
    ToyPending {
        line: Bytes::copy_from_slice(line.as_bytes()),
        raw: line == "until-close",
        got: Vec::new(),
        hops: 0,
    }
}

impl Protocol for Toy {
    type Msg = Bytes;
    type Pending = ToyPending;
    type ConnState = ToyConn;

    fn decode(&self, st: &mut ToyConn, buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        if st.raw {
            return Ok((!buf.is_empty()).then(|| buf.split().freeze()));
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => Ok(Some(buf.split_to(i + 1).freeze().slice(..i))),
            None if buf.len() > 1024 => Err(DecodeError::TooLarge {
                detail: format!("a line of over {} bytes", buf.len()),
                option: Some("max_line"),
            }),
            None => Ok(None),
        }
    }
    fn is_unsolicited(&self, msg: &Bytes) -> bool {
        msg.starts_with(b"push:")
    }
    fn push(&self, _: &mut ToyConn, msg: Bytes) -> Option<Reply> {
        Some(Box::new(msg.slice(5..)))
    }
    fn write_request(&self, st: &mut ToyConn, p: &mut ToyPending, _: &[u8], out: &mut BytesMut) {
        out.extend_from_slice(&p.line);
        out.extend_from_slice(b"\n");
        st.raw |= p.raw; // the toy sends such a request alone
    }
    fn feed(&self, _: &mut ToyConn, p: &mut ToyPending, msg: Bytes) -> Feed {
        if p.raw {
            p.got.extend_from_slice(&msg);
            return Feed::More;
        }
        if let Some(part) = msg.strip_prefix(b"part:") {
            return Feed::Item(Box::new(Bytes::copy_from_slice(part)));
        }
        if let Some(port) = msg.strip_prefix(b"MOVED ") {
            p.hops += 1;
            if p.hops > 3 {
                return Feed::Done(Box::new(Bytes::from_static(b"too many redirects")));
            }
            let port = std::str::from_utf8(port).unwrap().parse().unwrap();
            return Feed::Redirect(Addr::Tcp("127.0.0.1".into(), port));
        }
        if &msg[..] == b"bye" {
            return Feed::DoneThenClose(Box::new(msg));
        }
        Feed::Done(Box::new(msg))
    }
    fn eof(&self, st: &mut ToyConn, p: &mut ToyPending) -> Option<Reply> {
        st.raw = false;
        p.raw
            .then(|| Box::new(Bytes::from(std::mem::take(&mut p.got))) as Reply)
    }
    async fn handshake(&self, io: &mut HandshakeIo<'_, Self>) -> Result<(), KernelError> {
        io.send(b"hello\n").await?;
        match io.recv().await? {
            m if &m[..] == b"hello" => {}
            m => return Err(KernelError::protocol(format!("bad greeting {m:?}"))),
        }
        if let Some(ask) = self.upgrade {
            io.send(format!("{ask}\n").as_bytes()).await?;
            if io.recv_raw(3).await? != b"ok\n" {
                return Err(KernelError::protocol("upgrade refused"));
            }
            io.upgrade(|s| async move { Ok(Stream::wrap(Xor(s.boxed()))) })
                .await?;
        }
        Ok(())
    }
    fn heartbeat(&self) -> Option<(Bytes, ToyPending)> {
        None
    }
    fn name(&self) -> &'static str {
        "toy"
    }
}

/// A byte-wise XOR layer: what a TLS session is to the layers above.
struct Xor(Box<dyn super::transport::Io>);

impl AsyncRead for Xor {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.0).poll_read(cx, buf);
        for b in &mut buf.filled_mut()[before..] {
            *b ^= KEY;
        }
        r
    }
}

impl AsyncWrite for Xor {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let x: Vec<u8> = buf.iter().map(|b| b ^ KEY).collect();
        Pin::new(&mut self.0).poll_write(cx, &x)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

// -------------------------------------------------------------- server
/// The toy server: replies "<port>:<line>" to a line, with these specials:
/// "hello" → "hello"; "xor" → "ok", then both directions XOR-ed;
/// "xor-early" → "ok" and junk in the same write; "parts N" → N lines
/// "part:i" then "end"; "pushme X" → "push:X" first; "bye" → waits for the
/// next line, answers "bye" and closes; "until-close" → "abc", "def" with
/// no newline, then closes; "long" → 2000 bytes with no newline; "hold" →
/// never answers (nor anything after it on that connection); "moved:P:x"
/// → "MOVED P" unless this server listens on P; "bounce" → "MOVED <own>".
struct Server {
    port: u16,
    accepted: Arc<AtomicUsize>,
    /// MOVED replies sent.
    moved: Arc<AtomicUsize>,
}

fn server() -> Server {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let moved = Arc::new(AtomicUsize::new(0));
    let (acc, mv) = (accepted.clone(), moved.clone());
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            acc.fetch_add(1, Ordering::SeqCst);
            let mv = mv.clone();
            thread::spawn(move || serve(port, s, &mv));
        }
    });
    Server {
        port,
        accepted,
        moved,
    }
}

fn serve(port: u16, mut s: TcpStream, moved: &AtomicUsize) {
    let mut xor = false;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut held = false;
    let mut bye = false;
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend(chunk[..n].iter().map(|b| if xor { b ^ KEY } else { *b }));
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(&buf[..i]).into_owned();
            buf.drain(..=i);
            let mut out: Vec<u8> = Vec::new();
            let mut close = false;
            let mut then_xor = false;
            if held {
                continue;
            }
            if bye {
                out.extend(b"bye\n");
                close = true;
            } else {
                match line.as_str() {
                    "hello" => out.extend(b"hello\n"),
                    "xor" => {
                        out.extend(b"ok\n");
                        then_xor = true;
                    }
                    "xor-early" => out.extend(b"ok\njunk\n"),
                    "bye" => bye = true,
                    "until-close" => {
                        out.extend(b"abc");
                        let _ = s.write_all(&out);
                        out = b"def".to_vec();
                        close = true;
                    }
                    "long" => out.extend(vec![b'x'; 2000]),
                    "hold" => held = true,
                    l if l.starts_with("parts ") => {
                        let n: usize = l[6..].parse().unwrap();
                        for i in 0..n {
                            out.extend(format!("part:{i}\n").as_bytes());
                        }
                        out.extend(b"end\n");
                    }
                    "bounce" => {
                        moved.fetch_add(1, Ordering::SeqCst);
                        out.extend(format!("MOVED {port}\n").as_bytes());
                    }
                    l if l.starts_with("moved:") && !l.starts_with(&format!("moved:{port}:")) => {
                        moved.fetch_add(1, Ordering::SeqCst);
                        let to = l.split(':').nth(1).unwrap();
                        out.extend(format!("MOVED {to}\n").as_bytes());
                    }
                    l => {
                        if let Some(x) = l.strip_prefix("pushme ") {
                            out.extend(format!("push:{x}\n").as_bytes());
                        }
                        out.extend(format!("{port}:{l}\n").as_bytes());
                    }
                }
            }
            if xor {
                out.iter_mut().for_each(|b| *b ^= KEY);
            }
            if s.write_all(&out).is_err() || close {
                return;
            }
            xor |= then_xor;
        }
    }
}

// --------------------------------------------------------------- calls
fn open(upgrade: Option<&'static str>, ports: &[u16]) -> Arc<ServiceHandle<Toy>> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let cfg = ServiceConfig {
        name: format!("toy://#{}", N.fetch_add(1, Ordering::SeqCst)),
        names: ports
            .iter()
            .map(|p| Addr::Tcp("127.0.0.1".into(), *p))
            .collect(),
        sources: Vec::new(),
        connect_timeout: Duration::from_secs(5),
        max_in_flight: 1000,
        max_queued: 1000,
        idle_ping: None,
        conns_per_addr: 1,
        max_dedicated: 4,
        connector: super::transport::plain(),
        balancer: super::balance::fewest_in_flight(),
        idempotent: false,
        attrs: Default::default(),
    };
    ServiceHandle::open(Toy { upgrade }, cfg).unwrap()
}

fn submit(h: &ServiceHandle<Toy>, line: &str, completion: Completion, timeout: Duration) {
    submit_to(h, line, completion, timeout, Route::Shared);
}

fn submit_to(
    h: &ServiceHandle<Toy>,
    line: &str,
    completion: Completion,
    timeout: Duration,
    route: Route,
) {
    let guard = h.admit().unwrap();
    h.send(
        Request {
            payload: Bytes::new(),
            pending: pending(line),
            completion,
            deadline: Some(Instant::now() + timeout),
            route,
            submitted: Instant::now(),
            summary: super::Summary::new(b"TOY"),
            body: None,
            resends: 0,
        },
        guard,
    );
}

fn send(h: &ServiceHandle<Toy>, line: &str) -> Arc<Slot> {
    let slot = Slot::new();
    submit(
        h,
        line,
        Completion::slot(slot.clone()),
        Duration::from_secs(20),
    );
    slot
}

fn answer(slot: &Slot) -> Result<String, KernelError> {
    let d = slot
        .wait(Duration::from_secs(30))
        .expect("the kernel answers");
    d.outcome
        .map(|r| String::from_utf8(r.downcast::<Bytes>().unwrap().to_vec()).unwrap())
}

fn call(h: &ServiceHandle<Toy>, line: &str) -> Result<String, KernelError> {
    answer(&send(h, line))
}

fn text(o: super::Outcome) -> String {
    String::from_utf8(o.unwrap().downcast::<Bytes>().unwrap().to_vec()).unwrap()
}

fn next(items: &Items) -> Next {
    items.next(Duration::from_secs(30))
}

// --------------------------------------------------------------- tests
#[test]
fn server_pushes_reach_the_subscription_and_a_lost_connection_leaves_a_gap() {
    let s = server();
    let h = open(None, &[s.port]);
    let sink = Items::new(16);
    h.subscribe(sink.clone()).unwrap();
    assert_eq!(
        call(&h, "pushme a").unwrap(),
        format!("{}:pushme a", s.port)
    );
    match next(&sink) {
        Next::Item(o) => assert_eq!(text(o), "a"),
        _ => panic!("no push delivered"),
    }
    // The server closes after "bye": the subscription hears of the gap.
    let bye = send(&h, "bye");
    let behind = send(&h, "x");
    assert_eq!(answer(&bye).unwrap(), "bye");
    assert!(answer(&behind).is_err());
    match next(&sink) {
        Next::Item(Err(e)) => assert_eq!(e.reason, Reason::ConnectionLost, "{e}"),
        _ => panic!("no gap notice"),
    }
    // Re-subscribed on the new connection.
    assert_eq!(
        call(&h, "pushme b").unwrap(),
        format!("{}:pushme b", s.port)
    );
    match next(&sink) {
        Next::Item(o) => assert_eq!(text(o), "b"),
        _ => panic!("no push after the reconnect"),
    }
}

#[test]
fn a_reply_in_parts_streams_to_its_consumer_with_backpressure() {
    let s = server();
    let h = open(None, &[s.port]);
    let items = Items::new(2);
    submit(
        &h,
        "parts 200",
        Completion::stream(items.clone()),
        Duration::from_secs(30),
    );
    // The consumer takes nothing yet: the kernel fills the stream to its
    // capacity and stops reading, so a request behind on the same
    // connection cannot be answered meanwhile.
    let end = Instant::now() + Duration::from_secs(20);
    while items.len() < 2 {
        assert!(Instant::now() < end, "the stream never filled");
        thread::sleep(Duration::from_millis(1));
    }
    let behind = send(&h, "behind");
    assert!(
        behind.wait(Duration::from_millis(200)).is_none(),
        "answered while the reader should be paused"
    );
    let mut got = Vec::new();
    loop {
        assert!(items.len() <= 2, "the stream grew past its capacity");
        match next(&items) {
            Next::Item(o) => got.push(text(o)),
            Next::Ended => break,
            Next::Empty => panic!("stream stopped"),
        }
    }
    let want: Vec<String> = (0..200)
        .map(|i| i.to_string())
        .chain(["end".to_string()])
        .collect();
    assert_eq!(got, want);
    assert_eq!(answer(&behind).unwrap(), format!("{}:behind", s.port));
}

#[test]
fn done_then_close_fails_the_request_behind_as_written_and_reconnects() {
    let s = server();
    let h = open(None, &[s.port]);
    assert!(call(&h, "warm").is_ok());
    // The server answers "bye" only once it has read the next line, so that
    // line was certainly written on the closing connection.
    let bye = send(&h, "bye");
    let behind = send(&h, "behind");
    assert_eq!(answer(&bye).unwrap(), "bye");
    let e = answer(&behind).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert_eq!(e.stage, Stage::Written, "{e}");
    assert!(
        e.detail.contains("closed the connection after answering"),
        "{e}"
    );
    assert_eq!(call(&h, "after").unwrap(), format!("{}:after", s.port));
    assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn a_reply_may_end_when_the_server_closes() {
    let s = server();
    let h = open(None, &[s.port]);
    assert_eq!(call(&h, "until-close").unwrap(), "abcdef");
    assert_eq!(call(&h, "after").unwrap(), format!("{}:after", s.port));
}

#[test]
fn a_stream_upgraded_mid_handshake_carries_the_traffic() {
    let s = server();
    let h = open(Some("xor"), &[s.port]);
    for i in 0..20 {
        assert_eq!(
            call(&h, &format!("k{i}")).unwrap(),
            format!("{}:k{i}", s.port)
        );
    }
    let items = Items::new(4);
    submit(
        &h,
        "parts 50",
        Completion::stream(items.clone()),
        Duration::from_secs(30),
    );
    let mut n = 0;
    while let Next::Item(o) = next(&items) {
        o.unwrap();
        n += 1;
    }
    assert_eq!(n, 51);
}

#[test]
fn bytes_sent_before_an_upgrade_are_refused() {
    let s = server();
    let h = open(Some("xor-early"), &[s.port]);
    let e = call(&h, "x").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.detail.contains("before the stream was upgraded"), "{e}");
    assert_eq!(e.stage, Stage::NotSent, "{e}");
    assert_eq!(e.reason, Reason::ConnectFailed, "{e}");
}

#[test]
fn decode_errors_are_typed_and_name_the_option() {
    let s = server();
    let h = open(None, &[s.port]);
    let e = call(&h, "long").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.detail.contains("raise max_line"), "{e}");
    assert_eq!(e.stage, Stage::Written, "{e}");
    assert_eq!(call(&h, "after").unwrap(), format!("{}:after", s.port));
}

#[test]
fn errors_say_where_the_request_got_to() {
    let s = server();
    let h = open(None, &[s.port]);
    // The connection is up first: "hold" is written at once, whereas its
    // 100 ms might otherwise run out while it waits for the connect (which
    // is a different stage and reason) on a busy machine.
    call(&h, "warm").unwrap();
    let slot = Slot::new();
    submit(
        &h,
        "hold",
        Completion::slot(slot.clone()),
        Duration::from_millis(100),
    );
    let e = answer(&slot).unwrap_err();
    assert_eq!(
        (e.kind, e.stage, e.reason),
        (ErrorKind::Timeout, Stage::Written, Reason::ReplyTimeout)
    );

    // Nothing listens: the connect fails, requests fail fast, never sent.
    // Port 1, not a port let go of for the purpose: another test's server
    // could be given that one meanwhile, and no test binds port 1.
    let h = open(None, &[1]);
    let e = call(&h, "x").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert_eq!(e.stage, Stage::NotSent, "{e}");
    assert_eq!(e.reason, Reason::ConnectFailed, "{e}");
}

#[test]
fn a_redirect_sends_the_request_to_the_endpoint_the_server_names() {
    let (a, b) = (server(), server());
    let h = open(None, &[a.port, b.port]);
    let to_a = Route::Endpoint(Addr::Tcp("127.0.0.1".into(), a.port));
    for i in 0..10 {
        let slot = Slot::new();
        let line = format!("moved:{}:k{i}", b.port);
        submit_to(
            &h,
            &line,
            Completion::slot(slot.clone()),
            Duration::from_secs(20),
            to_a.clone(),
        );
        // A answers MOVED; the kernel sends it on to B, which answers.
        assert_eq!(answer(&slot).unwrap(), format!("{}:{line}", b.port));
    }
    assert_eq!(
        a.moved.load(Ordering::SeqCst),
        10,
        "every request went to A first"
    );
    // A server that keeps redirecting: the protocol stops after 3 hops.
    let slot = Slot::new();
    submit_to(
        &h,
        "bounce",
        Completion::slot(slot.clone()),
        Duration::from_secs(20),
        to_a,
    );
    assert_eq!(answer(&slot).unwrap(), "too many redirects");
    assert_eq!(
        a.moved.load(Ordering::SeqCst),
        14,
        "1 + 3 hops, then the protocol stopped"
    );
}
