//! Balancers: which connection takes a request, and which endpoint gets a
//! new dedicated connection.
//!
//! The service works out the candidates and the balancer chooses among them:
//! * for a request, the shared connections that fit its route and can take
//!   it now (open, fewer than `max_in_flight` waiting on them), each with
//!   its endpoint and the requests in flight on it;
//! * for a lease, the endpoints that fit its route (those not known to be
//!   down, if there are any), each with the dedicated connections open to it.
//!
//! A balancer sees no protocol and owns no connection; a service gets its
//! own through `ServiceConfig::balancer`. `FewestInFlight` is the first one
//! (what the kernel always did); power of two choices over a latency-weighted
//! load (tower's `p2c` + `PeakEwma`) would be another, with the latency
//! added to `Candidate`.
//!
//! The request pick runs once per request on the kernel thread: candidates
//! are read where they are (no allocation), and a balancer should stay a
//! loop over them.

use std::sync::Arc;

use super::endpoint::Endpoint;

/// One candidate as a balancer sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub endpoint: &'a Endpoint,
    /// A connection: requests on it not yet answered. An endpoint (for a
    /// lease): dedicated connections open or opening to it.
    pub load: usize,
}

/// The candidates of one choice, numbered from 0.
pub trait Candidates {
    fn len(&self) -> usize;
    fn get(&self, i: usize) -> Candidate<'_>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Chooses among candidates (there is at least one). Called on the kernel
/// thread; a balancer with state of its own keeps it in atomics or cells
/// that are `Sync`.
pub trait Balancer: Send + Sync {
    /// The connection for a request, by index; `None` leaves the request in
    /// the service's queue until a connection makes progress or comes up.
    fn pick(&self, among: &dyn Candidates) -> Option<usize>;
    /// The endpoint for a new dedicated connection, by index; `None` fails
    /// the lease (no endpoint fits). By default the same choice as `pick`.
    fn pick_lease(&self, among: &dyn Candidates) -> Option<usize> {
        self.pick(among)
    }
}

/// The least loaded candidate; the first of equals (endpoints in the order
/// they arrived, so a single-endpoint service behaves as it always did).
#[derive(Debug, Default, Clone, Copy)]
pub struct FewestInFlight;

impl Balancer for FewestInFlight {
    fn pick(&self, among: &dyn Candidates) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        for i in 0..among.len() {
            let load = among.get(i).load;
            if best.is_none_or(|(_, b)| load < b) {
                best = Some((i, load));
            }
        }
        best.map(|(i, _)| i)
    }
}

/// The default balancer, as a service's configuration holds it.
pub fn fewest_in_flight() -> Arc<dyn Balancer> {
    Arc::new(FewestInFlight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::transport::Addr;

    struct List(Vec<(Endpoint, usize)>);

    impl Candidates for List {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn get(&self, i: usize) -> Candidate<'_> {
            Candidate {
                endpoint: &self.0[i].0,
                load: self.0[i].1,
            }
        }
    }

    fn list(loads: &[usize]) -> List {
        List(
            loads
                .iter()
                .enumerate()
                .map(|(i, l)| (Endpoint::named(Addr::Tcp("h".into(), i as u16)), *l))
                .collect(),
        )
    }

    #[test]
    fn fewest_in_flight_takes_the_least_loaded_and_the_first_of_equals() {
        let b = FewestInFlight;
        assert_eq!(b.pick(&list(&[3, 1, 2, 1])), Some(1));
        assert_eq!(b.pick(&list(&[0, 0])), Some(0));
        assert_eq!(b.pick_lease(&list(&[2, 0])), Some(1));
        assert_eq!(b.pick(&list(&[])), None);
    }
}
