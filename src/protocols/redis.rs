//! Redis/Valkey on the kernel: handshake, reply assembly, heartbeat.
//!
//! Handshake: `HELLO 3` (with `AUTH` and `SETNAME` folded in) switches the
//! connection to RESP3; a server that does not know HELLO (Redis < 6) gets
//! `AUTH` and `CLIENT SETNAME` separately and stays on RESP2. Then `SELECT`
//! when the URL names a database other than 0. Replies are one frame per
//! command; an explicit pipeline of N commands completes with N frames.
//! RESP3 push frames (`>`) are not replies and are skipped.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};

use crate::codec::resp::{self, Frame, Limits};
use crate::kernel::endpoint::Role;
use crate::kernel::handshake::HandshakeIo;
use crate::kernel::{DecodeError, Feed, KernelError, Protocol};

#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    pub client_name: Option<String>,
    pub limits: Limits,
}

pub struct Redis {
    pub opts: RedisOptions,
    /// Whether the last handshake got RESP3 (for status pages).
    pub resp3: AtomicBool,
}

impl Redis {
    pub fn new(opts: RedisOptions) -> Self {
        Redis {
            opts,
            resp3: AtomicBool::new(false),
        }
    }
}

/// Reply assembly for one submission of `want` commands.
pub struct Pending {
    want: u32,
    /// The reply is `Frames` (a batch), even for a batch of one command.
    batch: bool,
    got: Vec<Frame>,
    /// Its caller said running it twice is harmless (`idempotent=True` on
    /// the call): it may be sent again after a lost connection.
    idempotent: bool,
}

impl Pending {
    /// One command; the reply is a `Frame`.
    pub fn one() -> Self {
        Pending {
            want: 1,
            batch: false,
            got: Vec::new(),
            idempotent: false,
        }
    }
    /// `n` commands sent together; the reply is `Frames` of `n`.
    pub fn many(n: u32) -> Self {
        Pending {
            want: n,
            batch: true,
            got: Vec::with_capacity(n as usize),
            idempotent: false,
        }
    }
    /// Marked by its caller as safe to run twice (`idempotent=True`).
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }
}

/// Per connection: the resumable decoder, so a large reply arriving in many
/// reads is scanned once, not from its start on every read.
/// Also the role the server gave itself, until the service takes it
/// (`Protocol::role`).
pub struct RedisConn(resp::Decoder, Option<Role>);

impl Default for RedisConn {
    fn default() -> Self {
        RedisConn(resp::Decoder::new(Limits::default()), None)
    }
}

/// The reply of a `Pending::many` submission.
pub struct Frames(pub Vec<Frame>);

fn command(args: &[&[u8]]) -> BytesMut {
    let mut b = BytesMut::new();
    resp::encode_command(args, &mut b);
    b
}

/// The role in HELLO's reply (`role`: `master` or `replica`; a map in
/// RESP3, pairs in RESP2); a sentinel or no such field: none.
fn hello_role(f: &Frame) -> Option<Role> {
    let text = |f: &Frame| match f {
        Frame::Bulk(b) | Frame::Simple(b) => Some(b.clone()),
        _ => None,
    };
    let value = match f {
        Frame::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text(k).as_deref() == Some(b"role"))
            .and_then(|(_, v)| text(v)),
        Frame::Array(items) => items
            .chunks(2)
            .find(|kv| text(&kv[0]).as_deref() == Some(b"role"))
            .and_then(|kv| kv.get(1).and_then(text)),
        _ => None,
    }?;
    match &value[..] {
        b"master" => Some(Role::Primary),
        b"replica" | b"slave" => Some(Role::Replica),
        _ => None,
    }
}

fn error_text(f: &Frame) -> Option<String> {
    match f {
        Frame::Error(b) | Frame::BulkError(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

impl Protocol for Redis {
    type Msg = Frame;
    type Pending = Pending;
    type ConnState = RedisConn;

    fn decode(&self, st: &mut RedisConn, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        st.0.decode(buf).map_err(|e| match e {
            resp::DecodeError::TooLarge { .. } | resp::DecodeError::TooDeep { .. } => {
                DecodeError::TooLarge {
                    detail: format!("RESP reply over a limit: {e}"),
                    option: None,
                }
            }
            resp::DecodeError::Syntax { .. } => {
                DecodeError::Malformed(format!("invalid RESP reply: {e}"))
            }
        })
    }

    fn is_unsolicited(&self, msg: &Frame) -> bool {
        matches!(msg, Frame::Push(_))
    }

    fn feed(&self, st: &mut RedisConn, p: &mut Pending, msg: Frame) -> Feed {
        if let Frame::Error(e) = &msg {
            if e.starts_with(b"READONLY") {
                st.1 = Some(Role::Replica); // a write reached a replica
            }
        }
        if !p.batch {
            return Feed::Done(Box::new(msg));
        }
        p.got.push(msg);
        if p.got.len() as u32 >= p.want {
            Feed::Done(Box::new(Frames(std::mem::take(&mut p.got))))
        } else {
            Feed::More
        }
    }

    async fn handshake(&self, io: &mut HandshakeIo<'_, Self>) -> Result<(), KernelError> {
        let o = &self.opts;
        let addr = io.addr.to_string();
        let auth_fail = |e: String| {
            KernelError::connection(format!(
                "redis {addr}: authentication failed: {e}. Check the user and password in the URL"
            ))
        };
        let mut hello: Vec<&[u8]> = vec![b"HELLO", b"3"];
        if let Some(pw) = &o.password {
            hello.extend([
                b"AUTH".as_slice(),
                o.username.as_deref().unwrap_or("default").as_bytes(),
                pw.as_bytes(),
            ]);
        }
        if let Some(n) = &o.client_name {
            hello.extend([b"SETNAME".as_slice(), n.as_bytes()]);
        }
        io.send(&command(&hello)).await?;
        let reply = io.recv().await?;
        match error_text(&reply) {
            None => {
                self.resp3.store(true, Ordering::Relaxed);
                // HELLO's reply names the server's role: no round trip.
                io.state.1 = hello_role(&reply);
            }
            Some(e)
                if e.starts_with("WRONGPASS")
                    || e.starts_with("NOAUTH")
                    || e.contains("invalid password") =>
            {
                return Err(auth_fail(e));
            }
            Some(_) => {
                // No HELLO (Redis < 6) or no RESP3: RESP2 with separate commands.
                self.resp3.store(false, Ordering::Relaxed);
                if let Some(pw) = &o.password {
                    let cmd = match &o.username {
                        Some(u) => command(&[b"AUTH", u.as_bytes(), pw.as_bytes()]),
                        None => command(&[b"AUTH", pw.as_bytes()]),
                    };
                    io.send(&cmd).await?;
                    if let Some(e) = error_text(&io.recv().await?) {
                        return Err(auth_fail(e));
                    }
                }
                if let Some(n) = &o.client_name {
                    io.send(&command(&[b"CLIENT", b"SETNAME", n.as_bytes()]))
                        .await?;
                    if let Some(e) = error_text(&io.recv().await?) {
                        return Err(KernelError::connection(format!(
                            "redis {addr}: CLIENT SETNAME failed: {e}"
                        )));
                    }
                }
            }
        }
        if o.db != 0 {
            let db = o.db.to_string();
            io.send(&command(&[b"SELECT", db.as_bytes()])).await?;
            if let Some(e) = error_text(&io.recv().await?) {
                return Err(KernelError::connection(format!(
                    "redis {addr}: cannot select database {}: {e}",
                    o.db
                )));
            }
        }
        Ok(())
    }

    fn role(&self, st: &mut RedisConn) -> Option<Role> {
        st.1.take()
    }

    fn idempotent(&self, p: &Pending, payload: &[u8]) -> bool {
        p.idempotent || super::redis_readonly::only_reads(payload)
    }

    fn reads_only(&self, payload: &[u8]) -> bool {
        super::redis_readonly::only_reads(payload)
    }

    /// Fewer, larger writes: every write that finds redis-server asleep
    /// costs it a turn and a reply write of its own (`conn::Hold`).
    fn hold_plain_writes(&self) -> bool {
        true
    }

    fn heartbeat(&self) -> Option<(Bytes, Pending)> {
        Some((command(&[b"PING"]).freeze(), Pending::one()))
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::{Redis, RedisOptions};
    use crate::kernel::Protocol;

    #[test]
    fn plain_text_connections_hold_their_writes() {
        assert!(Redis::new(RedisOptions::default()).hold_plain_writes());
    }
}
