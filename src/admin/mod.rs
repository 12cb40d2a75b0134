//! The admin endpoint, served by the kernel thread: it answers while Python
//! is stuck, because nothing here needs the GIL.
//!
//! `GET /status` and `/inflight` (JSON, from the live kernel state),
//! `/metrics` (Prometheus text of the shared metrics file), `/stacks` (every
//! Python thread's stack) and `/` (an HTML dashboard). HTTP/1.1, one request
//! per connection, 8 KiB request limit, 2 s to send it.
//!
//! Stacks without the GIL: Python's own `faulthandler` is registered (from
//! Python, once) on a real-time signal with a memfd as its output. To take a
//! dump the kernel truncates the memfd and raises the signal *on its own
//! thread*: faulthandler's C handler runs right there, walks every thread's
//! frames without taking the GIL (it is written to work inside a crash
//! handler), and writes to the memfd, which the kernel then reads back.
//!
//! The watchdog (`watchdog`) also lives here: it notices replies that wait
//! too long for Python to pick them up, counts it, attaches a stack dump and
//! leaves a message that the loop logs through `logging` once it runs again.

use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, RawFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::kernel::{completion, runtime, service};
use crate::metrics;

const DASHBOARD: &str = include_str!("dashboard.html");

/// Where to listen.
#[derive(Debug, Clone)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(String, u16),
}

/// The memfd faulthandler writes to, and the signal that triggers it.
static STACKS: Mutex<Option<(RawFd, i32)>> = Mutex::new(None);
static BOUND: Mutex<Option<(u64, String)>> = Mutex::new(None);

thread_local! {
    static STARTED: RefCell<Instant> = RefCell::new(Instant::now());
}

/// Take every Python thread's stack without the GIL (see the module doc).
/// Call only on the kernel thread (the signal is raised on the caller).
pub fn stacks() -> Result<String, String> {
    let Some((fd, sig)) = *STACKS.lock().unwrap_or_else(|e| e.into_inner()) else {
        return Err("stack dumps are not enabled (iokernel.admin.serve() enables them)".into());
    };
    // SAFETY: fd is the memfd handed over by Python and kept open for the
    // life of the process; ManuallyDrop keeps us from closing it.
    let mut f = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    f.set_len(0)
        .map_err(|e| format!("cannot reset the stack buffer: {e}"))?;
    f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    // SAFETY: raise() delivers to the calling thread; the installed handler is
    // faulthandler's, which is async-signal-safe by design.
    if unsafe { libc::raise(sig) } != 0 {
        return Err(format!(
            "cannot raise signal {sig}: {}",
            std::io::Error::last_os_error()
        ));
    }
    f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut out = String::new();
    f.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn status_json() -> String {
    let services: Vec<_> = service::views().iter().map(|v| v.status()).collect();
    let uptime =
        process_uptime().unwrap_or_else(|| STARTED.with(|s| s.borrow().elapsed().as_secs_f64()));
    serde_json::json!({
        "pid": std::process::id(),
        "uptime_s": uptime,
        "generation": runtime::generation(),
        "metrics_file": metrics::path().map(|p| p.display().to_string()),
        "stacks_enabled": STACKS.lock().unwrap_or_else(|e| e.into_inner()).is_some(),
        "services": services,
    })
    .to_string()
}

/// Seconds since this process started (from /proc), if readable.
fn process_uptime() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let start_ticks: f64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    let up: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (hz > 0.0).then(|| (up - start_ticks / hz).max(0.0))
}

fn inflight_json() -> String {
    const MAX: usize = 1000;
    let mut out = Vec::new();
    for v in service::views() {
        v.inflight(&mut out, MAX + 1);
    }
    let truncated = out.len() > MAX;
    out.truncate(MAX);
    serde_json::json!({ "requests": out, "truncated": truncated }).to_string()
}

fn metrics_text() -> String {
    match metrics::read::parse(&metrics::snapshot_bytes()) {
        Ok(s) => metrics::read::render(&s),
        Err(e) => format!("# metrics unavailable: {e}\n"),
    }
}

fn respond(path: &str) -> (u16, &'static str, String) {
    match path {
        "/" | "/index.html" => (200, "text/html; charset=utf-8", DASHBOARD.to_string()),
        "/status" => (200, "application/json", status_json()),
        "/inflight" => (200, "application/json", inflight_json()),
        "/metrics" => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics_text(),
        ),
        "/stacks" => match stacks() {
            Ok(s) => (200, "text/plain; charset=utf-8", s),
            Err(e) => (503, "text/plain; charset=utf-8", format!("{e}\n")),
        },
        _ => (
            404,
            "text/plain; charset=utf-8",
            "not found: try /, /status, /inflight, /metrics, /stacks\n".into(),
        ),
    }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .is_err()
    {
        return;
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let path = target.split('?').next().unwrap_or("/");
    let (code, ctype, body) = if method == "GET" || method == "HEAD" {
        respond(path)
    } else {
        (
            405,
            "text/plain; charset=utf-8",
            "only GET is supported\n".into(),
        )
    };
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), s.write_all(&out)).await;
    let _ = s.shutdown().await;
}

fn bind(listen: &Listen) -> Result<String, String> {
    match listen {
        Listen::Unix(path) => {
            let _ = std::fs::remove_file(path);
            if let Some(d) = path.parent() {
                use std::os::unix::fs::DirBuilderExt;
                let _ = std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(d);
            }
            let l = tokio::net::UnixListener::bind(path)
                .map_err(|e| format!("cannot listen on unix:{}: {e}", path.display()))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("cannot restrict unix:{}: {e}", path.display()))?;
            tokio::task::spawn_local(async move {
                while let Ok((s, _)) = l.accept().await {
                    tokio::task::spawn_local(handle(s));
                }
            });
            Ok(format!("unix:{}", path.display()))
        }
        Listen::Tcp(host, port) => {
            let std_l = std::net::TcpListener::bind((host.as_str(), *port))
                .map_err(|e| format!("cannot listen on tcp:{host}:{port}: {e}"))?;
            std_l.set_nonblocking(true).map_err(|e| e.to_string())?;
            let local = std_l.local_addr().map_err(|e| e.to_string())?;
            let l = tokio::net::TcpListener::from_std(std_l).map_err(|e| e.to_string())?;
            tokio::task::spawn_local(async move {
                while let Ok((s, _)) = l.accept().await {
                    tokio::task::spawn_local(handle(s));
                }
            });
            Ok(format!("tcp:{local}"))
        }
    }
}

/// Start serving on the kernel thread (starting the kernel if needed) and
/// enable stack dumps through `stacks_fd`/`stacks_signal` when given.
/// Returns the bound address. One endpoint per kernel: a second call returns
/// the first address.
pub fn serve(listen: Listen, stacks: Option<(RawFd, i32)>) -> Result<String, String> {
    let k = runtime::kernel();
    let gen = runtime::generation();
    if let Some((g, a)) = BOUND.lock().unwrap_or_else(|e| e.into_inner()).clone() {
        if g == gen {
            return Ok(a);
        }
    }
    if stacks.is_some() {
        *STACKS.lock().unwrap_or_else(|e| e.into_inner()) = stacks;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let ok = k.run(move || {
        STARTED.with(|s| *s.borrow_mut() = Instant::now());
        let _ = tx.send(bind(&listen));
        tokio::task::spawn_local(watchdog());
    });
    if !ok {
        return Err("the I/O kernel is not running".into());
    }
    let bound = rx
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| "the I/O kernel did not start the admin endpoint in time".to_string())??;
    *BOUND.lock().unwrap_or_else(|e| e.into_inner()) = Some((gen, bound.clone()));
    // So that `python -m iokernel stacks PID` finds an endpoint on any address.
    let _ = write_address_file(&bound);
    Ok(bound)
}

/// `<metrics dir>/<pid>.admin`: holds the bound address while serving.
pub fn address_file() -> PathBuf {
    metrics::dir().join(format!("{}.admin", std::process::id()))
}

/// Write `address_file()` as 0600 whatever the umask, atomically: a fresh
/// temporary file (`O_EXCL`, so never through someone's symlink) made 0600,
/// then renamed over the old one. The CLI trusts it only if it is ours and
/// not group/world-writable.
fn write_address_file(bound: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let path = address_file();
    if let Some(d) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(d)?;
    }
    let tmp = path.with_extension("admin.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    // The umask can only clear bits of 0600; this makes it exactly 0600.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let written = f.write_all(format!("{bound}\n").as_bytes());
    let done = written.and_then(|()| std::fs::rename(&tmp, &path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// The bound address in this process, if serving.
pub fn address() -> Option<String> {
    let gen = runtime::generation();
    BOUND
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .filter(|(g, _)| *g == gen)
        .map(|(_, a)| a)
}

fn watchdog_threshold() -> Duration {
    let ms = std::env::var("IOKERNEL_WATCHDOG_MS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1000);
    Duration::from_millis(ms.max(10))
}

/// Every 250 ms while replies are waiting for Python (and not at all while
/// nothing is waiting): count and describe queues stuck past the threshold.
async fn watchdog() {
    let threshold = watchdog_threshold();
    crate::kernel::stats::stalls(); // visible (at 0) before the first stall
    loop {
        completion::wait_for_pending().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        completion::check_stalls(threshold, |age| {
            let mut msg = format!(
                "replies have waited {:.2}s for Python to pick them up (threshold {:.2}s): the event loop \
                 or thread that should receive them is blocked or too busy",
                age.as_secs_f64(),
                threshold.as_secs_f64()
            );
            if let Ok(s) = stacks() {
                msg.push_str("; Python stacks at that moment:\n");
                msg.push_str(&s);
            }
            msg
        });
    }
}
