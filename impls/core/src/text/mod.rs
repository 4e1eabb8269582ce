//! The only code in the workspace that writes executable memory.
//!
//! Everything that changes an instruction — patching a site or a
//! trampoline, mapping generated code, releasing init text — goes through
//! this module. Its invariants:
//!
//! * **W^X in our own view.** Text is written through `/proc/self/mem`
//!   (`pwrite` at the instruction's address), which the kernel allows on
//!   read-only mappings without changing their protection. No mapping of the
//!   process is ever writable and executable. Fresh code is written while
//!   its mapping is `RW` and only then made `RX`. If `/proc/self/mem`
//!   cannot be opened, or cannot write a read-only executable page (probed
//!   once on a scratch page: kernels can forbid it), the engine falls back
//!   to a short `RWX` window with `mprotect` around each write (closed
//!   again before any call returns) and says so in [`EngineInfo`].
//! * **Cross-modification is safe while other threads run.** One batch is
//!   written with the breakpoint protocol: (1) an `int3` on the first byte of
//!   every slot, then *sync*; (2) the other four bytes, then *sync*; (3) the
//!   new first byte, then *sync*. *Sync* is
//!   `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)`, which makes
//!   every core that runs one of our threads execute a serialising
//!   instruction before it returns to user mode (fallback: an `mprotect`
//!   TLB-shootdown on a scratch page, which interrupts the same cores). A
//!   thread that executes a slot while it starts with `int3` traps; the
//!   `SIGTRAP` handler (in `text/trap.rs`) emulates the slot's *new* instruction.
//!   So every execution sees either the whole old instruction, the `int3`
//!   (emulated as the new one), or the whole new instruction — never a torn
//!   one. The synchronisation is paid three times per batch, not per slot.
//! * **Few system calls per batch.** The slots of a batch of more than a
//!   few are sorted by address and grouped into runs (gaps shorter than a
//!   page, `text/runs.rs`); each phase writes each run with one `pwrite`,
//!   the bytes between the slots written back as copied right before,
//!   with the process's other threads parked from the copy to the write
//!   (`text/park.rs`), and cut around any `0xcc` that is neither a slot's
//!   nor the mapped file's own padding (`text/pristine.rs`; the safety
//!   argument and its limits are in `docs/DESIGN.md`, "The write path").
//! * **Under a tracer no breakpoint is written**: the other threads are
//!   parked for the whole batch and each slot is written whole.
//! * **The trap handler's table stays bounded**: an unloaded module's
//!   slots are forgotten after a parking round (the grace period).
//! * **One writer at a time.** A process-wide mutex serialises batches.
//! * **Valgrind sees the change.** After a batch, the engine issues
//!   `VALGRIND_DISCARD_TRANSLATIONS` for each written run (a no-op when not
//!   running under valgrind).
//! * **Failure leaves the old code.** If a system call fails part way, the
//!   trap handler is given the old instructions and every slot is written
//!   back to its old bytes with the same three phases, by any means left
//!   (the other write path, the other sync) before the error is returned. A
//!   slot that cannot be restored stays served by the trap handler (which
//!   emulates its old instruction) for the life of the process.
//!
//! The parts: this file is the engine's interface (each operation goes to
//! the process's engine, `shared`); `engine.rs` opens this copy's engine
//! and writes and synchronises; `protocol.rs` is the breakpoint protocol,
//! its variants under a tracer and for tests, and the roll-back;
//! `runs.rs` plans the writes, `pristine.rs` cuts them around foreign
//! breakpoints, `park.rs` parks threads, `trap.rs` is the `SIGTRAP`
//! handler; `valgrind.rs` is the valgrind path; `switches.rs` the
//! test-only switches; `counters.rs` the statistics; `shared.rs` and
//! `rendezvous.rs` make one engine serve the process; `exec.rs` maps
//! fresh code.

mod counters;
mod engine;
pub mod exec;
pub(crate) mod park;
mod pristine;
mod protocol;
pub mod rendezvous;
mod runs;
pub(crate) mod shared;
mod switches;
mod trap;
pub mod valgrind;

use crate::error::{Place, Result};
use crate::insn::{Form, SLOT_LEN};

pub use crate::signals::check_sigtrap_masks;
pub use counters::{EngineStats, engine_stats, park_stats, trap_stats};
pub(crate) use engine::page_size;
pub use shared::ENGINE_VERSION;
pub use switches::{
    Fault, inject_fault_for_tests, use_fallbacks_for_tests, use_naive_patcher_for_tests,
};
pub use trap::TrapStats;

use counters::engine_stats_here;
use engine::{
    engine_info_here, forget_slots_here, release_here, trap_table_len_here, write_fresh_here,
};
use protocol::write_batch_here;

/// One slot to rewrite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotWrite {
    /// Address of the slot.
    pub addr: usize,
    /// Bytes the slot holds now (checked again under the engine lock).
    pub old: [u8; SLOT_LEN],
    /// Bytes it must hold afterwards.
    pub new: [u8; SLOT_LEN],
    /// The instruction the new bytes encode, emulated for a thread that
    /// hits the breakpoint meanwhile.
    pub form: Form,
    /// What the slot is (for error messages).
    pub place: Place,
    /// The key it belongs to (for error messages).
    pub key: usize,
}

/// How the engine writes and synchronises, chosen once on first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineInfo {
    /// Writes go through `/proc/self/mem` (true) or an `mprotect` window.
    pub proc_mem: bool,
    /// Cores are synchronised with `membarrier` (true) or an `mprotect`
    /// TLB shootdown.
    pub membarrier: bool,
}

/// Prepares the engine (opens `/proc/self/mem`, registers for membarrier,
/// installs the `SIGTRAP` handler) and says how it will work.
///
/// # Errors
/// A failed system call while setting up.
pub fn engine_info() -> Result<EngineInfo> {
    // The fork gate before the engine's lock, in the order every registry
    // operation takes them (gate, registry, engine): a `fork` then waits
    // for this call as for an update, and no child inherits the engine's
    // lock held by a thread it does not have. (Nested inside an operation,
    // the gate is already this thread's.)
    let _entered = crate::gate::enter_nested();
    match shared::engine()? {
        shared::Engine::Ours => engine_info_here(),
        shared::Engine::Theirs(t) => shared::info(t),
    }
}

/// Reads a slot of executable memory.
///
/// # Safety
/// `addr..addr + 5` must be mapped and readable for the duration of the call.
pub(crate) unsafe fn read_slot(addr: usize) -> [u8; SLOT_LEN] {
    // SAFETY: guaranteed by the caller; volatile because other threads may
    // rewrite it through /proc/self/mem behind the compiler's back.
    unsafe { std::ptr::read_volatile(addr as *const [u8; SLOT_LEN]) }
}

/// Writes one batch of slots with the breakpoint protocol.
///
/// Every slot must still hold its `old` bytes; otherwise nothing is written
/// and [`Error::UnexpectedBytes`] names the first that changed.
///
/// # Safety
/// * Every `addr..addr + 5` is a slot of live, mapped code that the caller
///   owns for patching (callers hold their registry lock, so no other
///   writer targets the same slot), and every `form` is the instruction
///   `new` encodes at that address.
/// * Any thread may be executing any of the slots: that is what the
///   protocol is for. Identical writes of one slot count once; writes
///   that overlap otherwise are refused with [`Error::UnexpectedBytes`]
///   before anything is written.
pub(crate) unsafe fn write_batch(batch: &[SlotWrite]) -> Result<()> {
    // A batch that changes nothing needs no engine (a design that writes
    // no code never asks for one).
    if batch.iter().all(|s| s.old == s.new) {
        return Ok(());
    }
    match shared::engine()? {
        // SAFETY: the caller's contract.
        shared::Engine::Ours => unsafe { write_batch_here(batch) },
        shared::Engine::Theirs(t) => shared::write_batch(t, batch),
    }
}

/// Makes whole pages in `start..end` inaccessible (`PROT_NONE`).
///
/// Returns the page-aligned range actually released.
///
/// # Safety
/// No code or data in the released pages may be used afterwards.
pub(crate) unsafe fn release(start: usize, end: usize) -> Result<(usize, usize)> {
    match shared::engine()? {
        // SAFETY: the caller's contract.
        shared::Engine::Ours => unsafe { release_here(start, end) },
        shared::Engine::Theirs(t) => shared::release(t, start, end),
    }
}

/// Writes `bytes` into code that no thread executes yet (a free slot of a
/// relay page, whose other slots may be live), through `/proc/self/mem`.
/// Returns `Ok(false)`, writing nothing, when the engine cannot write
/// that way: its `mprotect` window would make the page's live code
/// briefly non-executable, so the caller maps a fresh page instead.
///
/// No synchronisation is needed: no core has run these bytes, and the
/// batch that first points a jump at them synchronises every core before
/// any thread can reach them.
///
/// # Safety
/// `addr..addr + bytes.len()` lies in an executable mapping of ours that
/// no thread executes and nothing else writes.
pub(crate) unsafe fn write_fresh(addr: usize, bytes: &[u8]) -> Result<bool> {
    match shared::engine()? {
        // SAFETY: the caller's contract.
        shared::Engine::Ours => unsafe { write_fresh_here(addr, bytes) },
        shared::Engine::Theirs(t) => shared::write_fresh(t, addr, bytes),
    }
}

/// The whole pages inside `start..end`: what [`release`] makes
/// inaccessible (`(lo, lo)` when there is none).
pub(crate) fn whole_pages(start: usize, end: usize) -> (usize, usize) {
    let page = page_size();
    let lo = start.div_ceil(page) * page;
    let hi = end & !(page - 1);
    if hi <= lo { (lo, lo) } else { (lo, hi) }
}

/// Forgets the slots at `addrs` in the trap handler's table of every slot
/// ever published (an unloaded module's sites), so that the table stays
/// as large as the slots that exist, however many modules come and go.
///
/// Safe once no thread can still be about to take a trap of ours there.
/// The unload batch that precedes this has removed every breakpoint; a
/// thread that hit one before has a `SIGTRAP` pending or in progress. A
/// completed parking round is the grace period: the park signal is
/// blocked in the `SIGTRAP` handler and a pending `SIGTRAP` is delivered
/// first, so a thread that parked has finished every trap it took. If a
/// thread does not park (it blocks the park signal), nothing is forgotten.
pub(crate) fn forget_slots(addrs: &[usize]) -> Result<()> {
    match shared::engine()? {
        shared::Engine::Ours => forget_slots_here(addrs),
        shared::Engine::Theirs(t) => shared::forget_slots(t, addrs),
    }
}

/// Forgets what the engine learnt about the mappings that hold code (an
/// image was added or removed, so an address range may now be mapped
/// anew).
pub(crate) fn mappings_changed() {
    match shared::engine() {
        Ok(shared::Engine::Theirs(t)) => shared::mappings_changed(t),
        // Ours, or none usable: this copy's engine is the only one it
        // writes with.
        _ => pristine::forget(),
    }
}

/// The size of the trap handler's table of known slots (every slot
/// address published and not forgotten): for tests of bounded memory.
#[doc(hidden)]
pub fn trap_table_len() -> usize {
    match shared::engine() {
        Ok(shared::Engine::Ours) => trap_table_len_here(),
        Ok(shared::Engine::Theirs(t)) => shared::trap_table_len(t),
        Err(_) => 0,
    }
}

/// The engine's park signal (`SIGRTMAX - 1`, 63 with glibc): the engine
/// sends it to the process's other threads to stop them for a moment
/// while it writes code. Under a debugger, let it through without
/// stopping (`handle SIG63 nostop noprint pass` in gdb).
pub fn park_signal() -> i32 {
    park::signal()
}

/// Whether this copy of the crate serves the process's engine: it
/// published its engine table at the first copy's anchor, and every copy's
/// updates are written by it (`docs/DESIGN.md`, "One engine per
/// process"). False in a copy that uses another's, or that has not met
/// the engine yet.
pub fn serves_engine() -> bool {
    shared::serving()
}

/// This copy's own engine operations, which `shared`'s entry points serve
/// to the other copies.
mod local {
    pub(super) use super::{
        engine_info_here as engine_info, engine_stats_here as engine_stats,
        forget_slots_here as forget_slots, release_here as release,
        trap_table_len_here as trap_table_len, write_batch_here as write_batch,
        write_fresh_here as write_fresh,
    };
}
