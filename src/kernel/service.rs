//! Services: what a client names. A service has endpoints (a set that can
//! change at run time, see `endpoint`), limits, a queue for the time no
//! connection can take a request, and per endpoint `conns_per_addr` tasks
//! that connect, run the connection and reconnect with backoff when it drops
//! (`members`). Each request is routed (`route`): its `Route` says which
//! endpoints fit, the service's `Balancer` picks one of their connections
//! that has room. Dedicated connections are `lease`; what the admin endpoint
//! sees is `view`.
//!
//! Health decides what happens to a new request when no connection can take
//! it: while a connection attempt to an endpoint that fits is under way it
//! waits in the queue (bounded by `max_queued` and its deadline); once the
//! attempts to every endpoint that fits have failed and none is up, requests
//! fail fast with the last connection error until one succeeds. A route no
//! endpoint fits fails at once (`endpoint::NoEndpoint`).
//!
//! Limits are checked on the submitting thread, before anything is queued:
//! `admit()` counts outstanding requests (queued + in flight) with one atomic
//! add and refuses past `max_in_flight * connections + max_queued`, a limit
//! the kernel recomputes whenever the endpoint set changes.

mod lease;
mod members;
mod route;
mod view;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::balance::Balancer;
use super::dispatch::Conn;
use super::endpoint::{Change, Endpoint, EndpointSet};
use super::stats::{AddrMetrics, ServiceMetrics};
use super::transport::{Addr, Connector};
use super::{runtime, Completion, ErrorKind, Items, KernelError, Protocol, Request, Route};

pub use view::{views, ServiceView};

#[derive(Clone)]
pub struct ServiceConfig {
    /// Display name: the URL without secrets.
    pub name: String,
    /// What the URL names (a host and port, or a socket path). Each stands
    /// for its one endpoint (`Endpoint::named`) until name discovery
    /// resolves names into sets; `ServiceHandle::set_endpoints` and
    /// `change_endpoints` change the set at run time.
    pub names: Vec<Addr>,
    pub connect_timeout: Duration,
    /// Per connection; more requests wait in the service queue.
    pub max_in_flight: usize,
    /// Requests allowed to wait beyond those in flight.
    pub max_queued: usize,
    pub idle_ping: Option<Duration>,
    /// Shared connections per endpoint (1 for Redis; a few for PostgreSQL,
    /// whose server runs one query at a time per connection).
    pub conns_per_addr: usize,
    /// Dedicated connections open at once (transactions, blocking commands);
    /// more leases wait for one to be released, until their deadline.
    pub max_dedicated: usize,
    /// How connections are opened (`transport::Plain` unless TLS or a test
    /// says otherwise).
    pub connector: Arc<dyn Connector>,
    /// Which connection takes a request, which endpoint a lease
    /// (`balance::fewest_in_flight()` unless said otherwise).
    pub balancer: Arc<dyn Balancer>,
}

impl ServiceConfig {
    /// Requests admitted at once with `endpoints` endpoints.
    fn limit(&self, endpoints: usize) -> usize {
        self.max_in_flight
            .saturating_mul(endpoints.max(1) * self.conns_per_addr.max(1))
            .saturating_add(self.max_queued)
    }
}

pub use super::stats::{Outstanding, Stats};

enum Cmd<P: Protocol> {
    Request(Request<P>, Outstanding),
    /// Changes to the endpoint set, in order.
    Change(Vec<Change>),
    /// A whole new endpoint set.
    Replace(Vec<Endpoint>),
    /// A dedicated connection; the caller gives up at the deadline.
    Lease(Completion, Option<Instant>, Route),
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
}

impl<P: Protocol> ServiceHandle<P> {
    pub fn open(proto: P, config: ServiceConfig) -> Result<Arc<Self>, KernelError> {
        let k = runtime::kernel();
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        stats
            .limit
            .store(config.limit(config.names.len()), Ordering::Relaxed);
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

    /// The admission limit now (it follows the endpoint set).
    pub fn limit(&self) -> usize {
        self.stats.limit.load(Ordering::Relaxed)
    }

    /// Reserve room for one request, or fail fast.
    pub fn admit(&self) -> Result<Outstanding, KernelError> {
        self.check_generation()?;
        let n = self.stats.outstanding.fetch_add(1, Ordering::Relaxed);
        let guard = Outstanding::held(self.stats.clone());
        let limit = self.limit();
        if n >= limit {
            self.metrics.error(ErrorKind::Overloaded);
            return Err(KernelError::overloaded(format!(
                "{}: {} requests already queued or in flight (limit {}: max_in_flight × connections + \
                 max_queued); slow down or raise max_queued",
                self.config.name, n, limit
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

    fn command(&self, cmd: Cmd<P>) -> Result<(), KernelError> {
        self.check_generation()?;
        self.tx
            .send(cmd)
            .map_err(|_| KernelError::closed("the I/O kernel has stopped"))
    }

    /// Change the endpoint set (name discovery feeds this): endpoints added
    /// take requests once a connection to them is up; removed ones take no
    /// new requests and close once those in flight are answered.
    pub fn change_endpoints(&self, changes: Vec<Change>) -> Result<(), KernelError> {
        self.command(Cmd::Change(changes))
    }

    /// Replace the endpoint set (the changes are worked out by the kernel).
    pub fn set_endpoints(&self, endpoints: Vec<Endpoint>) -> Result<(), KernelError> {
        self.command(Cmd::Replace(endpoints))
    }

    /// Replace the endpoint set by these addresses, each its own endpoint.
    pub fn set_addrs(&self, addrs: Vec<Addr>) -> Result<(), KernelError> {
        self.set_endpoints(addrs.into_iter().map(Endpoint::named).collect())
    }

    /// Open a dedicated connection to the endpoint the balancer picks; the
    /// completion gets its id (`u64`).
    pub fn lease(
        &self,
        completion: Completion,
        deadline: Option<Instant>,
    ) -> Result<(), KernelError> {
        self.lease_to(completion, deadline, Route::Shared)
    }

    /// `lease`, to an endpoint that fits `route` (a role, a key, one
    /// endpoint; `Route::Shared` for any).
    pub fn lease_to(
        &self,
        completion: Completion,
        deadline: Option<Instant>,
        route: Route,
    ) -> Result<(), KernelError> {
        self.command(Cmd::Lease(completion, deadline, route))
    }

    pub fn release(&self, id: u64) {
        let _ = self.tx.send(Cmd::Release(id));
    }

    /// Send the server pushes of every shared connection (now and after
    /// reconnects) to `sink`; a lost connection puts its error in the
    /// stream as a gap notice (pushes may have been missed meanwhile).
    pub fn subscribe(&self, sink: Arc<Items>) -> Result<(), KernelError> {
        self.command(Cmd::Subscribe(sink))
    }
}

/// The service's state on the kernel thread.
struct State<P: Protocol> {
    /// Per endpoint, its connection tasks and connections (`members::Pool`).
    endpoints: EndpointSet<members::Pool<P>>,
    /// Connections of endpoints that left, closing once their requests are
    /// answered.
    draining: Vec<Rc<Conn<P>>>,
    /// Requests no connection could take yet, each with its place in the
    /// limits (none for a redirected heartbeat).
    queue: VecDeque<(Request<P>, Option<Outstanding>)>,
    /// For `/status`: the error of a connect attempt that failed while no
    /// connection was up (until one is).
    last_error: Option<KernelError>,
    dedicated: HashMap<u64, Rc<Conn<P>>>,
    /// Dedicated connections opening or open (bounded by `max_dedicated`).
    leases: usize,
    lease_queue: VecDeque<(Completion, Option<Instant>, Route)>,
    /// The candidates of the current pick (kept for its allocation).
    scratch: Vec<route::Slot>,
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
    /// Wakes connection tasks sleeping out a backoff step when callers want
    /// a connection.
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
    let first: Vec<Endpoint> = cfg.names.iter().cloned().map(Endpoint::named).collect();
    let connector = cfg.connector.clone();
    let core = Rc::new(Core {
        proto,
        cfg,
        stats,
        metrics,
        addr_metrics: RefCell::new(HashMap::new()),
        st: RefCell::new(State {
            endpoints: EndpointSet::default(),
            draining: Vec::new(),
            queue: VecDeque::new(),
            last_error: None,
            dedicated: HashMap::new(),
            leases: 0,
            lease_queue: VecDeque::new(),
            scratch: Vec::new(),
            sink: None,
        }),
        next_id: Cell::new(1),
        wanted: Cell::new(None),
        demand: tokio::sync::Notify::new(),
        connector,
    });
    core.replace(first);
    view::register(&core);
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
                        Cmd::Request(r, g) => core.dispatch(r, Some(g)),
                        Cmd::Change(c) => core.change(c),
                        Cmd::Replace(e) => core.replace(e),
                        Cmd::Lease(c, d, r) => core.clone().lease(c, d, r),
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

    fn subscribe(&self, sink: Arc<Items>) {
        let mut st = self.st.borrow_mut();
        for c in st.endpoints.iter().flat_map(|m| m.data.ready.iter()) {
            c.subscribe(sink.clone());
        }
        st.sink = Some(sink);
    }

    /// The client was closed: every connection closes, queued requests fail.
    fn stop(&self) {
        let err = KernelError::closed(format!("{}: the client was closed", self.cfg.name));
        let (tasks, conns) = {
            let mut st = self.st.borrow_mut();
            let mut tasks = Vec::new();
            let mut conns: Vec<_> = st.draining.drain(..).collect();
            for m in st.endpoints.iter_mut() {
                tasks.append(&mut m.data.tasks);
                conns.append(&mut m.data.ready);
            }
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
