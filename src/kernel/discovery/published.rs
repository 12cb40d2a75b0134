//! Sets published by code outside the kernel (a Python plug-in watching
//! ZooKeeper, Consul, ...): a process-wide registry of named sets. `publish`
//! may be called from any thread; it replaces the set and wakes the
//! services that follow the name (a `tokio::sync::watch` per name), and
//! costs a lock, a map look-up and the send. The kernel never calls the
//! publisher back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::common::Update;
use crate::kernel::endpoint::Endpoint;
use crate::kernel::transport::Addr;

type Set = Option<Arc<Vec<Endpoint>>>;

static REGISTRY: Mutex<Option<HashMap<String, watch::Sender<Set>>>> = Mutex::new(None);

fn with_sender<T>(name: &str, f: impl FnOnce(&watch::Sender<Set>) -> T) -> T {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let map = reg.get_or_insert_with(HashMap::new);
    let tx = map
        .entry(name.to_string())
        .or_insert_with(|| watch::channel(None).0);
    f(tx)
}

/// Replace the set published under `name`: (address, weight) pairs.
pub fn publish(name: &str, set: Vec<(Addr, u32)>) {
    let origin = format!("discovery:{name}");
    let eps: Vec<Endpoint> = set
        .into_iter()
        .map(|(addr, weight)| Endpoint {
            addr,
            origin: origin.clone(),
            tls_name: None,
            role: crate::kernel::endpoint::Role::Unknown,
            weight,
        })
        .collect();
    with_sender(name, |tx| {
        tx.send_replace(Some(Arc::new(eps)));
    });
}

/// The set published under `name` now (`None`: nothing yet).
pub fn current(name: &str) -> Option<Vec<Endpoint>> {
    with_sender(name, |tx| tx.borrow().as_deref().cloned())
}

/// Follow the set published under `name`.
pub(super) async fn follow(name: String, out: Update) {
    let mut rx = with_sender(&name, |tx| tx.subscribe());
    rx.mark_changed();
    loop {
        if rx.changed().await.is_err() {
            return; // never: the registry keeps every sender
        }
        let set = rx.borrow_and_update().clone();
        let sent = match set {
            Some(eps) => out.send(eps.to_vec()),
            None => out.failed(),
        };
        if !sent {
            return;
        }
    }
}
