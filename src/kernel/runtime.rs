//! The kernel thread: started on first use, one per process, fork-aware.
//!
//! Other threads talk to it only through channels: `run()` ships a closure
//! that executes on the kernel thread (used to start service tasks), and each
//! service has its own request channel. The thread runs a current-thread tokio
//! runtime inside a `LocalSet`, so kernel state is plain `Rc`/`RefCell` with
//! no locks. It never calls into Python.
//!
//! Fork: a `pthread_atfork` child handler bumps a generation counter and
//! forgets the parent's kernel (whose thread does not exist in the child).
//! Every handle remembers the generation it was made in and refuses to be
//! used in another one; the child's first use starts a fresh kernel.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

type Job = Box<dyn FnOnce() + Send>;

enum Ctl {
    Run(Job),
    Shutdown,
}

pub struct Kernel {
    ctl: mpsc::UnboundedSender<Ctl>,
    pub generation: u64,
    thread: Mutex<Option<JoinHandle<()>>>,
}

static GENERATION: AtomicU64 = AtomicU64::new(1);
static KERNEL: AtomicPtr<Kernel> = AtomicPtr::new(std::ptr::null_mut());
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    // Only async-signal-safe work here: two atomic stores. The parent's kernel
    // is leaked in the child on purpose: its thread is gone and its locks may
    // be held; nothing may touch it.
    GENERATION.fetch_add(1, Ordering::SeqCst);
    KERNEL.store(std::ptr::null_mut(), Ordering::SeqCst);
}

/// The generation of the current process (changes in a forked child).
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Make sure a forked child sees a new generation.
pub fn ensure_atfork() {
    ATFORK.call_once(|| {
        // SAFETY: registers a plain extern "C" function with no captured state.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
}

/// The running kernel, started if needed.
pub fn kernel() -> &'static Kernel {
    ensure_atfork();
    let p = KERNEL.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: kernels are leaked (never freed), so the pointer stays valid.
        return unsafe { &*p };
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let k = Box::into_raw(Box::new(Kernel {
        ctl: tx,
        generation: generation(),
        thread: Mutex::new(None),
    }));
    match KERNEL.compare_exchange(std::ptr::null_mut(), k, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            let handle = std::thread::Builder::new()
                .name("iokernel".into())
                .spawn(move || kernel_main(rx))
                .expect("cannot start the iokernel thread");
            // SAFETY: k was just published and is never freed.
            let kr = unsafe { &*k };
            *kr.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
            kr
        }
        Err(existing) => {
            // Another thread won the race; ours never started.
            // SAFETY: k came from Box::into_raw above and was never shared.
            drop(unsafe { Box::from_raw(k) });
            // SAFETY: see above: published kernels are never freed.
            unsafe { &*existing }
        }
    }
}

fn kernel_main(mut rx: mpsc::UnboundedReceiver<Ctl>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build the kernel's tokio runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        while let Some(msg) = rx.recv().await {
            match msg {
                Ctl::Run(job) => job(),
                Ctl::Shutdown => break,
            }
        }
    });
    // Dropping the LocalSet drops every task; their pending completions
    // deliver `Closed` errors from Drop, so no caller waits forever.
    drop(local);
    rt.shutdown_timeout(Duration::from_millis(100));
}

impl Kernel {
    /// Run `job` on the kernel thread (it may `spawn_local`).
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> bool {
        self.ctl.send(Ctl::Run(Box::new(job))).is_ok()
    }
}

/// Stop the kernel of this process, waiting up to `wait` for its thread.
/// Safe to call more than once; a later use starts a new kernel.
pub fn shutdown(wait: Duration) -> bool {
    let p = KERNEL.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if p.is_null() {
        return true;
    }
    // SAFETY: kernels are never freed.
    let k = unsafe { &*p };
    if k.generation != generation() {
        return true; // a parent's kernel seen in a child: nothing to stop
    }
    let _ = k.ctl.send(Ctl::Shutdown);
    let handle = k.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(h) = handle else { return true };
    let end = std::time::Instant::now() + wait;
    while !h.is_finished() {
        if std::time::Instant::now() >= end {
            return false; // leave it; the process is exiting anyway
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    h.join().is_ok()
}
