//! What a service is configured with: its names, limits, timeouts, and the
//! connector and balancer it uses.

use std::sync::Arc;
use std::time::Duration;

use crate::kernel::balance::Balancer;
use crate::kernel::discovery::Source;
use crate::kernel::transport::{Addr, Connector};

#[derive(Clone)]
pub struct ServiceConfig {
    /// Display name: the URL without secrets.
    pub name: String,
    /// What the URL names (hosts and ports, or a socket path). A host name
    /// is resolved and followed by the kernel (`discovery`); an IP address,
    /// `localhost` or a path is its own endpoint. `ServiceHandle::set_endpoints`
    /// and `change_endpoints` change the set at run time too.
    pub names: Vec<Addr>,
    /// More endpoints: SRV names, watched files, published sets
    /// (`discovery::Source`); host names in `names` are followed too.
    pub sources: Vec<Source>,
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
    /// (`balance::peak_ewma_p2c()` for the clients).
    pub balancer: Arc<dyn Balancer>,
    /// Every request may be sent twice: one written on a connection that
    /// was lost before its answer is sent again (`dispatch::lost`).
    pub idempotent: bool,
    /// Which endpoints shared-route requests may use, by role
    /// (`target_session_attrs`, `load_balance_hosts`).
    pub attrs: crate::kernel::attrs::Attrs,
}

impl ServiceConfig {
    /// Requests admitted at once with `endpoints` endpoints.
    pub(super) fn limit(&self, endpoints: usize) -> usize {
        self.max_in_flight
            .saturating_mul(endpoints.max(1) * self.conns_per_addr.max(1))
            .saturating_add(self.max_queued)
    }
}
