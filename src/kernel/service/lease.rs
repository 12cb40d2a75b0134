//! Dedicated connections: one caller's own connection (a transaction, a
//! blocking pop), opened on request and closed on release. At most
//! `max_dedicated` are open or opening; more leases wait until one ends (or
//! fail at their deadline). The endpoint is the balancer's choice
//! (`Balancer::pick_lease`) among those that fit the lease's route and are
//! not known to be down — or among all that fit, if every one is, so the
//! caller hears the connect error.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::route::View;
use super::task::{Core, Pool, Slot};
use crate::kernel::conn;
use crate::kernel::dispatch::Redirected;
use crate::kernel::handshake;
use crate::kernel::stats::Outstanding;
use crate::kernel::transport::Addr;
use crate::kernel::{Completion, KernelError, Protocol, Request, Route};

impl<P: Protocol> Core<P> {
    pub(super) fn lease(
        self: Rc<Self>,
        completion: Completion,
        deadline: Option<Instant>,
        route: Route,
    ) {
        {
            let mut st = self.st.borrow_mut();
            if st.leases >= self.cfg.max_dedicated.max(1) {
                st.lease_queue.push_back((completion, deadline, route));
                return;
            }
            st.leases += 1;
        }
        let addr = match self.lease_endpoint(route) {
            Ok(a) => a,
            Err(e) => {
                completion.complete(Err(e));
                self.lease_ended(None);
                return;
            }
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
            self.lease_ended(Some(&addr));
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
                    self.connect_failed(&addr, &e);
                    completion.complete(Err(e));
                }
                // The caller gave up meanwhile: do not hand over a connection
                // nobody will release.
                Ok(_) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    completion.complete(Err(late(&self.cfg.name)));
                }
                Ok(k) => {
                    let c = self.new_conn(addr.clone(), true, k.state);
                    let id = c.id;
                    self.st.borrow_mut().dedicated.insert(id, c.clone());
                    self.stats.dedicated.fetch_add(1, Ordering::Relaxed);
                    completion.complete(Ok(Box::new(id)));
                    let why = conn::run(
                        c.clone(),
                        &*self.proto,
                        conn::Wire {
                            reader: k.reader,
                            writer: k.writer,
                            buf: k.buf,
                            hold: conn::Hold::for_stream(k.tls, self.proto.hold_plain_writes()),
                        },
                        None,
                        &*self,
                    )
                    .await;
                    self.conn_gone(&c);
                    let mut st = self.st.borrow_mut();
                    st.dedicated.remove(&id);
                    if st.gone.len() >= GONE_KEPT {
                        st.gone.pop_front();
                    }
                    st.gone.push_back((id, why.detail));
                    drop(st);
                    self.stats.dedicated.fetch_sub(1, Ordering::Relaxed);
                }
            }
            self.lease_ended(Some(&addr));
        });
    }

    /// The endpoint for a new dedicated connection (counted as leased).
    fn lease_endpoint(&self, route: Route) -> Result<Addr, KernelError> {
        let mut st = self.st.borrow_mut();
        let st = &mut *st;
        let shared = route == Route::Shared;
        let target = match route {
            // Transactions follow the service's rule by role too.
            Route::Shared => self
                .cfg
                .attrs
                .target(&st.endpoints, |p| !p.ready.is_empty()),
            _ => st.endpoints.target(&route),
        };
        st.scratch.clear();
        let mut live = false;
        for (m, member) in st.endpoints.iter().enumerate() {
            let fits = !shared || self.cfg.attrs.fits(&member.endpoint, member.data.read_only);
            if fits && target.includes(m, &member.endpoint) {
                live |= !down(&member.data);
                let load = member.data.leased;
                st.scratch.push(Slot {
                    m,
                    c: 0,
                    load,
                    ejected: false,
                });
            }
        }
        if live {
            let endpoints = &st.endpoints;
            st.scratch.retain(|s| !down(&endpoints.get(s.m).data));
        }
        let pick = if st.scratch.is_empty() {
            None
        } else {
            let view = View {
                endpoints: &st.endpoints,
                slots: &st.scratch,
            };
            self.cfg
                .balancer
                .pick_lease(&view)
                .and_then(|i| st.scratch.get(i))
        };
        match pick {
            Some(s) => {
                let m = s.m;
                let member = st.endpoints.get_mut(m);
                member.data.leased += 1;
                Ok(member.endpoint.addr.clone())
            }
            None => Err(self.no_endpoint(st, route)),
        }
    }

    /// A dedicated connection closed (or never opened): start a waiting lease.
    fn lease_ended(self: &Rc<Self>, addr: Option<&Addr>) {
        let next = {
            let mut st = self.st.borrow_mut();
            st.leases = st.leases.saturating_sub(1);
            if let Some(m) = addr.and_then(|a| st.endpoints.find_mut(a)) {
                m.data.leased = m.data.leased.saturating_sub(1);
            }
            st.lease_queue.pop_front()
        };
        if let Some((c, d, r)) = next {
            self.clone().lease(c, d, r);
        }
    }

    pub(super) fn release(&self, id: u64) {
        let c = self.st.borrow_mut().dedicated.remove(&id);
        if let Some(c) = c {
            c.close(&KernelError::connection(format!(
                "{}: dedicated connection {id} was released",
                self.cfg.name
            )));
        }
    }
}

/// Dedicated connections tell the service through the service itself.
impl<P: Protocol> conn::Link<P> for Core<P> {
    fn progress(&self) {
        self.pump();
    }

    fn redirect(&self, r: Redirected<P>) {
        self.reroute(r);
    }

    /// Never asked: a dedicated connection's requests are never moved.
    fn resend(&self, req: Request<P>, guard: Option<Outstanding>) {
        self.dispatch(req, guard);
    }
}

/// How many reasons of ended dedicated connections are kept (`State::gone`).
const GONE_KEPT: usize = 64;

/// Known to be down: its last connect attempt failed and none of its shared
/// connections is up.
fn down<P: Protocol>(pool: &Pool<P>) -> bool {
    pool.last_error.is_some() && pool.ready.is_empty()
}
