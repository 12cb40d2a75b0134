//! The service on the kernel thread: its state (endpoints, queue, leases),
//! the task that takes commands from the handle, and the reconnect backoff.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::config::ServiceConfig;
use crate::kernel::dispatch::Conn;
use crate::kernel::endpoint::{Change, Endpoint, EndpointSet};
use crate::kernel::health::Health;
use crate::kernel::stats::{AddrMetrics, Outstanding, ServiceMetrics, Stats};
use crate::kernel::transport::{Addr, Connector};
use crate::kernel::{Completion, Items, KernelError, Protocol, Request, Route};

pub(super) enum Cmd<P: Protocol> {
    Request(Request<P>, Outstanding),
    /// Requests submitted together (an asyncio loop's turn), in order.
    Requests(Vec<(Request<P>, Outstanding)>),
    /// Changes to the endpoint set, in order.
    Change(Vec<Change>),
    /// A whole new endpoint set.
    Replace(Vec<Endpoint>),
    /// A dedicated connection; the caller gives up at the deadline.
    Lease(Completion, Option<Instant>, Route),
    Release(u64),
    /// Server pushes of every shared connection go to this stream.
    Subscribe(Arc<Items>),
    /// Every current endpoint, as the caller will show it.
    Endpoints(std::sync::mpsc::SyncSender<Vec<crate::kernel::health::EndpointInfo>>),
}

/// The service's state on the kernel thread.
pub(super) struct State<P: Protocol> {
    /// Per endpoint, its connection tasks and connections (`members::Pool`).
    pub(super) endpoints: EndpointSet<Pool<P>>,
    /// Connections of endpoints that left, closing once their requests are
    /// answered.
    pub(super) draining: Vec<Rc<Conn<P>>>,
    /// Requests no connection could take yet, each with its place in the
    /// limits (none for a redirected heartbeat).
    pub(super) queue: VecDeque<(Request<P>, Option<Outstanding>)>,
    /// For `/status`: the error of a connect attempt that failed while no
    /// connection was up (until one is).
    pub(super) last_error: Option<KernelError>,
    pub(super) dedicated: HashMap<u64, Rc<Conn<P>>>,
    /// Why the last few dedicated connections ended (id, error), so that a
    /// request for one that is gone can say why.
    pub(super) gone: VecDeque<(u64, String)>,
    /// Dedicated connections opening or open (bounded by `max_dedicated`).
    pub(super) leases: usize,
    pub(super) lease_queue: VecDeque<(Completion, Option<Instant>, Route)>,
    /// The candidates of the current pick (kept for its allocation).
    pub(super) scratch: Vec<Slot>,
    /// Where server pushes go (every shared connection, now and later).
    pub(super) sink: Option<Arc<Items>>,
}

pub(super) struct Core<P: Protocol> {
    pub(super) proto: Arc<P>,
    pub(super) cfg: ServiceConfig,
    pub(super) stats: Arc<Stats>,
    pub(super) metrics: Arc<ServiceMetrics>,
    pub(super) addr_metrics: RefCell<HashMap<Addr, AddrMetrics>>,
    pub(super) st: RefCell<State<P>>,
    pub(super) next_id: Cell<u64>,
    /// When a request last found no connection up, since one last came up
    /// (callers are waiting).
    pub(super) wanted: Cell<Option<Instant>>,
    /// Wakes connection tasks sleeping out a backoff step when callers want
    /// a connection.
    pub(super) demand: tokio::sync::Notify,
    /// Opens every connection of this service (and its cancel requests).
    pub(super) connector: Arc<dyn Connector>,
    /// When the hosts were last re-checked for a promotion (`recheck`).
    pub(super) rechecked: Cell<Option<Instant>>,
}

pub(super) fn next_rand() -> u64 {
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
pub(super) const WANTED_FOR: Duration = Duration::from_secs(5);

impl<P: Protocol> Core<P> {
    /// A service's state, with no endpoints yet.
    pub(super) fn new(
        proto: Arc<P>,
        cfg: ServiceConfig,
        stats: Arc<Stats>,
        metrics: Arc<ServiceMetrics>,
    ) -> Rc<Self> {
        let connector = cfg.connector.clone();
        Rc::new(Core {
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
                gone: VecDeque::new(),
                leases: 0,
                lease_queue: VecDeque::new(),
                scratch: Vec::new(),
                sink: None,
            }),
            next_id: Cell::new(1),
            wanted: Cell::new(None),
            demand: tokio::sync::Notify::new(),
            connector,
            rechecked: Cell::new(None),
        })
    }
}

impl<P: Protocol> Core<P> {
    pub(super) fn fresh_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    pub(super) fn subscribe(&self, sink: Arc<Items>) {
        let mut st = self.st.borrow_mut();
        for c in st.endpoints.iter().flat_map(|m| m.data.ready.iter()) {
            c.subscribe(sink.clone());
        }
        st.sink = Some(sink);
    }

    /// The client was closed: every connection closes, queued requests fail.
    pub(super) fn stop(&self) {
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

/// One endpoint's share of the service.
pub(super) struct Pool<P: Protocol> {
    /// Its `conns_per_addr` connection tasks.
    pub tasks: Vec<JoinHandle<()>>,
    /// Its shared connections that are up.
    pub ready: Vec<Rc<Conn<P>>>,
    /// Set when a connect attempt failed while none of its connections was
    /// up; cleared when one is.
    pub last_error: Option<KernelError>,
    /// Dedicated connections open or opening to it.
    pub leased: usize,
    /// Its latency, errors and ejection (shared with its connections).
    pub health: Rc<Health>,
    /// Whether its server said it is read-only by default (PostgreSQL's
    /// `default_transaction_read_only`; `Protocol::read_only`), for
    /// `target_session_attrs=read-write|read-only`. None: not said.
    pub read_only: Option<bool>,
}

/// One candidate of a pick: endpoint `m`, its connection `c` (0 for a
/// lease), and its load.
#[derive(Clone, Copy)]
pub(super) struct Slot {
    pub m: usize,
    pub c: usize,
    pub load: usize,
    /// Its endpoint is ejected (`health`).
    pub ejected: bool,
}
