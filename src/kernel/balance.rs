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
//! (what the kernel always did). `PeakEwmaP2c`, the clients' default, is
//! power of two choices over a latency-weighted load, as Finagle and Linkerd
//! do: two candidates drawn at random, the one with the lower Peak-EWMA
//! latency × (in flight + 1) wins; among the connections of one endpoint it
//! is `FewestInFlight`, so a one-endpoint service behaves as it always did.
//!
//! The request pick runs once per request on the kernel thread: candidates
//! are read where they are (no allocation), and a balancer should stay a
//! loop over them.

use std::cell::Cell;
use std::sync::Arc;

use tokio::time::Instant;

use super::endpoint::Endpoint;
use super::health::PeakEwma;

/// One candidate as a balancer sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub endpoint: &'a Endpoint,
    /// A connection: requests on it not yet answered. An endpoint (for a
    /// lease): dedicated connections open or opening to it.
    pub load: usize,
    /// The endpoint's round-trip latency (`health::PeakEwma`).
    pub latency: &'a PeakEwma,
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

/// The balancer that ignores latency, as a service's configuration holds it.
pub fn fewest_in_flight() -> Arc<dyn Balancer> {
    Arc::new(FewestInFlight)
}

/// Power of two choices over Peak-EWMA latency × (in flight + 1); see the
/// module comment.
#[derive(Debug, Default, Clone, Copy)]
pub struct PeakEwmaP2c;

fn rand() -> u64 {
    thread_local!(static SEED: Cell<u64> = const { Cell::new(0x2545_F491_4F6C_DD1D) });
    SEED.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

impl Balancer for PeakEwmaP2c {
    fn pick(&self, among: &dyn Candidates) -> Option<usize> {
        let n = among.len();
        if n <= 1 {
            return (n == 1).then_some(0);
        }
        // Candidates come grouped by endpoint: first and last share one
        // only if all do.
        if std::ptr::eq(among.get(0).endpoint, among.get(n - 1).endpoint) {
            return FewestInFlight.pick(among);
        }
        let r = rand();
        let i = (r % n as u64) as usize;
        let mut j = ((r >> 32) % (n as u64 - 1)) as usize;
        if j >= i {
            j += 1;
        }
        let now = Instant::now();
        let cost = |k: usize| {
            let c = among.get(k);
            c.latency.estimate(now) * (c.load + 1) as f64
        };
        Some(if cost(j) < cost(i) { j } else { i })
    }
}

/// The clients' balancer, as a service's configuration holds it.
pub fn peak_ewma_p2c() -> Arc<dyn Balancer> {
    Arc::new(PeakEwmaP2c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::transport::Addr;

    struct List(Vec<(Endpoint, usize, PeakEwma)>);

    impl Candidates for List {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn get(&self, i: usize) -> Candidate<'_> {
            Candidate {
                endpoint: &self.0[i].0,
                load: self.0[i].1,
                latency: &self.0[i].2,
            }
        }
    }

    fn list(loads: &[usize]) -> List {
        List(
            loads
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    (
                        Endpoint::named(Addr::Tcp("h".into(), i as u16)),
                        *l,
                        PeakEwma::default(),
                    )
                })
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

    #[test]
    fn p2c_sends_little_to_a_slow_endpoint_and_acts_as_fewest_in_flight_on_one() {
        let now = Instant::now();
        let l = list(&[0, 0, 0]);
        l.0[0].2.observe(0.050, now);
        for (_, _, e) in &l.0[1..] {
            e.observe(0.001, now);
        }
        let b = PeakEwmaP2c;
        let slow = (0..3000).filter(|_| b.pick(&l) == Some(0)).count();
        assert_eq!(slow, 0, "an idle slow endpoint loses every pair it is in");
        // Under load the slow one wins only against a much busier one.
        let l = list(&[0, 10, 60]);
        l.0[0].2.observe(0.050, now);
        for (_, _, e) in &l.0[1..] {
            e.observe(0.001, now);
        }
        let picks: Vec<_> = (0..3000).filter_map(|_| b.pick(&l)).collect();
        let share = |k| picks.iter().filter(|p| **p == k).count();
        assert!(share(0) > 0 && share(1) > share(0) && share(1) > share(2));
        // One endpoint, several connections: the least loaded, as before.
        struct Same(Endpoint, Vec<usize>, PeakEwma);
        impl Candidates for Same {
            fn len(&self) -> usize {
                self.1.len()
            }
            fn get(&self, i: usize) -> Candidate<'_> {
                Candidate {
                    endpoint: &self.0,
                    load: self.1[i],
                    latency: &self.2,
                }
            }
        }
        let same = Same(
            Endpoint::named(Addr::Tcp("h".into(), 1)),
            vec![3, 1, 2, 1],
            PeakEwma::default(),
        );
        assert!((0..100).all(|_| b.pick(&same) == Some(1)));
        assert_eq!(b.pick(&list(&[])), None);
        assert_eq!(b.pick(&list(&[4])), Some(0));
    }
}
