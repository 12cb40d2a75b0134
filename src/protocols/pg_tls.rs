//! PostgreSQL over TLS, with libpq's options and behaviour.
//!
//! `sslmode` (disable | allow | prefer | require | verify-ca | verify-full,
//! default prefer), `sslrootcert` (a file, or `system`), `sslcert`, `sslkey`,
//! `sslpassword` (of an encrypted PKCS#8 key), `sslcrl` / `sslcrldir`,
//! `sslcertmode` (disable | allow; `require` is refused: rustls does not
//! tell whether the server asked for a certificate), `sslnegotiation`
//! (postgres | direct) come from the environment (`PGSSLMODE`
//! ...), then the URL, then keyword arguments (`settings`). As in libpq:
//! `require` with a root certificate (given, or `~/.postgresql/root.crt`)
//! verifies like `verify-ca`; `sslrootcert=system` needs `verify-full`;
//! `sslnegotiation=direct` needs `require` or stronger; Unix sockets never
//! use TLS.
//!
//! `PgConnector` opens the socket and negotiates: SSLRequest ('S': TLS on
//! the same socket; 'N': plain text if the mode allows it; a failed TLS
//! handshake: plain text on a new socket with `prefer`), or TLS at once
//! with ALPN `postgresql` (direct). The retries libpq makes after a failed
//! startup (`allow`: plain, then TLS; `prefer`: TLS, then plain) are
//! `Postgres::handshake`'s, through `retry`. A connection's out-of-band
//! cancel goes the way the connection ended up (`pinned`): over TLS when
//! it is TLS, in plain text when `allow`/`prefer` ended in plain text.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::kernel::tls::{
    Crls, Hints, Names, Roots, Tls, TlsFailure, TlsOptions, TlsReason, Verify,
};
use crate::kernel::transport::{open, plain, Addr, Connector, Opening, Stream};

/// The libpq names this reads (URL parameters and keyword arguments).
pub const NAMES: [&str; 9] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslcertmode",
    "sslnegotiation",
];

/// The environment variables libpq reads for them.
pub const ENV: [(&str, &str); 8] = [
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLCRL", "sslcrl"),
    ("PGSSLCRLDIR", "sslcrldir"),
    ("PGSSLCERTMODE", "sslcertmode"),
    ("PGSSLNEGOTIATION", "sslnegotiation"),
];

const HINTS: Hints = Hints {
    ca: "sslrootcert",
    ca_dir: "sslrootcert",
    crl: "sslcrl",
    key_password: "sslpassword",
    no_verify: "sslmode=require",
    no_hostname: "sslmode=verify-ca",
    client_cert: "sslcert / sslkey",
    plain: "use sslmode=disable (or prefer) for a server without TLS",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Result<Self, String> {
        Ok(match v {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(format!(
                    "sslmode must be disable, allow, prefer, require, verify-ca or verify-full, not {v:?}"
                ))
            }
        })
    }
}

/// The resolved settings: the mode and the TLS configuration it uses.
pub struct PgSsl {
    pub mode: SslMode,
    pub direct: bool,
    pub tls: Option<Arc<Tls>>,
}

fn home_file(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("HOME")?)
        .join(".postgresql")
        .join(name);
    p.is_file().then_some(p)
}

/// Resolve `params` (environment, then URL, then keyword arguments; a later
/// value wins).
pub fn settings(params: &[(String, String)]) -> Result<PgSsl, String> {
    let get = |k: &str| {
        params
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let rootcert = get("sslrootcert");
    let system = rootcert == Some("system");
    let mut mode = match get("sslmode") {
        Some(v) => SslMode::parse(v)?,
        None if system => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if system && mode != SslMode::VerifyFull {
        return Err(format!(
            "weak sslmode {mode:?} may not be used with sslrootcert=system (use verify-full)"
        ));
    }
    let direct = match get("sslnegotiation") {
        None | Some("postgres") => false,
        Some("direct") => true,
        Some(v) => {
            return Err(format!(
                "sslnegotiation must be postgres or direct, not {v:?}"
            ))
        }
    };
    if direct && mode < SslMode::Require {
        return Err(format!(
            "sslnegotiation=direct needs sslmode require, verify-ca or verify-full (not {mode:?}): \
             a server without TLS cannot be reached by it"
        ));
    }
    if mode == SslMode::Disable {
        return Ok(PgSsl {
            mode,
            direct,
            tls: None,
        });
    }
    let root_file = match rootcert {
        Some("system") => None,
        Some(f) => Some(PathBuf::from(f)),
        None => home_file("root.crt"),
    };
    // libpq: `require` with a root certificate verifies like `verify-ca`.
    if mode == SslMode::Require && root_file.is_some() {
        mode = SslMode::VerifyCa;
    }
    let verify = match mode {
        SslMode::VerifyFull => Verify::Full,
        SslMode::VerifyCa => Verify::Chain,
        _ => Verify::None,
    };
    let roots = match (&root_file, system) {
        (_, true) => Roots::System,
        (Some(f), _) => Roots::File(f.clone()),
        (None, _) if verify == Verify::None => Roots::System,
        (None, _) => {
            return Err(format!(
                "sslmode={} needs a root certificate: give sslrootcert=<file> (or \
                 sslrootcert=system for the system's CAs), put it in ~/.postgresql/root.crt, \
                 or use sslmode=require to encrypt without verifying",
                if mode == SslMode::VerifyFull {
                    "verify-full"
                } else {
                    "verify-ca"
                }
            ))
        }
    };
    let send_cert = match get("sslcertmode") {
        None | Some("allow") => true,
        Some("disable") => false,
        Some("require") => {
            return Err(
                "sslcertmode=require is not supported: iokernel's TLS (rustls) cannot \
                        tell whether the server asked for a client certificate; use \
                        sslcertmode=allow (the default) and let the server's pg_hba.conf \
                        (cert, clientcert=verify-full) demand one"
                    .into(),
            )
        }
        Some(v) => {
            return Err(format!(
                "sslcertmode must be disable, allow or require, not {v:?}"
            ))
        }
    };
    let cert = get("sslcert")
        .map(PathBuf::from)
        .or_else(|| home_file("postgresql.crt"))
        .filter(|_| send_cert);
    let client_cert = match (cert, get("sslkey").filter(|_| send_cert)) {
        (Some(c), Some(k)) => Some((c, PathBuf::from(k))),
        (Some(c), None) => {
            let key = c.with_extension("key");
            let key = if key.is_file() {
                key
            } else {
                home_file("postgresql.key").unwrap_or(key)
            };
            Some((c, key))
        }
        (None, Some(_)) => return Err("sslkey needs sslcert (the client certificate)".into()),
        (None, None) => None,
    };
    // libpq reads the revocation lists only to verify (not with require).
    let mut crls: Vec<Crls> = get("sslcrl")
        .map(|f| Crls::File(f.into()))
        .into_iter()
        .collect();
    crls.extend(get("sslcrldir").map(|d| Crls::Dir(d.into())));
    if crls.is_empty() {
        crls.extend(home_file("root.crl").map(Crls::File));
    }
    if verify == Verify::None {
        crls.clear();
    }
    let tls = Tls::new(TlsOptions {
        verify,
        roots,
        client_cert,
        key_password: get("sslpassword").map(str::to_string),
        crls,
        tls12_suites: None,
        tls13_only: false,
        alpn: vec![b"postgresql".to_vec()],
        alpn_required: direct,
        hints: HINTS,
    })?;
    Ok(PgSsl {
        mode,
        direct,
        tls: Some(tls),
    })
}

/// Opens a connection as `sslmode` and `sslnegotiation` say. `names`:
/// the host names the endpoints were found under (`tls::Names`), shared
/// with the connectors made from this one.
pub struct PgConnector {
    pub mode: SslMode,
    pub direct: bool,
    pub tls: Option<Arc<Tls>>,
    pub names: Arc<Names>,
}

impl PgConnector {
    pub fn new(s: &PgSsl) -> Self {
        PgConnector {
            mode: s.mode,
            direct: s.direct,
            tls: s.tls.clone(),
            names: Arc::default(),
        }
    }

    /// The connectors of a connection's out-of-band cancel, `[plain, TLS]`
    /// by how the connection ended up: the same way again, with no
    /// fallback (`None`: no TLS configured, the service's connector does).
    pub fn pinned(&self) -> Option<[Arc<dyn Connector>; 2]> {
        self.tls.as_ref()?;
        let tls = PgConnector {
            mode: self.mode.max(SslMode::Require),
            direct: self.direct,
            tls: self.tls.clone(),
            names: self.names.clone(),
        };
        Some([plain(), Arc::new(tls)])
    }

    /// The connector the handshake retries with when a startup fails the
    /// way libpq retries: `allow` tried plain text (now TLS, no fallback),
    /// `prefer` tried TLS (now plain text).
    pub fn retry(&self) -> Option<Arc<dyn Connector>> {
        match self.mode {
            SslMode::Allow => Some(Arc::new(PgConnector {
                mode: SslMode::Require,
                direct: false,
                tls: self.tls.clone(),
                names: self.names.clone(),
            })),
            SslMode::Prefer => Some(plain()),
            _ => None,
        }
    }
}

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

async fn negotiate(
    mode: SslMode,
    direct: bool,
    tls: Arc<Tls>,
    addr: Addr,
    host: String,
) -> std::io::Result<Stream> {
    let mut s = open(&addr).await?;
    if direct {
        return tls.handshake(s, &host).await;
    }
    s.write_all(&SSL_REQUEST).await?;
    let mut answer = [0u8; 1];
    // One byte, unbuffered: anything the server sent after it stays on the
    // socket and goes to the TLS layer, which refuses it.
    let n = s.read(&mut answer).await?;
    match (n, answer[0]) {
        (1, b'S') => match tls.handshake(s, &host).await {
            Ok(t) => Ok(t),
            // libpq: prefer retries without TLS when the TLS handshake fails.
            Err(_) if mode == SslMode::Prefer => open(&addr).await,
            Err(e) => Err(e),
        },
        (1, b'N') if mode == SslMode::Prefer => Ok(s),
        (1, b'N') => Err(TlsFailure::io(
            TlsReason::NotSupported,
            format!(
                "the server does not support TLS (it answered N to SSLRequest; ssl=off?); \
                 sslmode={} requires TLS: turn ssl on in the server, or use sslmode=prefer \
                 to accept plain text",
                match mode {
                    SslMode::VerifyFull => "verify-full",
                    SslMode::VerifyCa => "verify-ca",
                    _ => "require",
                }
            ),
        )),
        (0, _) => Err(TlsFailure::io(
            TlsReason::Closed,
            "the server closed the connection when asked for TLS (SSLRequest)".into(),
        )),
        (_, b) => Err(TlsFailure::io(
            TlsReason::NotSupported,
            format!(
                "the server answered {:?} to SSLRequest instead of S or N: not a PostgreSQL \
                 server that speaks TLS",
                b as char
            ),
        )),
    }
}

impl Connector for PgConnector {
    fn connect(&self, addr: &Addr) -> Opening {
        let addr = addr.clone();
        let tls = match (&self.tls, &addr, self.mode) {
            // libpq never uses TLS on a Unix socket; allow starts plain.
            (_, Addr::Unix(_), _) | (None, _, _) | (_, _, SslMode::Disable | SslMode::Allow) => {
                return Box::pin(async move { open(&addr).await })
            }
            (Some(t), _, _) => t.clone(),
        };
        let host = self.names.server_name(&addr);
        Box::pin(negotiate(self.mode, self.direct, tls, addr, host))
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let (h, r) = self.tls.as_ref().map_or((0, 0), |t| t.counts());
        vec![("tls_handshakes", h), ("tls_resumed", r)]
    }

    fn tls_hints(&self) -> Option<&Hints> {
        self.tls.as_ref().map(|t| t.hints())
    }

    fn learn_name(&self, addr: &Addr, name: Option<&str>) {
        self.names.learn(addr, name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kv: &[(&str, &str)]) -> Result<PgSsl, String> {
        let v: Vec<_> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        settings(&v)
    }

    #[test]
    fn libpq_rules() {
        assert_eq!(s(&[]).unwrap().mode, SslMode::Prefer);
        assert!(s(&[("sslmode", "disable")]).unwrap().tls.is_none());
        // a later value wins (keyword argument over URL over environment)
        let m = s(&[("sslmode", "disable"), ("sslmode", "require")]).unwrap();
        assert_eq!(m.mode, SslMode::Require);
        assert_eq!(
            s(&[("sslrootcert", "system")]).unwrap().mode,
            SslMode::VerifyFull
        );
        let e = |kv: &[(&str, &str)]| s(kv).err().unwrap();
        assert!(e(&[("sslrootcert", "system"), ("sslmode", "require")]).contains("verify-full"));
        assert!(e(&[("sslnegotiation", "direct")]).contains("require"));
        assert!(e(&[("sslmode", "verify_full")]).contains("sslmode"));
        assert!(e(&[("sslnegotiation", "fast")]).contains("sslnegotiation"));
        assert!(e(&[("sslcertmode", "require")]).contains("not supported"));
        assert!(e(&[("sslcertmode", "always")]).contains("sslcertmode"));
        // revocation lists are read only to verify (as libpq)
        assert!(s(&[("sslmode", "require"), ("sslcrl", "/nonexistent.crl")]).is_ok());
        // sslcertmode=disable sends no certificate even if one is given
        let d = s(&[("sslcertmode", "disable"), ("sslcert", "/nonexistent.crt")]).unwrap();
        assert_eq!(d.mode, SslMode::Prefer);
        assert!(e(&[
            ("sslmode", "require"),
            ("sslrootcert", "/nonexistent/ca.pem")
        ])
        .contains("no such file"));
    }
}
