//! Redis URLs: `redis://[user[:password]@]host[:port][,host[:port]...][/db][?client_name=..]`
//! and `unix:///path/to/socket[?db=N&username=..&password=..]`. Several
//! hosts are several endpoints; `redis+srv://_redis._tcp.name/0`,
//! `redis+discovery://source-name/0` and `redis+file://%2Fpath%2Fto%2Ffile/0`
//! take the endpoints from an SRV name, a published set or a watched file
//! (`kernel::discovery`).
//! `redis+sentinel://[user:password@]s1:26379,s2:26379/mymaster[/db]` asks
//! those sentinels for master `mymaster`'s primary and replicas and follows
//! its failovers (`redis_sentinel`); the user and password are
//! the data nodes', the sentinels' are `sentinel_username` /
//! `sentinel_password`. `read_from=primary|prefer_replica|replica` (any
//! URL) says where read-only commands go.
//! `rediss://` is the same over TLS, whose options (`ssl_*`, named as in
//! redis-py) may be query parameters too (`redis_tls`).
//! `rediss+sentinel://` (`valkeys+sentinel://`) reaches the data nodes and,
//! by default, the sentinels over TLS; `sentinel_ssl=false` and
//! `sentinel_ssl_<option>` change the sentinels' side only
//! (`redis_tls::sentinel_options`).
//! Percent-escapes in user and password are decoded. The display form used in
//! messages and status pages never contains the password.

use std::path::PathBuf;

use super::redis::RedisOptions;
use super::redis_sentinel::Sentinel;
use super::redis_sentinel_link::Auth;
pub use super::url::redact;
use super::url::{host_port, port as parse_port, scheme_source, source, unescape};
use crate::kernel::discovery::Source;
use crate::kernel::transport::Addr;

/// Sentinels' default port.
const SENTINEL_PORT: u16 = 26379;

#[derive(Debug, Clone, PartialEq)]
pub struct RedisUrl {
    /// The first of `addrs` (a placeholder when a `source` gives them).
    pub addr: Addr,
    /// Every host of the URL (`redis://h1:6379,h2:6379/0`), each followed
    /// by the kernel if it is a name; empty when `source` gives the
    /// endpoints.
    pub addrs: Vec<Addr>,
    /// `redis+srv://`, `redis+discovery://`, `redis+file://`: where the
    /// endpoints come from.
    pub source: Option<Source>,
    pub opts_user: Option<String>,
    pub opts_password: Option<String>,
    pub db: i64,
    pub client_name: Option<String>,
    /// `rediss://`.
    pub tls: bool,
    /// TLS options given as query parameters (`redis_tls::NAMES`).
    pub ssl: Vec<(String, String)>,
    /// The sentinels' own TLS options (`sentinel_ssl`, `sentinel_ssl_*`
    /// query parameters), named without the `sentinel_` prefix.
    pub sentinel_ssl: Vec<(String, String)>,
    /// `redis+sentinel://`: the sentinels, the master's name and the
    /// sentinels' `AUTH` (the data nodes' is filled in by `sentinel()`).
    pub sentinel: Option<Sentinel>,
    /// `read_from=` as given (checked by the client).
    pub read_from: Option<String>,
    /// The URL with the password replaced by `***`.
    pub display: String,
}

impl RedisUrl {
    /// The sentinel source, with the data nodes' user and password.
    pub fn sentinel(&self) -> Option<Sentinel> {
        self.sentinel.clone().map(|mut s| {
            s.data_auth = Auth {
                username: self.opts_user.clone(),
                password: self.opts_password.clone(),
            };
            s
        })
    }

    pub fn options(&self) -> RedisOptions {
        RedisOptions {
            username: self.opts_user.clone(),
            password: self.opts_password.clone(),
            db: self.db,
            client_name: self.client_name.clone(),
            limits: Default::default(),
        }
    }
}

fn parse_db(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .ok()
        .filter(|d| *d >= 0)
        .ok_or_else(|| format!("database must be a number >= 0, not {s:?}"))
}

/// Redis refuses a `CLIENT SETNAME` with spaces or other characters outside
/// `!`..`~`; say so now rather than fail every connection attempt.
fn check_client_name(v: String) -> Result<String, String> {
    if !v.is_empty() && v.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        Ok(v)
    } else {
        Err(format!(
            "client_name must be non-empty printable ASCII without spaces, not {v:?}"
        ))
    }
}

pub fn parse(url: &str) -> Result<RedisUrl, String> {
    let bad = |why: String| format!("invalid Redis URL {:?}: {why}", redact(url));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected redis://host:port/db".into()))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut u = RedisUrl {
        addr: Addr::Tcp(String::new(), 6379),
        addrs: Vec::new(),
        source: None,
        opts_user: None,
        opts_password: None,
        db: 0,
        client_name: None,
        tls: false,
        ssl: Vec::new(),
        sentinel_ssl: Vec::new(),
        sentinel: None,
        read_from: None,
        display: redact(url),
    };
    let sentinel_base = scheme.strip_suffix("+sentinel");
    let (base, source_kind) = match sentinel_base {
        Some(b @ ("redis" | "valkey" | "rediss" | "valkeys")) => (b, None),
        Some(other) => {
            return Err(bad(format!(
                "unknown scheme {other:?}+sentinel; use redis+sentinel:// or rediss+sentinel://"
            )))
        }
        None => scheme_source(scheme),
    };
    u.tls = matches!(base, "rediss" | "valkeys");
    match base {
        "redis" | "valkey" | "rediss" | "valkeys" => {
            let (auth, hostpart) = match rest.rsplit_once('@') {
                Some((a, h)) => (Some(a), h),
                None => (None, rest),
            };
            if let Some(a) = auth {
                let (user, pw) = match a.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => ("", Some(a)),
                };
                if !user.is_empty() {
                    u.opts_user = Some(unescape(user).map_err(bad)?);
                }
                u.opts_password = pw.map(unescape).transpose().map_err(bad)?;
            }
            let (hostport, path) = hostpart.split_once('/').unwrap_or((hostpart, ""));
            if sentinel_base.is_some() {
                let (master, db) = path.split_once('/').unwrap_or((path, ""));
                u.sentinel = Some(sentinel(hostport, master).map_err(bad)?);
                if !db.is_empty() {
                    u.db = parse_db(db).map_err(bad)?;
                }
            } else if !path.is_empty() {
                u.db = parse_db(path).map_err(bad)?;
            }
            if u.sentinel.is_some() {
                // The endpoints come from the sentinels.
            } else if let Some(kind) = source_kind {
                u.source = Some(source(kind, hostport).map_err(bad)?);
            } else {
                for hp in hostport.split(',') {
                    let (host, port) = host_port(hp).map_err(bad)?;
                    let host = if host.is_empty() { "localhost".into() } else { host };
                    u.addrs.push(Addr::Tcp(host, parse_port(port, 6379).map_err(bad)?));
                }
                u.addr = u.addrs[0].clone();
            }
        }
        "unix" | "redis+unix" if source_kind.is_none() => {
            if rest.is_empty() {
                return Err(bad("no socket path".into()));
            }
            u.addr = Addr::Unix(PathBuf::from(unescape(rest).map_err(bad)?));
            u.addrs = vec![u.addr.clone()];
        }
        other => {
            return Err(bad(format!(
                "unknown scheme {other:?}; use redis://, rediss://, unix://, redis+srv://, redis+discovery:// or redis+file://"
            )))
        }
    }
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = unescape(v).map_err(bad)?;
        match k {
            "db" => u.db = parse_db(&v).map_err(bad)?,
            "password" => u.opts_password = Some(v),
            "username" | "user" => u.opts_user = Some(v),
            "client_name" | "name" => u.client_name = Some(check_client_name(v).map_err(bad)?),
            "read_from" => u.read_from = Some(v),
            "sentinel_username" | "sentinel_password" => {
                let Some(s) = u.sentinel.as_mut() else {
                    return Err(bad(format!("{k} is for redis+sentinel:// URLs")));
                };
                if k == "sentinel_username" {
                    s.auth.username = Some(v);
                } else {
                    s.auth.password = Some(v);
                }
            }
            k if super::redis_tls::NAMES.contains(&k) => u.ssl.push((k.to_string(), v)),
            k if k
                .strip_prefix("sentinel_")
                .is_some_and(|n| super::redis_tls::NAMES.contains(&n)) =>
            {
                if u.sentinel.is_none() {
                    return Err(bad(format!("{k} is for rediss+sentinel:// URLs")));
                }
                u.sentinel_ssl.push((k["sentinel_".len()..].to_string(), v));
            }
            _ => {
                return Err(bad(format!(
                    "unknown option {k:?} (known: db, username, password, client_name, read_from, \
                     sentinel_username, sentinel_password, {}, and for sentinels \
                     sentinel_ssl and sentinel_ssl_*)",
                    super::redis_tls::NAMES.join(", ")
                )))
            }
        }
    }
    Ok(u)
}

/// The sentinels (`s1:26379,s2`) and the master's name of a
/// `redis+sentinel://` URL.
fn sentinel(hosts: &str, master: &str) -> Result<Sentinel, String> {
    let master = unescape(master)?;
    if master.is_empty() {
        return Err(
            "redis+sentinel:// URLs name the master after the sentinels, like \
             redis+sentinel://s1:26379,s2:26379/mymaster/0"
                .into(),
        );
    }
    let mut sentinels = Vec::new();
    for hp in hosts.split(',') {
        let (host, port) = host_port(hp)?;
        if host.is_empty() {
            return Err(format!("a sentinel with no host in {hosts:?}"));
        }
        sentinels.push(Addr::Tcp(host, parse_port(port, SENTINEL_PORT)?));
    }
    Ok(Sentinel {
        sentinels,
        master,
        auth: Auth::default(),
        data_auth: Auth::default(),
        via: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_urls() {
        let u = parse("redis://alice:s%40cret@10.0.0.1:7000/3?client_name=web").unwrap();
        assert_eq!(u.addr, Addr::Tcp("10.0.0.1".into(), 7000));
        assert_eq!(
            (u.opts_user.as_deref(), u.opts_password.as_deref()),
            (Some("alice"), Some("s@cret"))
        );
        assert_eq!((u.db, u.client_name.as_deref()), (3, Some("web")));
        assert_eq!(
            u.display,
            "redis://alice:***@10.0.0.1:7000/3?client_name=web"
        );
        let u = parse("redis://:pw@host").unwrap();
        assert_eq!(
            (u.opts_user, u.opts_password.as_deref(), u.db),
            (None, Some("pw"), 0)
        );
        assert_eq!(
            parse("redis://[::1]:6380/1").unwrap().addr,
            Addr::Tcp("::1".into(), 6380)
        );
        assert_eq!(
            parse("redis://").unwrap().addr,
            Addr::Tcp("localhost".into(), 6379)
        );
    }

    #[test]
    fn several_hosts_and_sources() {
        let u = parse("redis://:pw@h1:6379,h2,[::1]:7000/2").unwrap();
        assert_eq!(
            u.addrs,
            vec![
                Addr::Tcp("h1".into(), 6379),
                Addr::Tcp("h2".into(), 6379),
                Addr::Tcp("::1".into(), 7000)
            ]
        );
        assert_eq!(
            (u.addr.clone(), u.db, u.source),
            (u.addrs[0].clone(), 2, None)
        );
        let u = parse("redis+srv://_redis._tcp.cache.internal/1").unwrap();
        assert_eq!(
            u.source,
            Some(Source::Srv("_redis._tcp.cache.internal".into()))
        );
        assert!(u.addrs.is_empty() && u.db == 1);
        let u = parse("valkey+discovery://orders/0").unwrap();
        assert_eq!(u.source, Some(Source::Published("orders".into())));
        let u = parse("redis+file://%2Fetc%2Fr.hosts/3?client_name=x").unwrap();
        assert_eq!(u.source, Some(Source::File("/etc/r.hosts".into())));
        assert!(parse("redis+srv://a:1/0").unwrap_err().contains("no port"));
        assert!(parse("redis+discovery:///0")
            .unwrap_err()
            .contains("source"));
        assert!(parse("redis://h1,h2:0/0").unwrap_err().contains("port"));
        assert_eq!(
            parse("redis+unix:///tmp/s").unwrap().addrs,
            vec![Addr::Unix("/tmp/s".into())]
        );
    }

    #[test]
    fn sentinel_urls() {
        let u = parse(
            "redis+sentinel://u:pw@s1:26380,s2/mymaster/2?sentinel_password=sp&read_from=replica",
        )
        .unwrap();
        let s = u.sentinel().unwrap();
        assert_eq!(
            s.sentinels,
            vec![Addr::Tcp("s1".into(), 26380), Addr::Tcp("s2".into(), 26379)]
        );
        assert_eq!((s.master.as_str(), u.db), ("mymaster", 2));
        assert_eq!(s.auth.password.as_deref(), Some("sp"));
        assert_eq!(
            (
                s.data_auth.username.as_deref(),
                s.data_auth.password.as_deref()
            ),
            (Some("u"), Some("pw"))
        );
        assert_eq!(u.read_from.as_deref(), Some("replica"));
        assert!(u.addrs.is_empty() && u.source.is_none());
        assert!(
            !u.display.contains("pw@") && !u.display.contains("=sp"),
            "{}",
            u.display
        );
        assert_eq!(parse("redis+sentinel://s1/m").unwrap().db, 0);
        assert!(parse("redis+sentinel://s1/")
            .unwrap_err()
            .contains("name the master"));
        let u = parse("rediss+sentinel://s1/m?ssl_ca_certs=%2Fca.pem&sentinel_ssl=false").unwrap();
        assert!(u.tls && u.sentinel.is_some());
        assert_eq!(
            u.ssl,
            vec![("ssl_ca_certs".to_string(), "/ca.pem".to_string())]
        );
        assert_eq!(
            u.sentinel_ssl,
            vec![("ssl".to_string(), "false".to_string())]
        );
        let u = parse("valkeys+sentinel://s1/m?sentinel_ssl_ca_certs=%2Fs.pem").unwrap();
        assert!(u.tls);
        assert_eq!(
            u.sentinel_ssl,
            vec![("ssl_ca_certs".to_string(), "/s.pem".to_string())]
        );
        assert!(!parse("redis+sentinel://s1/m").unwrap().tls);
        assert!(parse("redis://h?sentinel_ssl=true")
            .unwrap_err()
            .contains("sentinel"));
        assert!(parse("redis+srv+sentinel://s1/m")
            .unwrap_err()
            .contains("scheme"));
        assert!(parse("redis://h?sentinel_password=x")
            .unwrap_err()
            .contains("redis+sentinel"));
    }

    #[test]
    fn unix_urls() {
        let u = parse("unix:///tmp/r.sock?db=2&password=x").unwrap();
        assert_eq!(u.addr, Addr::Unix("/tmp/r.sock".into()));
        assert_eq!((u.db, u.opts_password.as_deref()), (2, Some("x")));
        assert_eq!(u.display, "unix:///tmp/r.sock?db=2&password=***");
    }

    #[test]
    fn errors_are_clear_and_redacted() {
        let e = parse("redis://u:topsecret@h:99999/0").unwrap_err();
        assert!(e.contains("port") && !e.contains("topsecret"), "{e}");
        let u = parse("rediss://h:6390?ssl_cert_reqs=none&ssl_ca_certs=%2Fca.pem").unwrap();
        assert!(u.tls);
        assert_eq!(u.addr, Addr::Tcp("h".into(), 6390));
        assert_eq!(u.ssl[1], ("ssl_ca_certs".into(), "/ca.pem".into()));
        assert!(!parse("redis://h").unwrap().tls);
        assert!(parse("http://h").unwrap_err().contains("unknown scheme"));
        assert!(parse("redis://h/x").unwrap_err().contains("database"));
        assert!(parse("redis://h?bogus=1")
            .unwrap_err()
            .contains("unknown option"));
        assert!(parse("redis://h:0").unwrap_err().contains("port"));
        for name in ["a%20b", "", "caf%C3%A9"] {
            let e = parse(&format!("redis://h?client_name={name}")).unwrap_err();
            assert!(e.contains("client_name"), "{name}: {e}");
        }
    }
}
