//! Talks to a real PostgreSQL server with nothing but `codec::pg` and
//! `codec::pg_auth` over a blocking socket, printing every message: startup,
//! authentication (SCRAM-SHA-256, MD5 or cleartext, whichever the server
//! asks for), `SELECT $1::int + 1` over Parse/Bind/Describe/Execute/Sync, an
//! error, a notice, LISTEN/NOTIFY, then Terminate. Exits non-zero if any
//! step does not go as the protocol says.
//!
//! ```sh
//! cargo run --example pg_probe -- 127.0.0.1 5432 postgres 'password' [dbname]
//! ```

use bytes::BytesMut;
use iokernel::codec::pg::{self, Backend, Limits};
use iokernel::codec::pg_auth::{md5_password, ScramClient, SCRAM_SHA_256};
use std::io::{Read, Write};
use std::net::TcpStream;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Conn {
    sock: TcpStream,
    buf: BytesMut,
}

impl Conn {
    fn send(&mut self, out: &mut BytesMut) -> Res<()> {
        self.sock.write_all(out)?;
        out.clear();
        Ok(())
    }

    /// The next message, reading more bytes whenever the decoder asks.
    fn recv(&mut self) -> Res<Backend> {
        loop {
            if let Some(msg) = pg::decode(&mut self.buf, &Limits::default())? {
                println!("  <- {}", show(&msg));
                return Ok(msg);
            }
            let mut chunk = [0u8; 4096];
            let n = self.sock.read(&mut chunk)?;
            if n == 0 {
                return Err("server closed the connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Every message up to and including ReadyForQuery.
    fn until_ready(&mut self) -> Res<Vec<Backend>> {
        let mut got = Vec::new();
        loop {
            let msg = self.recv()?;
            let done = matches!(msg, Backend::ReadyForQuery(_));
            got.push(msg);
            if done {
                return Ok(got);
            }
        }
    }
}

fn show(msg: &Backend) -> String {
    match msg {
        Backend::DataRow(row) => {
            let vals: Vec<_> = row
                .iter()
                .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
                .collect();
            format!("DataRow{vals:?}")
        }
        Backend::AuthenticationSaslContinue(b) | Backend::AuthenticationSaslFinal(b) => {
            let kind = match msg {
                Backend::AuthenticationSaslContinue(_) => "SaslContinue",
                _ => "SaslFinal",
            };
            format!("Authentication{kind}({:?})", String::from_utf8_lossy(b))
        }
        other => format!("{other:?}"),
    }
}

fn authenticate(c: &mut Conn, user: &str, password: &str) -> Res<()> {
    let mut out = BytesMut::new();
    let mut scram: Option<ScramClient> = None;
    loop {
        match c.recv()? {
            Backend::AuthenticationOk => {
                if scram.as_ref().is_some_and(|c| !c.is_verified()) {
                    return Err("AuthenticationOk before the server proved its identity".into());
                }
                return Ok(());
            }
            Backend::AuthenticationCleartextPassword => {
                pg::password(&mut out, password.as_bytes());
            }
            Backend::AuthenticationMd5Password { salt } => {
                pg::password(&mut out, md5_password(user, password, salt).as_bytes());
            }
            Backend::AuthenticationSasl { mechanisms } => {
                if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(format!("no {SCRAM_SHA_256} in {mechanisms:?}").into());
                }
                let client = ScramClient::new(password);
                pg::sasl_initial(&mut out, SCRAM_SHA_256, &client.client_first());
                scram = Some(client);
            }
            Backend::AuthenticationSaslContinue(data) => {
                let client = scram.as_mut().ok_or("SASLContinue before SASL")?;
                let reply = client.handle_server_first(&data)?;
                pg::sasl_response(&mut out, &reply);
            }
            Backend::AuthenticationSaslFinal(data) => {
                let client = scram.as_ref().ok_or("SASLFinal before SASL")?;
                client.verify_server_final(&data)?;
                println!("  ** server signature verified");
            }
            Backend::ErrorResponse(e) => return Err(format!("{}: {}", e.code, e.message).into()),
            other => return Err(format!("unexpected during authentication: {other:?}").into()),
        }
        if !out.is_empty() {
            c.send(&mut out)?;
        }
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, user, password, rest @ ..] = &args[..] else {
        return Err("usage: pg_probe HOST PORT USER PASSWORD [DBNAME]".into());
    };
    let db = rest.first().unwrap_or(user);
    let sock = TcpStream::connect((host.as_str(), port.parse::<u16>()?))?;
    let mut c = Conn {
        sock,
        buf: BytesMut::new(),
    };
    let mut out = BytesMut::new();

    println!("startup as {user} on {db}");
    let params = [
        ("user", user.as_str()),
        ("database", db.as_str()),
        ("client_encoding", "UTF8"),
        ("application_name", "pg_probe"),
    ];
    pg::startup(&mut out, &params);
    c.send(&mut out)?;
    authenticate(&mut c, user, password)?;
    let got = c.until_ready()?;
    check(
        got.iter()
            .any(|m| matches!(m, Backend::BackendKeyData { .. })),
        "BackendKeyData",
    )?;

    println!("extended query: SELECT $1::int + 1, NULL, 'héllo'");
    pg::parse(
        &mut out,
        "",
        "SELECT $1::int + 1 AS two, NULL::text AS n, 'héllo' AS s",
        &[],
    );
    let mut params = BytesMut::new();
    pg::bind_params_begin(&mut params, 1);
    pg::bind_param(&mut params, Some(b"1"));
    pg::bind(&mut out, "", "", &params, &[]);
    pg::describe_portal(&mut out, "");
    pg::execute(&mut out, "", 0);
    pg::sync(&mut out);
    c.send(&mut out)?;
    let got = c.until_ready()?;
    let row = got.iter().find_map(|m| match m {
        Backend::DataRow(r) => r.values().ok(),
        _ => None,
    });
    let want = vec![
        Some("2".into()),
        None,
        Some("héllo".as_bytes().to_vec().into()),
    ];
    check(row == Some(want), "DataRow [2, NULL, héllo]")?;
    let described = match &got[..] {
        [Backend::ParseComplete, Backend::BindComplete, Backend::RowDescription(cols), ..] => {
            cols.len()
        }
        _ => 0,
    };
    check(
        described == 3,
        "ParseComplete, BindComplete, RowDescription of 3 columns",
    )?;

    println!("prepared statement with a parameter description, then closed");
    pg::parse(&mut out, "s1", "SELECT $1::text || $2::int", &[25, 0]);
    pg::describe_statement(&mut out, "s1");
    pg::close_statement(&mut out, "s1");
    pg::sync(&mut out);
    c.send(&mut out)?;
    let got = c.until_ready()?;
    check(
        got.contains(&Backend::ParameterDescription(vec![25, 23])),
        "ParameterDescription [25, 23]",
    )?;
    check(got.contains(&Backend::CloseComplete), "CloseComplete")?;

    println!("simple query with an error");
    pg::query(&mut out, "SELECT 1/0");
    c.send(&mut out)?;
    let got = c.until_ready()?;
    let error = got.iter().find_map(|m| match m {
        Backend::ErrorResponse(e) => Some((e.severity.as_str(), e.code.as_str())),
        _ => None,
    });
    check(
        error == Some(("ERROR", "22012")) && got.last() == Some(&Backend::ReadyForQuery(b'I')),
        "ErrorResponse 22012 then ReadyForQuery(I)",
    )?;

    println!("notice, LISTEN/NOTIFY");
    pg::query(
        &mut out,
        "DO $$BEGIN RAISE NOTICE 'hi' USING HINT = 'h'; END$$; \
         LISTEN probe; NOTIFY probe, 'payload ✓'",
    );
    c.send(&mut out)?;
    let got = c.until_ready()?;
    let notice = got.iter().find_map(|m| match m {
        Backend::NoticeResponse(n) => Some((n.message.as_str(), n.hint.as_deref())),
        _ => None,
    });
    check(notice == Some(("hi", Some("h"))), "NoticeResponse hi")?;
    let notification = got.iter().find_map(|m| match m {
        Backend::NotificationResponse {
            channel, payload, ..
        } => Some((channel.as_str(), payload.as_str())),
        _ => None,
    });
    check(
        notification == Some(("probe", "payload ✓")),
        "NotificationResponse",
    )?;

    println!("empty query, transaction status");
    pg::query(&mut out, "");
    pg::query(&mut out, "BEGIN");
    pg::query(&mut out, "ROLLBACK");
    c.send(&mut out)?;
    check(
        c.until_ready()?.contains(&Backend::EmptyQueryResponse),
        "EmptyQueryResponse",
    )?;
    check(
        c.until_ready()?.last() == Some(&Backend::ReadyForQuery(b'T')),
        "ReadyForQuery(T) inside BEGIN",
    )?;
    check(
        c.until_ready()?.last() == Some(&Backend::ReadyForQuery(b'I')),
        "ReadyForQuery(I) after ROLLBACK",
    )?;

    pg::terminate(&mut out);
    c.send(&mut out)?;
    println!("OK: every step went as expected");
    Ok(())
}

fn check(ok: bool, what: &str) -> Res<()> {
    match ok {
        true => Ok(()),
        false => Err(format!("expected {what}").into()),
    }
}
