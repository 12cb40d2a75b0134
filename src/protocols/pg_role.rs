//! What a PostgreSQL server says about its role: PostgreSQL 14+ reports
//! `in_hot_standby` and `default_transaction_read_only` as ParameterStatus
//! at startup and whenever they change (a promotion), so the role costs no
//! round trip; a read-only-transaction error (SQLSTATE 25006) on a server
//! thought writable says it is not. The service takes news of the role
//! through `Protocol::role`.

use crate::codec::pg::Backend;
use crate::kernel::endpoint::Role;

#[derive(Default)]
pub struct PgRole {
    /// `in_hot_standby`, once reported (servers before 14 never do).
    pub hot_standby: Option<bool>,
    /// `default_transaction_read_only`, once reported.
    pub read_only: Option<bool>,
    /// A role not yet taken by the service.
    news: Option<Role>,
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
                self.hot_standby = Some(on);
                self.news = Some(if on { Role::Replica } else { Role::Primary });
            }
            "default_transaction_read_only" => self.read_only = Some(on),
            _ => {}
        }
    }

    /// The server refused a write: it is read-only (SQLSTATE 25006).
    pub fn refused_write(&mut self, sqlstate: &str) {
        if sqlstate == "25006" {
            self.news = Some(Role::Replica);
        }
    }

    /// News of the role since last asked.
    pub fn take(&mut self) -> Option<Role> {
        self.news.take()
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
        assert_eq!(r.take(), None);
        r.note(&status("in_hot_standby", "on"));
        r.note(&status("default_transaction_read_only", "off"));
        assert_eq!(r.take(), Some(Role::Replica));
        assert_eq!(r.take(), None);
        r.note(&status("in_hot_standby", "off"));
        assert_eq!(r.take(), Some(Role::Primary));
        r.refused_write("23505");
        assert_eq!(r.take(), None);
        r.refused_write("25006");
        assert_eq!(r.take(), Some(Role::Replica));
        assert_eq!((r.hot_standby, r.read_only), (Some(false), Some(false)));
    }
}
