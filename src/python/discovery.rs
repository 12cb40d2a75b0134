//! Name discovery as Python sees it: the process-wide DNS settings
//! (`iokernel.configure(dns_servers=..., dns_max_ttl=...)`) and sets
//! published by plug-ins (`iokernel.discovery.Source.publish`). Both only
//! store and signal; the kernel picks them up on its own thread.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::kernel::discovery::{parse_endpoint, published, settings};

/// Set the DNS servers (`set_servers`: `servers`, or the system's when
/// `None`) and/or the longest time an answer is trusted (`max_ttl` s).
/// Returns the settings now: (servers as "ip:port" or None, max_ttl s).
#[pyfunction]
#[pyo3(signature = (servers, set_servers, max_ttl = None))]
pub fn discovery_configure(
    servers: Option<Vec<String>>,
    set_servers: bool,
    max_ttl: Option<f64>,
) -> PyResult<(Option<Vec<String>>, f64)> {
    let servers = if set_servers {
        Some(
            servers
                .map(|v| {
                    if v.is_empty() {
                        return Err("dns_servers is empty; give at least one \"ip[:port]\", or None for the system's".to_string());
                    }
                    v.iter().map(|s| settings::parse_server(s.trim())).collect()
                })
                .transpose()
                .map_err(|e| PyValueError::new_err(format!("dns_servers: {e}")))?,
        )
    } else {
        None
    };
    let max_ttl = max_ttl
        .map(|t| {
            if t.is_finite() && t > 0.0 && t <= 86_400.0 * 7.0 {
                Ok(Duration::from_secs_f64(t))
            } else {
                Err(PyValueError::new_err(format!(
                    "dns_max_ttl must be a number of seconds from 1 to 604800, not {t}"
                )))
            }
        })
        .transpose()?;
    let s = settings::configure(servers, max_ttl).map_err(PyValueError::new_err)?;
    Ok((
        s.dns_servers
            .map(|v| v.iter().map(ToString::to_string).collect()),
        s.max_ttl.as_secs_f64(),
    ))
}

/// Replace the set published under `name` by `entries`: ("host:port",
/// weight) pairs. Raises ValueError (and publishes nothing) if one is bad.
#[pyfunction]
pub fn discovery_publish(name: &str, entries: Vec<(String, u32)>) -> PyResult<()> {
    let mut set = Vec::with_capacity(entries.len());
    for (i, (a, w)) in entries.iter().enumerate() {
        let addr = parse_endpoint(a).map_err(|e| {
            PyValueError::new_err(format!(
                "discovery source {name:?}: entry {i}: {e}; nothing was published"
            ))
        })?;
        set.push((addr, *w));
    }
    published::publish(name, set);
    Ok(())
}

/// The set published under `name` now: ("address", weight) pairs, or None
/// if nothing was published yet.
#[pyfunction]
pub fn discovery_current(name: &str) -> Option<Vec<(String, u32)>> {
    published::current(name).map(|eps| eps.iter().map(|e| (e.addr.to_string(), e.weight)).collect())
}

/// Fail now (ValueError) if `IOKERNEL_DNS_SERVERS` is malformed, rather
/// than quietly ignore it.
pub fn check_settings() -> PyResult<()> {
    settings::current()
        .map(|_| ())
        .map_err(PyValueError::new_err)
}
