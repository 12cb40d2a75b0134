//! PostgreSQL connection URLs, as libpq reads them:
//! `postgresql://[user[:password]@][host][:port][/dbname][?param=value&...]`
//! (also `postgres://`). A Unix-socket directory can be given as the host
//! (percent-encoded, `%2Frun%2Fpostgresql`) or as `?host=/run/postgresql`.
//! Known parameters: `application_name`, `connect_timeout` (seconds, at
//! most a year; 0, which libpq reads as "no limit", keeps the default, as a
//! connection attempt here always has a limit),
//! `sslmode` (disable/allow/prefer: no TLS is used; require and stronger are
//! refused, since TLS is not supported yet), `user`, `password`, `dbname`,
//! `host`, `port`. The display form never contains the password.

use std::path::PathBuf;
use std::time::Duration;

use super::url::{redact, unescape};
use crate::kernel::transport::Addr;

#[derive(Debug, Clone, PartialEq)]
pub struct PgUrl {
    pub addr: Addr,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub application_name: Option<String>,
    pub connect_timeout: Option<Duration>,
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
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or_else(|| bad("expected postgresql://user:password@host:port/dbname".into()))?;
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
    let (mut host, mut port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h
            .split_once(']')
            .ok_or_else(|| bad("unclosed '[' in IPv6 host".into()))?;
        (h.to_string(), p.strip_prefix(':').map(str::to_string))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (unescape(h).map_err(bad)?, Some(p.to_string())),
            None => (unescape(hostport).map_err(bad)?, None),
        }
    };
    let mut database = if path.is_empty() {
        None
    } else {
        Some(unescape(path).map_err(bad)?)
    };
    let mut application_name = None;
    let mut connect_timeout = None;
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = unescape(v).map_err(bad)?;
        match k {
            "application_name" => application_name = Some(v),
            "connect_timeout" => connect_timeout = parse_connect_timeout(&v).map_err(bad)?,
            "sslmode" => match v.as_str() {
                "disable" | "allow" | "prefer" => {}
                other => {
                    return Err(bad(format!(
                        "sslmode={other} needs TLS, which iokernel does not support yet; use sslmode=disable on a trusted network"
                    )))
                }
            },
            "user" => user = Some(v),
            "password" => password = Some(v),
            "dbname" => database = Some(v),
            "host" => host = v,
            "port" => port = Some(v),
            _ => {
                return Err(bad(format!(
                    "unknown parameter {k:?} (known: application_name, connect_timeout, sslmode, user, password, dbname, host, port)"
                )))
            }
        }
    }
    let port: u16 = match port.as_deref() {
        None | Some("") => 5432,
        Some(p) => p
            .parse()
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(|| bad(format!("port must be 1-65535, not {p:?}")))?,
    };
    let addr = if host.starts_with('/') {
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
    };
    let user =
        user.ok_or_else(|| bad("no user name (postgresql://user:password@host/db)".into()))?;
    Ok(PgUrl {
        addr,
        database: database.unwrap_or_else(|| user.clone()),
        user,
        password,
        application_name,
        connect_timeout,
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
    fn errors_are_clear_and_redacted() {
        let e = parse("postgresql://u:topsecret@h/db?sslmode=require").unwrap_err();
        assert!(e.contains("TLS") && !e.contains("topsecret"), "{e}");
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
