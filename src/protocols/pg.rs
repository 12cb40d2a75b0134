//! PostgreSQL on the kernel: queries on the extended protocol, reply
//! assembly, cancels (startup and authentication: `pg_startup.rs`; TLS:
//! `pg_tls`).
//!
//! Every query is its own Parse/Bind/Describe/Execute/Sync sequence, so an
//! error in one never disturbs the queries pipelined around it: the server
//! skips to that query's Sync and answers the next one normally. The
//! binding knows each statement's types (it described it once) and encodes
//! the parameters for them; the Parse declares those types, so the server
//! reads each parameter as the type it was encoded for, and the Bind asks
//! for each result column in the format the binding chose (binary where it
//! decodes the type). No session setting is changed: whatever the user's
//! SQL formats as text comes out in the server's default format.
//!
//! Out-of-band cancel (sent by the kernel for a silent overdue request) can
//! land on the request after it when the overdue one finishes in that
//! instant: PostgreSQL aborts whatever runs when the cancel arrives, and
//! the postmaster signals the backend twice (its pid and its process group),
//! so even the statement after a correctly cancelled one can be hit. A
//! "query_canceled" (57014) within `CANCEL_WINDOW` of our cancel, on a
//! single-statement request that left no transaction open, is therefore
//! answered with `Feed::Retry` (once per request): that statement was rolled
//! back, so sending it again is safe, and its caller never sees our cancel.
//! Simple-protocol strings (may hold several statements, even a COMMIT) and
//! `executemany` (`Prebuilt`) are not retried.
//!
//! Oversized messages: a row (or error, notice, COPY data) larger than
//! `max_message_size` fails only its own request (`ClientError::TooLarge`):
//! its bytes are read and discarded as they arrive, and the connection goes
//! on serving the requests pipelined behind it.
//!
//! A stale cached statement (the table changed after it was prepared: 0A000
//! "cached plan must not change result type", or a type mismatch against
//! the types it was prepared with) is evicted and closed; outside a
//! transaction the request is prepared afresh and sent again, once, so its
//! caller never sees it; inside one the error says what happened.
//!
//! Prepared statements: each connection keeps a bounded cache, SQL text →
//! statement name (`PgConn`). The request carries SQL and encoded parameters;
//! `write_request` runs on the kernel thread when the request is given to a
//! connection and writes `Parse` only if that connection has not prepared the
//! statement yet (evicting the least recently used one with `Close`). The
//! Describe that teaches the binding a new statement's types prepares it by
//! name on the connection it goes to, so a statement is parsed once per
//! connection, and its first use costs one round trip more only there.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::codec::pg::{self, Backend, ErrorFields, Limits};
use crate::kernel::handshake::HandshakeIo;
use crate::kernel::transport::Connector;
use crate::kernel::{DecodeError, Feed, KernelError, Protocol};

#[path = "pg_copy.rs"]
pub mod copy;
#[path = "pg_result.rs"]
mod result;
#[path = "pg_stmt.rs"]
mod stmt;
pub use result::{ClientError, PgResult};
#[path = "pg_listen.rs"]
mod listen;
#[path = "pg_role.rs"]
pub mod role;
#[path = "pg_startup.rs"]
mod startup;
pub use listen::Notification;

#[derive(Debug, Clone)]
pub struct PgOptions {
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub application_name: Option<String>,
    /// Prepared statements kept per connection (0: always unnamed).
    pub statement_cache: usize,
    pub limits: Limits,
    /// Channels to LISTEN on, on every connection as it opens (a listener's
    /// service: its notifications go to the subscription sink).
    pub listen: Vec<String>,
    /// Ask a server that does not report its role what it is (`role::CHECK`)
    /// when a connection opens: `target_session_attrs` needs it.
    pub check_role: bool,
}

pub struct Postgres {
    pub opts: PgOptions,
    /// libpq's retry after the server refuses a startup (`pg_tls`): the
    /// connector to open the new connection with, and whether it applies
    /// when the refused one was TLS (`prefer`) or plain text (`allow`).
    pub retry: Option<(Arc<dyn Connector>, bool)>,
    /// How a connection's cancel connects, `[plain, TLS]` by how the
    /// connection ended up (`PgConnector::pinned`); `None`: the service's.
    pub cancel_via: Option<[Arc<dyn Connector>; 2]>,
}

/// What a request asks the server to do.
pub enum Query {
    /// Simple query protocol: several statements allowed, no parameters.
    Simple(String),
    /// One statement; `params` is a pre-encoded Bind parameter section for
    /// parameters of `types` (declared in the Parse); `formats` are the
    /// result formats for the Bind.
    Extended {
        sql: Arc<str>,
        params: Bytes,
        types: Arc<[u32]>,
        formats: Arc<[i16]>,
    },
    /// Describe a statement (Parse, Describe, Sync): its parameter and
    /// result types. The Parse prepares it on that connection under a new
    /// name (`PgConn::prepare_to_describe`), so the executions that follow
    /// there bind to it without parsing it again. No side effects, so it
    /// may be sent again.
    Describe(Arc<str>),
    /// Messages already encoded by the caller (`executemany`: an unnamed
    /// Parse, then Bind+Execute per parameter set, then one Sync — one
    /// implicit transaction, all rows or none). Written as they are.
    Prebuilt(Bytes),
    /// `COPY ... FROM STDIN` (simple protocol): its data follows as the
    /// request's body (CopyData messages, then CopyDone or CopyFail).
    CopyIn(String),
    /// `COPY ... TO STDOUT` (simple protocol): its data comes back in parts
    /// (`Feed::Item(Bytes)`, `pg_copy::CHUNK` at a time), then the status.
    CopyOut(String),
}

/// How long after our out-of-band cancel a 57014 is taken to be its doing:
/// the kernel gives up delivering a cancel after 2 s (`Conn::cancel_head`),
/// plus a second for the error to come back.
const CANCEL_WINDOW: Duration = Duration::from_secs(3);

/// A request's state: its query (kept until the reply, so that it can be
/// written again after a misplaced cancel) and its result as it arrives.
pub struct Pending {
    query: Query,
    /// Handed back with the result (the binding's type registry).
    ctx: Option<Arc<dyn Any + Send + Sync>>,
    /// Sent again once already (never twice).
    retried: bool,
    /// The statement this request prepared, SQL and name (forgotten again
    /// if Parse fails).
    parsed: Option<(Arc<str>, String)>,
    parse_ok: bool,
    /// The cached statement it bound to, prepared by an earlier request
    /// (empty: it parsed its own).
    cached: String,
    /// Its error may come from a stale cached statement: send it again.
    stale: bool,
    /// Rows are no longer kept (one was too large: the request fails).
    drop_rows: bool,
    /// The server is sending COPY data this request did not ask for.
    copy_out: bool,
    /// COPY TO STDOUT data not yet handed on (`Query::CopyOut`).
    copy_buf: BytesMut,
    /// Deliver rows in batches of this many as they arrive (`Feed::Item`,
    /// each a `PgResult` with `columns` and `rows`); 0: all in the reply.
    pub batch: usize,
    /// A batch went out: the request can no longer be sent again.
    parted: bool,
    /// Its caller said running it twice is harmless (`idempotent=True` on
    /// the call): it may be sent again after a lost connection.
    pub idempotent: bool,
    result: PgResult,
}

impl Pending {
    pub fn new(q: Query) -> Self {
        Pending {
            query: q,
            ctx: None,
            retried: false,
            parsed: None,
            parse_ok: false,
            cached: String::new(),
            stale: false,
            drop_rows: false,
            copy_out: false,
            copy_buf: BytesMut::new(),
            batch: 0,
            parted: false,
            idempotent: false,
            result: PgResult::default(),
        }
    }

    /// A query whose rows come in batches of `batch` as they arrive.
    pub fn streamed(q: Query, batch: usize) -> Self {
        let mut p = Pending::new(q);
        p.batch = batch.max(1);
        p
    }

    /// A request whose result carries `ctx` back to the binding.
    pub fn with_ctx(q: Query, ctx: Arc<dyn Any + Send + Sync>) -> Self {
        let mut p = Pending::new(q);
        p.ctx = Some(ctx);
        p
    }
}

/// SQLSTATEs a statement prepared before a schema change can fail with:
/// 0A000 "cached plan must not change result type", 26000 (the statement is
/// gone), and what binding values of the old types to the new table gives.
const STALE: &[&str] = &[
    "0A000", "26000", "42804", "22P02", "42P01", "42703", "42883",
];

/// A prepared statement of one connection.
struct Cached {
    name: String,
    /// The parameter types its Parse declared (None: a Describe prepared
    /// it and has not reported them yet).
    types: Option<Arc<[u32]>>,
    used: u64,
    /// The server confirmed its Parse (ParseComplete). Until then a Bind to
    /// it could fail with 26000 for a reason that is not the caller's.
    confirmed: bool,
}

/// Per connection: the prepared-statement cache and what the server told us.
#[derive(Default)]
pub struct PgConn {
    cache: HashMap<Arc<str>, Cached>,
    /// What the server said of its role (`role::PgRole`).
    pub role: role::PgRole,
    next_name: u64,
    tick: u64,
    pub backend: Option<(i32, i32)>,
    /// When the kernel last sent an out-of-band cancel on this connection.
    cancel_sent: Option<Instant>,
    /// The connection is TLS (its cancel goes over TLS too).
    tls: bool,
    /// Bytes of an oversized message still to discard (`decode_skipping`).
    skip: usize,
    /// Stale statements to Close on the server with the next request.
    to_close: Vec<String>,
}

fn err_text(e: &ErrorFields) -> String {
    format!("{} (SQLSTATE {})", e.message, e.code)
}

/// SQLSTATEs of the FATAL error a server sends when it closes a session
/// that sat idle (`idle_session_timeout`), or idle in a transaction
/// (`idle_in_transaction_session_timeout`): it reads nothing more.
const IDLE_CLOSE: [&str; 2] = ["57P05", "25P03"];

/// Why the server ends a session, for the connection's error.
fn farewell(e: &ErrorFields) -> String {
    let why = match e.code.as_str() {
        "57P05" => " (the server's idle_session_timeout ends sessions idle that long)",
        "25P03" => {
            " (the server's idle_in_transaction_session_timeout ends sessions idle that long in a \
             transaction; the transaction was rolled back)"
        }
        _ => "",
    };
    format!("the server ended the session: {}{why}", err_text(e))
}

impl Protocol for Postgres {
    type Msg = Backend;
    type Pending = Pending;
    type ConnState = PgConn;

    fn decode(&self, st: &mut PgConn, buf: &mut BytesMut) -> Result<Option<Backend>, DecodeError> {
        let msg =
            pg::decode_skipping(buf, &self.opts.limits, &mut st.skip).map_err(|e| match e {
                pg::DecodeError::TooLarge { .. } => DecodeError::TooLarge {
                    detail: e.to_string(),
                    option: Some("max_message_size"),
                },
                pg::DecodeError::Syntax { .. } => DecodeError::Malformed(e.to_string()),
            })?;
        if let Some(m) = &msg {
            st.role.note(m);
        }
        Ok(msg)
    }

    fn role(&self, st: &mut PgConn) -> Option<crate::kernel::endpoint::Role> {
        st.role.take()
    }

    fn read_only(&self, st: &mut PgConn) -> Option<bool> {
        st.role.take_read_only()
    }

    /// What the caller marked, and describing a statement (no statement
    /// is assumed to only read).
    fn idempotent(&self, p: &Pending, _payload: &[u8]) -> bool {
        p.idempotent || matches!(p.query, Query::Describe(_))
    }

    /// A request the server answered with FATAL 57P05 (or 25P03) before
    /// anything else: it ended the idle session just as the request
    /// arrived, so it never read it.
    fn unread(&self, p: &Pending) -> bool {
        let r = &p.result;
        r.error
            .as_ref()
            .is_some_and(|e| e.severity == "FATAL" && IDLE_CLOSE.contains(&e.code.as_str()))
            && r.status.is_none()
            && r.rows.is_empty()
            && r.columns.is_none()
    }

    fn farewell(&self, msg: &Backend) -> Option<String> {
        match msg {
            Backend::ErrorResponse(e) if e.severity == "FATAL" || e.severity == "PANIC" => {
                Some(farewell(e))
            }
            _ => None,
        }
    }

    fn is_unsolicited(&self, msg: &Backend) -> bool {
        matches!(
            msg,
            Backend::NoticeResponse(_)
                | Backend::NotificationResponse { .. }
                | Backend::ParameterStatus { .. }
                | Backend::Oversized {
                    tag: b'N' | b'A',
                    ..
                }
        )
    }

    fn push(&self, _: &mut PgConn, msg: Backend) -> Option<crate::kernel::Reply> {
        match msg {
            Backend::NotificationResponse {
                pid,
                channel,
                payload,
            } => Some(Box::new(Notification {
                pid,
                channel,
                payload,
            })),
            _ => None,
        }
    }

    fn write_request(&self, st: &mut PgConn, p: &mut Pending, _payload: &[u8], out: &mut BytesMut) {
        // Sent again after a lost connection: what came back the first time
        // (an error, some rows) is not this attempt's answer.
        p.result = PgResult::default();
        match &p.query {
            Query::Simple(sql) => pg::query(out, sql),
            Query::Extended {
                sql,
                params,
                types,
                formats,
            } => {
                let (stmt, parsed) = st.prepare(sql, types, self.opts.statement_cache, out);
                p.parsed = parsed.then(|| (sql.clone(), stmt.clone()));
                p.parse_ok = false;
                p.cached = if parsed { String::new() } else { stmt.clone() };
                p.stale = false;
                pg::bind(out, "", &stmt, params, formats);
                pg::describe_portal(out, "");
                pg::execute(out, "", 0);
                pg::sync(out);
            }
            Query::Describe(sql) => {
                let name = st.prepare_to_describe(sql, self.opts.statement_cache, out);
                pg::describe_statement(out, &name);
                pg::sync(out);
                p.parse_ok = false;
                p.parsed = (!name.is_empty()).then(|| (sql.clone(), name));
            }
            Query::Prebuilt(msgs) => out.extend_from_slice(msgs),
            Query::CopyIn(sql) | Query::CopyOut(sql) => pg::query(out, sql),
        }
    }

    fn feed(&self, st: &mut PgConn, p: &mut Pending, msg: Backend) -> Feed {
        match msg {
            Backend::ParseComplete => {
                p.parse_ok = true;
                if let Some((sql, name)) = &p.parsed {
                    st.confirm(sql, name);
                }
            }
            Backend::BindComplete
            | Backend::CloseComplete
            | Backend::NoData
            | Backend::PortalSuspended
            | Backend::EmptyQueryResponse => {}
            Backend::ParameterDescription(oids) => {
                if let (Some((sql, name)), Query::Describe(_)) = (&p.parsed, &p.query) {
                    st.described(sql, name, &oids);
                }
                p.result.param_types = Some(oids)
            }
            Backend::RowDescription(cols) => {
                p.result.columns = Some(cols.into());
                p.result.rows.clear();
            }
            Backend::DataRow(r) => {
                if !p.drop_rows {
                    p.result.rows.push(r);
                    if p.batch > 0 && p.result.rows.len() >= p.batch && p.result.error.is_none() {
                        p.parted = true;
                        return Feed::Item(Box::new(PgResult {
                            ctx: p.ctx.clone(),
                            columns: p.result.columns.clone(),
                            rows: std::mem::replace(
                                &mut p.result.rows,
                                Vec::with_capacity(p.batch),
                            ),
                            ..PgResult::default()
                        }));
                    }
                }
            }
            Backend::Oversized { tag, len, limit } => {
                let what = match tag {
                    b'D' => "a row",
                    b'd' => "COPY data",
                    b'E' => "the server's error message",
                    _ => "a message",
                };
                p.drop_rows = true;
                p.result.rows = Vec::new();
                p.result
                    .client_error
                    .get_or_insert(ClientError::TooLarge(format!(
                    "{what} of {len} bytes is larger than max_message_size ({limit} bytes): it was \
                     read and discarded and this request failed; the connection stays usable. \
                     Raise the client's max_message_size to receive such replies"
                )));
            }
            Backend::Unknown {
                tag: b'd' | b'c', ..
            } if p.copy_out => {}
            Backend::CopyInResponse if matches!(p.query, Query::CopyIn(_)) => {}
            Backend::CopyOutResponse if matches!(p.query, Query::CopyOut(_)) => {}
            Backend::Unknown { tag: b'd', body } if matches!(p.query, Query::CopyOut(_)) => {
                return copy::data(&mut p.copy_buf, &body)
            }
            Backend::Unknown { tag: b'c', .. } if matches!(p.query, Query::CopyOut(_)) => {
                return copy::done(&mut p.copy_buf)
            }
            Backend::CommandComplete(tag) => p.result.status = Some(tag),
            Backend::ErrorResponse(e) => {
                st.role.refused_write(&e.code);
                // A statement that failed to parse does not exist on the
                // server; one whose cached plan went stale must be re-prepared.
                if let Some((sql, name)) = &p.parsed {
                    if !p.parse_ok {
                        st.forget_failed(sql, name);
                    }
                }
                if e.code == "26000" {
                    st.cache.clear(); // DISCARD ALL or the like: none exists
                }
                if p.result.error.is_none() && !p.cached.is_empty() && STALE.contains(&&*e.code) {
                    p.stale = true;
                    st.evict(&p.query, &p.cached, e.code != "26000");
                }
                p.result.error.get_or_insert(e);
            }
            Backend::ReadyForQuery(status) => {
                let ours = p.result.error.as_ref().is_some_and(|e| e.code == "57014")
                    && st.cancel_sent.is_some_and(|t| t.elapsed() < CANCEL_WINDOW);
                let single = matches!(p.query, Query::Extended { .. } | Query::Describe(_));
                let again = ours || (p.stale && p.result.client_error.is_none());
                if again && single && status == b'I' && !p.retried && !p.parted {
                    p.retried = true;
                    p.result = PgResult::default();
                    return Feed::Retry;
                }
                if p.stale && status != b'I' {
                    if let Some(e) = &mut p.result.error {
                        e.message.push_str(
                            " (this statement was prepared earlier on this connection: if the table or \
                             types it uses changed since, that is the cause; it is prepared afresh on its \
                             next use, but cannot be retried inside a transaction: roll back and run the \
                             transaction again)",
                        );
                    }
                }
                let mut r = std::mem::take(&mut p.result);
                r.ctx = p.ctx.clone();
                return Feed::Done(Box::new(r));
            }
            Backend::CopyOutResponse => {
                p.copy_out = true;
                p.result.client_error.get_or_insert(ClientError::Interface(
                    "the statement is a COPY ... TO STDOUT, whose rows come in COPY format: use \
                     copy_from_query() or copy_from_table() for it (its data was read and discarded)"
                        .into(),
                ));
            }
            Backend::CopyInResponse | Backend::CopyBothResponse => return Feed::Fail(
                "the server started COPY FROM STDIN (or replication), which a plain query cannot \
                     feed: use copy_to_table() or copy_records_to_table()"
                    .into(),
            ),
            other => {
                return Feed::Fail(format!(
                    "unexpected PostgreSQL message during a query: {other:?}"
                ))
            }
        }
        Feed::More
    }

    fn cancel_request(&self, st: &mut PgConn) -> Option<Vec<u8>> {
        let (pid, secret) = st.backend?;
        st.cancel_sent = Some(Instant::now());
        let mut out = BytesMut::new();
        pg::cancel_request(&mut out, pid, secret);
        Some(out.to_vec())
    }

    fn cancel_connector(&self, st: &PgConn) -> Option<Arc<dyn Connector>> {
        self.cancel_via
            .as_ref()
            .map(|v| v[usize::from(st.tls)].clone())
    }

    fn heartbeat(&self) -> Option<(Bytes, Pending)> {
        Some((Bytes::new(), Pending::new(Query::Simple(String::new()))))
    }

    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn handshake(&self, io: &mut HandshakeIo<'_, Self>) -> Result<(), KernelError> {
        let mut refused = false;
        match self.startup(io, &mut refused).await {
            Err(e) if refused => match &self.retry {
                Some((other, after_tls)) if io.is_tls() == *after_tls => {
                    io.reopen(&**other).await?;
                    self.startup(io, &mut refused).await?;
                }
                _ => return Err(e),
            },
            done => done?,
        }
        io.state.tls = io.is_tls();
        Ok(())
    }
}
