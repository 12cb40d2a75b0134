//! How a `PgService` opens: the DSN, libpq's TLS environment variables and
//! the constructor's keyword arguments become the protocol's options
//! (`Postgres`) and the kernel service's configuration; bad values are
//! refused here with `ValueError`, before anything connects.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::codec::pg as wire;
use crate::kernel::service::ServiceConfig;
use crate::protocols::pg::{PgOptions, Postgres};
use crate::protocols::pg_tls::{self, PgConnector};
use crate::protocols::pg_url;
use crate::python::core::wait::seconds;

/// `PgService(...)`'s keyword arguments (their defaults are there).
pub(super) struct Knobs {
    pub connections: usize,
    pub max_in_flight: usize,
    pub max_queued: usize,
    pub statement_cache_size: usize,
    pub connect_timeout: Option<f64>,
    pub idle_ping: Option<f64>,
    pub max_dedicated: usize,
    pub max_message_size: usize,
    pub listen: Vec<String>,
    pub ssl: Vec<(String, String)>,
    pub idempotent: bool,
}

/// The protocol and the service configuration for `dsn` and `k`.
pub(super) fn configure(dsn: &str, k: Knobs) -> PyResult<(Postgres, ServiceConfig)> {
    let u = pg_url::parse(dsn).map_err(PyValueError::new_err)?;
    // TLS: libpq's environment variables, then the URL, then keyword
    // arguments (the last wins).
    let env = pg_tls::ENV
        .iter()
        .filter_map(|(var, name)| std::env::var(var).ok().map(|v| (name.to_string(), v)));
    let params: Vec<_> = env.chain(u.ssl.iter().cloned()).chain(k.ssl).collect();
    let tls = pg_tls::settings(&params).map_err(PyValueError::new_err)?;
    let connector = PgConnector::new(&tls);
    let cancel_via = connector.pinned();
    let retry = connector
        .retry()
        .map(|c| (c, tls.mode == pg_tls::SslMode::Prefer));
    if k.connections == 0 || k.max_in_flight == 0 || k.max_dedicated == 0 {
        return Err(PyValueError::new_err(
            "connections, max_in_flight and max_dedicated must be at least 1",
        ));
    }
    let connect_timeout = k
        .connect_timeout
        .map(|t| seconds("connect_timeout", t))
        .transpose()?
        .or(u.connect_timeout)
        .unwrap_or(Duration::from_secs(10));
    let opts = PgOptions {
        user: u.user.clone(),
        password: u.password.clone(),
        database: u.database.clone(),
        application_name: u.application_name.clone(),
        statement_cache: k.statement_cache_size,
        limits: wire::Limits {
            // The length header counts itself: at least that much.
            max_message: k.max_message_size.max(5),
        },
        listen: k.listen,
        check_role: u.attrs.needs_role(),
    };
    let cfg = ServiceConfig {
        name: u.display.clone(),
        names: u.addrs.clone(),
        sources: u.source.clone().into_iter().collect(),
        connect_timeout,
        max_in_flight: k.max_in_flight,
        max_queued: k.max_queued,
        idle_ping: k.idle_ping.map(|p| seconds("idle_ping", p)).transpose()?,
        conns_per_addr: k.connections,
        max_dedicated: k.max_dedicated,
        connector: std::sync::Arc::new(connector),
        balancer: crate::kernel::balance::peak_ewma_p2c(),
        idempotent: k.idempotent,
        attrs: u.attrs,
    };
    Ok((
        Postgres {
            opts,
            retry,
            cancel_via,
        },
        cfg,
    ))
}
