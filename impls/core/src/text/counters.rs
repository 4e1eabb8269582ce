//! The engine's counters, and the statistics read from the process's
//! engine (whichever copy serves it).

use std::sync::atomic::{AtomicU64, Ordering};

use super::{TrapStats, park, shared, trap};

/// (parking rounds with other threads, rounds in which a thread did not
/// park, nanoseconds spent waiting for threads to park) so far.
#[doc(hidden)]
pub fn park_stats() -> (u64, u64, u64) {
    match shared::engine() {
        Ok(shared::Engine::Theirs(t)) => shared::stats(t).1,
        _ => park::stats(),
    }
}

/// How many breakpoint traps the handler has served so far (the
/// process's engine, whichever copy serves it).
pub fn trap_stats() -> TrapStats {
    let s = engine_stats();
    TrapStats {
        emulated: s.traps_emulated,
        restarted: s.traps_restarted,
    }
}

pub(super) struct Counters {
    pub(super) batches: AtomicU64,
    pub(super) slots: AtomicU64,
    pub(super) writes: AtomicU64,
    pub(super) syncs: AtomicU64,
}

pub(super) static COUNTERS: Counters = Counters {
    batches: AtomicU64::new(0),
    slots: AtomicU64::new(0),
    writes: AtomicU64::new(0),
    syncs: AtomicU64::new(0),
};

/// What the patching engine has done in this process so far (all
/// implementations together: they share one engine).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Batches written (one per update, `init()` or module load/unload
    /// that changed code).
    pub batches: u64,
    /// Slots (sites and trampolines) those batches changed.
    pub slots: u64,
    /// Writes to code (`pwrite`s to `/proc/self/mem`, or `mprotect`
    /// windows): one per run of nearby slots and protocol phase.
    pub writes: u64,
    /// Core synchronisations (`membarrier`, or `mprotect` shootdowns).
    pub core_syncs: u64,
    /// Threads that met a breakpoint of a batch in flight and were sent on
    /// through the emulated new instruction.
    pub traps_emulated: u64,
    /// Threads that met a breakpoint just removed and were restarted.
    pub traps_restarted: u64,
}

/// The engine's counters (the process's engine, whichever copy of this
/// crate serves it; zeros when this copy cannot use it).
pub fn engine_stats() -> EngineStats {
    match shared::engine() {
        Ok(shared::Engine::Ours) => engine_stats_here(),
        Ok(shared::Engine::Theirs(t)) => shared::stats(t).0,
        Err(_) => EngineStats::default(),
    }
}

/// This copy's engine's counters.
pub(super) fn engine_stats_here() -> EngineStats {
    let t = trap::stats();
    EngineStats {
        batches: COUNTERS.batches.load(Ordering::Relaxed),
        slots: COUNTERS.slots.load(Ordering::Relaxed),
        writes: COUNTERS.writes.load(Ordering::Relaxed),
        core_syncs: COUNTERS.syncs.load(Ordering::Relaxed),
        traps_emulated: t.emulated,
        traps_restarted: t.restarted,
    }
}
