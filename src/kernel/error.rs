//! Kernel errors: precise inside, classified once at the Python boundary.
//!
//! Every failure a caller can see is one of five kinds. The Python layer maps
//! each kind to one exception class (`iokernel.ConnectionError`, ...); the
//! `detail` string is the human message and always names the address or
//! service and, where there is one, what to do about it.
//!
//! Two more facts travel with every error, for code that must decide what
//! to do next (failover, retries):
//! * `stage` — where the request got to: never written (safe to send
//!   elsewhere), written with no answer (the outcome is unknown: a write may
//!   have happened), or answered. The dispatcher sets it from what it knows
//!   of each request, so error sites need not.
//! * `reason` — which of the failures that share a kind it was (a connect
//!   timeout, no connection available, a reply timeout, ...).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Could not connect, the peer closed, the connection was reset.
    Connection,
    /// The request's deadline passed before its reply arrived.
    Timeout,
    /// The peer sent bytes that are not the protocol (or exceed a limit).
    Protocol,
    /// A limit on queued or in-flight requests was reached; nothing was sent.
    Overloaded,
    /// The handle belongs to a kernel that is gone (shut down, or fork).
    Closed,
}

/// Where a request got to when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Never written to any connection: nothing happened on the server.
    NotSent,
    /// Written, and no (complete) answer: the server may or may not have
    /// acted on it.
    Written,
    /// The server answered (the failure is about the answer).
    Answered,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::NotSent => "not_sent",
            Stage::Written => "written",
            Stage::Answered => "answered",
        }
    }
}

/// Which failure of its kind an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Nothing more specific to say.
    Other,
    /// A connection could not be opened (refused, unreachable, handshake).
    ConnectFailed,
    /// Opening a connection took longer than `connect_timeout`.
    ConnectTimeout,
    /// No connection became available for the request within its timeout.
    NoConnection,
    /// No endpoint of the service fits the request's route (a role none
    /// has, an address not in the set).
    NoEndpoint,
    /// The request was sent; its reply did not arrive within its timeout.
    ReplyTimeout,
    /// An open connection was lost (closed, reset, stalled).
    ConnectionLost,
    /// An idempotent request was sent again after lost connections as
    /// often as it may be (`dispatch::lost::MAX_RESENDS`), and lost again.
    ResendLimit,
}

impl Reason {
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Reason::Other => return None,
            Reason::ConnectFailed => "connect_failed",
            Reason::ConnectTimeout => "connect_timeout",
            Reason::NoConnection => "no_connection",
            Reason::NoEndpoint => "no_endpoint",
            Reason::ReplyTimeout => "reply_timeout",
            Reason::ConnectionLost => "connection_lost",
            Reason::ResendLimit => "resend_limit",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    pub kind: ErrorKind,
    pub detail: String,
    pub stage: Stage,
    pub reason: Reason,
    /// For a failed TLS connection: why (`TlsReason::name`, e.g.
    /// "unknown_ca"). Python raises `iokernel.TLSError` for these.
    pub tls: Option<&'static str>,
}

impl KernelError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        KernelError {
            kind,
            detail: detail.into(),
            stage: Stage::NotSent,
            reason: Reason::Other,
            tls: None,
        }
    }
    pub fn connection(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Connection, detail)
    }
    pub fn timeout(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, detail)
    }
    pub fn protocol(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, detail)
    }
    pub fn overloaded(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Overloaded, detail)
    }
    pub fn closed(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Closed, detail)
    }
    pub fn because(mut self, reason: Reason) -> Self {
        self.reason = reason;
        self
    }
    pub fn tls(mut self, reason: Option<&'static str>) -> Self {
        self.tls = reason;
        self
    }
    pub fn at(mut self, stage: Stage) -> Self {
        self.stage = stage;
        self
    }
    /// This connection error for a request it left unanswered: if the
    /// request had been written, say that its outcome is unknown and why it
    /// was not sent again (`dispatch::lost`, retry safety).
    pub fn unknown_outcome(&self, written: bool) -> KernelError {
        if !written || self.kind != ErrorKind::Connection {
            return self.clone();
        }
        let mut e = self.clone();
        e.detail = format!(
            "{}; the request had been sent, so its outcome is unknown: the server may or may not \
             have executed it. It was not sent again because it is not marked idempotent (pass \
             idempotent=True to the call or the client if running it twice is harmless); check \
             before retrying",
            self.detail
        );
        e
    }

    /// This connection error for an idempotent request that was sent
    /// again `n` times after lost connections and lost once more.
    pub fn resend_limit(&self, n: u8) -> KernelError {
        let mut e = self.clone().because(Reason::ResendLimit);
        e.detail = format!(
            "{}; the request is idempotent and had been sent {} times, each time losing its \
             connection before the answer: it is not sent again (at most {n} resends). The server \
             may have executed it; look at why its connections fail before retrying",
            self.detail,
            n + 1
        );
        e
    }

    /// This connection error for a request of a lost dedicated connection
    /// (never sent again: it may belong to a transaction). `unread`: the
    /// server said it ended the session before reading the request.
    pub fn lost_dedicated(&self, written: bool, unread: bool) -> KernelError {
        if self.kind != ErrorKind::Connection {
            return self.clone();
        }
        let what = if unread {
            "the server ended the session before reading the request, so it was not executed"
        } else if written {
            "the request had been sent, so its outcome is unknown: the server may or may not have \
             executed it"
        } else {
            "the request was not sent"
        };
        let mut e = self.clone();
        e.detail = format!(
            "{}; {what}. It was on a dedicated connection (a transaction, a lease), whose requests \
             are never sent again elsewhere: a transaction on it is over (the server rolls back \
             what was not committed). Start it again on a new connection",
            self.detail
        );
        e
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for KernelError {}

/// Why a protocol could not decode the bytes a server sent. After any of
/// these the stream cannot be trusted: the connection is reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not the protocol (bad type byte, bad length, missing terminator).
    Malformed(String),
    /// A message, length or count over a limit; `option` names the setting
    /// that raises the limit, if there is one.
    TooLarge {
        detail: String,
        option: Option<&'static str>,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(d) => f.write_str(d),
            DecodeError::TooLarge {
                detail,
                option: Some(o),
            } => write!(f, "{detail} (raise {o} if such replies are expected)"),
            DecodeError::TooLarge {
                detail,
                option: None,
            } => f.write_str(detail),
        }
    }
}
