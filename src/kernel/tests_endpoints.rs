//! Kernel tests of endpoints, routes and balancers, with the toy line
//! protocol of `tests` and echo servers that answer with their own port, so
//! a test sees which endpoint answered. Each server can hold back its
//! greeting (the test decides when a connection to it comes up) and lines
//! starting with "hold" (the test decides when they are answered). Tests
//! wait for what the servers or the kernel show, never for time to pass.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::balance::{Balancer, Candidates};
use super::endpoint::{Change, Endpoint, EndpointSet, NoEndpoint, Role};
use super::service::{ServiceConfig, ServiceHandle};
use super::tests::{answer, cfg_for, wait_until, Lines};
use super::transport::Addr;
use super::{Completion, ErrorKind, KernelError, Request, Route, Slot, Summary};

/// Shut until opened.
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn new(open: bool) -> Self {
        Gate {
            open: Mutex::new(open),
            cv: Condvar::new(),
        }
    }
    fn wait(&self) {
        let mut g = self.open.lock().unwrap();
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

/// An echo server that answers "<port> <line>".
struct Echo {
    port: u16,
    accepted: AtomicUsize,
    /// Lines received after the greeting.
    lines: AtomicUsize,
    /// Connections that ended.
    closed: AtomicUsize,
    greet: Gate,
    hold: Gate,
}

impl Echo {
    fn start() -> Arc<Echo> {
        Self::with_greeting(true)
    }

    /// A server whose greeting waits for `greet.open()`.
    fn greeting_held() -> Arc<Echo> {
        Self::with_greeting(false)
    }

    fn with_greeting(open: bool) -> Arc<Echo> {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let echo = Arc::new(Echo {
            port: l.local_addr().unwrap().port(),
            accepted: AtomicUsize::new(0),
            lines: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            greet: Gate::new(open),
            hold: Gate::new(false),
        });
        let e = echo.clone();
        thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { return };
                e.accepted.fetch_add(1, Ordering::SeqCst);
                let e = e.clone();
                thread::spawn(move || e.serve(s));
            }
        });
        echo
    }

    fn serve(&self, s: TcpStream) {
        let mut w = s.try_clone().unwrap();
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { break };
            let reply = if line == "hello" {
                self.greet.wait();
                "hello\n".to_string()
            } else {
                self.lines.fetch_add(1, Ordering::SeqCst);
                if line.starts_with("hold") {
                    self.hold.wait();
                }
                format!("{} {line}\n", self.port)
            };
            if w.write_all(reply.as_bytes()).is_err() {
                break;
            }
        }
        self.closed.fetch_add(1, Ordering::SeqCst);
    }

    fn addr(&self) -> Addr {
        Addr::Tcp("127.0.0.1".into(), self.port)
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::named(self.addr())
    }

    fn lines(&self) -> usize {
        self.lines.load(Ordering::SeqCst)
    }
}

fn cfg(servers: &[&Arc<Echo>]) -> ServiceConfig {
    let mut c = cfg_for(servers[0].addr());
    c.names = servers.iter().map(|s| s.addr()).collect();
    c
}

fn send_to(h: &ServiceHandle<Lines>, line: &str, route: Route) -> Arc<Slot> {
    let guard = h.admit().unwrap();
    let slot = Slot::new();
    h.send(
        Request {
            payload: Bytes::from(format!("{line}\n")),
            pending: (),
            completion: Completion::slot(slot.clone()),
            deadline: None,
            route,
            submitted: Instant::now(),
            summary: Summary::new(b"LINE"),
            body: None,
            resends: 0,
        },
        guard,
    );
    slot
}

fn call_to(h: &ServiceHandle<Lines>, line: &str, route: Route) -> Result<Bytes, KernelError> {
    answer(&send_to(h, line, route))
}

/// The port of the server that answered, checking the line came back.
fn who(reply: Result<Bytes, KernelError>, line: &str) -> u16 {
    let reply = reply.unwrap();
    let s = std::str::from_utf8(&reply).unwrap();
    let (port, echoed) = s.split_once(' ').unwrap();
    assert_eq!(echoed, line);
    port.parse().unwrap()
}

fn connections(h: &ServiceHandle<Lines>) -> usize {
    h.stats.connections.load(Ordering::SeqCst)
}

fn lease(h: &ServiceHandle<Lines>, route: Route) -> Result<u64, KernelError> {
    let slot = Slot::new();
    h.lease_to(
        Completion::slot(slot.clone()),
        Some(Instant::now() + Duration::from_secs(10)),
        route,
    )
    .unwrap();
    let out = slot
        .wait(Duration::from_secs(12))
        .expect("the kernel answers");
    out.outcome.map(|r| *r.downcast::<u64>().unwrap())
}

#[test]
fn an_added_endpoint_takes_requests_once_its_connection_is_up() {
    let (a, b) = (Echo::start(), Echo::greeting_held());
    let h = ServiceHandle::open(Lines, cfg(&[&a])).unwrap();
    assert_eq!(who(call_to(&h, "up", Route::Shared), "up"), a.port);
    // A is busy with a request it holds: fewest in flight would prefer B
    // as soon as B can take anything.
    let held = send_to(&h, "hold", Route::Shared);
    wait_until("A holds a request", || a.lines() == 2);
    h.change_endpoints(vec![Change::Insert(b.endpoint())])
        .unwrap();
    wait_until("a connection to B is being opened", || {
        b.accepted.load(Ordering::SeqCst) == 1
    });
    // B's greeting is held: its connection is not up, so requests go to A,
    // and one routed to B waits for it.
    let early: Vec<_> = (0..3)
        .map(|i| send_to(&h, &format!("early{i}"), Route::Shared))
        .collect();
    let to_b = send_to(&h, "to-b", Route::Endpoint(b.addr()));
    // (A's server reads nothing more while it holds a line; the kernel
    // shows where the requests are: on A's connection, the only one up.)
    wait_until(
        "the early requests are on A's connection, B's waits",
        || h.metrics.in_flight.get() == 4.0 && h.metrics.queued.get() == 1.0,
    );
    assert_eq!((connections(&h), b.lines()), (1, 0));
    b.greet.open();
    assert_eq!(who(answer(&to_b), "to-b"), b.port);
    assert_eq!(connections(&h), 2);
    // A still holds four: the next request goes to B.
    assert_eq!(who(call_to(&h, "late", Route::Shared), "late"), b.port);
    a.hold.open();
    assert_eq!(who(answer(&held), "hold"), a.port);
    for (i, s) in early.iter().enumerate() {
        assert_eq!(who(answer(s), &format!("early{i}")), a.port);
    }
}

#[test]
fn a_removed_endpoint_answers_what_it_has_then_closes() {
    let (a, b) = (Echo::start(), Echo::start());
    let h = ServiceHandle::open(Lines, cfg(&[&a, &b])).unwrap();
    wait_until("both connections are up", || connections(&h) == 2);
    let held = send_to(&h, "hold", Route::Endpoint(a.addr()));
    wait_until("A holds a request", || a.lines() == 1);
    h.change_endpoints(vec![Change::Remove(a.addr())]).unwrap();
    // The change is taken before these (one queue): none reaches A.
    for i in 0..10 {
        let line = format!("m{i}");
        assert_eq!(who(call_to(&h, &line, Route::Shared), &line), b.port);
    }
    assert_eq!(a.lines(), 1);
    assert_eq!(
        a.closed.load(Ordering::SeqCst),
        0,
        "A's connection waits for its reply"
    );
    a.hold.open();
    assert_eq!(who(answer(&held), "hold"), a.port);
    wait_until("A's connection is closed", || {
        a.closed.load(Ordering::SeqCst) == 1
    });
    wait_until("the service counts one connection", || connections(&h) == 1);
    assert_eq!(a.accepted.load(Ordering::SeqCst), 1, "no reconnect to A");
}

/// Takes only the endpoint it is told to; counts its picks.
struct Prefer {
    addr: Addr,
    picks: AtomicUsize,
    lease_picks: AtomicUsize,
}

impl Prefer {
    fn find(&self, among: &dyn Candidates) -> Option<usize> {
        (0..among.len()).find(|i| among.get(*i).endpoint.addr == self.addr)
    }
}

impl Balancer for Prefer {
    fn pick(&self, among: &dyn Candidates) -> Option<usize> {
        self.picks.fetch_add(1, Ordering::SeqCst);
        self.find(among)
    }
    fn pick_lease(&self, among: &dyn Candidates) -> Option<usize> {
        self.lease_picks.fetch_add(1, Ordering::SeqCst);
        self.find(among)
    }
}

#[test]
fn a_custom_balancer_chooses_for_requests_and_leases() {
    let (a, b) = (Echo::start(), Echo::start());
    let prefer = Arc::new(Prefer {
        addr: b.addr(),
        picks: AtomicUsize::new(0),
        lease_picks: AtomicUsize::new(0),
    });
    let mut c = cfg(&[&a, &b]);
    c.balancer = prefer.clone();
    let h = ServiceHandle::open(Lines, c).unwrap();
    // Before B is up the balancer declines A, so these wait for B.
    for i in 0..10 {
        let line = format!("s{i}");
        assert_eq!(who(call_to(&h, &line, Route::Shared), &line), b.port);
    }
    assert!(prefer.picks.load(Ordering::SeqCst) >= 10);
    let id = lease(&h, Route::Shared).unwrap();
    assert_eq!(prefer.lease_picks.load(Ordering::SeqCst), 1);
    assert_eq!(who(call_to(&h, "own", Route::Dedicated(id)), "own"), b.port);
    h.release(id);
    assert_eq!(a.lines(), 0, "A took nothing");
}

#[test]
fn roles_keys_and_endpoints_reach_the_right_endpoint() {
    let (a, b, c) = (Echo::start(), Echo::start(), Echo::start());
    let h = ServiceHandle::open(Lines, cfg(&[&a])).unwrap();
    let eps = vec![
        a.endpoint().with_role(Role::Primary),
        b.endpoint().with_role(Role::Replica),
        c.endpoint().with_role(Role::Replica),
    ];
    h.set_endpoints(eps.clone()).unwrap();
    wait_until("three connections are up", || connections(&h) == 3);
    for i in 0..5 {
        let line = format!("p{i}");
        assert_eq!(
            who(call_to(&h, &line, Route::Role(Role::Primary)), &line),
            a.port
        );
        let line = format!("r{i}");
        let port = who(call_to(&h, &line, Route::Role(Role::Replica)), &line);
        assert!(port == b.port || port == c.port, "{port}");
    }
    assert_eq!(
        who(call_to(&h, "e", Route::Endpoint(c.addr())), "e"),
        c.port
    );
    assert_eq!(
        who(call_to(&h, "e", Route::Endpoint(b.addr())), "e"),
        b.port
    );
    // By key: the endpoint the set's rendezvous choice names, every time.
    let mut model = EndpointSet::default();
    for e in &eps {
        model.apply(Change::Insert(e.clone()), |_| ());
    }
    let port_of = |m: &EndpointSet<()>, k: u64| match &m.get(m.by_key(k).unwrap()).endpoint.addr {
        Addr::Tcp(_, p) => *p,
        a => panic!("{a}"),
    };
    let mut before = Vec::new();
    for k in 0..30u64 {
        let line = format!("k{k}");
        let port = who(call_to(&h, &line, Route::Key(k)), &line);
        assert_eq!(port, port_of(&model, k), "key {k}");
        assert_eq!(
            who(call_to(&h, &line, Route::Key(k)), &line),
            port,
            "key {k} again"
        );
        before.push(port);
    }
    assert!(before.contains(&a.port) && before.contains(&b.port) && before.contains(&c.port));
    // C leaves: only its keys move.
    h.change_endpoints(vec![Change::Remove(c.addr())]).unwrap();
    model.apply(Change::Remove(c.addr()), |_| ());
    for (k, was) in before.iter().enumerate() {
        let line = format!("k{k}");
        let port = who(call_to(&h, &line, Route::Key(k as u64)), &line);
        assert_eq!(port, port_of(&model, k as u64), "key {k}");
        if *was != c.port {
            assert_eq!(port, *was, "key {k} moved though its endpoint stayed");
        }
    }
}

#[test]
fn the_admission_limit_follows_the_endpoint_set() {
    let (a, b) = (Echo::start(), Echo::start());
    let mut c = cfg(&[&a]);
    c.max_in_flight = 2;
    c.max_queued = 1;
    let h = ServiceHandle::open(Lines, c).unwrap();
    let admits = |n: usize| {
        let held: Vec<_> = (0..n).map(|_| h.admit().unwrap()).collect();
        let e = h.admit().err().expect("one more is refused");
        assert_eq!(e.kind, ErrorKind::Overloaded);
        drop(held);
    };
    assert_eq!(h.limit(), 3);
    admits(3);
    h.change_endpoints(vec![Change::Insert(b.endpoint())])
        .unwrap();
    wait_until("the limit counts B", || h.limit() == 5);
    admits(5);
    h.set_endpoints(vec![b.endpoint()]).unwrap();
    // A updated role is not a new endpoint.
    h.change_endpoints(vec![Change::Insert(b.endpoint().with_role(Role::Replica))])
        .unwrap();
    wait_until("the limit is back to one endpoint's", || h.limit() == 3);
    admits(3);
}

#[test]
fn a_route_no_endpoint_fits_fails_naming_service_and_route() {
    let (a, b) = (Echo::start(), Echo::greeting_held());
    let h = ServiceHandle::open(Lines, cfg(&[&a])).unwrap();
    let no = |route: Route, endpoints: String| -> KernelError {
        NoEndpoint {
            service: h.config.name.clone(),
            route,
            endpoints,
        }
        .into()
    };
    let only_a = a.addr().to_string();
    let e = call_to(&h, "x", Route::Role(Role::Replica)).unwrap_err();
    assert_eq!(e, no(Route::Role(Role::Replica), only_a.clone()));
    assert_eq!(e.kind, ErrorKind::Connection);
    assert_eq!(e.reason, super::Reason::NoEndpoint);
    assert!(
        e.detail.contains(&h.config.name) && e.detail.contains("role replica"),
        "{e}"
    );
    let e = call_to(&h, "x", Route::Endpoint(b.addr())).unwrap_err();
    assert_eq!(e, no(Route::Endpoint(b.addr()), only_a.clone()));
    assert_eq!(
        lease(&h, Route::Role(Role::Primary)).unwrap_err(),
        no(Route::Role(Role::Primary), only_a)
    );
    // Queued for an endpoint that then leaves: it fails the same way.
    h.change_endpoints(vec![Change::Insert(b.endpoint())])
        .unwrap();
    let waiting = send_to(&h, "x", Route::Endpoint(b.addr()));
    wait_until("the request waits for B", || {
        b.accepted.load(Ordering::SeqCst) == 1 && h.metrics.queued.get() == 1.0
    });
    h.change_endpoints(vec![Change::Remove(b.addr())]).unwrap();
    assert_eq!(
        answer(&waiting).unwrap_err(),
        no(Route::Endpoint(b.addr()), a.addr().to_string())
    );
    // No endpoints at all.
    h.set_endpoints(Vec::new()).unwrap();
    let e = call_to(&h, "x", Route::Shared).unwrap_err();
    assert_eq!(e, no(Route::Shared, "none".into()));
    let e = call_to(&h, "x", Route::Key(7)).unwrap_err();
    assert_eq!(e, no(Route::Key(7), "none".into()));
    assert_eq!(a.lines(), 0);
}

/// Send `line` with a deadline `ms` from now.
fn send_within(h: &ServiceHandle<Lines>, line: &str, route: Route, ms: u64) -> Arc<Slot> {
    let guard = h.admit().unwrap();
    let slot = Slot::new();
    h.send(
        Request {
            payload: Bytes::from(format!("{line}\n")),
            pending: (),
            completion: Completion::slot(slot.clone()),
            deadline: Some(Instant::now() + Duration::from_millis(ms)),
            route,
            submitted: Instant::now(),
            summary: Summary::new(b"LINE"),
            body: None,
            resends: 0,
        },
        guard,
    );
    slot
}

/// Send `hold` lines to `server` with a short deadline until it is ejected
/// (five timeouts in a row; its connection stays blocked on the first).
fn eject(h: &ServiceHandle<Lines>, server: &Echo) {
    while state(h, server) != "ejected" {
        let slot = send_within(h, "hold", Route::Endpoint(server.addr()), 20);
        let e = answer(&slot).unwrap_err();
        assert!(
            matches!(e.kind, ErrorKind::Timeout | ErrorKind::Connection),
            "{e:?}"
        );
    }
}

fn state(h: &ServiceHandle<Lines>, server: &Echo) -> &'static str {
    let a = server.addr().to_string();
    let eps = h.endpoints().unwrap();
    eps.iter()
        .find(|e| e.address == a)
        .map_or("gone", |e| e.state)
}

#[test]
fn an_ejected_endpoint_takes_no_requests_unless_fewer_than_half_are_healthy() {
    let (a, b) = (Echo::start(), Echo::start());
    let mut c = cfg(&[&a, &b]);
    c.balancer = super::balance::peak_ewma_p2c();
    let h = ServiceHandle::<Lines>::open(Lines, c).unwrap();
    wait_until("both connected", || connections(&h) == 2);
    // A is ejected; B is healthy: one of two is half, no panic. Every
    // shared request goes to B. An ejection lasts at least a second; the
    // round counts only if A was still ejected after it (else again, with
    // the ejection twice as long).
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 5, "A's ejection never outlasted 20 requests");
        eject(&h, &a);
        let ports: Vec<u16> = (0..20)
            .map(|i| {
                who(
                    call_to(&h, &format!("x{i}"), Route::Shared),
                    &format!("x{i}"),
                )
            })
            .collect();
        if state(&h, &a) == "ejected" {
            assert!(ports.iter().all(|p| *p == b.port), "{ports:?}");
            break;
        }
    }
    // B ejected too: none of two is healthy, so both take requests again
    // (their connections are blocked: the requests time out there, and
    // the timeout names where each was sent; had they been held back for
    // want of a healthy endpoint, they would time out in the queue).
    loop {
        rounds += 1;
        assert!(rounds <= 10, "the ejections never outlasted 40 requests");
        eject(&h, &a);
        eject(&h, &b);
        let slots: Vec<_> = (0..40)
            .map(|i| send_within(&h, &format!("y{i}"), Route::Shared, 100))
            .collect();
        let errors: Vec<String> = slots
            .iter()
            .map(|s| answer(s).unwrap_err().detail)
            .collect();
        if state(&h, &a) == "ejected" && state(&h, &b) == "ejected" {
            for s in [&a, &b] {
                let named = format!("no reply from {}", s.addr());
                assert!(errors.iter().any(|e| e.contains(&named)), "{errors:?}");
            }
            break;
        }
    }
    a.hold.open();
    b.hold.open();
}

#[test]
fn a_published_source_feeds_the_service_and_a_new_set_moves_new_requests() {
    use super::discovery::{published, Source};
    let (a, b) = (Echo::start(), Echo::start());
    let name = format!("kernel-test-{}", std::process::id());
    let mut c = cfg(&[&a]);
    c.names = Vec::new();
    c.sources = vec![Source::Published(name.clone())];
    let h = ServiceHandle::open(Lines, c).unwrap();
    // Nothing published: no endpoint, the call fails at once, typed.
    let e = call_to(&h, "x", Route::Shared).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connection, "{e}");
    published::publish(&name, vec![(a.addr(), 1)]);
    wait_until("A takes requests", || {
        call_to(&h, "a", Route::Shared).is_ok_and(|r| r.starts_with(a.port.to_string().as_bytes()))
    });
    published::publish(&name, vec![(b.addr(), 1)]);
    wait_until("B takes the new requests", || {
        call_to(&h, "b", Route::Shared).is_ok_and(|r| r.starts_with(b.port.to_string().as_bytes()))
    });
    for i in 0..20 {
        assert_eq!(
            who(
                call_to(&h, &format!("n{i}"), Route::Shared),
                &format!("n{i}")
            ),
            b.port
        );
    }
    wait_until("A's idle connection closed", || {
        a.closed.load(Ordering::SeqCst) == 1
    });
}
