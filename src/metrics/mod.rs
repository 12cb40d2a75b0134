//! Metrics in a memory-mapped file: counters, gauges and histograms that any
//! thread updates with one atomic operation on shared memory — no call into
//! the kernel thread, no lock, no syscall — and that another process can read
//! at any time, even while this one is stopped (`layout.rs` has the format).
//!
//! The file lives at `$IOKERNEL_METRICS_DIR/<pid>.metrics` (default
//! `$XDG_RUNTIME_DIR/iokernel`, else `/tmp/iokernel-<uid>`), mode 0600, with
//! a fixed capacity (`IOKERNEL_METRICS_SIZE`, default 4 MiB; pages are only
//! backed once written). If no file can be made, an anonymous mapping is used
//! and `file_error()` says why: metrics still work in-process.
//!
//! Fork: the child must not write into the parent's file. Every update checks
//! the process generation (one relaxed load); the first update in a child
//! copies the descriptors into a new file for the child's pid, zeroes the
//! values, and maps it at the same address, so existing series stay valid.

pub mod layout;
pub mod read;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use layout::Kind;

use crate::kernel::runtime;

struct Inner {
    path: Option<PathBuf>,
    used: usize,
    index: HashMap<(String, String), Series>,
    families: HashMap<String, (Kind, Vec<f64>)>,
}

struct Registry {
    base: *mut u8,
    cap: usize,
    inner: Mutex<Inner>,
    file_error: Option<String>,
}

// SAFETY: `base` points to a mapping that lives as long as the process and is
// only mutated through atomics (values) or under `inner` (new records).
unsafe impl Send for Registry {}
// SAFETY: as above.
unsafe impl Sync for Registry {}

static REG: OnceLock<Registry> = OnceLock::new();
static MAP_GEN: AtomicU64 = AtomicU64::new(0);
static REMAP: Mutex<()> = Mutex::new(());

/// Where metrics files go.
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("IOKERNEL_METRICS_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("iokernel");
    }
    // SAFETY: getuid has no failure mode.
    PathBuf::from(format!("/tmp/iokernel-{}", unsafe { libc::getuid() }))
}

fn capacity() -> usize {
    std::env::var("IOKERNEL_METRICS_SIZE")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(4 << 20)
        .clamp(64 << 10, 1 << 30)
}

fn open_file(cap: usize) -> Result<(File, PathBuf), String> {
    let d = dir();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)
        .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    let path = d.join(format!("{}.metrics", std::process::id()));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.set_len(cap as u64)
        .map_err(|e| format!("cannot size {}: {e}", path.display()))?;
    Ok((f, path))
}

fn map(fd: Option<i32>, cap: usize, at: *mut u8) -> *mut u8 {
    let (flags, fd) = match fd {
        Some(fd) => (libc::MAP_SHARED, fd),
        None => (libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1),
    };
    let flags = if at.is_null() {
        flags
    } else {
        flags | libc::MAP_FIXED
    };
    // SAFETY: mapping a fresh region (or, with MAP_FIXED, replacing our own
    // mapping of the same size); the result is checked.
    let p = unsafe {
        libc::mmap(
            at.cast(),
            cap,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd,
            0,
        )
    };
    assert!(
        p != libc::MAP_FAILED,
        "iokernel: cannot map the metrics file: {}",
        std::io::Error::last_os_error()
    );
    p.cast()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// # Safety
/// `base` must be a writable mapping of at least `layout::HEADER` bytes.
unsafe fn write_header(base: *mut u8, cap: usize, used: usize) {
    let h = std::slice::from_raw_parts_mut(base, layout::HEADER);
    h[..8].copy_from_slice(layout::MAGIC);
    h[8..12].copy_from_slice(&layout::VERSION.to_le_bytes());
    h[layout::OFF_PID..layout::OFF_PID + 4].copy_from_slice(&std::process::id().to_le_bytes());
    h[layout::OFF_CAP..layout::OFF_CAP + 8].copy_from_slice(&(cap as u64).to_le_bytes());
    h[layout::OFF_STARTED..layout::OFF_STARTED + 8].copy_from_slice(&now_ms().to_le_bytes());
    (*(base.add(layout::OFF_USED) as *const AtomicU64)).store(used as u64, Ordering::Release);
}

fn registry() -> &'static Registry {
    REG.get_or_init(|| {
        runtime::ensure_atfork();
        let cap = capacity();
        let (base, path, file_error) = match open_file(cap) {
            Ok((f, p)) => (
                map(Some(f.as_raw_fd()), cap, std::ptr::null_mut()),
                Some(p),
                None,
            ),
            Err(e) => (map(None, cap, std::ptr::null_mut()), None, Some(e)),
        };
        // SAFETY: fresh mapping of `cap` >= HEADER bytes.
        unsafe { write_header(base, cap, layout::HEADER) };
        MAP_GEN.store(runtime::generation(), Ordering::Relaxed);
        Registry {
            base,
            cap,
            inner: Mutex::new(Inner {
                path,
                used: layout::HEADER,
                index: HashMap::new(),
                families: HashMap::new(),
            }),
            file_error,
        }
    })
}

#[cold]
fn remap_after_fork() {
    let reg = registry();
    let _g = REMAP.lock().unwrap_or_else(|e| e.into_inner());
    let gen = runtime::generation();
    if MAP_GEN.load(Ordering::Acquire) == gen {
        return;
    }
    let mut inner = reg.inner.lock().unwrap_or_else(|e| e.into_inner());
    let used = inner.used;
    // SAFETY: reading the published prefix of our (still the parent's) mapping.
    let saved = unsafe { std::slice::from_raw_parts(reg.base, used).to_vec() };
    let (fd_file, path) = match open_file(reg.cap) {
        Ok((f, p)) => (Some(f), Some(p)),
        Err(_) => (None, None),
    };
    // Put the child's own mapping (a new file, or anonymous memory) where the
    // parent's was, so every Series stays valid; the parent's file is never
    // written. Then restore the descriptors and zero the values there: the
    // child starts counting from zero.
    map(fd_file.as_ref().map(|f| f.as_raw_fd()), reg.cap, reg.base);
    // SAFETY: the new mapping is `cap` >= used bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(saved.as_ptr(), reg.base, used);
        write_header(reg.base, reg.cap, used);
    }
    for s in inner.index.values() {
        // SAFETY: values regions lie inside the (new) mapping at reg.base.
        unsafe {
            std::ptr::write_bytes(
                s.values as *mut u8,
                0,
                8 * layout::nvalues(s.kind, s.bounds.len()),
            )
        };
    }
    inner.path = path;
    MAP_GEN.store(gen, Ordering::Release);
}

#[inline(always)]
fn check_fork() {
    if MAP_GEN.load(Ordering::Relaxed) != runtime::generation() {
        remap_after_fork();
    }
}

/// One time series: a handle to its values in the shared mapping.
#[derive(Clone)]
pub struct Series {
    values: *const AtomicU64,
    pub kind: Kind,
    bounds: Arc<[f64]>,
}

// SAFETY: the pointer targets process-lifetime shared memory updated only atomically.
unsafe impl Send for Series {}
// SAFETY: as above.
unsafe impl Sync for Series {}

fn add_f64(cell: &AtomicU64, v: f64) {
    let mut cur = cell.load(Ordering::Relaxed);
    loop {
        let new = (f64::from_bits(cur) + v).to_bits();
        match cell.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(x) => cur = x,
        }
    }
}

impl Series {
    fn cell(&self, i: usize) -> &AtomicU64 {
        check_fork();
        // SAFETY: i < nvalues for this record (callers below), mapping lives forever.
        unsafe { &*self.values.add(i) }
    }
    /// Counter/gauge: add `v`.
    #[inline]
    pub fn add(&self, v: f64) {
        add_f64(self.cell(0), v);
    }
    /// Gauge: set to `v`.
    #[inline]
    pub fn set(&self, v: f64) {
        self.cell(0).store(v.to_bits(), Ordering::Relaxed);
    }
    /// Counter/gauge value, or histogram sum.
    pub fn get(&self) -> f64 {
        let i = if self.kind == Kind::Histogram {
            self.bounds.len() + 1
        } else {
            0
        };
        f64::from_bits(self.cell(i).load(Ordering::Relaxed))
    }
    /// Histogram: count `v` in its bucket and add it to the sum.
    #[inline]
    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.cell(i).fetch_add(1, Ordering::Relaxed);
        add_f64(self.cell(self.bounds.len() + 1), v);
    }
    /// Histogram: `n` observations of the same value `v` at once (what `n`
    /// calls of `observe(v)` record, the sum up to rounding).
    #[inline]
    pub fn observe_n(&self, v: f64, n: u64) {
        if n == 0 {
            return;
        }
        let i = self.bounds.partition_point(|b| *b < v);
        self.cell(i).fetch_add(n, Ordering::Relaxed);
        add_f64(self.cell(self.bounds.len() + 1), v * n as f64);
    }
    /// Histogram: total observations.
    pub fn count(&self) -> u64 {
        (0..=self.bounds.len())
            .map(|i| self.cell(i).load(Ordering::Relaxed))
            .sum()
    }
}

/// Default latency buckets, seconds: 50 µs .. 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// Register (or find) the series `name{labels}`. `labels` is pre-rendered
/// (`layout::render_labels`). The same name must keep its kind and buckets.
pub fn register(
    name: &str,
    help: &str,
    labels: &str,
    kind: Kind,
    bounds: &[f64],
    kernel: bool,
) -> Result<Series, String> {
    if !layout::valid_name(name) {
        return Err(format!("invalid metric name {name:?}: use letters, digits, '_' and ':', not starting with a digit"));
    }
    if name.len() > 200 || help.len() > 2000 || labels.len() > 4000 {
        return Err(format!("metric {name:?}: name, help or labels too long"));
    }
    let bounds: Vec<f64> = if kind == Kind::Histogram {
        bounds.to_vec()
    } else {
        Vec::new()
    };
    if kind == Kind::Histogram
        && (bounds.is_empty()
            || bounds.windows(2).any(|w| w[0] >= w[1])
            || bounds.iter().any(|b| !b.is_finite()))
    {
        return Err(format!(
            "histogram {name:?}: buckets must be finite, increasing and not empty"
        ));
    }
    let reg = registry();
    check_fork();
    let mut inner = reg.inner.lock().unwrap_or_else(|e| e.into_inner());
    match inner.families.get(name) {
        Some((k, b)) if *k != kind || *b != bounds => {
            return Err(format!(
                "metric {name:?} already exists as a {} with other buckets or kind",
                k.name()
            ));
        }
        _ => {}
    }
    let key = (name.to_string(), labels.to_string());
    if let Some(s) = inner.index.get(&key) {
        return Ok(s.clone());
    }
    let l = layout::rec_layout(name.len(), help.len(), labels.len(), kind, bounds.len());
    let at = inner.used;
    if at + l.len > reg.cap {
        return Err(format!(
            "the metrics file is full ({} bytes); raise IOKERNEL_METRICS_SIZE or use fewer label values",
            reg.cap
        ));
    }
    // SAFETY: [at, at+len) is inside the mapping and not yet published, so no
    // reader or writer touches it; we hold the registry lock.
    unsafe {
        let r = std::slice::from_raw_parts_mut(reg.base.add(at), l.len);
        r.fill(0);
        r[0..4].copy_from_slice(&(l.len as u32).to_le_bytes());
        r[4] = kind as u8;
        r[5] = u8::from(kernel);
        r[6..8].copy_from_slice(&(bounds.len() as u16).to_le_bytes());
        r[8..10].copy_from_slice(&(name.len() as u16).to_le_bytes());
        r[10..12].copy_from_slice(&(help.len() as u16).to_le_bytes());
        r[12..14].copy_from_slice(&(labels.len() as u16).to_le_bytes());
        let s = l.strings;
        r[s..s + name.len()].copy_from_slice(name.as_bytes());
        r[s + name.len()..s + name.len() + help.len()].copy_from_slice(help.as_bytes());
        r[s + name.len() + help.len()..s + name.len() + help.len() + labels.len()]
            .copy_from_slice(labels.as_bytes());
        for (i, b) in bounds.iter().enumerate() {
            r[l.bounds + 8 * i..l.bounds + 8 * i + 8].copy_from_slice(&b.to_le_bytes());
        }
        (*(reg.base.add(layout::OFF_USED) as *const AtomicU64))
            .store((at + l.len) as u64, Ordering::Release);
    }
    inner.used = at + l.len;
    inner
        .families
        .entry(name.to_string())
        .or_insert((kind, bounds.clone()));
    // SAFETY: values start inside the record just written.
    let values = unsafe { reg.base.add(at + l.values) } as *const AtomicU64;
    let s = Series {
        values,
        kind,
        bounds: bounds.into(),
    };
    inner.index.insert(key, s.clone());
    Ok(s)
}

/// Like `register`, but a series that cannot be registered (file full, bad
/// name) still works, in private memory, instead of failing the caller: the
/// kernel must not stop because its metrics file is full.
pub fn register_or_dummy(
    name: &str,
    help: &str,
    labels: &str,
    kind: Kind,
    bounds: &[f64],
    kernel: bool,
) -> Series {
    register(name, help, labels, kind, bounds, kernel).unwrap_or_else(|_| {
        let n = layout::nvalues(kind, bounds.len());
        let cells: &'static [AtomicU64] = Box::leak((0..n).map(|_| AtomicU64::new(0)).collect());
        Series {
            values: cells.as_ptr(),
            kind,
            bounds: if kind == Kind::Histogram {
                bounds.into()
            } else {
                Arc::from([])
            },
        }
    })
}

/// A copy of the published part of this process's metrics.
pub fn snapshot_bytes() -> Vec<u8> {
    let reg = registry();
    check_fork();
    // SAFETY: reading the header word atomically, then the published prefix.
    unsafe {
        let used = (*(reg.base.add(layout::OFF_USED) as *const AtomicU64)).load(Ordering::Acquire)
            as usize;
        std::slice::from_raw_parts(reg.base, used.min(reg.cap)).to_vec()
    }
}

/// This process's metrics file, if one could be made.
pub fn path() -> Option<PathBuf> {
    let reg = registry();
    check_fork();
    reg.inner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .path
        .clone()
}

/// Why no file could be made (metrics then live in anonymous memory).
pub fn file_error() -> Option<String> {
    registry().file_error.clone()
}

/// Remove this process's file (at clean exit). Only the owner removes it.
pub fn remove_file() {
    if let Some(p) = path() {
        if p.file_name().and_then(|n| n.to_str())
            == Some(&format!("{}.metrics", std::process::id()))
        {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_histograms_round_trip_through_the_file() {
        let c = register(
            "t_requests_total",
            "Requests.",
            "svc=\"a\"",
            Kind::Counter,
            &[],
            false,
        )
        .unwrap();
        c.add(1.0);
        c.add(2.5);
        let g = register("t_in_flight", "In flight.", "", Kind::Gauge, &[], true).unwrap();
        g.set(7.0);
        let h = register(
            "t_latency_seconds",
            "Latency.",
            "",
            Kind::Histogram,
            &[0.1, 1.0],
            false,
        )
        .unwrap();
        for v in [0.05, 0.5, 0.5, 5.0] {
            h.observe(v);
        }
        let again = register(
            "t_requests_total",
            "Requests.",
            "svc=\"a\"",
            Kind::Counter,
            &[],
            false,
        )
        .unwrap();
        again.add(1.0);
        assert_eq!(c.get(), 4.5);
        assert!(register("t_requests_total", "", "", Kind::Gauge, &[], false).is_err());
        assert!(register("9bad", "", "", Kind::Gauge, &[], false).is_err());

        let bytes = std::fs::read(path().expect("a file")).unwrap();
        let snap = read::parse(&bytes).unwrap();
        assert_eq!(snap.pid, std::process::id());
        let text = read::render(&snap);
        assert!(
            text.contains("# TYPE t_requests_total counter\nt_requests_total{svc=\"a\"} 4.5\n"),
            "{text}"
        );
        assert!(text.contains("t_in_flight 7\n"));
        assert!(text.contains("t_latency_seconds_bucket{le=\"0.1\"} 1\n"));
        assert!(text.contains("t_latency_seconds_bucket{le=\"1\"} 3\n"));
        assert!(text.contains("t_latency_seconds_bucket{le=\"+Inf\"} 4\n"));
        assert!(text.contains("t_latency_seconds_count 4\n"));
        assert_eq!(h.count(), 4);
    }

    #[test]
    fn observe_n_records_what_n_observes_would() {
        let h = |name: &str| {
            register(name, "Latency.", "", Kind::Histogram, &[0.1, 1.0], false).unwrap()
        };
        let (one, many) = (h("t_obs_one_seconds"), h("t_obs_many_seconds"));
        for (v, n) in [(0.05, 3), (0.5, 1), (5.0, 2), (0.5, 0)] {
            for _ in 0..n {
                one.observe(v);
            }
            many.observe_n(v, n);
        }
        assert_eq!(many.count(), 6);
        for i in 0..3 {
            assert_eq!(
                one.cell(i).load(Ordering::Relaxed),
                many.cell(i).load(Ordering::Relaxed),
                "bucket {i}"
            );
        }
        assert!((one.get() - many.get()).abs() < 1e-12, "sums");
        assert!((many.get() - 10.65).abs() < 1e-12);
    }

    #[test]
    fn parse_rejects_foreign_files() {
        assert!(read::parse(b"not a metrics file").is_err());
        let mut b = vec![0u8; layout::HEADER];
        b[..8].copy_from_slice(layout::MAGIC);
        b[8..12].copy_from_slice(&9u32.to_le_bytes());
        assert!(read::parse(&b).unwrap_err().contains("version"));
    }
}
