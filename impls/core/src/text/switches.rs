//! The engine's test-only switches: injected faults, the naive patcher,
//! forced fallbacks. They exist so the conformance suite can show that
//! the protocol is needed and that failures leave the old code; never use
//! them otherwise.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A system call the engine can be made to fail, for tests of its error
/// paths (as a seccomp filter installed after `init()` would).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `pwrite` to `/proc/self/mem` fails with `EPERM` after `after`
    /// successful calls, and every call after that.
    ProcMemWrite {
        /// Calls that still succeed.
        after: u64,
    },
    /// `membarrier` fails with `EPERM` after `after` successful calls, and
    /// every call after that.
    Membarrier {
        /// Calls that still succeed.
        after: u64,
    },
    /// Installing the `SIGTRAP` handler fails with `EPERM` (every try).
    Sigaction,
}

/// A system call of the engine that an injected [`Fault`] can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub(super) enum Hit {
    /// `pwrite` to `/proc/self/mem`.
    ProcMemWrite = 1,
    /// `membarrier(SYNC_CORE)`.
    Membarrier = 2,
    /// `sigaction(SIGTRAP)`.
    Sigaction = 3,
}

/// The [`Hit`] the injected fault aims at (0: none).
static FAULT_KIND: AtomicU64 = AtomicU64::new(0);
/// Calls left before the injected fault starts.
static FAULT_LEFT: AtomicU64 = AtomicU64::new(0);
static NAIVE: AtomicBool = AtomicBool::new(false);
static FORCE_FALLBACKS: AtomicBool = AtomicBool::new(false);

/// Makes a system call of the engine fail from now on (`None`: stop). It
/// exists so the conformance suite can show that a failed update leaves
/// the code as it was; never use it otherwise.
#[doc(hidden)]
pub fn inject_fault_for_tests(f: Option<Fault>) {
    let (kind, after) = match f {
        None => (0, 0),
        Some(Fault::ProcMemWrite { after }) => (Hit::ProcMemWrite as u64, after),
        Some(Fault::Membarrier { after }) => (Hit::Membarrier as u64, after),
        Some(Fault::Sigaction) => (Hit::Sigaction as u64, 0),
    };
    FAULT_LEFT.store(after, Ordering::SeqCst);
    FAULT_KIND.store(kind, Ordering::SeqCst);
}

/// Whether the injected fault hits this call of `kind` (the caller then
/// fails with `EPERM`, as a seccomp filter would make the call fail).
pub(super) fn injected(kind: Hit) -> bool {
    if FAULT_KIND.load(Ordering::SeqCst) != kind as u64 {
        return false;
    }
    let left = FAULT_LEFT.load(Ordering::SeqCst);
    if left == 0 {
        return true;
    }
    FAULT_LEFT.store(left - 1, Ordering::SeqCst);
    false
}

/// Whether the naive patcher is on ([`use_naive_patcher_for_tests`]).
pub(super) fn naive() -> bool {
    NAIVE.load(Ordering::Relaxed)
}

/// Whether the fallbacks are forced ([`use_fallbacks_for_tests`]).
pub(super) fn fallbacks_forced() -> bool {
    FORCE_FALLBACKS.load(Ordering::SeqCst)
}

/// Switches the process to a byte-at-a-time patcher with no protocol and no
/// core synchronisation. It exists only to prove that the torture test can
/// fail; never use it otherwise.
///
/// # Safety
/// Other threads executing a slot while it is written this way can run a
/// torn instruction and crash.
#[doc(hidden)]
pub unsafe fn use_naive_patcher_for_tests(on: bool) {
    NAIVE.store(on, Ordering::SeqCst);
}

/// Makes the engine use its fallbacks (an `mprotect` RWX window per write,
/// `mprotect` TLB shootdowns to synchronise cores), as on a kernel without
/// `/proc/self/mem` writes or `membarrier`. It exists so the conformance
/// suite can run those paths; takes effect at the next write.
#[doc(hidden)]
pub fn use_fallbacks_for_tests(on: bool) {
    let mut g = super::engine::ENGINE
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    FORCE_FALLBACKS.store(on, Ordering::SeqCst);
    *g = None;
}
