//! The files a TLS configuration reads (part of `tls`): trusted CAs (PEM
//! files, directories of them as OpenSSL's `CApath`, PEM text), certificate
//! revocation lists (files, directories), and the client's certificate chain
//! and key, which may be encrypted (PKCS#8 PBES2, decrypted here with the
//! password option; no OpenSSL). Every error names the option it came from
//! (`Hints`), so a bad file fails when the client is made, not at connect.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};
use rustls::RootCertStore;

use super::{system_roots, Hints, Roots};

type PemIter<T> = Result<T, rustls::pki_types::pem::Error>;

pub(super) fn pem_certs(
    what: &str,
    certs: impl Iterator<Item = PemIter<CertificateDer<'static>>>,
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

fn file_certs(what: &str, p: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    if !p.is_file() {
        return Err(format!("{what}: no such file"));
    }
    pem_certs(
        what,
        CertificateDer::pem_file_iter(p).map_err(|e| format!("{what}: {e}"))?,
    )
}

/// The regular files of directory `d` (symbolic links followed), sorted.
fn dir_files(what: &str, d: &Path) -> Result<Vec<PathBuf>, String> {
    if !d.is_dir() {
        return Err(format!("{what}: no such directory"));
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .map_err(|e| format!("{what}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

fn add(
    store: &mut RootCertStore,
    certs: Vec<CertificateDer<'static>>,
    hints: &Hints,
) -> Result<(), String> {
    for c in certs {
        store
            .add(c)
            .map_err(|e| format!("{}: a CA certificate was refused: {e}", hints.ca))?;
    }
    Ok(())
}

fn collect(r: &Roots, hints: &Hints, store: &mut RootCertStore) -> Result<(), String> {
    match r {
        Roots::System => store.extend(system_roots().roots.iter().cloned()),
        Roots::File(p) => add(
            store,
            file_certs(&format!("{} {}", hints.ca, p.display()), p)?,
            hints,
        )?,
        Roots::Pem(text) => add(
            store,
            pem_certs(hints.ca, CertificateDer::pem_slice_iter(text.as_bytes()))?,
            hints,
        )?,
        Roots::Dir(d) => {
            let what = format!("{} {}", hints.ca_dir, d.display());
            let before = store.len();
            // OpenSSL's CApath: every file that holds PEM certificates
            // (hash-named links, or any name); others (CRLs ...) are skipped.
            for f in dir_files(&what, d)? {
                if let Ok(Ok(certs)) =
                    CertificateDer::pem_file_iter(&f).map(|it| it.collect::<Result<Vec<_>, _>>())
                {
                    add(store, certs, hints)?;
                }
            }
            if store.len() == before {
                return Err(format!("{what}: no PEM certificate in any file of it"));
            }
        }
        Roots::Many(list) => {
            for r in list {
                collect(r, hints, store)?;
            }
        }
    }
    Ok(())
}

/// The trusted CAs `r` names.
pub(super) fn roots(r: &Roots, hints: &Hints) -> Result<Arc<RootCertStore>, String> {
    if *r == Roots::System {
        return Ok(system_roots());
    }
    let mut store = RootCertStore::empty();
    collect(r, hints, &mut store)?;
    Ok(Arc::new(store))
}

/// Where revocation lists come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Crls {
    /// A PEM file of one or more CRLs (libpq's `sslcrl`).
    File(PathBuf),
    /// Every file in it holding PEM CRLs (libpq's `sslcrldir`).
    Dir(PathBuf),
}

fn file_crls(f: &Path) -> Option<Vec<CertificateRevocationListDer<'static>>> {
    CertificateRevocationListDer::pem_file_iter(f)
        .ok()?
        .collect::<Result<Vec<_>, _>>()
        .ok()
}

/// The revocation lists `list` names (an empty list: none).
pub(super) fn crls(
    list: &[Crls],
    hints: &Hints,
) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let mut out = Vec::new();
    for c in list {
        let before = out.len();
        let what = match c {
            Crls::File(f) => {
                let what = format!("{} {}", hints.crl, f.display());
                if !f.is_file() {
                    return Err(format!("{what}: no such file"));
                }
                out.extend(file_crls(f).unwrap_or_default());
                what
            }
            Crls::Dir(d) => {
                let what = format!("{}dir {}", hints.crl, d.display());
                for f in dir_files(&what, d)? {
                    out.extend(file_crls(&f).unwrap_or_default());
                }
                what
            }
        };
        if out.len() == before {
            return Err(format!(
                "{what}: no revocation list in it (expected PEM, -----BEGIN X509 CRL-----)"
            ));
        }
    }
    Ok(out)
}

/// The client's certificate chain (PEM file).
pub(super) fn client_chain(
    cert: &Path,
    hints: &Hints,
) -> Result<Vec<CertificateDer<'static>>, String> {
    file_certs(&format!("{} {}", hints.client_cert, cert.display()), cert)
}

/// The base64 body of the PEM block `label` in `text`.
fn pem_block(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// The client's private key (PEM file): unencrypted, or PKCS#8 encrypted
/// with `password` (`-----BEGIN ENCRYPTED PRIVATE KEY-----`).
pub(super) fn private_key(
    key: &Path,
    password: Option<&str>,
    hints: &Hints,
) -> Result<PrivateKeyDer<'static>, String> {
    let what = format!("{} {}", hints.client_cert, key.display());
    let text = std::fs::read_to_string(key).map_err(|e| format!("{what}: {e}"))?;
    if let Some(der) = pem_block(&text, "ENCRYPTED PRIVATE KEY") {
        let Some(pw) = password else {
            return Err(format!(
                "{what}: the key is encrypted; give its password with {}",
                hints.key_password
            ));
        };
        let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
            .map_err(|e| format!("{what}: not a PKCS#8 encrypted key: {e}"))?;
        let plain = info.decrypt(pw).map_err(|e| {
            format!(
                "{what}: the key could not be decrypted ({e}): wrong {}?",
                hints.key_password
            )
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(format!(
            "{what}: the key is encrypted in OpenSSL's traditional format, which is not \
             supported; convert it to PKCS#8 (openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD \
             -out NEW) and give its password with {}",
            hints.key_password
        ));
    }
    PrivateKeyDer::from_pem_slice(text.as_bytes())
        .map_err(|e| format!("{what}: no private key read from it ({e}); a PEM key is needed"))
}
