//! PostgreSQL password authentication, sans-IO: the MD5 digest and the
//! client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks
//! it. The caller moves the messages: `client_first` goes in a
//! SASLInitialResponse, the answer to AuthenticationSASLContinue in a
//! SASLResponse, and AuthenticationSASLFinal is checked with
//! `verify_server_final` before AuthenticationOk is believed.
//!
//! No channel binding (`n,,`): the connection has no TLS to bind to.
//! PostgreSQL ignores the SCRAM user name (it uses the startup one), so an
//! empty `n=` is sent unless `with_user` sets one.
//!
//! SASLprep of the password (`saslprep`) does what needs no Unicode
//! tables: ASCII passes through unchanged (as in PostgreSQL), non-ASCII
//! spaces become spaces and "commonly mapped to nothing" characters (soft
//! hyphen, zero-width joiners...) are dropped. There is no NFKC
//! normalization and no check for prohibited non-ASCII characters: other
//! characters are kept as they are. That matches the server whenever the
//! rest of the password is already NFKC (a typed `päss wörd` is), or when
//! SASLprep fails on it for a reason we can see (the server then falls back
//! to the raw bytes, and so do we). Passwords with compatibility characters
//! such as `ﬁ` or `Ⅸ` fail to authenticate.

use base64::prelude::{Engine as _, BASE64_STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// The mechanism name to pick from AuthenticationSASL.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// Most PBKDF2 iterations accepted from a server: PostgreSQL uses 4096 by
/// default; far more would let a hostile server burn our CPU.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// `"md5" + hex(md5(hex(md5(password + user)) + salt))`, the answer to
/// AuthenticationMD5Password.
pub fn md5_password(user: &str, password: &str, salt: [u8; 4]) -> String {
    let inner = hex(&md5::Md5::new()
        .chain_update(password)
        .chain_update(user)
        .finalize());
    let outer = md5::Md5::new()
        .chain_update(inner)
        .chain_update(salt)
        .finalize();
    format!("md5{}", hex(&outer))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthError {
    /// The server's SCRAM message is malformed or out of order.
    Protocol(String),
    /// The server could not prove it knows the password: it may be an
    /// impostor, so the connection must not be used.
    ServerSignatureMismatch,
    /// The server ended the exchange with `e=<reason>`.
    Server(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Protocol(d) => write!(f, "invalid SCRAM message from the server: {d}"),
            AuthError::ServerSignatureMismatch => {
                write!(
                    f,
                    "the server's SCRAM signature does not match the password"
                )
            }
            AuthError::Server(e) => write!(f, "the server rejected SCRAM authentication: {e}"),
        }
    }
}

impl std::error::Error for AuthError {}

fn protocol(detail: impl Into<String>) -> AuthError {
    AuthError::Protocol(detail.into())
}

/// SASLprep (RFC 4013) as far as it goes without Unicode tables; see the
/// module docs. The result is what the server hashed for this password.
pub fn saslprep(password: &str) -> Vec<u8> {
    if password.is_ascii() {
        return password.as_bytes().to_vec();
    }
    let mut mapped = String::with_capacity(password.len());
    for c in password.chars() {
        match c as u32 {
            // Non-ASCII spaces (RFC 3454 C.1.2), checked first as PostgreSQL does.
            0xa0 | 0x1680 | 0x2000..=0x200b | 0x202f | 0x205f | 0x3000 => mapped.push(' '),
            // Commonly mapped to nothing (RFC 3454 B.1; its U+200B is taken above).
            0xad | 0x34f | 0x1806 | 0x180b..=0x180d | 0x200c..=0x200d | 0x2060 => {}
            0xfe00..=0xfe0f | 0xfeff => {}
            _ => mapped.push(c),
        }
    }
    // An empty result or a control character (C.2.1, C.2.2) makes SASLprep
    // fail, and the server then uses the raw bytes.
    let control = |c: char| c.is_control();
    if mapped.is_empty() || mapped.chars().any(control) {
        return password.as_bytes().to_vec();
    }
    mapped.into_bytes()
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 with one 32-byte output block: SCRAM's `Hi()`.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let keyed = HmacSha256::new_from_slice(password).expect("HMAC takes any key length");
    let mut mac = keyed.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations {
        let mut mac = keyed.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// The client side of one SCRAM-SHA-256 exchange.
pub struct ScramClient {
    password: Vec<u8>,
    /// `n=<user>,r=<nonce>`: the client-first message without its GS2 header.
    client_first_bare: String,
    nonce: String,
    /// Known once the server-first message has been handled.
    server_signature: Option<[u8; 32]>,
    /// Set when `verify_server_final` accepted the server's signature.
    verified: AtomicBool,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("nonce", &self.nonce)
            .field("answered", &self.server_signature.is_some())
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// A client with a random 24-byte nonce, base64-encoded.
    pub fn new(password: &str) -> Self {
        let mut raw = [0u8; 24];
        getrandom::fill(&mut raw).expect("the OS random number generator failed");
        Self::with_nonce(password, &BASE64_STANDARD.encode(raw))
    }

    /// A client with a fixed nonce, for tests. The nonce must be printable
    /// ASCII without `,`.
    pub fn with_nonce(password: &str, nonce: &str) -> Self {
        ScramClient {
            password: saslprep(password),
            client_first_bare: format!("n=,r={nonce}"),
            nonce: nonce.to_owned(),
            server_signature: None,
            verified: AtomicBool::new(false),
        }
    }

    /// Sends `user` as the SCRAM user name (PostgreSQL ignores it; the RFC
    /// test vectors need it). Call before `client_first`.
    pub fn with_user(mut self, user: &str) -> Self {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        self.client_first_bare = format!("n={user},r={}", self.nonce);
        self
    }

    /// The client-first message: `n,,n=,r=<nonce>`.
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Checks the server-first message (`r=<nonce>,s=<salt>,i=<iterations>`)
    /// and returns the client-final message with the proof.
    pub fn handle_server_first(&mut self, data: &[u8]) -> Result<Vec<u8>, AuthError> {
        let server_first =
            std::str::from_utf8(data).map_err(|_| protocol("server-first is not UTF-8"))?;
        let mut attrs = server_first.split(',');
        let mut attr = |name: &str| {
            let a = attrs.next().unwrap_or("");
            if a.starts_with("m=") {
                return Err(protocol("server requires an unsupported SCRAM extension"));
            }
            a.strip_prefix(name)
                .ok_or_else(|| protocol(format!("server-first lacks {name}")))
        };
        let nonce = attr("r=")?;
        let salt = attr("s=")?;
        let iterations = attr("i=")?;
        if !nonce.starts_with(&self.nonce) {
            return Err(protocol(
                "server nonce does not start with the client nonce",
            ));
        }
        if nonce
            .bytes()
            .any(|b| !(0x21..=0x7e).contains(&b) || b == b',')
        {
            return Err(protocol("server nonce has invalid characters"));
        }
        let salt = BASE64_STANDARD
            .decode(salt)
            .map_err(|e| protocol(format!("salt is not base64: {e}")))?;
        let iterations: u32 = iterations
            .parse()
            .ok()
            .filter(|i| (1..=MAX_ITERATIONS).contains(i))
            .ok_or_else(|| {
                protocol(format!(
                    "iteration count {iterations:?} is not in 1..={MAX_ITERATIONS}"
                ))
            })?;

        let salted = hi(&self.password, &salt, iterations);
        let client_key = hmac(&salted, &[b"Client Key"]);
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        // "biws" is base64("n,,"), the GS2 header: no channel binding.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = [
            self.client_first_bare.as_bytes(),
            b",",
            data,
            b",",
            without_proof.as_bytes(),
        ];
        let mut proof = hmac(&stored_key, &auth_message);
        proof.iter_mut().zip(&client_key).for_each(|(p, k)| *p ^= k);
        let server_key = hmac(&salted, &[b"Server Key"]);
        self.server_signature = Some(hmac(&server_key, &auth_message));
        let proof = BASE64_STANDARD.encode(proof);
        Ok(format!("{without_proof},p={proof}").into_bytes())
    }

    /// Checks the server-final message: `v=<signature>` must prove that the
    /// server knows the password; `e=<reason>` is the server's refusal.
    pub fn verify_server_final(&self, data: &[u8]) -> Result<(), AuthError> {
        let expected = self
            .server_signature
            .ok_or_else(|| protocol("server-final before server-first"))?;
        let text = std::str::from_utf8(data).map_err(|_| protocol("server-final is not UTF-8"))?;
        let first = text.split(',').next().unwrap_or("");
        if let Some(reason) = first.strip_prefix("e=") {
            return Err(AuthError::Server(reason.to_owned()));
        }
        let v = first
            .strip_prefix("v=")
            .ok_or_else(|| protocol("server-final has neither v= nor e="))?;
        let got = BASE64_STANDARD
            .decode(v)
            .map_err(|e| protocol(format!("server signature is not base64: {e}")))?;
        // Compared without an early exit, as signatures should be.
        let differs = got.len() != expected.len()
            || got
                .iter()
                .zip(&expected)
                .fold(0, |acc, (a, b)| acc | (a ^ b))
                != 0;
        if differs {
            return Err(AuthError::ServerSignatureMismatch);
        }
        self.verified.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// True once `verify_server_final` has accepted the server's signature.
    /// Check it when AuthenticationOk arrives after SCRAM started: a server
    /// that skips AuthenticationSASLFinal has not proven it knows the
    /// password, and RFC 5802 requires the client to check that proof.
    pub fn is_verified(&self) -> bool {
        self.verified.load(Ordering::Relaxed)
    }
}
