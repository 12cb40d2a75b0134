//! Endpoints: where a service's connections go.
//!
//! A service is configured with *names* — what the URL says: a host and
//! port, or a socket path. A name stands for a set of *endpoints*, each a
//! socket address or path plus the name it came from (`origin`), its `role`
//! (primary / replica, where the protocol has them) and a `weight`; the set
//! changes at run time. Changes arrive as `Change::Insert` / `Change::Remove`
//! keyed by address, as tower's discovery streams them, or as a whole new set,
//! which `EndpointSet::diff` turns into such changes. Resolving names (DNS, a
//! file, plug-ins) is not done here: until a resolver does it, a name is its
//! one endpoint (`Endpoint::named`).
//!
//! `EndpointSet` is a service's current set, in the order endpoints arrived
//! (so ties go to the oldest), with a value of the service's own per
//! endpoint. It answers which endpoints a route may use (`target`), and the
//! choice of one endpoint by key: weighted rendezvous hashing, so a key stays
//! on its endpoint until that one leaves (or one that ranks higher for the
//! key arrives), and only the keys of a leaving endpoint move.
//!
//! No I/O and no tokio here; the service applies the set to connections.

use std::fmt;

use super::transport::Addr;
use super::{KernelError, Route};

/// What an endpoint is for, where the protocol has such a thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Primary,
    Replica,
    /// Not known (or the protocol has no roles): fits only `Role::Unknown`.
    Unknown,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
            Role::Unknown => "unknown",
        }
    }
}

/// One place to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The key of the endpoint in its set.
    pub addr: Addr,
    /// The name it was resolved from (for messages and the admin endpoint).
    pub origin: String,
    /// The host name `addr` was resolved from (a URL's host, an SRV
    /// target), which a TLS server certificate must be valid for; `None`:
    /// the address is its own name (an IP address is checked as one).
    pub tls_name: Option<String>,
    pub role: Role,
    /// Relative share of the traffic, for the choices that weigh endpoints
    /// (the choice by key does); 0 takes none of it.
    pub weight: u32,
}

impl Endpoint {
    /// A name that is its own endpoint: what a name resolves to until a
    /// resolver says otherwise.
    pub fn named(addr: Addr) -> Self {
        Endpoint {
            origin: addr.to_string(),
            addr,
            tls_name: None,
            role: Role::Unknown,
            weight: 1,
        }
    }

    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }
}

/// One change to an endpoint set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add the endpoint, or update the one with its address (role, weight,
    /// origin) without reconnecting.
    Insert(Endpoint),
    /// Remove the endpoint with this address: it takes no new traffic, and
    /// its connections close once what is in flight on them is answered.
    Remove(Addr),
}

/// What applying a change did.
#[derive(Debug)]
pub enum Applied<T> {
    /// A new endpoint, at this index.
    Added(usize),
    /// The endpoint at this index has new attributes.
    Updated(usize),
    /// The endpoint left, with the service's value for it.
    Removed(Endpoint, T),
    /// Nothing changed.
    Same,
}

pub struct Member<T> {
    pub endpoint: Endpoint,
    /// The address's hash, for the choice by key.
    hash: u64,
    pub data: T,
}

/// A service's current endpoints, each with a value of the service's own.
pub struct EndpointSet<T> {
    members: Vec<Member<T>>,
}

impl<T> Default for EndpointSet<T> {
    fn default() -> Self {
        EndpointSet {
            members: Vec::new(),
        }
    }
}

/// Which endpoints a route may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    All,
    Role(Role),
    /// Every endpoint but those with this role (unknown ones fit).
    Except(Role),
    /// The endpoint at this index.
    One(usize),
    /// None of them.
    Nothing,
}

impl Target {
    pub fn includes(self, index: usize, ep: &Endpoint) -> bool {
        match self {
            Target::All => true,
            Target::Role(r) => ep.role == r,
            Target::Except(r) => ep.role != r,
            Target::One(i) => i == index,
            Target::Nothing => false,
        }
    }
}

impl<T> EndpointSet<T> {
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Member<T>> {
        self.members.iter()
    }

    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Member<T>> {
        self.members.iter_mut()
    }

    pub fn get(&self, i: usize) -> &Member<T> {
        &self.members[i]
    }

    pub fn get_mut(&mut self, i: usize) -> &mut Member<T> {
        &mut self.members[i]
    }

    pub fn position(&self, addr: &Addr) -> Option<usize> {
        self.members.iter().position(|m| m.endpoint.addr == *addr)
    }

    pub fn find_mut(&mut self, addr: &Addr) -> Option<&mut Member<T>> {
        self.members.iter_mut().find(|m| m.endpoint.addr == *addr)
    }

    /// Apply one change; `make` gives a new endpoint its value.
    pub fn apply(&mut self, change: Change, make: impl FnOnce(&Endpoint) -> T) -> Applied<T> {
        match change {
            Change::Insert(ep) => match self.position(&ep.addr) {
                Some(i) if self.members[i].endpoint == ep => Applied::Same,
                Some(i) => {
                    self.members[i].endpoint = ep;
                    Applied::Updated(i)
                }
                None => {
                    let data = make(&ep);
                    self.members.push(Member {
                        hash: addr_hash(&ep.addr),
                        endpoint: ep,
                        data,
                    });
                    Applied::Added(self.members.len() - 1)
                }
            },
            Change::Remove(addr) => match self.position(&addr) {
                Some(i) => {
                    let m = self.members.remove(i);
                    Applied::Removed(m.endpoint, m.data)
                }
                None => Applied::Same,
            },
        }
    }

    /// The changes that turn this set into `new` (removals first). An
    /// address listed twice in `new` ends with its last attributes.
    pub fn diff(&self, new: &[Endpoint]) -> Vec<Change> {
        let mut out: Vec<Change> = self
            .members
            .iter()
            .filter(|m| !new.iter().any(|e| e.addr == m.endpoint.addr))
            .map(|m| Change::Remove(m.endpoint.addr.clone()))
            .collect();
        for e in new {
            if self
                .position(&e.addr)
                .is_none_or(|i| self.members[i].endpoint != *e)
            {
                out.push(Change::Insert(e.clone()));
            }
        }
        out
    }

    /// Which endpoints `route` may use. `Route::Dedicated` names a
    /// connection, not endpoints: it gets `Nothing`.
    pub fn target(&self, route: &Route) -> Target {
        match route {
            Route::Shared | Route::Read => Target::All,
            Route::Role(r) => Target::Role(*r),
            Route::Key(k) => self.by_key(*k).map_or(Target::Nothing, Target::One),
            Route::Endpoint(a) => self.position(a).map_or(Target::Nothing, Target::One),
            Route::Dedicated(_) => Target::Nothing,
        }
    }

    /// The endpoint `key` maps to: weighted rendezvous hashing (each
    /// endpoint scores `weight / -ln(u)` with `u` uniform in (0, 1) from the
    /// key and the address; the highest wins). `None` if no endpoint has
    /// weight.
    pub fn by_key(&self, key: u64) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (i, m) in self.members.iter().enumerate() {
            if m.endpoint.weight == 0 {
                continue;
            }
            let u = ((mix(key ^ m.hash) >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            let score = m.endpoint.weight as f64 / -u.ln();
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| i)
    }

    /// The endpoints, for messages: "a:1 (primary), b:2".
    pub fn describe(&self) -> String {
        if self.members.is_empty() {
            return "none".into();
        }
        let mut s = String::new();
        for (i, m) in self.members.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&m.endpoint.addr.to_string());
            if m.endpoint.role != Role::Unknown {
                s.push_str(&format!(" ({})", m.endpoint.role.name()));
            }
        }
        s
    }
}

/// FNV-1a of the address as written: the same address hashes the same in
/// every process (a key's endpoint does not depend on who asks).
fn addr_hash(addr: &Addr) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in addr.to_string().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// splitmix64's finaliser: every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Shared => f.write_str("any endpoint"),
            Route::Read => f.write_str("a read"),
            Route::Role(r) => write!(f, "role {}", r.name()),
            Route::Key(k) => write!(f, "key {k:#x}"),
            Route::Endpoint(a) => write!(f, "endpoint {a}"),
            Route::Dedicated(id) => write!(f, "dedicated connection {id}"),
        }
    }
}

/// No endpoint of a service fits a request's route (a role nobody has, an
/// address not in the set, an empty set). Callers see it as a
/// `ConnectionError` whose message names the service, the route and the
/// endpoints there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoEndpoint {
    pub service: String,
    pub route: Route,
    /// The endpoints there are (`EndpointSet::describe`).
    pub endpoints: String,
}

impl fmt::Display for NoEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: no endpoint fits the request's route ({}); the service's endpoints: {}",
            self.service, self.route, self.endpoints
        )
    }
}

impl From<NoEndpoint> for KernelError {
    fn from(e: NoEndpoint) -> Self {
        KernelError::connection(e.to_string()).because(super::Reason::NoEndpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(port: u16) -> Endpoint {
        Endpoint::named(Addr::Tcp("10.0.0.1".into(), port))
    }

    fn set(ports: &[u16]) -> EndpointSet<()> {
        let mut s = EndpointSet::default();
        for p in ports {
            s.apply(Change::Insert(ep(*p)), |_| ());
        }
        s
    }

    #[test]
    fn insert_update_remove() {
        let mut s = set(&[1, 2]);
        assert!(matches!(
            s.apply(Change::Insert(ep(1)), |_| ()),
            Applied::Same
        ));
        let primary = ep(1).with_role(Role::Primary);
        assert!(matches!(
            s.apply(Change::Insert(primary.clone()), |_| ()),
            Applied::Updated(0)
        ));
        assert_eq!(s.get(0).endpoint, primary);
        assert!(matches!(
            s.apply(Change::Insert(ep(3)), |_| ()),
            Applied::Added(2)
        ));
        match s.apply(Change::Remove(ep(1).addr), |_| ()) {
            Applied::Removed(e, ()) => assert_eq!(e, primary),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.apply(Change::Remove(ep(1).addr), |_| ()),
            Applied::Same
        ));
        assert_eq!(s.describe(), "10.0.0.1:2, 10.0.0.1:3");
    }

    #[test]
    fn diff_removes_then_inserts_what_is_new_or_changed() {
        let s = set(&[1, 2, 3]);
        let replica = ep(2).with_role(Role::Replica);
        let d = s.diff(&[ep(1), replica.clone(), ep(4)]);
        assert_eq!(
            d,
            vec![
                Change::Remove(ep(3).addr),
                Change::Insert(replica),
                Change::Insert(ep(4))
            ]
        );
        assert!(s.diff(&[ep(1), ep(2), ep(3)]).is_empty());
    }

    #[test]
    fn targets() {
        let mut s = set(&[1, 2]);
        s.apply(Change::Insert(ep(2).with_role(Role::Replica)), |_| ());
        assert_eq!(s.target(&Route::Shared), Target::All);
        assert_eq!(s.target(&Route::Endpoint(ep(2).addr)), Target::One(1));
        assert_eq!(s.target(&Route::Endpoint(ep(9).addr)), Target::Nothing);
        assert_eq!(s.target(&Route::Dedicated(1)), Target::Nothing);
        let t = s.target(&Route::Role(Role::Replica));
        assert!(!t.includes(0, &s.get(0).endpoint) && t.includes(1, &s.get(1).endpoint));
        assert!(matches!(s.target(&Route::Key(7)), Target::One(_)));
        assert_eq!(
            EndpointSet::<()>::default().target(&Route::Key(7)),
            Target::Nothing
        );
    }

    #[test]
    fn keys_spread_and_only_a_leaving_endpoints_keys_move() {
        let s = set(&[1, 2, 3]);
        let before: Vec<Addr> = (0..3000u64)
            .map(|k| s.get(s.by_key(k).unwrap()).endpoint.addr.clone())
            .collect();
        for p in [1, 2, 3] {
            let n = before.iter().filter(|a| **a == ep(p).addr).count();
            assert!(
                (800..1200).contains(&n),
                "endpoint {p} got {n} of 3000 keys"
            );
        }
        let mut s = s;
        s.apply(Change::Remove(ep(2).addr), |_| ());
        for (k, was) in before.iter().enumerate() {
            let now = &s.get(s.by_key(k as u64).unwrap()).endpoint.addr;
            if *was != ep(2).addr {
                assert_eq!(now, was, "key {k} moved though its endpoint stayed");
            }
        }
    }

    #[test]
    fn weight_shares_keys_and_zero_takes_none() {
        let mut s = set(&[1, 2]);
        s.apply(Change::Insert(ep(1).with_weight(3)), |_| ());
        let on1 = (0..4000u64).filter(|k| s.by_key(*k) == Some(0)).count();
        assert!(
            (2700..3300).contains(&on1),
            "weight 3 of 4 got {on1} of 4000"
        );
        s.apply(Change::Insert(ep(1).with_weight(0)), |_| ());
        assert!((0..100u64).all(|k| s.by_key(k) == Some(1)));
        s.apply(Change::Insert(ep(2).with_weight(0)), |_| ());
        assert_eq!(s.by_key(5), None);
    }

    #[test]
    fn no_endpoint_names_service_route_and_endpoints() {
        let e = KernelError::from(NoEndpoint {
            service: "lines://x".into(),
            route: Route::Role(Role::Replica),
            endpoints: set(&[1]).describe(),
        });
        assert_eq!(e.kind, super::super::ErrorKind::Connection);
        assert_eq!(
            e.detail,
            "lines://x: no endpoint fits the request's route (role replica); the service's endpoints: 10.0.0.1:1"
        );
    }
}
