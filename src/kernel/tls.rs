//! TLS in the kernel: rustls (ring provider, no OpenSSL) over any stream.
//!
//! `Tls` is one client configuration, made once per service and kept for
//! all its connections, so rustls' session cache lets reconnects resume
//! (counted: `tls_handshakes`, `tls_resumed` in the service's stats). It
//! wraps a plain stream (`handshake`), either as a whole connector
//! (`TlsConnector`: TCP then TLS, e.g. `rediss://`) or mid-handshake
//! (PostgreSQL's SSLRequest). ALPN is part of the options, so a protocol
//! asks for its own (`postgresql`, later `h2`/`http/1.1`).
//!
//! Trust: the system's store (rustls-native-certs), Mozilla's roots
//! (webpki-roots) when the system has none, or CAs given as files, a
//! directory or PEM text, with optional revocation lists (`tls_files`).
//! Verification: none, the chain only, or chain and host name
//! (`tls_verify`). The name checked is the one the endpoint was found under
//! (`Names`: the URL's host name or an SRV target the kernel resolved to
//! this address), else the address itself: an IP address (as Sentinel or a
//! published set gives them) is checked against the certificate's IP SANs.
//!
//! A failed handshake is an `io::Error` carrying a `TlsFailure`: which of
//! the known reasons it was, and a message naming the option that changes
//! the outcome (`Hints`, in the protocol's own option names).

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::ServerName;
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};

use super::transport::{open, Addr, Connector, Opening, Stream};

#[path = "tls_files.rs"]
mod files;
#[path = "tls_verify.rs"]
mod verify;
pub use files::Crls;
use verify::{ChainOnly, NoVerify};

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Nothing (encryption only): `ssl_cert_reqs=none`, `sslmode=require`.
    None,
    /// Signed by a trusted CA, any host name: `sslmode=verify-ca`.
    Chain,
    /// Trusted CA and the host name (or IP) we connected to.
    Full,
}

/// Where the trusted CAs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The system's store; Mozilla's roots if it is empty.
    System,
    /// A PEM file (one or more certificates).
    File(PathBuf),
    /// A directory of PEM files (OpenSSL's `CApath`).
    Dir(PathBuf),
    /// PEM text.
    Pem(String),
    /// Several together (redis-py loads `ssl_ca_certs`, `ssl_ca_path` and
    /// `ssl_ca_data` all).
    Many(Vec<Roots>),
}

/// The options that change a failure's outcome, as the protocol names them.
pub use super::transport::TlsHints as Hints;

#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub verify: Verify,
    pub roots: Roots,
    /// Client certificate chain and key (PEM files), for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The password of an encrypted (PKCS#8) client key.
    pub key_password: Option<String>,
    /// Revocation lists checked with the chain (not with `Verify::None`).
    pub crls: Vec<Crls>,
    /// The TLS 1.2 cipher suites allowed, by IANA name (`None`: all that
    /// rustls has); TLS 1.3's are always on, as with Python's `ssl`.
    pub tls12_suites: Option<Vec<&'static str>>,
    /// Refuse TLS 1.2 (TLS 1.2 is the minimum otherwise).
    pub tls13_only: bool,
    /// ALPN protocols to offer, in order of preference.
    pub alpn: Vec<Vec<u8>>,
    /// Fail unless the server picks one of `alpn` (PostgreSQL's direct TLS).
    pub alpn_required: bool,
    pub hints: Hints,
}

/// Why a TLS connection could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsReason {
    UnknownCa,
    Expired,
    HostnameMismatch,
    /// The server does not do TLS (refused the upgrade, or answered in
    /// plain text on a TLS port).
    NotSupported,
    ClientCertRefused,
    /// The server's certificate is on a revocation list given.
    Revoked,
    /// The server closed the connection during the TLS handshake.
    Closed,
    Other,
}

impl TlsReason {
    pub fn name(self) -> &'static str {
        match self {
            TlsReason::UnknownCa => "unknown_ca",
            TlsReason::Expired => "expired",
            TlsReason::HostnameMismatch => "hostname_mismatch",
            TlsReason::NotSupported => "not_supported",
            TlsReason::ClientCertRefused => "client_cert_refused",
            TlsReason::Revoked => "revoked",
            TlsReason::Closed => "closed",
            TlsReason::Other => "handshake_failed",
        }
    }
}

/// A TLS failure, carried inside an `io::Error` through the transport.
#[derive(Debug, Clone)]
pub struct TlsFailure {
    pub reason: TlsReason,
    pub message: String,
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsFailure {}

impl TlsFailure {
    pub fn io(reason: TlsReason, message: String) -> io::Error {
        io::Error::other(TlsFailure { reason, message })
    }
}

/// The TLS failure inside `e`, if it is one (ours, or rustls' own error as
/// tokio-rustls reports it on a read or write).
pub fn failure_of(e: &io::Error) -> Option<TlsFailure> {
    let inner = e.get_ref()?;
    if let Some(f) = inner.downcast_ref::<TlsFailure>() {
        return Some(f.clone());
    }
    let r = inner.downcast_ref::<rustls::Error>()?;
    Some(TlsFailure {
        reason: classify(r),
        message: format!("TLS: {r}"),
    })
}

fn classify(e: &rustls::Error) -> TlsReason {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                TlsReason::UnknownCa
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsReason::Expired
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsReason::HostnameMismatch
            }
            CertificateError::Revoked => TlsReason::Revoked,
            _ => TlsReason::Other,
        },
        E::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied,
        ) => TlsReason::ClientCertRefused,
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => TlsReason::NotSupported,
        _ => TlsReason::Other,
    }
}

/// One service's TLS client configuration and its counters.
pub struct Tls {
    config: Arc<ClientConfig>,
    hints: Hints,
    has_client_cert: bool,
    alpn_required: bool,
    handshakes: AtomicU64,
    resumed: AtomicU64,
}

/// ring's suites, AES-128-GCM first. rustls (like OpenSSL) offers
/// AES-256-GCM first, and servers take the client's order (redis-server and
/// PostgreSQL do by default); AES-128-GCM is as safe for this use and does
/// 10 AES rounds per block instead of 14, on both sides.
fn ring_provider() -> rustls::crypto::CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites.sort_by_key(|s| {
        let tls12 = s.version() != &rustls::version::TLS13;
        let aes128 = format!("{:?}", s.suite()).contains("AES_128_GCM");
        (tls12, !aes128)
    });
    p
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(ring_provider())
}

/// The system's roots (read once per process), else Mozilla's.
pub(crate) fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            Arc::new(store)
        })
        .clone()
}

impl Tls {
    /// Build the configuration; files are read now, so a missing or bad one
    /// fails here (naming the option), not at every connect.
    pub fn new(o: TlsOptions) -> Result<Arc<Tls>, String> {
        let versions: &[&rustls::SupportedProtocolVersion] = if o.tls13_only {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let prov = match &o.tls12_suites {
            None => provider(),
            Some(keep) => {
                let mut p = ring_provider();
                p.cipher_suites.retain(|s| {
                    s.version() == &rustls::version::TLS13
                        || keep.contains(&format!("{:?}", s.suite()).as_str())
                });
                Arc::new(p)
            }
        };
        let builder = ClientConfig::builder_with_provider(prov.clone())
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS configuration: {e}"))?;
        let verifier: Arc<dyn ServerCertVerifier> = match o.verify {
            Verify::None => Arc::new(NoVerify(prov.clone())),
            v => {
                let store = files::roots(&o.roots, &o.hints)?;
                let webpki = WebPkiServerVerifier::builder_with_provider(store, prov.clone())
                    .with_crls(files::crls(&o.crls, &o.hints)?)
                    .build()
                    .map_err(|e| format!("TLS configuration: {e}"))?;
                if v == Verify::Chain {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                }
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &o.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = files::client_chain(cert, &o.hints)?;
                let key = files::private_key(key, o.key_password.as_deref(), &o.hints)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    format!(
                        "{} {}: the key does not fit the certificate: {e}",
                        o.hints.client_cert,
                        cert.display()
                    )
                })?
            }
        };
        config.alpn_protocols = o.alpn.clone();
        Ok(Arc::new(Tls {
            config: Arc::new(config),
            has_client_cert: o.client_cert.is_some(),
            alpn_required: o.alpn_required,
            hints: o.hints,
            handshakes: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
        }))
    }

    /// Full handshakes and resumed ones so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.handshakes.load(Ordering::Relaxed),
            self.resumed.load(Ordering::Relaxed),
        )
    }

    pub fn hints(&self) -> &Hints {
        &self.hints
    }

    /// Run the TLS handshake over `plain`, for the server at `addr`, whose
    /// certificate must be valid for `host` (`server_name`).
    pub async fn handshake(&self, plain: Stream, host: &str) -> io::Result<Stream> {
        let host = host.to_string();
        let name = ServerName::try_from(host.clone()).map_err(|_| {
            TlsFailure::io(
                TlsReason::Other,
                format!("{host:?} is not a valid TLS server name"),
            )
        })?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let tls = match connector.connect(name, plain.boxed()).await {
            Ok(s) => s,
            Err(e) => return Err(self.explain(&e, &host)),
        };
        let session = tls.get_ref().1;
        if self.alpn_required && session.alpn_protocol().is_none() {
            return Err(TlsFailure::io(
                TlsReason::NotSupported,
                "the server did not accept the ALPN protocol offered (direct TLS needs a server \
                 that supports it, e.g. PostgreSQL 17+ for sslnegotiation=direct)"
                    .into(),
            ));
        }
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        if session.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
            self.resumed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// A handshake (or first read) error, as a `TlsFailure` that says what
    /// to do about it.
    pub fn explain(&self, e: &io::Error, host: &str) -> io::Error {
        let h = &self.hints;
        let Some(f) = failure_of(e) else {
            let (reason, what) = match e.kind() {
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => (
                    TlsReason::Closed,
                    "the server closed the connection during the TLS handshake (is it a TLS port? \
                     does it accept this client?)"
                        .to_string(),
                ),
                _ => (TlsReason::Other, format!("TLS handshake failed: {e}")),
            };
            return TlsFailure::io(reason, what);
        };
        let why = match f.reason {
            TlsReason::UnknownCa => format!(
                "TLS: the server's certificate is not signed by a trusted CA (unknown CA); \
                 give its CA with {}, or skip verification with {}",
                h.ca, h.no_verify
            ),
            TlsReason::Expired => format!(
                "TLS: the server's certificate has expired (or is not valid yet); renew it \
                 on the server, or skip verification with {}",
                h.no_verify
            ),
            TlsReason::HostnameMismatch => format!(
                "TLS: the server's certificate is not valid for {host:?} (host-name mismatch); \
                 connect by a name the certificate has, or skip the host-name check with {}",
                h.no_hostname
            ),
            TlsReason::ClientCertRefused if self.has_client_cert => format!(
                "TLS: the server refused our client certificate ({}); check {}",
                f.message, h.client_cert
            ),
            TlsReason::ClientCertRefused => format!(
                "TLS: the server refused the connection ({}): it probably requires a client \
                 certificate; give one with {}",
                f.message, h.client_cert
            ),
            TlsReason::Revoked => format!(
                "TLS: the server's certificate has been revoked (it is on the revocation list \
                 given with {}); the server needs a new certificate",
                h.crl
            ),
            TlsReason::NotSupported => format!(
                "TLS: the server did not answer in TLS ({}); is this a plain-text port? {}",
                f.message, h.plain
            ),
            TlsReason::Closed | TlsReason::Other => f.message.clone(),
        };
        TlsFailure::io(f.reason, why)
    }
}

/// The host names the service's endpoints were found under, by address
/// (`Connector::learn_name`, told by the service as endpoints arrive): an
/// address the kernel resolved from a name (a URL's host, an SRV target)
/// is verified against that name.
#[derive(Default)]
pub struct Names(Mutex<HashMap<Addr, String>>);

impl Names {
    pub fn learn(&self, addr: &Addr, name: Option<&str>) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match name {
            Some(n) => m.insert(addr.clone(), n.to_string()),
            None => m.remove(addr),
        };
    }

    /// The name the certificate of the server at `addr` must be valid for:
    /// the name it was found under, else its own host (a name, or an IP
    /// address checked against the certificate's IP SANs).
    pub fn server_name(&self, addr: &Addr) -> String {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match (m.get(addr), addr) {
            (Some(n), _) => n.clone(),
            (None, Addr::Tcp(h, _)) => h.clone(),
            (None, Addr::Unix(_)) => "localhost".to_string(),
        }
    }
}

/// TCP (or Unix socket), then TLS: `rediss://`.
pub struct TlsConnector {
    pub tls: Arc<Tls>,
    pub names: Names,
}

impl Connector for TlsConnector {
    fn connect(&self, addr: &Addr) -> Opening {
        let (tls, addr) = (self.tls.clone(), addr.clone());
        let host = self.names.server_name(&addr);
        Box::pin(async move {
            let plain = open(&addr).await?;
            tls.handshake(plain, &host).await
        })
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let (h, r) = self.tls.counts();
        vec![("tls_handshakes", h), ("tls_resumed", r)]
    }

    fn tls_hints(&self) -> Option<&Hints> {
        Some(self.tls.hints())
    }

    fn learn_name(&self, addr: &Addr, name: Option<&str>) {
        self.names.learn(addr, name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_128_gcm_is_offered_first() {
        let names: Vec<String> = ring_provider()
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(names[0], "TLS13_AES_128_GCM_SHA256");
        let tls12 = names
            .iter()
            .position(|n| n.starts_with("TLS_ECDHE"))
            .unwrap();
        // every TLS 1.3 suite before TLS 1.2's, which start with AES-128 too
        assert!(names[..tls12].iter().all(|n| n.starts_with("TLS13_")));
        assert!(names[tls12].contains("AES_128_GCM"), "{names:?}");
        // nothing dropped
        assert_eq!(
            names.len(),
            rustls::crypto::ring::default_provider().cipher_suites.len()
        );
    }

    #[test]
    fn server_names() {
        let t = |h: &str, p| Addr::Tcp(h.into(), p);
        let names = Names::default();
        // an address on its own is checked as itself (an IP against IP SANs)
        assert_eq!(names.server_name(&t("10.1.2.3", 6380)), "10.1.2.3");
        assert_eq!(
            names.server_name(&t("db.example.com", 5432)),
            "db.example.com"
        );
        // one resolved from a name is checked against that name
        names.learn(&t("10.1.2.3", 6380), Some("cache.example.com"));
        assert_eq!(names.server_name(&t("10.1.2.3", 6380)), "cache.example.com");
        assert_eq!(names.server_name(&t("10.1.2.3", 6381)), "10.1.2.3");
        // given again without a name (a published IP): itself
        names.learn(&t("10.1.2.3", 6380), None);
        assert_eq!(names.server_name(&t("10.1.2.3", 6380)), "10.1.2.3");
        assert_eq!(names.server_name(&Addr::Unix("/s".into())), "localhost");
    }
}
