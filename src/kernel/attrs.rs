//! Which endpoints a service's ordinary (shared-route) requests may use, by
//! the role the servers report: libpq's `target_session_attrs` and
//! `load_balance_hosts`, for any protocol with roles.
//!
//! As libpq: `primary` / `standby` look only at whether the server is a hot
//! standby (PostgreSQL's `in_hot_standby`: the endpoint's role);
//! `read-write` / `read-only` at whether it takes writes by default, which
//! a primary with `default_transaction_read_only=on` does not (`fits`,
//! with the read-only flag the service learned per endpoint).
//!
//! Endpoints whose role is not known yet (no connection so far) fit every
//! rule but `prefer-standby`'s first choice, so requests wait for them
//! instead of failing; once connected, the server's report decides.

use super::endpoint::{Endpoint, EndpointSet, Role, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Want {
    /// Any endpoint (libpq's `any`, the default).
    #[default]
    Any,
    /// Takes writes: not a hot standby, and not read-only by default
    /// (`read-write`).
    ReadWrite,
    /// Not a hot standby (`primary`).
    Primary,
    /// Does not take writes by default: a hot standby, or a primary with
    /// `default_transaction_read_only=on` (`read-only`).
    ReadOnly,
    /// A hot standby (`standby`).
    Standby,
    /// A replica that is up, else any: `prefer-standby`.
    PreferStandby,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attrs {
    pub want: Want,
    /// `load_balance_hosts=disable`: the first fitting endpoint (in the
    /// URL's order) that is up takes the requests; otherwise the balancer
    /// spreads them (`random` and iokernel's default).
    pub first_only: bool,
    /// Where requests that only read go (`Route::Read`); `None`: where the
    /// others go. Redis's `read_from`: `primary` is `Primary`,
    /// `prefer_replica` `PreferStandby`, `replica` `Standby`.
    pub reads: Option<Want>,
}

impl Attrs {
    /// From `target_session_attrs` and `load_balance_hosts` values.
    pub fn parse(tsa: Option<&str>, lbh: Option<&str>) -> Result<Attrs, String> {
        let want = match tsa.unwrap_or("any") {
            "any" => Want::Any,
            "read-write" => Want::ReadWrite,
            "primary" => Want::Primary,
            "read-only" => Want::ReadOnly,
            "standby" => Want::Standby,
            "prefer-standby" => Want::PreferStandby,
            v => {
                return Err(format!(
                    "target_session_attrs must be any, read-write, read-only, primary, standby or \
                     prefer-standby, not {v:?}"
                ))
            }
        };
        let first_only = match lbh {
            None | Some("random") => false,
            Some("disable") => true,
            Some(v) => {
                return Err(format!(
                    "load_balance_hosts must be disable or random, not {v:?}"
                ))
            }
        };
        Ok(Attrs {
            want,
            first_only,
            reads: None,
        })
    }

    /// Redis's `read_from` (`primary`, `prefer_replica`, `replica`).
    pub fn read_from(v: &str) -> Result<Want, String> {
        match v {
            "primary" | "master" => Ok(Want::Primary),
            "prefer_replica" => Ok(Want::PreferStandby),
            "replica" => Ok(Want::Standby),
            v => Err(format!(
                "read_from must be primary, prefer_replica or replica, not {v:?}"
            )),
        }
    }

    /// The endpoints a read (`Route::Read`) may use now.
    pub fn read_target<T>(&self, set: &EndpointSet<T>, up: impl Fn(&T) -> bool) -> Target {
        want_target(self.reads.unwrap_or(self.want), set, up)
    }

    /// The endpoints a shared-route request may use now; `up` says whether
    /// an endpoint's data has a connection up.
    pub fn target<T>(&self, set: &EndpointSet<T>, up: impl Fn(&T) -> bool) -> Target {
        want_target(self.want, set, up)
    }

    /// Whether an endpoint that `target` includes also fits the read-only
    /// test of `read-write` / `read-only`; `read_only` is what its server
    /// said of `default_transaction_read_only` (None: not known yet, which
    /// fits, as an unknown role does).
    pub fn fits(&self, ep: &Endpoint, read_only: Option<bool>) -> bool {
        match self.want {
            Want::ReadWrite => read_only != Some(true),
            Want::ReadOnly => {
                ep.role == Role::Replica || read_only.unwrap_or(ep.role != Role::Primary)
            }
            _ => true,
        }
    }

    /// Whether requests whose endpoints are all down wait for another
    /// endpoint to take the role (a standby promoted: `service::recheck`)
    /// instead of failing: `read-write`, `primary`.
    pub fn awaits_promotion(&self) -> bool {
        matches!(self.want, Want::ReadWrite | Want::Primary)
    }

    /// Whether the servers must say what they are (a query on servers that
    /// do not report it, `pg_role`): every rule but `any`.
    pub fn needs_role(&self) -> bool {
        self.want != Want::Any
    }
}

fn want_target<T>(want: Want, set: &EndpointSet<T>, up: impl Fn(&T) -> bool) -> Target {
    match want {
        Want::Any | Want::ReadOnly => Target::All,
        Want::Primary | Want::ReadWrite => Target::Except(Role::Replica),
        Want::Standby => Target::Except(Role::Primary),
        Want::PreferStandby => {
            let replica_up = set
                .iter()
                .any(|m| m.endpoint.role == Role::Replica && up(&m.data));
            if replica_up {
                Target::Role(Role::Replica)
            } else {
                Target::All
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libpq_values() {
        assert_eq!(Attrs::parse(None, None).unwrap(), Attrs::default());
        let a = Attrs::parse(Some("read-write"), Some("disable")).unwrap();
        assert_eq!((a.want, a.first_only), (Want::ReadWrite, true));
        assert_eq!(
            Attrs::parse(Some("primary"), None).unwrap().want,
            Want::Primary
        );
        assert_eq!(
            Attrs::parse(Some("read-only"), None).unwrap().want,
            Want::ReadOnly
        );
        assert_eq!(
            Attrs::parse(Some("standby"), None).unwrap().want,
            Want::Standby
        );
        assert!(Attrs::parse(Some("master"), None)
            .unwrap_err()
            .contains("prefer-standby"));
        assert!(Attrs::parse(None, Some("yes"))
            .unwrap_err()
            .contains("disable or random"));
    }

    /// libpq: a primary with default_transaction_read_only=on is not
    /// read-write but is read-only, and still a primary.
    #[test]
    fn read_only_primary_is_neither_read_write_nor_a_standby() {
        use crate::kernel::transport::Addr;
        let ep = |role| Endpoint::named(Addr::Tcp("10.0.0.1".into(), 1)).with_role(role);
        let want = |v| Attrs::parse(Some(v), None).unwrap();
        let (p, r) = (ep(Role::Primary), ep(Role::Replica));
        let rw = want("read-write");
        assert!(rw.fits(&p, Some(false)) && !rw.fits(&p, Some(true)) && rw.fits(&p, None));
        let ro = want("read-only");
        assert!(ro.fits(&p, Some(true)) && !ro.fits(&p, Some(false)) && !ro.fits(&p, None));
        assert!(ro.fits(&r, Some(false)) && ro.fits(&ep(Role::Unknown), None));
        assert!(want("primary").fits(&p, Some(true)));
        let set = EndpointSet::<()>::default();
        assert_eq!(
            want("primary").target(&set, |_| true),
            Target::Except(Role::Replica)
        );
        assert_eq!(ro.target(&set, |_| true), Target::All);
        assert!(!want("any").needs_role() && rw.needs_role());
    }
}
