//! Redis Sentinel's answers, read without I/O: `SENTINEL MASTER <name>`
//! (the primary's address, flags and config epoch), `SENTINEL REPLICAS
//! <name>` (the replicas worth sending reads to) and the events it
//! publishes (`+switch-master`, `+sdown`, ...), turned into what the
//! sentinel watch (`sentinel`) needs. Replies come as RESP2 flat
//! key/value arrays (or RESP3 maps).

use crate::codec::resp::Frame;
use crate::kernel::transport::Addr;

/// The primary as one sentinel sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Master {
    pub addr: Addr,
    /// Bumped by every failover: of two sentinels' answers the higher one
    /// is the newer.
    pub epoch: u64,
}

/// What an event on a sentinel's channels means for one master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `+switch-master`: the primary moved to this address.
    Switch { old: Addr, new: Addr },
    /// `+failover-state-send-slaveof-noone`: a replica is about to be
    /// made the primary; writes to the old one from now on may be lost.
    Promoting,
    /// `-failover-abort-...`: the failover will not happen.
    Aborted,
    /// Something about the master or its replicas changed (`+sdown`,
    /// `-sdown`, `+slave`, `+convert-to-slave`, ...): ask again.
    Changed,
}

/// The channels the watch subscribes to.
pub const CHANNELS: &[&str] = &[
    "+switch-master",
    "+sdown",
    "-sdown",
    "+odown",
    "-odown",
    "+slave",
    "+convert-to-slave",
    "+role-change",
    "-role-change",
    "+failover-end",
    "+reboot",
    "+failover-state-send-slaveof-noone",
    "-failover-abort-not-elected",
    "-failover-abort-no-good-slave",
    "-failover-abort-slave-timeout",
];

fn text(f: &Frame) -> Option<String> {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Frame::Integer(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The key/value pairs of a flat array or a map.
fn fields(f: &Frame) -> Option<Vec<(String, String)>> {
    match f {
        Frame::Array(items) => Some(
            items
                .chunks(2)
                .filter_map(|kv| Some((text(&kv[0])?, text(kv.get(1)?)?)))
                .collect(),
        ),
        Frame::Map(pairs) => Some(
            pairs
                .iter()
                .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
                .collect(),
        ),
        _ => None,
    }
}

fn get<'a>(f: &'a [(String, String)], key: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn addr_of(f: &[(String, String)]) -> Option<Addr> {
    let ip = get(f, "ip")?;
    let port = get(f, "port")?.parse::<u16>().ok().filter(|p| *p != 0)?;
    Some(Addr::Tcp(ip.to_string(), port))
}

/// The server's error text, if the reply is one.
pub fn error(f: &Frame) -> Option<String> {
    match f {
        Frame::Error(b) | Frame::BulkError(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// `SENTINEL MASTER <name>`'s reply. `Err`: the sentinel does not know the
/// name, or the reply makes no sense (the message says which).
pub fn master(f: &Frame, name: &str) -> Result<Master, String> {
    if let Some(e) = error(f) {
        return Err(if e.contains("No such master") {
            format!("it monitors no master named {name:?}")
        } else {
            format!("SENTINEL MASTER {name} failed: {e}")
        });
    }
    let kv = fields(f).ok_or("SENTINEL MASTER's reply is not a list of fields")?;
    let addr = addr_of(&kv).ok_or("SENTINEL MASTER's reply has no ip and port")?;
    let epoch = get(&kv, "config-epoch")
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    Ok(Master { addr, epoch })
}

/// `SENTINEL REPLICAS <name>`'s reply: the replicas that are up, known to
/// replicate (they report the replica role: a former primary that still
/// calls itself primary is left out) and not the primary itself.
pub fn replicas(f: &Frame, primary: &Addr) -> Result<Vec<Addr>, String> {
    if let Some(e) = error(f) {
        return Err(format!("SENTINEL REPLICAS failed: {e}"));
    }
    let Frame::Array(items) = f else {
        return Err("SENTINEL REPLICAS' reply is not a list".into());
    };
    let mut out = Vec::new();
    for it in items {
        let Some(kv) = fields(it) else { continue };
        let Some(addr) = addr_of(&kv) else { continue };
        let flags = get(&kv, "flags").unwrap_or("");
        let down = flags
            .split(',')
            .any(|fl| matches!(fl, "s_down" | "o_down" | "disconnected"));
        let role_ok = get(&kv, "role-reported").is_none_or(|r| r == "slave");
        if !down && role_ok && addr != *primary && !out.contains(&addr) {
            out.push(addr);
        }
    }
    Ok(out)
}

/// A pub/sub message (`["message", channel, payload]`, RESP2, or a RESP3
/// push) about master `name`; `None` for other masters, subscription
/// confirmations and anything else.
pub fn event(f: &Frame, name: &str) -> Option<Event> {
    let items = match f {
        Frame::Array(i) | Frame::Push(i) => i,
        _ => return None,
    };
    if items.len() != 3 || text(&items[0])? != "message" {
        return None;
    }
    let channel = text(&items[1])?;
    let payload = text(&items[2])?;
    let words: Vec<&str> = payload.split_whitespace().collect();
    if channel == "+switch-master" {
        // <name> <old ip> <old port> <new ip> <new port>
        if words.len() != 5 || words[0] != name {
            return None;
        }
        let port = |p: &str| p.parse::<u16>().ok();
        return Some(Event::Switch {
            old: Addr::Tcp(words[1].into(), port(words[2])?),
            new: Addr::Tcp(words[3].into(), port(words[4])?),
        });
    }
    // <type> <name> <ip> <port> [@ <master name> <ip> <port>]
    let ours = match words.iter().position(|w| *w == "@") {
        Some(at) => words.get(at + 1) == Some(&name),
        None => words.first() == Some(&"master") && words.get(1) == Some(&name),
    };
    if !ours {
        return None;
    }
    Some(match channel.as_str() {
        "+failover-state-send-slaveof-noone" => Event::Promoting,
        c if c.starts_with("-failover-abort") => Event::Aborted,
        _ => Event::Changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn b(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }
    fn flat(kv: &[(&str, &str)]) -> Frame {
        Frame::Array(kv.iter().flat_map(|(k, v)| [b(k), b(v)]).collect())
    }
    fn tcp(h: &str, p: u16) -> Addr {
        Addr::Tcp(h.into(), p)
    }

    #[test]
    fn master_reply() {
        let f = flat(&[
            ("name", "mymaster"),
            ("ip", "127.0.0.1"),
            ("port", "7001"),
            ("flags", "master"),
            ("config-epoch", "3"),
        ]);
        assert_eq!(
            master(&f, "mymaster").unwrap(),
            Master {
                addr: tcp("127.0.0.1", 7001),
                epoch: 3
            }
        );
        let e = master(
            &Frame::Error("ERR No such master with that name".into()),
            "x",
        );
        assert!(e.unwrap_err().contains("no master named \"x\""));
        assert!(master(&flat(&[("ip", "1.2.3.4")]), "m")
            .unwrap_err()
            .contains("no ip and port"));
        assert!(master(&Frame::Null, "m").is_err());
    }

    #[test]
    fn replicas_up_and_replicating_only() {
        let r = |port: &str, flags: &str, role: &str| {
            flat(&[
                ("ip", "127.0.0.1"),
                ("port", port),
                ("flags", flags),
                ("role-reported", role),
            ])
        };
        let f = Frame::Array(vec![
            r("7002", "slave", "slave"),
            r("7003", "s_down,slave", "slave"),
            r("7004", "slave,disconnected", "slave"),
            r("7001", "slave", "master"), // the old primary, not converted yet
            r("7005", "slave", "slave"),
            r("7000", "slave", "slave"), // the primary itself
        ]);
        let p = tcp("127.0.0.1", 7000);
        assert_eq!(
            replicas(&f, &p).unwrap(),
            vec![tcp("127.0.0.1", 7002), tcp("127.0.0.1", 7005)]
        );
        assert!(replicas(&Frame::Error("ERR x".into()), &p).is_err());
    }

    #[test]
    fn events_for_our_master_only() {
        let msg = |ch: &str, p: &str| Frame::Array(vec![b("message"), b(ch), b(p)]);
        assert_eq!(
            event(
                &msg("+switch-master", "mymaster 127.0.0.1 1 127.0.0.1 2"),
                "mymaster"
            ),
            Some(Event::Switch {
                old: tcp("127.0.0.1", 1),
                new: tcp("127.0.0.1", 2)
            })
        );
        assert_eq!(
            event(
                &msg("+switch-master", "other 127.0.0.1 1 127.0.0.1 2"),
                "mymaster"
            ),
            None
        );
        assert_eq!(
            event(
                &msg(
                    "+sdown",
                    "slave 127.0.0.1:2 127.0.0.1 2 @ mymaster 127.0.0.1 1"
                ),
                "mymaster"
            ),
            Some(Event::Changed)
        );
        assert_eq!(
            event(&msg("-sdown", "master mymaster 127.0.0.1 1"), "mymaster"),
            Some(Event::Changed)
        );
        assert_eq!(
            event(&msg("+sdown", "master other 127.0.0.1 1"), "mymaster"),
            None
        );
        assert_eq!(
            event(
                &msg(
                    "+failover-state-send-slaveof-noone",
                    "slave 127.0.0.1:2 127.0.0.1 2 @ mymaster 127.0.0.1 1"
                ),
                "mymaster"
            ),
            Some(Event::Promoting)
        );
        assert_eq!(
            event(
                &msg(
                    "-failover-abort-no-good-slave",
                    "master mymaster 127.0.0.1 1"
                ),
                "mymaster"
            ),
            Some(Event::Aborted)
        );
        let confirm = Frame::Array(vec![b("subscribe"), b("+sdown"), Frame::Integer(1)]);
        assert_eq!(event(&confirm, "mymaster"), None);
    }
}
