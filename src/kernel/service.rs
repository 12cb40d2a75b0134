//! Services: what a client names. A service has a set of addresses (which can
//! change at run time), limits, a queue for the time no connection is up, and
//! one task per address that connects, runs the connection, and reconnects
//! with exponential backoff and jitter when it drops. While callers want a
//! connection and none is up, the backoff step is capped at `WANTED_STEP`,
//! so a server that comes back after a long outage is found within that
//! time, not after a 5 s step; an idle service backs off to the full 5 s.
//!
//! Health decides what happens to a new request when no connection can take
//! it: while a connection attempt is under way it waits in the queue (bounded
//! by `max_queued` and its deadline); once an attempt has failed and none is
//! up, requests fail fast with the last connection error until one succeeds.
//!
//! Limits are checked on the submitting thread, before anything is queued:
//! `admit()` counts outstanding requests (queued + in flight) with one atomic
//! add and refuses past `max_in_flight * connections + max_queued`.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::conn;
use super::dispatch::{Conn, Redirected};
use super::handshake;
use super::stats::{AddrMetrics, ServiceMetrics};
use super::transport::{Addr, Connector};
use super::{runtime, Completion, ErrorKind, Items, KernelError, Protocol, Reason, Request, Route};

#[derive(Clone)]
pub struct ServiceConfig {
    /// Display name: the URL without secrets.
    pub name: String,
    pub addrs: Vec<Addr>,
    pub connect_timeout: Duration,
    /// Per connection; more requests wait in the service queue.
    pub max_in_flight: usize,
    /// Requests allowed to wait beyond those in flight.
    pub max_queued: usize,
    pub idle_ping: Option<Duration>,
    /// Shared connections per address (1 for Redis; a few for PostgreSQL,
    /// whose server runs one query at a time per connection).
    pub conns_per_addr: usize,
    /// Dedicated connections open at once (transactions, blocking commands);
    /// more leases wait for one to be released, until their deadline.
    pub max_dedicated: usize,
    /// How connections are opened (`transport::Plain` unless TLS or a test
    /// says otherwise).
    pub connector: Arc<dyn Connector>,
}

/// Counters shared between the kernel and submitting threads.
#[derive(Default, Debug)]
pub struct Stats {
    pub outstanding: AtomicUsize,
    pub requests: AtomicU64,
    pub connects: AtomicU64,
    pub connect_failures: AtomicU64,
    pub disconnects: AtomicU64,
    pub connections: AtomicUsize,
    pub dedicated: AtomicUsize,
}

/// One admitted request's share of the outstanding count.
pub struct Outstanding(Arc<Stats>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Cmd<P: Protocol> {
    Request(Request<P>, Outstanding),
    SetAddrs(Vec<Addr>),
    /// A dedicated connection; the caller gives up at the deadline.
    Lease(Completion, Option<Instant>),
    Release(u64),
    /// Server pushes of every shared connection go to this stream.
    Subscribe(Arc<Items>),
}

/// The thread-safe handle that clients hold. Dropping the last one stops the
/// service and closes its connections.
pub struct ServiceHandle<P: Protocol> {
    tx: mpsc::UnboundedSender<Cmd<P>>,
    pub stats: Arc<Stats>,
    pub metrics: Arc<ServiceMetrics>,
    pub generation: u64,
    pub config: ServiceConfig,
    limit: usize,
}

impl<P: Protocol> ServiceHandle<P> {
    pub fn open(proto: P, config: ServiceConfig) -> Result<Arc<Self>, KernelError> {
        let k = runtime::kernel();
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        let limit = config
            .max_in_flight
            .saturating_mul(config.addrs.len().max(1) * config.conns_per_addr.max(1))
            + config.max_queued;
        let metrics = ServiceMetrics::new(&config.name);
        let (c2, s2, m2) = (config.clone(), stats.clone(), metrics.clone());
        let started = k.run(move || {
            tokio::task::spawn_local(service_task(Arc::new(proto), c2, s2, m2, rx));
        });
        if !started {
            return Err(KernelError::closed(
                "the I/O kernel is not running (interpreter shutting down?)",
            ));
        }
        Ok(Arc::new(ServiceHandle {
            tx,
            stats,
            metrics,
            generation: k.generation,
            config,
            limit,
        }))
    }

    fn check_generation(&self) -> Result<(), KernelError> {
        if self.generation != runtime::generation() {
            return Err(KernelError::closed(format!(
                "this client for {} was created before os.fork(); its connections belong to the parent \
                 process. Create a new client in the child process",
                self.config.name
            )));
        }
        Ok(())
    }

    /// Reserve room for one request, or fail fast.
    pub fn admit(&self) -> Result<Outstanding, KernelError> {
        self.check_generation()?;
        let n = self.stats.outstanding.fetch_add(1, Ordering::Relaxed);
        let guard = Outstanding(self.stats.clone());
        if n >= self.limit {
            self.metrics.error(ErrorKind::Overloaded);
            return Err(KernelError::overloaded(format!(
                "{}: {} requests already queued or in flight (limit {}: max_in_flight × connections + \
                 max_queued); slow down or raise max_queued",
                self.config.name, n, self.limit
            )));
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.metrics.requests.add(1.0);
        Ok(guard)
    }

    /// Hand an admitted request to the kernel. On failure the request's
    /// completion receives the error.
    pub fn send(&self, req: Request<P>, guard: Outstanding) {
        if let Err(mpsc::error::SendError(Cmd::Request(req, _))) =
            self.tx.send(Cmd::Request(req, guard))
        {
            req.completion
                .complete(Err(KernelError::closed("the I/O kernel has stopped")));
        }
    }

    /// Replace the set of addresses (name discovery feeds this).
    pub fn set_addrs(&self, addrs: Vec<Addr>) -> Result<(), KernelError> {
        self.check_generation()?;
        self.tx
            .send(Cmd::SetAddrs(addrs))
            .map_err(|_| KernelError::closed("the I/O kernel has stopped"))
    }

    /// Send the server pushes of every shared connection (now and after
    /// reconnects) to `sink`; a lost connection puts its error in the
    /// stream as a gap notice (pushes may have been missed meanwhile).
    pub fn subscribe(&self, sink: Arc<Items>) -> Result<(), KernelError> {
        self.check_generation()?;
        self.tx
            .send(Cmd::Subscribe(sink))
            .map_err(|_| KernelError::closed("the I/O kernel has stopped"))
    }

    /// Open a dedicated connection; the completion gets its id (`u64`).
    pub fn lease(
        &self,
        completion: Completion,
        deadline: Option<Instant>,
    ) -> Result<(), KernelError> {
        self.check_generation()?;
        self.tx
            .send(Cmd::Lease(completion, deadline))
            .map_err(|_| KernelError::closed("the I/O kernel has stopped"))
    }

    pub fn release(&self, id: u64) {
        let _ = self.tx.send(Cmd::Release(id));
    }
}

struct State<P: Protocol> {
    addrs: Vec<Addr>,
    /// Per address, one task per connection (`conns_per_addr`).
    tasks: HashMap<Addr, Vec<JoinHandle<()>>>,
    ready: Vec<Rc<Conn<P>>>,
    queue: VecDeque<(Request<P>, Outstanding)>,
    /// Set when a connect attempt failed and no connection is up: fail fast.
    last_error: Option<KernelError>,
    dedicated: HashMap<u64, Rc<Conn<P>>>,
    /// Dedicated connections opening or open (bounded by `max_dedicated`).
    leases: usize,
    lease_queue: VecDeque<(Completion, Option<Instant>)>,
    /// Where server pushes go (every shared connection, now and later).
    sink: Option<Arc<Items>>,
}

struct Core<P: Protocol> {
    proto: Arc<P>,
    cfg: ServiceConfig,
    stats: Arc<Stats>,
    metrics: Arc<ServiceMetrics>,
    addr_metrics: RefCell<HashMap<Addr, AddrMetrics>>,
    st: RefCell<State<P>>,
    next_id: Cell<u64>,
    /// When a request last found no connection up, since one last came up
    /// (callers are waiting).
    wanted: Cell<Option<Instant>>,
    /// Wakes address tasks sleeping out a backoff step when callers want a
    /// connection.
    demand: tokio::sync::Notify,
    /// Opens every connection of this service (and its cancel requests).
    connector: Arc<dyn Connector>,
}

async fn service_task<P: Protocol>(
    proto: Arc<P>,
    cfg: ServiceConfig,
    stats: Arc<Stats>,
    metrics: Arc<ServiceMetrics>,
    mut rx: mpsc::UnboundedReceiver<Cmd<P>>,
) {
    let addrs = cfg.addrs.clone();
    let connector = cfg.connector.clone();
    let core = Rc::new(Core {
        proto,
        cfg,
        stats,
        metrics,
        addr_metrics: RefCell::new(HashMap::new()),
        st: RefCell::new(State {
            addrs: Vec::new(),
            tasks: HashMap::new(),
            ready: Vec::new(),
            queue: VecDeque::new(),
            last_error: None,
            dedicated: HashMap::new(),
            leases: 0,
            lease_queue: VecDeque::new(),
            sink: None,
        }),
        next_id: Cell::new(1),
        wanted: Cell::new(None),
        demand: tokio::sync::Notify::new(),
        connector,
    });
    core.set_addrs(addrs);
    let view: Rc<dyn ServiceView> = core.clone();
    VIEWS.with(|v| {
        let mut v = v.borrow_mut();
        v.retain(|w| w.strong_count() > 0);
        v.push(Rc::downgrade(&view));
    });
    let mut batch = Vec::with_capacity(256);
    loop {
        let queued = !core.st.borrow().queue.is_empty();
        tokio::select! {
            n = rx.recv_many(&mut batch, 256) => {
                if n == 0 {
                    break;
                }
                for cmd in batch.drain(..) {
                    match cmd {
                        Cmd::Request(r, g) => core.dispatch(r, g),
                        Cmd::SetAddrs(a) => core.set_addrs(a),
                        Cmd::Lease(c, d) => core.clone().lease(c, d),
                        Cmd::Release(id) => core.release(id),
                        Cmd::Subscribe(sink) => core.subscribe(sink),
                    }
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(20)), if queued => core.expire_queued(),
        }
    }
    core.stop();
}

fn next_rand() -> u64 {
    thread_local!(static SEED: Cell<u64> = Cell::new(0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64));
    SEED.with(|s| {
        let mut x = s.get() ^ (Instant::now().elapsed().as_nanos() as u64);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

/// Exponential backoff with jitter: 50 ms doubling to 5 s, each drawn
/// uniformly from [half, full].
pub fn backoff(failures: u32) -> Duration {
    let full = 50u64.saturating_mul(1 << failures.min(7)).min(5000);
    Duration::from_millis(full / 2 + next_rand() % (full / 2 + 1))
}

/// The longest backoff step while callers want a connection (drawn from
/// [half, full] like the others): at most four attempts a second per
/// connection against a server that is down, and recovery within this long
/// once it is back.
pub const WANTED_STEP: Duration = Duration::from_millis(250);

/// How long a caller's wish for a connection counts: as long as the longest
/// backoff step, so a service whose callers stopped backs off fully again.
const WANTED_FOR: Duration = Duration::from_secs(5);

impl<P: Protocol> Core<P> {
    fn fresh_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    fn pick(&self, st: &State<P>) -> Option<Rc<Conn<P>>> {
        st.ready
            .iter()
            .filter(|c| !c.is_closed() && c.in_flight() < self.cfg.max_in_flight)
            .min_by_key(|c| c.in_flight())
            .cloned()
    }

    fn dispatch(&self, req: Request<P>, guard: Outstanding) {
        if let Route::Dedicated(id) = req.route {
            let conn = self.st.borrow().dedicated.get(&id).cloned();
            match conn {
                Some(c) if !c.is_closed() => c.push(&self.proto, req, Some(guard)),
                _ => {
                    drop(guard);
                    req.completion.complete(Err(KernelError::connection(format!(
                        "{}: dedicated connection {id} is gone (released or lost); open a new one",
                        self.cfg.name
                    ))))
                }
            }
            return;
        }
        let mut st = self.st.borrow_mut();
        if st.queue.is_empty() {
            if let Some(c) = self.pick(&st) {
                drop(st);
                c.push(&self.proto, req, Some(guard));
                return;
            }
        }
        if st.ready.is_empty() {
            self.want();
            if let Some(e) = &st.last_error {
                let e = KernelError::connection(format!("{e} (reconnecting in the background)"))
                    .because(e.reason);
                drop(st);
                drop(guard);
                req.completion.complete(Err(e));
                return;
            }
        }
        st.queue.push_back((req, guard));
        self.metrics.queued.set(st.queue.len() as f64);
    }

    /// A caller found no connection up: shorten the backoff of the tasks
    /// that are trying to connect.
    fn want(&self) {
        let first = self.wanted.get().is_none_or(|t| t.elapsed() >= WANTED_FOR);
        self.wanted.set(Some(Instant::now()));
        if first {
            self.demand.notify_waiters();
        }
    }

    /// Sleep out the backoff step after `failures` failed attempts, cut
    /// short to `WANTED_STEP` while callers want a connection.
    async fn backoff_sleep(&self, failures: u32) {
        let start = tokio::time::Instant::now();
        let full = backoff(failures);
        let quick =
            full.min(WANTED_STEP / 2 + WANTED_STEP.mul_f64((next_rand() % 1000) as f64 / 2000.0));
        loop {
            let notified = self.demand.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let wanted = self.wanted.get().is_some_and(|t| t.elapsed() < WANTED_FOR);
            let until = start + if wanted { quick } else { full };
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return,
                _ = notified => {}
            }
        }
    }

    /// Move queued requests onto connections with room.
    fn pump(&self) {
        loop {
            let mut st = self.st.borrow_mut();
            if st.queue.is_empty() {
                return;
            }
            let Some(c) = self.pick(&st) else { return };
            let (req, g) = st.queue.pop_front().expect("not empty");
            self.metrics.queued.set(st.queue.len() as f64);
            drop(st);
            c.push(&self.proto, req, Some(g));
        }
    }

    fn expire_queued(&self) {
        let now = Instant::now();
        let expired: Vec<_> = {
            let mut st = self.st.borrow_mut();
            let (gone, keep): (VecDeque<_>, VecDeque<_>) = st
                .queue
                .drain(..)
                .partition(|(r, _)| r.deadline.is_some_and(|d| d <= now));
            st.queue = keep;
            self.metrics.queued.set(st.queue.len() as f64);
            gone.into_iter().collect()
        };
        for (r, g) in expired {
            drop(g);
            r.completion.complete(Err(KernelError::timeout(format!(
                "{}: no connection became available within the timeout",
                self.cfg.name
            ))
            .because(Reason::NoConnection)));
        }
    }

    fn fail_queued(&self, err: &KernelError) {
        let q = std::mem::take(&mut self.st.borrow_mut().queue);
        self.metrics.queued.set(0.0);
        for (r, g) in q {
            drop(g);
            r.completion.complete(Err(err.clone()));
        }
    }

    fn set_addrs(self: &Rc<Self>, addrs: Vec<Addr>) {
        let mut st = self.st.borrow_mut();
        st.addrs = addrs.clone();
        // Removed addresses: no new traffic; close once their in-flight drain.
        let removed: Vec<Addr> = st
            .tasks
            .keys()
            .filter(|a| !addrs.contains(a))
            .cloned()
            .collect();
        for a in removed {
            for t in st.tasks.remove(&a).unwrap_or_default() {
                t.abort();
            }
            let (gone, keep): (Vec<_>, Vec<_>) = st.ready.drain(..).partition(|c| c.addr == a);
            st.ready = keep;
            for c in gone {
                tokio::task::spawn_local(drain_then_close(c));
            }
        }
        for a in addrs {
            if let std::collections::hash_map::Entry::Vacant(slot) = st.tasks.entry(a.clone()) {
                let n = self.cfg.conns_per_addr.max(1);
                slot.insert(
                    (0..n)
                        .map(|_| tokio::task::spawn_local(address_task(self.clone(), a.clone())))
                        .collect(),
                );
            }
        }
    }

    fn addr_metrics(&self, a: &Addr) -> AddrMetrics {
        self.addr_metrics
            .borrow_mut()
            .entry(a.clone())
            .or_insert_with(|| self.metrics.for_addr(a))
            .clone()
    }

    fn new_conn(&self, addr: Addr, dedicated: bool, state: P::ConnState) -> Rc<Conn<P>> {
        let am = self.addr_metrics(&addr);
        am.connects.add(1.0);
        am.connections.add(1.0);
        Conn::new(
            self.fresh_id(),
            addr,
            dedicated,
            self.metrics.clone(),
            am,
            state,
            self.connector.clone(),
        )
    }

    fn conn_gone(&self, c: &Conn<P>) {
        let am = self.addr_metrics(&c.addr);
        am.connections.add(-1.0);
        am.disconnects.add(1.0);
    }

    fn on_ready(&self, c: Rc<Conn<P>>) {
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = self.st.borrow_mut();
            st.last_error = None;
            if let Some(sink) = &st.sink {
                c.subscribe(sink.clone());
            }
            st.ready.push(c);
        }
        self.wanted.set(None); // callers' wish is met
        self.pump();
    }

    fn on_lost(&self, c: &Rc<Conn<P>>) {
        self.conn_gone(c);
        self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        self.stats.connections.fetch_sub(1, Ordering::Relaxed);
        self.st.borrow_mut().ready.retain(|x| !Rc::ptr_eq(x, c));
    }

    fn on_connect_failed(&self, addr: &Addr, e: &KernelError) {
        self.addr_metrics(addr).connect_failures.add(1.0);
        self.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
        let down = {
            let mut st = self.st.borrow_mut();
            if st.ready.is_empty() {
                st.last_error = Some(e.clone());
                true
            } else {
                false
            }
        };
        if down {
            self.fail_queued(e);
        }
    }

    fn lease(self: Rc<Self>, completion: Completion, deadline: Option<Instant>) {
        {
            let mut st = self.st.borrow_mut();
            if st.leases >= self.cfg.max_dedicated.max(1) {
                st.lease_queue.push_back((completion, deadline));
                return;
            }
            st.leases += 1;
        }
        let Some(addr) = self.st.borrow().addrs.first().cloned() else {
            completion.complete(Err(KernelError::connection(format!(
                "{}: no address to connect to",
                self.cfg.name
            ))));
            self.lease_ended();
            return;
        };
        let max = self.cfg.max_dedicated;
        let late = move |name: &str| {
            KernelError::timeout(format!(
                "{name}: no dedicated connection became free within the timeout (all {max} are in use); \
                 keep transactions short or raise max_dedicated"
            ))
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            completion.complete(Err(late(&self.cfg.name)));
            self.lease_ended();
            return;
        }
        tokio::task::spawn_local(async move {
            match handshake::connect(
                &*self.proto,
                &*self.connector,
                &addr,
                self.cfg.connect_timeout,
            )
            .await
            {
                Err(e) => {
                    self.addr_metrics(&addr).connect_failures.add(1.0);
                    completion.complete(Err(e));
                }
                // The caller gave up meanwhile: do not hand over a connection
                // nobody will release.
                Ok(_) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    completion.complete(Err(late(&self.cfg.name)));
                }
                Ok(k) => {
                    let c = self.new_conn(addr, true, k.state);
                    let id = c.id;
                    self.st.borrow_mut().dedicated.insert(id, c.clone());
                    self.stats.dedicated.fetch_add(1, Ordering::Relaxed);
                    completion.complete(Ok(Box::new(id)));
                    conn::run(
                        c.clone(),
                        &*self.proto,
                        (k.reader, k.writer, k.buf),
                        None,
                        &*self,
                    )
                    .await;
                    self.conn_gone(&c);
                    self.st.borrow_mut().dedicated.remove(&id);
                    self.stats.dedicated.fetch_sub(1, Ordering::Relaxed);
                }
            }
            self.lease_ended();
        });
    }

    /// A dedicated connection closed (or never opened): start a waiting lease.
    fn lease_ended(self: &Rc<Self>) {
        let next = {
            let mut st = self.st.borrow_mut();
            st.leases = st.leases.saturating_sub(1);
            st.lease_queue.pop_front()
        };
        if let Some((c, d)) = next {
            self.clone().lease(c, d);
        }
    }

    fn subscribe(&self, sink: Arc<Items>) {
        let mut st = self.st.borrow_mut();
        for c in &st.ready {
            c.subscribe(sink.clone());
        }
        st.sink = Some(sink);
    }

    fn release(&self, id: u64) {
        let c = self.st.borrow_mut().dedicated.remove(&id);
        if let Some(c) = c {
            c.close(&KernelError::connection(format!(
                "{}: dedicated connection {id} was released",
                self.cfg.name
            )));
        }
    }

    fn stop(&self) {
        let err = KernelError::closed(format!("{}: the client was closed", self.cfg.name));
        let (tasks, conns) = {
            let mut st = self.st.borrow_mut();
            let tasks: Vec<_> = st.tasks.drain().flat_map(|(_, t)| t).collect();
            let mut conns: Vec<_> = st.ready.drain(..).collect();
            conns.extend(st.dedicated.drain().map(|(_, c)| c));
            (tasks, conns)
        };
        for c in conns {
            c.close(&err);
        }
        for t in tasks {
            t.abort();
        }
        self.fail_queued(&err);
    }
}

impl<P: Protocol> conn::Link<P> for Core<P> {
    fn progress(&self) {
        self.pump();
    }

    /// Send a redirected request to a shared connection of the endpoint the
    /// server named, or fail it (it was not acted on: not sent).
    fn redirect(&self, r: Redirected<P>) {
        let conn = {
            let st = self.st.borrow();
            st.ready
                .iter()
                .filter(|c| c.addr == r.to && !c.is_closed())
                .min_by_key(|c| c.in_flight())
                .cloned()
        };
        match conn {
            Some(c) => c.push(&self.proto, r.req, r.guard),
            None => r
                .req
                .completion
                .complete(Err(KernelError::connection(format!(
                "{}: the server sent the request to {}, which has no connection in this service",
                self.cfg.name, r.to
            )))),
        }
    }
}

async fn drain_then_close<P: Protocol>(c: Rc<Conn<P>>) {
    for _ in 0..600 {
        if c.in_flight() == 0 || c.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.close(&KernelError::connection(format!(
        "{}: address removed from the service",
        c.addr
    )));
}

async fn address_task<P: Protocol>(core: Rc<Core<P>>, addr: Addr) {
    let mut failures = 0u32;
    loop {
        match handshake::connect(
            &*core.proto,
            &*core.connector,
            &addr,
            core.cfg.connect_timeout,
        )
        .await
        {
            Ok(k) => {
                failures = 0;
                let c = core.new_conn(addr.clone(), false, k.state);
                core.on_ready(c.clone());
                conn::run(
                    c.clone(),
                    &*core.proto,
                    (k.reader, k.writer, k.buf),
                    core.cfg.idle_ping,
                    &*core,
                )
                .await;
                core.on_lost(&c);
            }
            Err(e) => {
                failures += 1;
                core.on_connect_failed(&addr, &e);
            }
        }
        if failures > 0 {
            core.backoff_sleep(failures).await;
        }
    }
}

/// What the admin endpoint can ask of a service (on the kernel thread).
pub trait ServiceView {
    fn status(&self) -> serde_json::Value;
    fn inflight(&self, out: &mut Vec<serde_json::Value>, max: usize);
}

thread_local! {
    static VIEWS: RefCell<Vec<std::rc::Weak<dyn ServiceView>>> = const { RefCell::new(Vec::new()) };
}

/// Every live service of this kernel (call on the kernel thread).
pub fn views() -> Vec<Rc<dyn ServiceView>> {
    VIEWS.with(|v| {
        v.borrow()
            .iter()
            .filter_map(std::rc::Weak::upgrade)
            .collect()
    })
}

impl<P: Protocol> ServiceView for Core<P> {
    fn status(&self) -> serde_json::Value {
        let st = self.st.borrow();
        let health = if !st.ready.is_empty() {
            "up"
        } else if st.last_error.is_some() {
            "down"
        } else {
            "connecting"
        };
        let conns: Vec<_> = st
            .ready
            .iter()
            .chain(st.dedicated.values())
            .map(|c| c.status())
            .collect();
        serde_json::json!({
            "name": self.cfg.name,
            "protocol": self.proto.name(),
            "health": health,
            "last_error": st.last_error.as_ref().map(|e| e.detail.clone()),
            "addresses": st.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "outstanding": self.stats.outstanding.load(Ordering::Relaxed),
            "queued": st.queue.len(),
            "limits": {"max_in_flight": self.cfg.max_in_flight, "max_queued": self.cfg.max_queued,
                       "connect_timeout_s": self.cfg.connect_timeout.as_secs_f64()},
            "connections": conns,
        })
    }

    fn inflight(&self, out: &mut Vec<serde_json::Value>, max: usize) {
        let st = self.st.borrow();
        for c in st.ready.iter().chain(st.dedicated.values()) {
            c.inflight(&self.cfg.name, out, max);
        }
        let now = Instant::now();
        for (r, _) in st.queue.iter() {
            if out.len() >= max {
                return;
            }
            out.push(serde_json::json!({
                "service": self.cfg.name, "address": null, "connection": null,
                "command": r.summary.as_str(), "age_ms": (now - r.submitted).as_secs_f64() * 1000.0,
                "written": false, "timed_out": false,
            }));
        }
    }
}
