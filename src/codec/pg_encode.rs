//! Encoders for the PostgreSQL codec (`pg`): every frontend message the
//! client sends, and `encode_backend` for tests and fake servers. Each
//! appends one message to `out`; the length is patched in once the body is
//! written. `pg` re-exports everything here.
//!
//! These cannot fail, so they do not check their input: strings must not
//! contain NUL (the server rejects the message as malformed), and a message
//! must stay under 1 GiB, the server's limit (over 2 GiB, or over 65535
//! items in one list, panics; callers bound what they send well below).

use super::{Backend, ErrorFields};
use bytes::{BufMut, BytesMut};

/// Writes `tag`, a length placeholder, the body from `body`, then the length.
/// Messages are limited to 2 GiB by the format (the server accepts 1 GiB);
/// callers bound what they send well below that.
fn message(out: &mut BytesMut, tag: Option<u8>, body: impl FnOnce(&mut BytesMut)) {
    if let Some(tag) = tag {
        out.put_u8(tag);
    }
    let start = out.len();
    out.put_i32(0);
    body(out);
    let len = i32::try_from(out.len() - start).expect("PostgreSQL message over 2 GiB");
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// A NUL-terminated string. Strings must not contain NUL; the server
/// rejects a message in which one would shift the fields.
fn put_cstr(out: &mut BytesMut, s: &[u8]) {
    out.put_slice(s);
    out.put_u8(0);
}

pub(super) fn put_count(out: &mut BytesMut, n: usize) {
    out.put_u16(u16::try_from(n).expect("over 65535 items in one message"));
}

pub(super) fn put_value(out: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => out.put_i32(-1),
        Some(v) => {
            out.put_i32(i32::try_from(v.len()).expect("value over 2 GiB"));
            out.put_slice(v);
        }
    }
}

/// Protocol version 3.0.
pub const PROTOCOL_VERSION: i32 = 196608;
/// `CancelRequest` code, sent in place of a protocol version.
pub const CANCEL_REQUEST_CODE: i32 = 80877102;

/// StartupMessage: protocol 3.0 and `key\0value\0` pairs, then a final NUL.
pub fn startup(out: &mut BytesMut, params: &[(&str, &str)]) {
    message(out, None, |out| {
        out.put_i32(PROTOCOL_VERSION);
        for (k, v) in params {
            put_cstr(out, k.as_bytes());
            put_cstr(out, v.as_bytes());
        }
        out.put_u8(0);
    });
}

/// CancelRequest, sent on a new connection to stop the query running on the
/// one that received this `BackendKeyData`.
pub fn cancel_request(out: &mut BytesMut, pid: i32, secret: i32) {
    message(out, None, |out| {
        out.put_i32(CANCEL_REQUEST_CODE);
        out.put_i32(pid);
        out.put_i32(secret);
    });
}

/// PasswordMessage: cleartext password or the `md5...` digest.
pub fn password(out: &mut BytesMut, pw: &[u8]) {
    message(out, Some(b'p'), |out| put_cstr(out, pw));
}

/// SASLInitialResponse: the chosen mechanism and the client-first message.
pub fn sasl_initial(out: &mut BytesMut, mechanism: &str, data: &[u8]) {
    message(out, Some(b'p'), |out| {
        put_cstr(out, mechanism.as_bytes());
        put_value(out, Some(data));
    });
}

/// SASLResponse: the client-final message.
pub fn sasl_response(out: &mut BytesMut, data: &[u8]) {
    message(out, Some(b'p'), |out| out.put_slice(data));
}

/// Query: the simple query protocol.
pub fn query(out: &mut BytesMut, sql: &str) {
    message(out, Some(b'Q'), |out| put_cstr(out, sql.as_bytes()));
}

/// CopyData: a piece of COPY FROM STDIN data (pieces need not end on rows).
pub fn copy_data(out: &mut BytesMut, data: &[u8]) {
    message(out, Some(b'd'), |out| out.put_slice(data));
}

/// CopyDone: the COPY FROM STDIN data is complete.
pub fn copy_done(out: &mut BytesMut) {
    message(out, Some(b'c'), |_| {});
}

/// CopyFail: abort COPY FROM STDIN; the server fails it with `why`.
pub fn copy_fail(out: &mut BytesMut, why: &str) {
    message(out, Some(b'f'), |out| put_cstr(out, why.as_bytes()));
}

/// Parse; an OID of 0 leaves a parameter's type to the server.
/// At most 65535 parameter types.
pub fn parse(out: &mut BytesMut, stmt: &str, sql: &str, param_oids: &[u32]) {
    message(out, Some(b'P'), |out| {
        put_cstr(out, stmt.as_bytes());
        put_cstr(out, sql.as_bytes());
        put_count(out, param_oids.len());
        for &oid in param_oids {
            out.put_u32(oid);
        }
    });
}

/// Bind with a pre-encoded parameter section: `params` is exactly the bytes
/// after the statement name in a Bind message up to (not including) the
/// result-format section, i.e. Int16 nformats, Int16 formats..., Int16
/// nparams, then per param Int32 len (-1 NULL) + bytes. Built on the Python
/// thread by `bind_params_*` helpers below; the kernel only frames it.
pub fn bind(out: &mut BytesMut, portal: &str, stmt: &str, params: &[u8], result_formats: &[i16]) {
    message(out, Some(b'B'), |out| {
        put_cstr(out, portal.as_bytes());
        put_cstr(out, stmt.as_bytes());
        out.put_slice(params);
        put_count(out, result_formats.len());
        for &f in result_formats {
            out.put_i16(f);
        }
    });
}

/// Starts a Bind parameter section: no format codes (all text), then the
/// parameter count. Follow with exactly `nparams` calls of `bind_param`.
pub fn bind_params_begin(out: &mut BytesMut, nparams: u16) {
    out.put_i16(0);
    out.put_u16(nparams);
}

/// One Bind parameter: Int32 length + bytes, or -1 for NULL.
pub fn bind_param(out: &mut BytesMut, value: Option<&[u8]>) {
    put_value(out, value);
}

fn describe_or_close(out: &mut BytesMut, tag: u8, kind: u8, name: &str) {
    message(out, Some(tag), |out| {
        out.put_u8(kind);
        put_cstr(out, name.as_bytes());
    });
}

pub fn describe_portal(out: &mut BytesMut, portal: &str) {
    describe_or_close(out, b'D', b'P', portal);
}

pub fn describe_statement(out: &mut BytesMut, stmt: &str) {
    describe_or_close(out, b'D', b'S', stmt);
}

/// Execute; `max_rows` 0 means all rows.
pub fn execute(out: &mut BytesMut, portal: &str, max_rows: i32) {
    message(out, Some(b'E'), |out| {
        put_cstr(out, portal.as_bytes());
        out.put_i32(max_rows);
    });
}

pub fn sync(out: &mut BytesMut) {
    message(out, Some(b'S'), |_| {});
}

pub fn flush(out: &mut BytesMut) {
    message(out, Some(b'H'), |_| {});
}

pub fn close_statement(out: &mut BytesMut, stmt: &str) {
    describe_or_close(out, b'C', b'S', stmt);
}

pub fn close_portal(out: &mut BytesMut, portal: &str) {
    describe_or_close(out, b'C', b'P', portal);
}

pub fn terminate(out: &mut BytesMut) {
    message(out, Some(b'X'), |_| {});
}

/// For tests/fake servers: encode a backend message. Copy responses are
/// encoded as text format with no columns; `AuthenticationOther` carries
/// no data; `severity` is sent as both `S` and `V`.
pub fn encode_backend(msg: &Backend, out: &mut BytesMut) {
    use Backend as B;
    let auth = |out: &mut BytesMut, code: i32, data: &[u8]| {
        message(out, Some(b'R'), |out| {
            out.put_i32(code);
            out.put_slice(data);
        })
    };
    let empty = |out: &mut BytesMut, tag: u8| message(out, Some(tag), |_| {});
    let copy = |out: &mut BytesMut, tag: u8| message(out, Some(tag), |out| out.put_slice(&[0; 3]));
    match msg {
        B::AuthenticationOk => auth(out, 0, b""),
        B::AuthenticationCleartextPassword => auth(out, 3, b""),
        B::AuthenticationMd5Password { salt } => auth(out, 5, salt),
        B::AuthenticationSasl { mechanisms } => {
            let mut data = BytesMut::new();
            for m in mechanisms {
                put_cstr(&mut data, m.as_bytes());
            }
            data.put_u8(0);
            auth(out, 10, &data);
        }
        B::AuthenticationSaslContinue(data) => auth(out, 11, data),
        B::AuthenticationSaslFinal(data) => auth(out, 12, data),
        B::AuthenticationOther(code) => auth(out, *code as i32, b""),
        B::ParameterStatus { name, value } => message(out, Some(b'S'), |out| {
            put_cstr(out, name.as_bytes());
            put_cstr(out, value.as_bytes());
        }),
        B::BackendKeyData { pid, secret } => message(out, Some(b'K'), |out| {
            out.put_i32(*pid);
            out.put_i32(*secret);
        }),
        B::ReadyForQuery(status) => message(out, Some(b'Z'), |out| out.put_u8(*status)),
        B::RowDescription(cols) => message(out, Some(b'T'), |out| {
            put_count(out, cols.len());
            for c in cols {
                put_cstr(out, c.name.as_bytes());
                out.put_u32(c.table_oid);
                out.put_i16(c.column_id);
                out.put_u32(c.type_oid);
                out.put_i16(c.type_size);
                out.put_i32(c.type_mod);
                out.put_i16(c.format);
            }
        }),
        B::DataRow(row) => message(out, Some(b'D'), |out| out.put_slice(&row.body)),
        B::CommandComplete(tag) => message(out, Some(b'C'), |out| put_cstr(out, tag.as_bytes())),
        B::EmptyQueryResponse => empty(out, b'I'),
        B::ParseComplete => empty(out, b'1'),
        B::BindComplete => empty(out, b'2'),
        B::CloseComplete => empty(out, b'3'),
        B::NoData => empty(out, b'n'),
        B::ParameterDescription(oids) => message(out, Some(b't'), |out| {
            put_count(out, oids.len());
            for &oid in oids {
                out.put_u32(oid);
            }
        }),
        B::PortalSuspended => empty(out, b's'),
        B::ErrorResponse(f) => encode_error_fields(out, b'E', f),
        B::NoticeResponse(f) => encode_error_fields(out, b'N', f),
        B::NotificationResponse {
            pid,
            channel,
            payload,
        } => message(out, Some(b'A'), |out| {
            out.put_i32(*pid);
            put_cstr(out, channel.as_bytes());
            put_cstr(out, payload.as_bytes());
        }),
        B::CopyInResponse => copy(out, b'G'),
        B::CopyOutResponse => copy(out, b'H'),
        B::CopyBothResponse => copy(out, b'W'),
        // Only the header: the body was never kept.
        B::Oversized { tag, len, .. } => {
            out.put_u8(*tag);
            out.put_i32(*len as i32);
        }
        B::Unknown { tag, body } => message(out, Some(*tag), |out| out.put_slice(body)),
    }
}

fn encode_error_fields(out: &mut BytesMut, tag: u8, f: &ErrorFields) {
    message(out, Some(tag), |out| {
        let mut field = |code: u8, v: &str| {
            out.put_u8(code);
            put_cstr(out, v.as_bytes());
        };
        field(b'S', &f.severity);
        field(b'V', &f.severity);
        field(b'C', &f.code);
        field(b'M', &f.message);
        let optional = [
            (b'D', &f.detail),
            (b'H', &f.hint),
            (b'P', &f.position),
            (b's', &f.schema),
            (b't', &f.table),
            (b'c', &f.column),
            (b'n', &f.constraint),
        ];
        for (code, v) in optional {
            if let Some(v) = v {
                field(code, v);
            }
        }
        out.put_u8(0);
    });
}
