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
//! (webpki-roots) when the system has none, or a CA bundle (file or PEM
//! text). Verification: none, the chain only, or chain and host name (an IP
//! address is checked against the certificate's IP SANs).
//!
//! A failed handshake is an `io::Error` carrying a `TlsFailure`: which of
//! the known reasons it was, and a message naming the option that changes
//! the outcome (`Hints`, in the protocol's own option names).

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
};

use super::transport::{open, Addr, Connector, Opening, Stream};

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
    /// PEM text.
    Pem(String),
}

/// The options that change a failure's outcome, as the protocol names them.
pub use super::transport::TlsHints as Hints;

#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub verify: Verify,
    pub roots: Roots,
    /// Client certificate chain and key (PEM files), for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
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

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's roots (read once per process), else Mozilla's.
fn system_roots() -> Arc<RootCertStore> {
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

fn pem_certs(
    what: &str,
    certs: impl Iterator<Item = Result<CertificateDer<'static>, rustls::pki_types::pem::Error>>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let v: Vec<_> = certs
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what}: not PEM certificates: {e}"))?;
    if v.is_empty() {
        return Err(format!(
            "{what}: no certificate in it (expected PEM, -----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(v)
}

fn roots(r: &Roots, hints: &Hints) -> Result<Arc<RootCertStore>, String> {
    let certs = match r {
        Roots::System => return Ok(system_roots()),
        Roots::File(p) => {
            let what = format!("{} {}", hints.ca, p.display());
            if !p.is_file() {
                return Err(format!("{what}: no such file"));
            }
            pem_certs(
                &what,
                CertificateDer::pem_file_iter(p).map_err(|e| format!("{what}: {e}"))?,
            )?
        }
        Roots::Pem(text) => pem_certs(hints.ca, CertificateDer::pem_slice_iter(text.as_bytes()))?,
    };
    let mut store = RootCertStore::empty();
    for c in certs {
        store
            .add(c)
            .map_err(|e| format!("{}: a CA certificate was refused: {e}", hints.ca))?;
    }
    Ok(Arc::new(store))
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
        let prov = provider();
        let builder = ClientConfig::builder_with_provider(prov.clone())
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS configuration: {e}"))?;
        let verifier: Arc<dyn ServerCertVerifier> = match o.verify {
            Verify::None => Arc::new(NoVerify(prov.clone())),
            v => {
                let store = roots(&o.roots, &o.hints)?;
                let webpki = WebPkiServerVerifier::builder_with_provider(store, prov.clone())
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
                let what = format!("{} {}", o.hints.client_cert, cert.display());
                if !cert.is_file() {
                    return Err(format!("{what}: no such file"));
                }
                let chain = pem_certs(
                    &what,
                    CertificateDer::pem_file_iter(cert).map_err(|e| format!("{what}: {e}"))?,
                )?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    format!(
                        "{} {}: no private key read from it ({e}); an unencrypted PEM key is needed",
                        o.hints.client_cert,
                        key.display()
                    )
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("{what}: the key does not fit the certificate: {e}"))?
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
            TlsReason::NotSupported => format!(
                "TLS: the server did not answer in TLS ({}); is this a plain-text port? {}",
                f.message, h.plain
            ),
            TlsReason::Closed | TlsReason::Other => f.message.clone(),
        };
        TlsFailure::io(f.reason, why)
    }
}

/// The name a server's certificate must be valid for, connecting to
/// `addr`: its own host (a name, or an IP address checked against the
/// certificate's IP SANs), unless it is an IP address that discovery
/// resolved from one of the service's `names` (not itself one of them):
/// then the name with that port, if only one has it.
pub fn server_name(addr: &Addr, names: &[Addr]) -> String {
    let (host, port) = match addr {
        Addr::Tcp(h, p) => (h, *p),
        Addr::Unix(_) => return "localhost".to_string(),
    };
    if host.parse::<std::net::IpAddr>().is_err() || names.contains(addr) {
        return host.clone();
    }
    let mut named = names.iter().filter_map(|n| match n {
        Addr::Tcp(h, p) if *p == port && h.parse::<std::net::IpAddr>().is_err() => Some(h),
        _ => None,
    });
    match (named.next(), named.next()) {
        (Some(h), None) => h.clone(),
        _ => host.clone(),
    }
}

/// TCP (or Unix socket), then TLS: `rediss://`. `names`: what the URL
/// names (`server_name`).
pub struct TlsConnector {
    pub tls: Arc<Tls>,
    pub names: Vec<Addr>,
}

impl Connector for TlsConnector {
    fn connect(&self, addr: &Addr) -> Opening {
        let (tls, addr) = (self.tls.clone(), addr.clone());
        let host = server_name(&addr, &self.names);
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
}

/// `Verify::None`: any certificate; the handshake's signatures are still
/// checked (they prove the peer holds the key it presented).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `Verify::Chain`: the full check, but a certificate for another name
/// passes (webpki checks the chain and dates before the name).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        let t = |h: &str, p| Addr::Tcp(h.into(), p);
        let names = [t("cache.example.com", 6380), t("10.0.0.9", 6380)];
        // resolved from the one name with that port
        assert_eq!(
            server_name(&t("10.1.2.3", 6380), &names),
            "cache.example.com"
        );
        // an IP address the URL names itself is checked as an IP
        assert_eq!(server_name(&t("10.0.0.9", 6380), &names), "10.0.0.9");
        assert_eq!(
            server_name(&t("db.example.com", 5432), &names),
            "db.example.com"
        );
        // two names with the port: which one is unknown, the IP is checked
        let two = [t("a.example.com", 6380), t("b.example.com", 6380)];
        assert_eq!(server_name(&t("10.1.2.3", 6380), &two), "10.1.2.3");
        assert_eq!(server_name(&Addr::Unix("/s".into()), &names), "localhost");
    }
}
