//! Kernel tests with a toy protocol (newline-terminated lines echoed back by a
//! scripted server). That the kernel runs it at all shows the core is
//! protocol-neutral; the tests check ordering, deadlines, fail-fast, limits,
//! reconnects and address changes without any real server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::body::{self, Body};
use super::handshake::HandshakeIo;
use super::service::{ServiceConfig, ServiceHandle};
use super::transport::Addr;
use super::{
    Completion, DecodeError, ErrorKind, Feed, KernelError, Protocol, Request, Route, Slot, Stage,
};

pub(super) struct Lines;

impl Protocol for Lines {
    type Msg = Bytes;
    type Pending = ();
    type ConnState = ();
    fn decode(&self, _: &mut (), buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => Ok(Some(buf.split_to(i + 1).freeze().slice(..i))),
            None if buf.len() > 1024 => Err(DecodeError::Malformed("line too long".into())),
            None => Ok(None),
        }
    }
    fn is_unsolicited(&self, msg: &Bytes) -> bool {
        msg.starts_with(b"push:")
    }
    fn feed(&self, _: &mut (), _: &mut (), msg: Bytes) -> Feed {
        Feed::Done(Box::new(msg))
    }
    async fn handshake(&self, io: &mut HandshakeIo<'_, Self>) -> Result<(), KernelError> {
        io.send(b"hello\n").await?;
        match io.recv().await? {
            m if &m[..] == b"hello" => Ok(()),
            m => Err(KernelError::protocol(format!("bad greeting {m:?}"))),
        }
    }
    fn heartbeat(&self) -> Option<(Bytes, ())> {
        Some((Bytes::from_static(b"ping\n"), ()))
    }
    fn name(&self) -> &'static str {
        "lines"
    }
}

/// Echo server: each line comes back; after a "stall" line nothing more is
/// answered on that connection (as a hung server would); "push" lines are
/// answered with an unsolicited line first.
fn server() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = accepted.clone();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            acc.fetch_add(1, Ordering::SeqCst);
            thread::spawn(move || serve(s.try_clone().unwrap(), s));
        }
    });
    (port, accepted)
}

fn serve(r: impl Read, mut w: impl Write) {
    let mut stalled = false;
    for line in BufReader::new(r).lines() {
        let Ok(line) = line else { return };
        stalled |= line.starts_with("stall");
        if stalled {
            continue;
        }
        if line.starts_with("push") {
            let _ = w.write_all(b"push:noise\n");
        }
        if w.write_all(format!("{line}\n").as_bytes()).is_err() {
            return;
        }
    }
}

fn cfg(port: u16) -> ServiceConfig {
    cfg_for(Addr::Tcp("127.0.0.1".into(), port))
}

pub(super) fn cfg_for(addr: Addr) -> ServiceConfig {
    // A name of its own per service, so that its metrics (which tests read)
    // are its own even if a port is used again.
    static SERVICES: AtomicUsize = AtomicUsize::new(0);
    let n = SERVICES.fetch_add(1, Ordering::SeqCst);
    ServiceConfig {
        name: format!("lines://{addr}#{n}"),
        names: vec![addr],
        sources: Vec::new(),
        connect_timeout: Duration::from_secs(2),
        max_in_flight: 1000,
        max_queued: 1000,
        idle_ping: None,
        conns_per_addr: 1,
        max_dedicated: 16,
        connector: crate::kernel::transport::plain(),
        balancer: crate::kernel::balance::fewest_in_flight(),
        idempotent: false,
        attrs: Default::default(),
    }
}

fn call(
    h: &ServiceHandle<Lines>,
    line: &str,
    timeout: Option<Duration>,
) -> Result<Bytes, KernelError> {
    let slot = send(h, format!("{line}\n"), timeout, None)?;
    answer(&slot)
}

fn send(
    h: &ServiceHandle<Lines>,
    payload: String,
    timeout: Option<Duration>,
    body: Option<Body>,
) -> Result<Arc<Slot>, KernelError> {
    let guard = h.admit()?;
    let slot = Slot::new();
    h.send(
        Request {
            payload: Bytes::from(payload),
            pending: (),
            completion: Completion::slot(slot.clone()),
            deadline: timeout.map(|t| Instant::now() + t),
            route: Route::Shared,
            submitted: Instant::now(),
            summary: super::Summary::new(b"LINE"),
            body,
            resends: 0,
        },
        guard,
    );
    Ok(slot)
}

pub(super) fn answer(slot: &Slot) -> Result<Bytes, KernelError> {
    let out = slot
        .wait(Duration::from_secs(10))
        .expect("the kernel answers");
    out.outcome.map(|r| *r.downcast::<Bytes>().unwrap())
}

/// Wait for a state the test cannot order by itself (what the kernel thread
/// has done). The bound only turns a kernel that never gets there into a
/// failure; a busy machine merely takes longer.
pub(super) fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < end, "gave up waiting until {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Requests the kernel has put on the service's connections (written or
/// held there), not yet answered.
fn on_connections(h: &ServiceHandle<Lines>) -> f64 {
    h.metrics.in_flight.get()
}

#[test]
fn replies_match_callers_across_threads() {
    let (port, accepted) = server();
    let h = ServiceHandle::open(Lines, cfg(port)).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let h = h.clone();
            thread::spawn(move || {
                for i in 0..300 {
                    let msg = if i % 50 == 0 {
                        format!("push {t}-{i}")
                    } else {
                        format!("{t}-{i}")
                    };
                    assert_eq!(call(&h, &msg, None).unwrap(), msg.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection for all callers"
    );
    assert_eq!(h.stats.outstanding.load(Ordering::SeqCst), 0);
}

#[test]
fn head_timeout_resets_connection_and_others_recover() {
    let (port, accepted) = server();
    let h = ServiceHandle::open(Lines, cfg(port)).unwrap();
    assert_eq!(call(&h, "warm", None).unwrap(), "warm".as_bytes());
    // Sent from one thread, so they reach the one connection in this order;
    // the server answers neither. (Another thread's request would land
    // before, behind or after the reset depending on who runs first.)
    let stall = send(&h, "stall\n".into(), Some(Duration::from_millis(200)), None).unwrap();
    let behind = send(&h, "behind\n".into(), None, None).unwrap();
    let e = answer(&stall).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    // The head stays silent past the grace: the connection is reset and the
    // request behind it fails instead of waiting for ever.
    let e = answer(&behind).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert!(e.detail.contains("stalled"), "{e}");
    // It failed because its connection closed, so this one goes to a new one.
    assert_eq!(call(&h, "again", None).unwrap(), "again".as_bytes());
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "reconnected once");
}

#[test]
fn down_service_fails_fast_then_recovers_when_server_appears() {
    // A socket path nobody listens on until the test does: a TCP port let go
    // of for the purpose could meanwhile be taken by another test's server.
    let dir = std::env::temp_dir().join(format!(
        "iokernel-kernel-test-{}-{:?}",
        std::process::id(),
        thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lines.sock");
    let _ = std::fs::remove_file(&path);
    let h = ServiceHandle::open(Lines, cfg_for(Addr::Unix(path.clone()))).unwrap();
    let e = call(&h, "x", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connection);
    assert!(e.detail.contains("cannot connect"), "{e}");
    // A connect attempt has failed (x heard of it) and none is up: the next
    // request fails at once with that error instead of waiting in the queue
    // for the next attempt.
    let e = call(&h, "y", None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connection);
    assert!(
        e.detail.contains("cannot connect") && e.detail.contains("reconnecting in the background"),
        "fails fast while down: {e}"
    );
    // A server appears there: the background reconnects find it.
    let l = UnixListener::bind(&path).unwrap();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            thread::spawn(move || serve(s.try_clone().unwrap(), s));
        }
    });
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        match call(&h, "back", None) {
            Ok(b) => break assert_eq!(b, "back".as_bytes()),
            Err(_) if Instant::now() < end => thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("never recovered: {e}"),
        }
    }
    drop(h);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn admit_refuses_past_limit() {
    let (port, _) = server();
    let mut c = cfg(port);
    c.max_in_flight = 2;
    c.max_queued = 1;
    let h = ServiceHandle::open(Lines, c).unwrap();
    let held: Vec<_> = (0..3).map(|_| h.admit().unwrap()).collect();
    let e = h.admit().err().expect("fourth is refused");
    assert_eq!(e.kind, ErrorKind::Overloaded);
    drop(held);
    assert!(h.admit().is_ok());
}

#[test]
fn address_change_moves_traffic() {
    let (p1, a1) = server();
    let (p2, a2) = server();
    let h = ServiceHandle::open(Lines, cfg(p1)).unwrap();
    assert_eq!(call(&h, "one", None).unwrap(), "one".as_bytes());
    h.set_addrs(vec![Addr::Tcp("127.0.0.1".into(), p2)])
        .unwrap();
    // The change reaches the service before the calls (one sender, one
    // queue): from then on the old connection takes nothing, and the calls
    // wait for the new one if it is not up yet. No waiting needed here.
    for i in 0..20 {
        assert_eq!(
            call(&h, &format!("m{i}"), None).unwrap(),
            format!("m{i}").as_bytes()
        );
    }
    assert_eq!(
        (a1.load(Ordering::SeqCst), a2.load(Ordering::SeqCst)),
        (1, 1)
    );
}

#[test]
fn garbage_is_a_protocol_error() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = w.write_all(b"hello\n");
            line.clear();
            let _ = r.read_line(&mut line);
            let _ = w.write_all(&[b'x'; 2000]);
            thread::sleep(Duration::from_millis(200));
        }
    });
    let h = ServiceHandle::open(Lines, cfg(port)).unwrap();
    let e = call(&h, "q", Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
}

#[test]
fn a_streamed_body_is_never_interleaved_with_requests_behind_it() {
    let (port, _) = server();
    let h = ServiceHandle::open(Lines, cfg(port)).unwrap();
    assert_eq!(call(&h, "up", None).unwrap(), Bytes::from("up"));
    let (tx, b) = body::channel(None);
    let head = send(&h, "head-".into(), None, Some(b)).unwrap();
    // Pushed while the body is open: held until it ends.
    let behind: Vec<_> = (0..20)
        .map(|i| send(&h, format!("behind{i}\n"), None, None).unwrap())
        .collect();
    // All of them are on the connection before the body goes on (else some
    // could arrive after it ended and prove nothing).
    wait_until(
        "the head and the 20 behind it are on the connection",
        || on_connections(&h) == 21.0,
    );
    for i in 0..50 {
        assert!(tx.send(Bytes::from(format!("{i}-"))));
        if i % 10 == 0 {
            // Let the writer catch up now and then: bytes and held
            // requests must stay in order however the chunks are split.
            thread::yield_now();
        }
    }
    tx.finish(Bytes::from("end\n"));
    let want: String = (0..50).map(|i| format!("{i}-")).collect();
    assert_eq!(
        answer(&head).unwrap(),
        Bytes::from(format!("head-{want}end"))
    );
    for (i, s) in behind.iter().enumerate() {
        assert_eq!(answer(s).unwrap(), Bytes::from(format!("behind{i}")));
    }
}

#[test]
fn bodies_queued_behind_a_body_stream_in_turn() {
    let (port, _) = server();
    let h = ServiceHandle::open(Lines, cfg(port)).unwrap();
    assert_eq!(call(&h, "up", None).unwrap(), Bytes::from("up"));
    let (tx1, b1) = body::channel(None);
    let (tx2, b2) = body::channel(None);
    let first = send(&h, "one-".into(), None, Some(b1)).unwrap();
    let mid = send(&h, "mid\n".into(), None, None).unwrap();
    let second = send(&h, "two-".into(), None, Some(b2)).unwrap();
    let last = send(&h, "last\n".into(), None, None).unwrap();
    wait_until("all four are on the connection", || {
        on_connections(&h) == 4.0
    });
    // The second body's producer finishes first; its bytes still wait.
    assert!(tx2.send(Bytes::from("b-")));
    tx2.finish(Bytes::from("B\n"));
    tx1.finish(Bytes::from("A\n"));
    assert_eq!(answer(&first).unwrap(), Bytes::from("one-A"));
    assert_eq!(answer(&mid).unwrap(), Bytes::from("mid"));
    assert_eq!(answer(&second).unwrap(), Bytes::from("two-b-B"));
    assert_eq!(answer(&last).unwrap(), Bytes::from("last"));
}

#[test]
fn an_abandoned_body_is_ended_by_its_on_abandon_bytes() {
    let (port, accepted) = server();
    let h = ServiceHandle::open(Lines, cfg(port)).unwrap();
    assert_eq!(call(&h, "up", None).unwrap(), Bytes::from("up"));
    let (tx, b) = body::channel(Some(Bytes::from("ABANDONED\n")));
    let head = send(&h, "half-".into(), None, Some(b)).unwrap();
    let behind = send(&h, "behind\n".into(), None, None).unwrap();
    // "behind" is held on the connection before the producer stops (else it
    // could be sent after the body ended and prove nothing).
    wait_until("both are on the connection", || on_connections(&h) == 2.0);
    assert!(tx.send(Bytes::from("x-")));
    drop(tx);
    assert_eq!(answer(&head).unwrap(), Bytes::from("half-x-ABANDONED"));
    assert_eq!(answer(&behind).unwrap(), Bytes::from("behind"));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the connection was kept"
    );
}

#[test]
fn an_abandoned_body_without_an_ending_resets_the_connection() {
    let (port, accepted) = server();
    let h = ServiceHandle::open(Lines, cfg(port)).unwrap();
    assert_eq!(call(&h, "up", None).unwrap(), Bytes::from("up"));
    let (tx, b) = body::channel(None);
    let head = send(&h, "half-".into(), None, Some(b)).unwrap();
    let behind = send(&h, "behind\n".into(), None, None).unwrap();
    // Both on the connection: "behind" is held there, never written, while
    // the body streams.
    wait_until("both are on the connection", || on_connections(&h) == 2.0);
    drop(tx);
    let e = answer(&head).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    assert!(e.detail.contains("producer stopped"), "{e}");
    assert_eq!(e.stage, Stage::Written, "{e}");
    // Never written, so sent again on the fresh connection (retry safety,
    // `dispatch::lost`): its caller only sees the answer.
    assert_eq!(answer(&behind).unwrap(), Bytes::from("behind"));
    assert_eq!(call(&h, "again", None).unwrap(), Bytes::from("again"));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}
