//! Process-wide settings of name discovery: which DNS servers to ask (the
//! system's `/etc/resolv.conf` unless set) and the longest time a DNS answer
//! is trusted before it is asked again (`max_ttl`).
//!
//! Set by `configure` (Python: `iokernel.configure(dns_servers=...)`) or by
//! the environment (`IOKERNEL_DNS_SERVERS=127.0.0.1:5353,10.0.0.2`, read once,
//! on first use). Each change bumps a generation; the kernel's resolver is
//! rebuilt when it sees a new one, so names that services already follow are
//! asked of the new servers from their next refresh on (their endpoints stay
//! until then).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Names are asked again at most this long after an answer, whatever its
/// TTL (unless configured otherwise).
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(60);
/// Nor sooner than this, whatever its TTL.
pub const MIN_TTL: Duration = Duration::from_secs(1);

pub const ENV_SERVERS: &str = "IOKERNEL_DNS_SERVERS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `None`: the system's configuration (`/etc/resolv.conf`).
    pub dns_servers: Option<Vec<SocketAddr>>,
    pub max_ttl: Duration,
}

struct Current {
    settings: Settings,
    generation: u64,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// `"127.0.0.1:5353, 10.0.0.2"` (port 53 when none is given; IPv6 as
/// `[::1]:5353` or a bare `::1`).
pub fn parse_servers(s: &str) -> Result<Vec<SocketAddr>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        out.push(parse_server(part)?);
    }
    if out.is_empty() {
        return Err(format!(
            "no DNS server in {s:?}; give ip[:port], comma-separated"
        ));
    }
    Ok(out)
}

pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "DNS server {s:?} is not an IP address with an optional port (like 127.0.0.1:5353 or [::1]:53)"
    ))
}

fn load(cur: &mut Option<Current>) -> Result<&mut Current, String> {
    if cur.is_none() {
        let dns_servers = match std::env::var(ENV_SERVERS) {
            Ok(v) if !v.trim().is_empty() => {
                Some(parse_servers(&v).map_err(|e| format!("{ENV_SERVERS}: {e}"))?)
            }
            _ => None,
        };
        *cur = Some(Current {
            settings: Settings {
                dns_servers,
                max_ttl: DEFAULT_MAX_TTL,
            },
            generation: GENERATION.fetch_add(1, Ordering::Relaxed) + 1,
        });
    }
    Ok(cur.as_mut().expect("loaded above"))
}

/// The settings now and their generation. Fails only if the environment
/// variable is malformed (the message says which and why).
pub fn current() -> Result<(Settings, u64), String> {
    let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    let c = load(&mut cur)?;
    Ok((c.settings.clone(), c.generation))
}

/// Change the settings: `dns_servers` `Some(None)` goes back to the system's
/// configuration; `None` leaves a setting as it is.
pub fn configure(
    dns_servers: Option<Option<Vec<SocketAddr>>>,
    max_ttl: Option<Duration>,
) -> Result<Settings, String> {
    if let Some(t) = max_ttl {
        if t < MIN_TTL {
            return Err(format!(
                "dns_max_ttl must be at least {} s, not {t:?}",
                MIN_TTL.as_secs()
            ));
        }
    }
    let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    // A malformed environment variable is overridden by an explicit list.
    if cur.is_none() && dns_servers.is_some() {
        *cur = Some(Current {
            settings: Settings {
                dns_servers: None,
                max_ttl: DEFAULT_MAX_TTL,
            },
            generation: 0,
        });
    }
    let c = load(&mut cur)?;
    if let Some(s) = dns_servers {
        c.settings.dns_servers = s;
    }
    if let Some(t) = max_ttl {
        c.settings.max_ttl = t;
    }
    c.generation = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(c.settings.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse_with_default_port_and_clear_errors() {
        assert_eq!(
            parse_servers("127.0.0.1:5353, 10.0.0.2,[::1]:54").unwrap(),
            vec![
                "127.0.0.1:5353".parse().unwrap(),
                "10.0.0.2:53".parse().unwrap(),
                "[::1]:54".parse().unwrap()
            ]
        );
        assert_eq!(
            parse_servers("::1").unwrap(),
            vec!["[::1]:53".parse().unwrap()]
        );
        assert!(parse_servers(" , ").unwrap_err().contains("no DNS server"));
        let e = parse_servers("dns.example:53").unwrap_err();
        assert!(
            e.contains("dns.example:53") && e.contains("IP address"),
            "{e}"
        );
    }
}
