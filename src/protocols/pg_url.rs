//! PostgreSQL connection URLs, as libpq reads them:
//! `postgresql://[user[:password]@][host][:port][/dbname][?param=value&...]`
//! (also `postgres://`). A Unix-socket directory can be given as the host
//! (percent-encoded, `%2Frun%2Fpostgresql`) or as `?host=/run/postgresql`.
//! Known parameters: `application_name`, `connect_timeout` (seconds, at
//! most a year; 0, which libpq reads as "no limit", keeps the default, as a
//! connection attempt here always has a limit), the TLS ones (`sslmode`,
//! `sslrootcert`, `sslcert`, `sslkey`, `sslnegotiation`: collected in `ssl`,
//! resolved by `pg_tls`), `user`, `password`, `dbname`, `host`, `port`. The
//! display form never contains the password.
//! Several hosts (`h1:5432,h2:5433`, or `?host=h1,h2&port=5432,5433`) are
//! several endpoints of one service (balanced, not tried in order as libpq
//! does); `postgresql+srv://user@_pg._tcp.name/db`,
//! `postgresql+discovery://user@source-name/db` and
//! `postgresql+file://user@%2Fpath%2Fto%2Ffile/db` take them from an SRV
//! name, a published set or a watched file (`kernel::discovery`).

use std::path::PathBuf;
use std::time::Duration;

use super::url::{host_port, port as parse_port, redact, scheme_source, source, unescape};
use crate::kernel::attrs::Attrs;
use crate::kernel::discovery::Source;
use crate::kernel::transport::Addr;

#[derive(Debug, Clone, PartialEq)]
pub struct PgUrl {
    /// The first of `addrs` (a placeholder when a `source` gives them).
    pub addr: Addr,
    /// Every host (`postgresql://h1:5432,h2:5433/app`, or `?host=h1,h2&port=..`),
    /// each followed by the kernel if it is a name; empty with a `source`.
    pub addrs: Vec<Addr>,
    /// `postgresql+srv://`, `+discovery://`, `+file://`: where the
    /// endpoints come from.
    pub source: Option<Source>,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub application_name: Option<String>,
    pub connect_timeout: Option<Duration>,
    /// TLS parameters as given (`pg_tls::NAMES`), in order.
    pub ssl: Vec<(String, String)>,
    /// `target_session_attrs`, `load_balance_hosts`.
    pub attrs: Attrs,
    pub display: String,
}

/// `connect_timeout=`: seconds >= 0 and at most a year (0: not set); at
/// least 1 s when set, as libpq rounds tiny values up.
fn parse_connect_timeout(v: &str) -> Result<Option<Duration>, String> {
    let bad =
        || format!("connect_timeout must be a number of seconds from 0 to 31536000, not {v:?}");
    let secs: f64 = v.parse().map_err(|_| bad())?;
    if !(0.0..=31_536_000.0).contains(&secs) {
        return Err(bad()); // also NaN and infinity
    }
    Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs.max(1.0))))
}

pub fn parse(url: &str) -> Result<PgUrl, String> {
    let bad = |why: String| format!("invalid PostgreSQL URL {:?}: {why}", redact(url));
    let expected = || bad("expected postgresql://user:password@host:port/dbname".into());
    let (scheme, rest) = url.split_once("://").ok_or_else(expected)?;
    let (base, source_kind) = scheme_source(scheme);
    if base != "postgresql" && base != "postgres" {
        return Err(expected());
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (netloc, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (auth, hostport) = match netloc.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, netloc),
    };
    let mut user = None;
    let mut password = None;
    if let Some(a) = auth {
        let (u, p) = a
            .split_once(':')
            .map(|(u, p)| (u, Some(p)))
            .unwrap_or((a, None));
        if !u.is_empty() {
            user = Some(unescape(u).map_err(bad)?);
        }
        password = p.map(unescape).transpose().map_err(bad)?;
    }
    let mut hosts: Vec<(String, Option<String>)> = Vec::new();
    if source_kind.is_none() {
        for hp in hostport.split(',') {
            let (h, p) = host_port(hp).map_err(bad)?;
            hosts.push((h, p.map(str::to_string)));
        }
    }
    let mut query_ports: Option<String> = None;
    let mut database = if path.is_empty() {
        None
    } else {
        Some(unescape(path).map_err(bad)?)
    };
    let mut application_name = None;
    let mut connect_timeout = None;
    let mut ssl = Vec::new();
    let (mut tsa, mut lbh) = (None, None);
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = unescape(v).map_err(bad)?;
        match k {
            "application_name" => application_name = Some(v),
            "target_session_attrs" => tsa = Some(v),
            "load_balance_hosts" => lbh = Some(v),
            "connect_timeout" => connect_timeout = parse_connect_timeout(&v).map_err(bad)?,
            k if super::pg_tls::NAMES.contains(&k) => ssl.push((k.to_string(), v)),
            "user" => user = Some(v),
            "password" => password = Some(v),
            "dbname" => database = Some(v),
            "host" if source_kind.is_none() => {
                hosts = v.split(',').map(|h| (h.to_string(), None)).collect()
            }
            "port" => query_ports = Some(v),
            _ => {
                return Err(bad(format!(
                    "unknown parameter {k:?} (known: application_name, connect_timeout, target_session_attrs, load_balance_hosts, {}, user, password, dbname, host, port)",
                    super::pg_tls::NAMES.join(", ")
                )))
            }
        }
    }
    // libpq: `?port=` gives one port for every host, or one per host.
    if let Some(ps) = &query_ports {
        let ps: Vec<&str> = ps.split(',').collect();
        if ps.len() != 1 && ps.len() != hosts.len() {
            return Err(bad(format!(
                "{} ports for {} hosts; give one port, or one per host",
                ps.len(),
                hosts.len()
            )));
        }
        for (i, h) in hosts.iter_mut().enumerate() {
            h.1 = Some(ps[if ps.len() == 1 { 0 } else { i }].to_string());
        }
    }
    let mut addrs = Vec::new();
    for (host, port) in hosts {
        let port = parse_port(port.as_deref(), 5432).map_err(bad)?;
        addrs.push(if host.starts_with('/') {
            Addr::Unix(PathBuf::from(host).join(format!(".s.PGSQL.{port}")))
        } else {
            Addr::Tcp(
                if host.is_empty() {
                    "localhost".into()
                } else {
                    host
                },
                port,
            )
        });
    }
    let source = source_kind
        .map(|k| source(k, hostport))
        .transpose()
        .map_err(bad)?;
    let user =
        user.ok_or_else(|| bad("no user name (postgresql://user:password@host/db)".into()))?;
    Ok(PgUrl {
        addr: addrs
            .first()
            .cloned()
            .unwrap_or_else(|| Addr::Tcp(String::new(), 5432)),
        addrs,
        source,
        database: database.unwrap_or_else(|| user.clone()),
        user,
        password,
        application_name,
        connect_timeout,
        ssl,
        attrs: Attrs::parse(tsa.as_deref(), lbh.as_deref()).map_err(bad)?,
        display: redact(url),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_urls() {
        let u = parse(
            "postgresql://app:s%40cret@127.0.0.1:5433/shop?application_name=web&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(u.addr, Addr::Tcp("127.0.0.1".into(), 5433));
        assert_eq!(
            (u.user.as_str(), u.password.as_deref(), u.database.as_str()),
            ("app", Some("s@cret"), "shop")
        );
        assert_eq!(u.application_name.as_deref(), Some("web"));
        assert_eq!(u.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(
            u.display,
            "postgresql://app:***@127.0.0.1:5433/shop?application_name=web&connect_timeout=3"
        );
        let u = parse("postgres://bob@%2Frun%2Fpostgresql/db").unwrap();
        assert_eq!(u.addr, Addr::Unix("/run/postgresql/.s.PGSQL.5432".into()));
        let u = parse("postgresql://bob@/db?host=/tmp&port=6000").unwrap();
        assert_eq!(u.addr, Addr::Unix("/tmp/.s.PGSQL.6000".into()));
        assert_eq!(parse("postgresql://bob@h").unwrap().database, "bob");
    }

    #[test]
    fn several_hosts_and_sources() {
        let u = parse("postgresql://app@h1:5432,h2:5433/app").unwrap();
        assert_eq!(
            u.addrs,
            vec![Addr::Tcp("h1".into(), 5432), Addr::Tcp("h2".into(), 5433)]
        );
        let u = parse("postgresql://app@/app?host=h1,h2&port=6000").unwrap();
        assert_eq!(
            u.addrs,
            vec![Addr::Tcp("h1".into(), 6000), Addr::Tcp("h2".into(), 6000)]
        );
        let u = parse("postgresql://app@x/app?host=a,b&port=1,2").unwrap();
        assert_eq!(
            u.addrs,
            vec![Addr::Tcp("a".into(), 1), Addr::Tcp("b".into(), 2)]
        );
        assert!(parse("postgresql://app@/app?host=a,b,c&port=1,2")
            .unwrap_err()
            .contains("2 ports for 3 hosts"));
        let u = parse("postgresql+srv://app@_pg._tcp.db.internal/app").unwrap();
        assert_eq!(u.source, Some(Source::Srv("_pg._tcp.db.internal".into())));
        assert!(u.addrs.is_empty());
        let u = parse("postgres+discovery://app:pw@orders-db/app").unwrap();
        assert_eq!(u.source, Some(Source::Published("orders-db".into())));
        assert!(!u.display.contains("pw"));
        assert!(parse("postgresql+srv://app@a:1/x")
            .unwrap_err()
            .contains("no port"));
    }

    #[test]
    fn errors_are_clear_and_redacted() {
        let e = parse("postgresql://u:topsecret@h/db?sslmod=require").unwrap_err();
        assert!(e.contains("sslmode") && !e.contains("topsecret"), "{e}");
        let u = parse("postgresql://u@h/db?sslmode=verify-full&sslrootcert=%2Fca.pem").unwrap();
        assert_eq!(u.ssl[1], ("sslrootcert".into(), "/ca.pem".into()));
        assert!(parse("postgresql://h/db").unwrap_err().contains("no user"));
        assert!(parse("postgresql://u@h/db?bogus=1")
            .unwrap_err()
            .contains("unknown parameter"));
        assert!(parse("mysql://u@h").is_err());
        assert!(parse("postgresql://u@h:0/db").unwrap_err().contains("port"));
    }

    #[test]
    fn connect_timeout_is_checked() {
        let t = |v: &str| parse(&format!("postgresql://u@h/db?connect_timeout={v}"));
        assert_eq!(t("0").unwrap().connect_timeout, None);
        assert_eq!(
            t("0.2").unwrap().connect_timeout,
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            t("2.5").unwrap().connect_timeout,
            Some(Duration::from_millis(2500))
        );
        for v in ["-1", "NaN", "inf", "1e300", "abc", ""] {
            let e = t(v).unwrap_err();
            assert!(e.contains("connect_timeout"), "{v}: {e}");
        }
    }
}
