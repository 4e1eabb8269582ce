//! One gate for every use of the registries and the patching engine, so
//! that neither a signal handler nor `fork` can meet them half-way.
//!
//! * **Re-entry.** A signal handler that interrupts an update and calls
//!   `update()` on the same thread would wait for a lock its own thread
//!   holds. Each thread knows whether it is inside a static-call operation
//!   (a thread-local flag with a constant initialiser, safe to read in a
//!   signal handler), and the operations that return a `Result` refuse
//!   re-entry with [`Error::Reentrant`] instead of deadlocking.
//! * **Fork.** A `fork` while another thread is inside an operation would
//!   give the child a lock that no thread of the child will ever release.
//!   A `pthread_atfork` handler takes the gate before the fork (so fork
//!   waits for the operation in flight to finish) and releases it on both
//!   sides: the child gets a consistent registry and a free gate. If the
//!   fork happens on a thread that is itself inside an operation (from a
//!   signal handler), the gate cannot be taken; the child then refuses
//!   every later operation with [`Error::ForkedDuringUpdate`].

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

use crate::error::{Error, Result};

static GATE: Mutex<()> = Mutex::new(());
static ATFORK: Once = Once::new();
/// Set in a child forked by a thread that was inside an operation.
static FORKED_DURING: AtomicBool = AtomicBool::new(false);
/// Whether the forking thread skipped the gate (it was inside an operation).
static SKIPPED: AtomicBool = AtomicBool::new(false);

struct Held(std::cell::UnsafeCell<Option<MutexGuard<'static, ()>>>);
// SAFETY: only the forking thread touches it, between its prepare handler
// and its parent/child handler (which run on the same thread).
unsafe impl Sync for Held {}
static HELD: Held = Held(std::cell::UnsafeCell::new(None));

thread_local! {
    /// How deep this thread is inside static-call operations.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Proof that this thread is inside an operation and holds the gate.
#[derive(Debug)]
pub(crate) struct Entered {
    guard: Option<MutexGuard<'static, ()>>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        // Unlock first: a signal handler that runs between the two steps
        // must see this thread as inside (refused), never as outside while
        // the gate is still held (it would wait for itself).
        drop(self.guard.take());
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

extern "C" fn prepare() {
    if DEPTH.with(Cell::get) > 0 {
        SKIPPED.store(true, Ordering::SeqCst);
        return;
    }
    let g = GATE.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: see `Held`.
    unsafe { *HELD.0.get() = Some(g) };
}

extern "C" fn parent() {
    // SAFETY: see `Held`.
    drop(unsafe { (*HELD.0.get()).take() });
    SKIPPED.store(false, Ordering::SeqCst);
}

extern "C" fn child() {
    // SAFETY: see `Held`; the child has only this thread.
    drop(unsafe { (*HELD.0.get()).take() });
    if SKIPPED.swap(false, Ordering::SeqCst) {
        FORKED_DURING.store(true, Ordering::SeqCst);
    }
}

fn install_atfork() {
    ATFORK.call_once(|| {
        // Raw libc: `pthread_atfork` is libc's own (no system call).
        // SAFETY: registers three handlers that only touch this module's
        // statics; failure (ENOMEM) leaves fork unguarded, as before.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
}

/// Registers the fork handlers now (the copy that serves the process's
/// engine does so when it claims it, before any other copy can: `fork`
/// runs the handlers in reverse order of registration, so every copy's
/// gate is taken before the serving copy's, the order operations take
/// them in).
pub(crate) fn prepare_fork() {
    install_atfork();
}

/// Enters an operation: refuses re-entry from a signal handler on this
/// thread and use in a child forked during an operation; otherwise takes
/// the gate (unless this thread already holds it).
pub(crate) fn enter(op: &'static str) -> Result<Entered> {
    install_atfork();
    if FORKED_DURING.load(Ordering::SeqCst) {
        return Err(Error::ForkedDuringUpdate { op });
    }
    if DEPTH.with(Cell::get) > 0 {
        return Err(Error::Reentrant { op });
    }
    Ok(enter_nested())
}

/// Enters an operation that cannot fail (statistics, queries): takes the
/// gate unless this thread already holds it. Must not be called from a
/// signal handler that interrupted a static-call operation.
pub(crate) fn enter_nested() -> Entered {
    install_atfork();
    // Count this thread in before taking the gate (see `Drop`).
    let outermost = DEPTH.with(|d| {
        d.set(d.get() + 1);
        d.get() == 1
    });
    let guard = outermost.then(|| GATE.lock().unwrap_or_else(|e| e.into_inner()));
    Entered { guard }
}
