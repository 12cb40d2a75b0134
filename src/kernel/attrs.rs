//! Which endpoints a service's ordinary (shared-route) requests may use, by
//! the role the servers report: libpq's `target_session_attrs` and
//! `load_balance_hosts`, for any protocol with roles.
//!
//! Endpoints whose role is not known yet (no connection so far) fit every
//! rule but `prefer-standby`'s first choice, so requests wait for them
//! instead of failing; once connected, the server's report decides.

use super::endpoint::{EndpointSet, Role, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Want {
    /// Any endpoint (libpq's `any`, the default).
    #[default]
    Any,
    /// Not a replica: `read-write`, `primary`.
    Primary,
    /// Not a primary: `read-only`, `standby`.
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
}

impl Attrs {
    /// From `target_session_attrs` and `load_balance_hosts` values.
    pub fn parse(tsa: Option<&str>, lbh: Option<&str>) -> Result<Attrs, String> {
        let want = match tsa.unwrap_or("any") {
            "any" => Want::Any,
            "read-write" | "primary" => Want::Primary,
            "read-only" | "standby" => Want::Standby,
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
        Ok(Attrs { want, first_only })
    }

    /// The endpoints a shared-route request may use now; `up` says whether
    /// an endpoint's data has a connection up.
    pub fn target<T>(&self, set: &EndpointSet<T>, up: impl Fn(&T) -> bool) -> Target {
        match self.want {
            Want::Any => Target::All,
            Want::Primary => Target::Except(Role::Replica),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libpq_values() {
        assert_eq!(Attrs::parse(None, None).unwrap(), Attrs::default());
        let a = Attrs::parse(Some("read-write"), Some("disable")).unwrap();
        assert_eq!((a.want, a.first_only), (Want::Primary, true));
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
}
