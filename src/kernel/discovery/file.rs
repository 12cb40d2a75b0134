//! A watched file of endpoints, reloaded when it changes (inotify on its
//! directory, so an editor's or a deploy tool's rename-over is seen too;
//! polled every 2 s where inotify is not available).
//!
//! Formats, told apart by the first non-blank character:
//! * lines of `host:port [weight]` (`#` starts a comment);
//! * JSON (`[` or `{`): a list of `"host:port"` strings or
//!   `{"address": "host:port", "weight": 2}` objects, or an object mapping
//!   `"host:port"` to its weight.
//!
//! A file that is missing or does not parse keeps the last good set.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use super::common::{parse_endpoint, Update};
use crate::kernel::endpoint::{Endpoint, Role};
use crate::kernel::transport::Addr;

const POLL: Duration = Duration::from_secs(2);

/// Parse a file's text into (address, weight) pairs.
pub fn parse(text: &str) -> Result<Vec<(Addr, u32)>, String> {
    let t = text.trim_start();
    if t.starts_with('[') || t.starts_with('{') {
        return parse_json(t);
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let addr = parse_endpoint(parts.next().unwrap_or(""))
            .map_err(|e| format!("line {}: {e}", n + 1))?;
        let weight = match parts.next() {
            Some(w) => w
                .parse()
                .map_err(|_| format!("line {}: weight must be a number >= 0, not {w:?}", n + 1))?,
            None => 1,
        };
        out.push((addr, weight));
    }
    Ok(out)
}

fn parse_json(t: &str) -> Result<Vec<(Addr, u32)>, String> {
    let v: serde_json::Value = serde_json::from_str(t).map_err(|e| format!("bad JSON: {e}"))?;
    let weight = |w: &serde_json::Value| {
        w.as_u64()
            .and_then(|w| u32::try_from(w).ok())
            .ok_or_else(|| format!("weight must be a number >= 0, not {w}"))
    };
    let mut out = Vec::new();
    match v {
        serde_json::Value::Array(items) => {
            for it in items {
                match it {
                    serde_json::Value::String(s) => out.push((parse_endpoint(&s)?, 1)),
                    serde_json::Value::Object(o) => {
                        let a = o
                            .get("address")
                            .and_then(|a| a.as_str())
                            .ok_or("each object needs an \"address\": \"host:port\"")?;
                        let w = o.get("weight").map(weight).transpose()?.unwrap_or(1);
                        out.push((parse_endpoint(a)?, w));
                    }
                    other => {
                        return Err(format!("expected \"host:port\" or an object, not {other}"))
                    }
                }
            }
        }
        serde_json::Value::Object(o) => {
            for (a, w) in o {
                out.push((parse_endpoint(&a)?, weight(&w)?));
            }
        }
        _ => return Err("expected a JSON list or object".into()),
    }
    Ok(out)
}

/// Read and parse the file. A file that lists no endpoint counts as broken
/// (the last good set is kept): an empty set never serves a request, and a
/// file rewritten in place is seen empty for a moment.
fn load(path: &Path, origin: &str) -> Result<Vec<Endpoint>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let listed = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if listed.is_empty() {
        return Err(format!("{}: lists no endpoint", path.display()));
    }
    Ok(listed
        .into_iter()
        .map(|(addr, weight)| Endpoint {
            addr,
            origin: origin.to_string(),
            tls_name: None,
            role: Role::Unknown,
            weight,
        })
        .collect())
}

/// An inotify descriptor watching `dir` for files written, moved in,
/// created or removed.
fn watch_dir(dir: &Path) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: plain syscalls; the descriptor is owned at once.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let c = CString::new(dir.as_os_str().as_bytes())?;
    let mask = libc::IN_CLOSE_WRITE
        | libc::IN_MOVED_TO
        | libc::IN_CREATE
        | libc::IN_DELETE
        | libc::IN_MODIFY;
    // SAFETY: valid descriptor and NUL-terminated path.
    if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is owned by the AsyncFd from here on and not closed
    // while registered.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|_| std::io::Error::other("cannot register the inotify descriptor"))
}

/// Wait for events on the watch, and read them all (their content does
/// not matter: the file is reloaded and compared).
async fn changed(w: &AsyncFd<OwnedFd>) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let mut guard = w.readable().await?;
        // SAFETY: reading into a local buffer of its size.
        let n = unsafe { libc::read(w.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            // Drain what else is there, then report.
            // SAFETY: as above.
            while unsafe { libc::read(w.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
            guard.clear_ready();
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::WouldBlock {
            guard.clear_ready();
            continue;
        }
        return Err(e);
    }
}

/// Follow the file at `path` until the service stops.
pub(super) async fn follow(path: PathBuf, origin: String, out: Update) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut w = watch_dir(&dir).ok();
    let mut last: Option<Vec<Endpoint>> = None;
    loop {
        match load(&path, &origin) {
            Ok(eps) if last.as_ref() != Some(&eps) => {
                if !out.send(eps.clone()) {
                    return;
                }
                last = Some(eps);
            }
            Ok(_) => {}
            Err(_) if last.is_none() => {
                if !out.failed() {
                    return;
                }
            }
            Err(_) => {} // keep the last good set
        }
        match &w {
            Some(fd) => {
                if changed(fd).await.is_err() {
                    w = None;
                }
                // Let a writer finish (several events come with one save).
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            None => tokio::time::sleep(POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_json() {
        let a = |h: &str, p| Addr::Tcp(h.into(), p);
        assert_eq!(
            parse("# pool\n10.0.0.1:6379\n\n10.0.0.2:6380 3  # big\n[::1]:7000\n").unwrap(),
            vec![
                (a("10.0.0.1", 6379), 1),
                (a("10.0.0.2", 6380), 3),
                (a("::1", 7000), 1)
            ]
        );
        assert_eq!(
            parse(r#"["h1:1", {"address": "h2:2", "weight": 5}]"#).unwrap(),
            vec![(a("h1", 1), 1), (a("h2", 2), 5)]
        );
        assert_eq!(parse(r#"{"h1:1": 0}"#).unwrap(), vec![(a("h1", 1), 0)]);
        assert!(parse("h1\n").unwrap_err().contains("line 1"));
        assert!(parse("h1:1 x\n").unwrap_err().contains("weight"));
        assert!(parse("[1]").unwrap_err().contains("expected"));
        assert!(parse("{").unwrap_err().contains("JSON"));
        assert!(parse(r#"[{"weight": 1}]"#).unwrap_err().contains("address"));
    }

    #[test]
    fn a_file_listing_no_endpoint_is_an_error_not_an_empty_set() {
        let dir = std::env::temp_dir().join(format!("iokernel-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("hosts");
        for text in ["", "# only a comment\n\n", "[]", "{}"] {
            std::fs::write(&f, text).unwrap();
            let err = load(&f, "file").unwrap_err();
            assert!(err.contains("lists no endpoint"), "{text:?}: {err}");
        }
        std::fs::write(&f, "10.0.0.1:6379 2\n").unwrap();
        let eps = load(&f, "file").unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].weight, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
