//! PostgreSQL's startup on a new connection (part of `pg`): the startup
//! message, authentication (trust, cleartext, MD5, SCRAM-SHA-256, a client
//! certificate over TLS), the backend key for cancels, the role check of a
//! server that does not report its role (`pg_role::CHECK`, as libpq asks
//! servers before 14), then LISTEN for a listener's connection. `Postgres::handshake` runs it (twice when libpq's
//! `allow`/`prefer` retry the other way, `pg_tls`).

use bytes::BytesMut;

use super::{err_text, listen, Postgres};
use crate::codec::pg::{self, Backend};
use crate::codec::pg_auth::{md5_password, ScramClient};
use crate::kernel::handshake::HandshakeIo;
use crate::kernel::tls::TlsReason;
use crate::kernel::KernelError;

impl Postgres {
    /// Startup and authentication; `refused` is set when the server
    /// answered with an error (libpq's `allow`/`prefer` retry then).
    pub(super) async fn startup(
        &self,
        io: &mut HandshakeIo<'_, Self>,
        refused: &mut bool,
    ) -> Result<(), KernelError> {
        let o = &self.opts;
        let addr = io.addr.to_string();
        let fail = |why: String| KernelError::connection(format!("postgres {addr}: {why}"));
        let need_pw = || {
            o.password.clone().ok_or_else(|| {
                KernelError::connection(format!(
                    "postgres {addr}: the server asks for a password; put it in the URL (postgresql://user:password@host/db)"
                ))
            })
        };
        let mut params: Vec<(&str, &str)> = vec![
            ("user", &o.user),
            ("database", &o.database),
            ("client_encoding", "UTF8"),
        ];
        if let Some(a) = &o.application_name {
            params.push(("application_name", a));
        }
        let mut out = BytesMut::new();
        pg::startup(&mut out, &params);
        io.send(&out).await?;
        let mut scram: Option<ScramClient> = None;
        loop {
            let mut out = BytesMut::new();
            match io.recv().await? {
                Backend::AuthenticationOk => {
                    // With SCRAM the server must have proved it knows the
                    // password (SASLFinal) before saying OK.
                    if scram.as_ref().is_some_and(|c| !c.is_verified()) {
                        return Err(fail(
                            "the server ended SCRAM without proving it knows the password".into(),
                        ));
                    }
                    continue;
                }
                Backend::AuthenticationCleartextPassword => {
                    pg::password(&mut out, need_pw()?.as_bytes())
                }
                Backend::AuthenticationMd5Password { salt } => pg::password(
                    &mut out,
                    md5_password(&o.user, &need_pw()?, salt).as_bytes(),
                ),
                Backend::AuthenticationSasl { mechanisms } => {
                    if !mechanisms.iter().any(|m| m == "SCRAM-SHA-256") {
                        return Err(fail(format!(
                            "no supported SASL mechanism among {mechanisms:?}"
                        )));
                    }
                    let c = ScramClient::new(&need_pw()?);
                    pg::sasl_initial(&mut out, "SCRAM-SHA-256", &c.client_first());
                    scram = Some(c);
                }
                Backend::AuthenticationSaslContinue(data) => {
                    let c = scram
                        .as_mut()
                        .ok_or_else(|| fail("SASL continue without a SASL start".into()))?;
                    let reply = c
                        .handle_server_first(&data)
                        .map_err(|e| fail(format!("SCRAM: {e}")))?;
                    pg::sasl_response(&mut out, &reply);
                }
                Backend::AuthenticationSaslFinal(data) => {
                    let c = scram
                        .as_ref()
                        .ok_or_else(|| fail("SASL final without a SASL start".into()))?;
                    c.verify_server_final(&data)
                        .map_err(|e| fail(format!("SCRAM: {e}")))?;
                    continue;
                }
                Backend::AuthenticationOther(n) => {
                    return Err(fail(format!(
                        "authentication method {n} (GSS/SSPI/...) is not supported"
                    )))
                }
                Backend::BackendKeyData { pid, secret } => {
                    io.state.backend = Some((pid, secret));
                    continue;
                }
                Backend::ErrorResponse(e) => {
                    *refused = true;
                    if e.code == "28000" && e.message.contains("certificate") {
                        // pg_hba `cert` (or clientcert=...): ours is missing or refused.
                        return Err(fail(format!(
                            "{}: the server wants a valid client certificate; give it with \
                             sslcert / sslkey (its CN must be the user name)",
                            err_text(&e)
                        ))
                        .tls(Some(TlsReason::ClientCertRefused.name())));
                    }
                    let hint = if e.code == "28P01" || e.code == "28000" {
                        ": check the user and password in the URL"
                    } else {
                        ""
                    };
                    return Err(fail(format!("{}{hint}", err_text(&e))));
                }
                Backend::ReadyForQuery(_) => {
                    if o.check_role && !io.state.role.reports {
                        check_role(io).await?;
                    }
                    if o.listen.is_empty() {
                        return Ok(());
                    }
                    return listen::listen(io, &o.listen, &addr).await;
                }
                other => {
                    return Err(KernelError::protocol(format!(
                        "postgres {addr}: unexpected {other:?} during startup"
                    )))
                }
            }
            io.send(&out).await?;
        }
    }
}

/// Ask a server that does not report `in_hot_standby` whether it is in
/// recovery and read-only (`pg_role::CHECK`). An error (a server too old
/// for the function, a pooler that refuses) leaves the role unknown.
async fn check_role(io: &mut HandshakeIo<'_, Postgres>) -> Result<(), KernelError> {
    let mut out = BytesMut::new();
    pg::query(&mut out, super::role::CHECK);
    io.send(&out).await?;
    loop {
        match io.recv().await? {
            Backend::DataRow(r) => {
                if let [Some(rec), Some(ro)] = &r.iter().collect::<Vec<_>>()[..] {
                    io.state.role.checked(rec, ro);
                }
            }
            Backend::ReadyForQuery(_) => return Ok(()),
            _ => {}
        }
    }
}
