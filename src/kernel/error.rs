//! Kernel errors: precise inside, classified once at the Python boundary.
//!
//! Every failure a caller can see is one of five kinds. The Python layer maps
//! each kind to one exception class (`iokernel.ConnectionError`, ...); the
//! `detail` string is the human message and always names the address or
//! service and, where there is one, what to do about it.

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    pub kind: ErrorKind,
    pub detail: String,
}

impl KernelError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        KernelError {
            kind,
            detail: detail.into(),
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
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for KernelError {}
