//! DNS on the kernel thread (hickory-resolver on the kernel's tokio
//! runtime; no blocking `getaddrinfo`): a host name followed as its A and
//! AAAA records change, and an SRV name followed as its records (and their
//! targets' addresses) change.
//!
//! A name is asked again when its answer's TTL runs out (never sooner than
//! `MIN_TTL`, never later than the configured `max_ttl`), plus a little
//! jitter so that many processes do not ask at the same instant. A failed or
//! empty answer keeps the last good set (nothing is sent) and is asked again
//! after a backoff (1 s doubling, up to `max_ttl`).
//!
//! One resolver per kernel thread (its cache shared by every name the
//! services follow), rebuilt when the settings change
//! (`settings::configure`) and once it is `max_ttl` old; `/etc/hosts` and
//! `/etc/resolv.conf` are read when it is built (with configured servers,
//! only `/etc/hosts`).

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, NameServerConfigGroup, ResolveHosts, ResolverConfig,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol as DnsProtocol;
use hickory_resolver::TokioResolver;

use super::common::Update;
use super::settings::{self, MIN_TTL};
use crate::kernel::endpoint::Endpoint;
use crate::kernel::transport::Addr;

/// A kernel thread's resolver: the settings generation and when it was built.
struct Built {
    generation: u64,
    at: Instant,
    resolver: TokioResolver,
}

thread_local! {
    static RESOLVER: RefCell<Option<Built>> = const { RefCell::new(None) };
}

/// The kernel thread's resolver for the current settings, and the longest
/// time an answer is trusted. Rebuilt when the settings change, and once it
/// is `max_ttl` old, so that edits of `/etc/hosts` and `/etc/resolv.conf`
/// are seen within that time too.
fn resolver() -> Result<(TokioResolver, Duration), String> {
    let (s, generation) = settings::current()?;
    if let Some(r) = RESOLVER.with(|r| {
        r.borrow()
            .as_ref()
            .filter(|b| b.generation == generation && b.at.elapsed() < s.max_ttl)
            .map(|b| b.resolver.clone())
    }) {
        return Ok((r, s.max_ttl));
    }
    let mut builder = match &s.dns_servers {
        Some(servers) => {
            let mut group = NameServerConfigGroup::new();
            for a in servers {
                group.push(NameServerConfig::new(*a, DnsProtocol::Udp));
                group.push(NameServerConfig::new(*a, DnsProtocol::Tcp));
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], group),
                TokioConnectionProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio()
            .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?,
    };
    let o = builder.options_mut();
    o.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    o.use_hosts_file = ResolveHosts::Always;
    o.attempts = 1;
    o.timeout = Duration::from_secs(2);
    let r = builder.build();
    RESOLVER.with(|c| {
        *c.borrow_mut() = Some(Built {
            generation,
            at: Instant::now(),
            resolver: r.clone(),
        })
    });
    Ok((r, s.max_ttl))
}

/// A name's addresses and when the answer expires.
async fn lookup_ips(r: &TokioResolver, host: &str) -> Result<(Vec<IpAddr>, Instant), String> {
    let l = r.lookup_ip(host).await.map_err(|e| e.to_string())?;
    let mut ips: Vec<IpAddr> = l.iter().collect();
    ips.dedup();
    Ok((ips, l.valid_until()))
}

/// The endpoints a host name stands for now.
async fn resolve_host(
    r: &TokioResolver,
    host: &str,
    port: u16,
    origin: &str,
) -> Result<(Vec<Endpoint>, Instant), String> {
    let (ips, until) = lookup_ips(r, host).await?;
    let eps = ips
        .into_iter()
        .map(|ip| endpoint(ip, port, origin, host, 1))
        .collect();
    Ok((eps, until))
}

/// The endpoints an SRV name stands for now: the records of the lowest
/// priority (the others are backups), each target's addresses with the
/// record's port and weight (SRV weight 0 counts as 1: "rarely", not
/// "never").
async fn resolve_srv(r: &TokioResolver, name: &str) -> Result<(Vec<Endpoint>, Instant), String> {
    let l = r.srv_lookup(name).await.map_err(|e| e.to_string())?;
    let mut until = l.as_lookup().valid_until();
    let Some(best) = l.iter().map(|s| s.priority()).min() else {
        return Ok((Vec::new(), until));
    };
    let origin = format!("{name} (SRV)");
    let mut eps = Vec::new();
    for s in l.iter().filter(|s| s.priority() == best) {
        let target = s.target().to_utf8();
        let target = target.trim_end_matches('.');
        let (ips, u) = lookup_ips(r, target)
            .await
            .map_err(|e| format!("SRV target {target}: {e}"))?;
        until = until.min(u);
        for ip in ips {
            eps.push(endpoint(
                ip,
                s.port(),
                &origin,
                target,
                s.weight().max(1) as u32,
            ));
        }
    }
    Ok((eps, until))
}

/// An address resolved from `name` (TLS verifies the server as `name`).
fn endpoint(ip: IpAddr, port: u16, origin: &str, name: &str, weight: u32) -> Endpoint {
    Endpoint {
        addr: Addr::Tcp(ip.to_string(), port),
        origin: origin.to_string(),
        tls_name: Some(name.to_string()),
        role: crate::kernel::endpoint::Role::Unknown,
        weight,
    }
}

/// A random fraction in [0, 1).
fn fraction() -> f64 {
    let x = RandomState::new().build_hasher().finish();
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// When to ask again after an answer valid until `until`: its TTL, floored
/// at `MIN_TTL`, capped at `max_ttl`, plus up to 10 % (at most 1 s) jitter.
pub(super) fn refresh_after(until: Instant, now: Instant, max_ttl: Duration) -> Duration {
    let ttl = until.saturating_duration_since(now).clamp(MIN_TTL, max_ttl);
    ttl + (ttl / 10).min(Duration::from_secs(1)).mul_f64(fraction())
}

/// After `failures` failed or empty answers in a row: 1 s doubling, capped
/// at `max_ttl`, ±20 % jitter.
pub(super) fn retry_after(failures: u32, max_ttl: Duration) -> Duration {
    let base = MIN_TTL
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(max_ttl);
    base.mul_f64(0.8 + 0.4 * fraction())
}

/// What a DNS watch follows.
pub(super) enum Query {
    Host { host: String, port: u16 },
    Srv(String),
}

/// Follow `q` until the service stops (the task is aborted then, or `out`
/// is closed). Sends a set only when it differs from the last one sent.
pub(super) async fn follow(q: Query, origin: String, out: Update) {
    let mut last: Option<Vec<Endpoint>> = None;
    let mut failures = 0u32;
    loop {
        let (result, max_ttl) = match resolver() {
            Ok((r, max_ttl)) => {
                let res = match &q {
                    Query::Host { host, port } => resolve_host(&r, host, *port, &origin).await,
                    Query::Srv(name) => resolve_srv(&r, name).await,
                };
                (res, max_ttl)
            }
            Err(e) => (Err(e), settings::DEFAULT_MAX_TTL),
        };
        let wait = match result {
            Ok((eps, until)) if !eps.is_empty() => {
                failures = 0;
                if last.as_ref() != Some(&eps) {
                    if !out.send(eps.clone()) {
                        return;
                    }
                    last = Some(eps);
                }
                refresh_after(until, Instant::now(), max_ttl)
            }
            Ok(_) | Err(_) => {
                // Keep the last good set; the first failure is reported to
                // the service only so that it stops waiting for this name.
                failures += 1;
                if failures == 1 && last.is_none() && !out.failed() {
                    return;
                }
                retry_after(failures, max_ttl)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_follows_the_ttl_with_floor_cap_and_bounded_jitter() {
        let now = Instant::now();
        let cap = Duration::from_secs(60);
        for _ in 0..100 {
            let d = refresh_after(now + Duration::from_secs(5), now, cap);
            assert!(
                d >= Duration::from_secs(5) && d <= Duration::from_millis(5500),
                "{d:?}"
            );
            let d = refresh_after(now, now, cap);
            assert!(d >= MIN_TTL && d <= Duration::from_millis(1100), "{d:?}");
            let d = refresh_after(now + Duration::from_secs(86400), now, cap);
            assert!(d >= cap && d <= cap + Duration::from_secs(1), "{d:?}");
        }
    }

    #[test]
    fn retries_back_off_to_the_cap() {
        let cap = Duration::from_secs(10);
        for _ in 0..100 {
            let d1 = retry_after(1, cap);
            assert!(d1 >= Duration::from_millis(800) && d1 <= Duration::from_millis(1200));
            let d3 = retry_after(3, cap);
            assert!(d3 >= Duration::from_millis(3200) && d3 <= Duration::from_millis(4800));
            assert!(retry_after(40, cap) <= Duration::from_secs(12));
        }
    }
}
