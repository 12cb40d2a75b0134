//! Services: what a client names. A service has endpoints (a set that can
//! change at run time, see `endpoint`), limits, a queue for the time no
//! connection can take a request, and per endpoint `conns_per_addr` tasks
//! that connect, run the connection and reconnect with backoff when it drops
//! (`members`). Its names and sources are followed (`discovery::Follow`) and
//! each new set replaces the endpoints. Each request is routed (`route`): its `Route` says which
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
//! the kernel recomputes whenever the endpoint set changes; the process-wide
//! caps of `limits` are checked in the same place.

mod config;
mod lease;
mod members;
mod recheck;
mod route;
mod task;
mod view;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::discovery::Follow;
use super::endpoint::{Change, Endpoint};
use super::stats::ServiceMetrics;
use super::transport::Addr;
use super::{limits, runtime, Completion, ErrorKind, Items, KernelError, Protocol, Request, Route};
use task::{Cmd, Core};

pub use super::health::EndpointInfo;
pub use super::stats::{Outstanding, Stats};
pub use config::ServiceConfig;
pub use task::{backoff, WANTED_STEP};
pub use view::{views, ServiceView};

/// How long a new service waits for its names' first answers before it
/// starts with what it has (requests sent meanwhile wait, then go).
const FIRST_ANSWER: Duration = Duration::from_secs(5);

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
        let pn = limits::PROCESS.outstanding.fetch_add(1, Ordering::Relaxed);
        let guard = Outstanding::held(self.stats.clone());
        if let Err(e) = limits::check(pn, &self.config.name) {
            self.metrics.error(ErrorKind::Overloaded);
            return Err(e);
        }
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

    /// Hand admitted requests to the kernel in one message, in order: the
    /// kernel takes them in one turn, so they go out in one write. On
    /// failure each request's completion receives the error.
    pub fn send_all(&self, reqs: Vec<(Request<P>, Outstanding)>) {
        if let Err(mpsc::error::SendError(Cmd::Requests(reqs))) = self.tx.send(Cmd::Requests(reqs))
        {
            for (req, _) in reqs {
                req.completion
                    .complete(Err(KernelError::closed("the I/O kernel has stopped")));
            }
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

    /// Every current endpoint with its state, load, latency and errors
    /// (blocks until the kernel thread answers; call without the GIL).
    pub fn endpoints(&self) -> Result<Vec<EndpointInfo>, KernelError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.command(Cmd::Endpoints(tx))?;
        rx.recv_timeout(Duration::from_secs(10)).map_err(|_| {
            KernelError::timeout(format!(
                "{}: the I/O kernel did not answer within 10 s (stopped or stalled)",
                self.config.name
            ))
        })
    }

    /// Why discovery has no endpoints for this service yet ("" when it
    /// has them or is not asked), the TLS reason when TLS failures are
    /// why, and the watches not in place yet ("" when none).
    pub fn discovery(&self) -> crate::kernel::stats::Discovery {
        self.stats
            .discovery
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Send the server pushes of every shared connection (now and after
    /// reconnects) to `sink`; a lost connection puts its error in the
    /// stream as a gap notice (pushes may have been missed meanwhile).
    pub fn subscribe(&self, sink: Arc<Items>) -> Result<(), KernelError> {
        self.command(Cmd::Subscribe(sink))
    }
}

async fn service_task<P: Protocol>(
    proto: Arc<P>,
    cfg: ServiceConfig,
    stats: Arc<Stats>,
    metrics: Arc<ServiceMetrics>,
    mut rx: mpsc::UnboundedReceiver<Cmd<P>>,
) {
    // Names and sources, followed (`discovery`); the first set is waited
    // for (bounded) so the service connects to the real endpoints at once.
    let mut follow = Follow::start(&cfg.names, &cfg.sources);
    let first_wait = cfg.connect_timeout.min(FIRST_ANSWER);
    let core = Core::new(proto, cfg, stats, metrics);
    core.replace(follow.first(first_wait).await);
    core.discovery(&follow);
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
                        Cmd::Requests(rs) => {
                            for (r, g) in rs {
                                core.dispatch(r, Some(g));
                            }
                        }
                        Cmd::Change(c) => core.change(c),
                        Cmd::Replace(e) => core.replace(e),
                        Cmd::Lease(c, d, r) => core.clone().lease(c, d, r),
                        Cmd::Release(id) => core.release(id),
                        Cmd::Subscribe(sink) => core.subscribe(sink),
                        Cmd::Endpoints(tx) => {
                            let _ = tx.send(core.endpoint_infos());
                        }
                    }
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(20)), if queued => {
                core.expire_queued();
                core.recheck();
            }
            set = follow.next() => {
                core.replace(set);
                core.discovery(&follow);
            }
        }
    }
    core.stop();
}
