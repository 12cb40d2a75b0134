//! What a PostgreSQL server says about its role: PostgreSQL 14+ reports
//! `in_hot_standby` and `default_transaction_read_only` as ParameterStatus
//! at startup and whenever they change (a promotion, a reload that turns
//! the server read-only), so both cost no round trip and stay current; the
//! service takes them through `Protocol::role` (hot standby: replica, else
//! primary) and `Protocol::read_only` (libpq's read-write test).
//!
//! Servers that report neither (before 14) are asked once on each new
//! connection, as libpq asks them: `pg_is_in_recovery()` and
//! `transaction_read_only` (`CHECK`, `checked`); after that only a
//! read-only-transaction error (SQLSTATE 25006) tells, and it says the
//! server is read-only. On a server that reports, the reports decide (a
//! 25006 there may come from the caller's own `SET TRANSACTION READ ONLY`).

use crate::codec::pg::Backend;
use crate::kernel::endpoint::Role;

/// The query libpq's checks amount to, for servers that do not report.
pub const CHECK: &str =
    "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('transaction_read_only')";

#[derive(Default)]
pub struct PgRole {
    /// `in_hot_standby`, once known (reported, or asked).
    pub hot_standby: Option<bool>,
    /// `default_transaction_read_only`, once known.
    pub read_only: Option<bool>,
    /// The server reports `in_hot_standby` itself (14+).
    pub reports: bool,
    /// A role not yet taken by the service.
    news: Option<Role>,
    /// A read-only flag not yet taken by the service.
    ro_news: Option<bool>,
}

impl PgRole {
    /// Look at a message the server sent (any message; cheap for most).
    pub fn note(&mut self, msg: &Backend) {
        let Backend::ParameterStatus { name, value } = msg else {
            return;
        };
        let on = value == "on";
        match name.as_str() {
            "in_hot_standby" => {
                self.reports = true;
                self.set_hot_standby(on);
            }
            "default_transaction_read_only" => self.set_read_only(on),
            _ => {}
        }
    }

    fn set_hot_standby(&mut self, on: bool) {
        self.hot_standby = Some(on);
        self.news = Some(if on { Role::Replica } else { Role::Primary });
    }

    fn set_read_only(&mut self, on: bool) {
        self.read_only = Some(on);
        self.ro_news = Some(on);
    }

    /// The answer to `CHECK` (its row's two values, as text).
    pub fn checked(&mut self, in_recovery: &[u8], read_only: &[u8]) {
        self.set_hot_standby(in_recovery == b"t");
        self.set_read_only(read_only == b"on");
    }

    /// The server refused a write: a server that does not report its state
    /// is read-only (SQLSTATE 25006).
    pub fn refused_write(&mut self, sqlstate: &str) {
        if sqlstate == "25006" && !self.reports && self.read_only != Some(true) {
            self.set_read_only(true);
        }
    }

    /// News of the role since last asked.
    pub fn take(&mut self) -> Option<Role> {
        self.news.take()
    }

    /// News of the read-only flag since last asked.
    pub fn take_read_only(&mut self) -> Option<bool> {
        self.ro_news.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, value: &str) -> Backend {
        Backend::ParameterStatus {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn learns_and_hands_over_once() {
        let mut r = PgRole::default();
        r.note(&status("server_version", "15.8"));
        assert_eq!((r.take(), r.take_read_only()), (None, None));
        r.note(&status("in_hot_standby", "on"));
        r.note(&status("default_transaction_read_only", "off"));
        assert_eq!(r.take(), Some(Role::Replica));
        assert_eq!(r.take(), None);
        assert_eq!(r.take_read_only(), Some(false));
        r.note(&status("in_hot_standby", "off"));
        assert_eq!(r.take(), Some(Role::Primary));
        // A reporting server's reports decide, not a 25006.
        r.refused_write("25006");
        assert_eq!((r.take(), r.take_read_only()), (None, None));
        r.note(&status("default_transaction_read_only", "on"));
        assert_eq!((r.take(), r.take_read_only()), (None, Some(true)));
        assert_eq!((r.hot_standby, r.read_only), (Some(false), Some(true)));
    }

    #[test]
    fn a_server_that_does_not_report_is_asked_and_25006_counts() {
        let mut r = PgRole::default();
        r.checked(b"f", b"off");
        assert_eq!(
            (r.take(), r.take_read_only()),
            (Some(Role::Primary), Some(false))
        );
        r.refused_write("23505");
        assert_eq!(r.take_read_only(), None);
        r.refused_write("25006");
        assert_eq!((r.take(), r.take_read_only()), (None, Some(true)));
        r.checked(b"t", b"on");
        assert_eq!(
            (r.take(), r.take_read_only()),
            (Some(Role::Replica), Some(true))
        );
    }
}
