//! One engine per process: the table a copy of this crate publishes at the
//! first copy's anchor (`text/rendezvous.rs`), and every other copy's use
//! of it (`docs/DESIGN.md`, "One engine per process").
//!
//! Each copy has an [`EngineTable`] of its own, [`OURS`]: a version, the
//! sizes of the types that cross copies, `extern "C"` entry points into
//! that copy's engine, and the addresses of its `ret` and RET0 stubs. The
//! first copy to need the engine (in practice the first whose ELF
//! constructor runs, see [`claim_at_start`]) publishes its table with one
//! compare-and-swap on the anchor of the first copy in `dl_iterate_phdr`
//! order; every copy, the winner included, then serves its engine
//! operations from the published table. The winner pins its own object
//! and the anchor's (`dlopen(RTLD_NOLOAD | RTLD_NODELETE)`), so neither is
//! unmapped while the engine may be called, and only the winner installs
//! the `SIGTRAP` and park handlers.
//!
//! Only `#[repr(C)]` data crosses (`shared/wire.rs`): slot writes, errors
//! (turned back into the caller's [`Error`]), the engine's
//! description and counters. A copy that finds a table of another version
//! (or of another layout) refuses every engine operation with
//! [`Error::EngineVersion`], writing nothing.
//!
//! The table's first two words (`version`, `table_size`) are the part
//! every version keeps: a copy reads nothing else of a table whose version
//! is not its own.

use std::sync::atomic::{AtomicPtr, Ordering};

use crate::error::{Error, Result};

mod calls;
mod wire;

pub(crate) use calls::{
    forget_slots, info, mappings_changed, release, stats, trap_table_len, write_batch, write_fresh,
};
use calls::{
    x_forget_slots, x_info, x_mappings_changed, x_park_disown, x_park_owned, x_release, x_stats,
    x_trap_table_len, x_write_batch, x_write_fresh,
};
use wire::{CError, CInfo, CSlotWrite, CStats};

/// The version of the engine table (what the copies of this crate in one
/// process must agree on to share an engine). The
/// `engine-version-bump-for-tests` feature adds one, so that the
/// conformance suite can build a plugin that another copy must refuse.
pub const ENGINE_VERSION: u32 = if cfg!(feature = "engine-version-bump-for-tests") {
    BASE_VERSION + 1
} else {
    BASE_VERSION
};
const BASE_VERSION: u32 = 1;

/// What a copy publishes: its engine, reachable from any copy.
#[repr(C)]
pub(crate) struct EngineTable {
    /// [`ENGINE_VERSION`] of the publishing copy. With `table_size`, the
    /// part of the table every version keeps.
    version: u32,
    /// `size_of::<EngineTable>()`.
    table_size: u32,
    slot_write_size: u32,
    error_size: u32,
    info_size: u32,
    stats_size: u32,
    /// The canonical `ret` stub (the none target of designs that store
    /// one) and RET0 function: every copy stores and compares these.
    ret_stub: extern "C" fn(),
    ret0_stub: extern "C" fn() -> u64,
    /// The park handler of the serving copy (what `sigaction` calls of any
    /// copy compare a new action with).
    park_handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void),
    write_batch: unsafe extern "C" fn(*const CSlotWrite, usize, *mut CError) -> i32,
    /// (address, bytes, length, written?, error).
    write_fresh: unsafe extern "C" fn(usize, *const u8, usize, *mut u8, *mut CError) -> i32,
    /// (start, end, released `[lo, hi]`, error).
    release: unsafe extern "C" fn(usize, usize, *mut [usize; 2], *mut CError) -> i32,
    forget_slots: unsafe extern "C" fn(*const usize, usize, *mut CError) -> i32,
    info: unsafe extern "C" fn(*mut CInfo, *mut CError) -> i32,
    stats: unsafe extern "C" fn(*mut CStats),
    trap_table_len: unsafe extern "C" fn() -> usize,
    mappings_changed: unsafe extern "C" fn(),
    park_owned: unsafe extern "C" fn() -> u8,
    park_disown: unsafe extern "C" fn(),
}

/// This copy's table.
pub(crate) static OURS: EngineTable = EngineTable {
    version: ENGINE_VERSION,
    table_size: size_of::<EngineTable>() as u32,
    slot_write_size: size_of::<CSlotWrite>() as u32,
    error_size: size_of::<CError>() as u32,
    info_size: size_of::<CInfo>() as u32,
    stats_size: size_of::<CStats>() as u32,
    ret_stub: crate::registry::ret_stub,
    ret0_stub: crate::registry::ret0_stub,
    park_handler: super::park::on_park,
    write_batch: x_write_batch,
    write_fresh: x_write_fresh,
    release: x_release,
    forget_slots: x_forget_slots,
    info: x_info,
    stats: x_stats,
    trap_table_len: x_trap_table_len,
    mappings_changed: x_mappings_changed,
    park_owned: x_park_owned,
    park_disown: x_park_disown,
};

// SAFETY: the table holds only plain numbers and function pointers, and
// is never written.
unsafe impl Sync for EngineTable {}

/// The table this copy uses, once found (published tables are never
/// withdrawn, and their objects are never unmapped).
static USED: AtomicPtr<EngineTable> = AtomicPtr::new(std::ptr::null_mut());

/// The engine this copy's operations go to.
pub(crate) enum Engine {
    /// This copy's own (it won the rendezvous).
    Ours,
    /// Another copy's, of the same version and layout.
    Theirs(&'static EngineTable),
}

fn ours_ptr() -> *mut EngineTable {
    &OURS as *const EngineTable as *mut EngineTable
}

/// The process's engine: found, or claimed for this copy if no copy has
/// published one yet.
///
/// # Errors
/// [`Error::EngineVersion`] when the published table is of another
/// version or layout (nothing was written anywhere).
pub(crate) fn engine() -> Result<Engine> {
    let mut p = USED.load(Ordering::Acquire);
    if p.is_null() {
        p = claim();
    }
    if p == ours_ptr() {
        return Ok(Engine::Ours);
    }
    // SAFETY: a published table, in an object pinned for the life of the
    // process; `version` and `table_size` are laid out alike in every
    // version.
    let t = unsafe { &*p };
    if t.version != ENGINE_VERSION
        || t.table_size != OURS.table_size
        || t.slot_write_size != OURS.slot_write_size
        || t.error_size != OURS.error_size
        || t.info_size != OURS.info_size
        || t.stats_size != OURS.stats_size
    {
        return Err(Error::EngineVersion {
            ours: ENGINE_VERSION,
            found: t.version,
            object: object_of(p as usize),
        });
    }
    Ok(Engine::Theirs(t))
}

/// The table already known to this copy, if it is usable (same version);
/// never claims, never calls the loader: safe in a signal handler.
fn known() -> Option<&'static EngineTable> {
    let p = USED.load(Ordering::Acquire);
    // SAFETY: as in `engine`.
    let t = unsafe { p.as_ref() }?;
    (t.version == ENGINE_VERSION && t.table_size == OURS.table_size).then_some(t)
}

/// Finds the published table, or publishes ours at the first copy's
/// anchor (one compare-and-swap): returns the table this copy uses from
/// now on.
fn claim() -> *mut EngineTable {
    let copies = super::rendezvous::copies();
    let own = super::rendezvous::own_anchor();
    // The first copy's anchor; ours when the list lacks the notes (a
    // loader without `dl_iterate_phdr`, a stripped note segment).
    let first = copies
        .first()
        .cloned()
        .unwrap_or_else(|| super::rendezvous::Copy {
            anchor: own,
            name: std::ffi::CString::default(),
        });
    // The anchor's object must stay mapped while its anchor holds the
    // table: pin it before publishing there (a no-op for the program).
    pin(&first.name);
    // SAFETY: `first.anchor` is the `ANCHOR` static of a copy of this crate
    // (found by its note), an `AtomicPtr` in an object now pinned.
    let anchor = unsafe { &*(first.anchor as *const AtomicPtr<EngineTable>) };
    let p = match anchor.compare_exchange(
        std::ptr::null_mut(),
        ours_ptr(),
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => {
            // We serve the process: our object stays mapped for good,
            // the fork gate is registered before any other copy's, and
            // the park handler is ours (the `SIGTRAP` handler is installed
            // when the engine is first opened).
            if first.anchor != own
                && let Some(c) = copies.iter().find(|c| c.anchor == own)
            {
                pin(&c.name);
            }
            crate::gate::prepare_fork();
            super::park::install();
            ours_ptr()
        }
        Err(found) => found,
    };
    USED.store(p, Ordering::Release);
    p
}

/// Keeps the object the loader knows as `name` mapped for the life of
/// the process (`RTLD_NOLOAD | RTLD_NODELETE`; nothing for the program,
/// whose name is empty, which is never unmapped).
fn pin(name: &std::ffi::CStr) {
    if name.is_empty() {
        return;
    }
    // Raw libc, not libloading: this pin must never be closed, and a
    // libloading `Library` closes its handle on drop.
    // SAFETY: only finds an object already loaded (RTLD_NOLOAD) and marks
    // it never to be unloaded; the handle is kept (never closed).
    unsafe {
        libc::dlopen(
            name.as_ptr(),
            libc::RTLD_NOLOAD | libc::RTLD_NODELETE | libc::RTLD_LAZY,
        )
    };
}

/// The path of the object holding `addr` (for messages).
fn object_of(addr: usize) -> String {
    // Raw libc: neither rustix nor libloading offers `dladdr`.
    // SAFETY: dladdr only reads the loader's tables; `info` is written by
    // it.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(addr as *const libc::c_void, &mut info) != 0 && !info.dli_fname.is_null() {
            let name = std::ffi::CStr::from_ptr(info.dli_fname).to_string_lossy();
            if !name.is_empty() {
                return name.into_owned();
            }
        }
    }
    format!("the object holding {addr:#x}")
}

/// Called by the ELF constructor of each copy (before `main` for the
/// program, at `dlopen` for a plugin): the first copy to start claims the
/// engine, so the park handler is installed by the engine that parks,
/// before the program starts threads that inherit its mask.
pub(crate) fn claim_at_start() {
    if USED.load(Ordering::Acquire).is_null() {
        claim();
    }
}

/// Whether this copy serves the process's engine (published our table).
pub(crate) fn serving() -> bool {
    USED.load(Ordering::Acquire) == ours_ptr()
}

/// The canonical `ret` stub (every copy's none target, where a design
/// stores one): the serving engine's, else this copy's own.
pub(crate) fn ret_stub_addr() -> usize {
    match engine() {
        Ok(Engine::Theirs(t)) => t.ret_stub as usize,
        _ => crate::registry::ret_stub as *const () as usize,
    }
}

/// The canonical RET0 function: the serving engine's, else this copy's.
pub(crate) fn ret0_addr() -> usize {
    match engine() {
        Ok(Engine::Theirs(t)) => t.ret0_stub as usize,
        _ => crate::registry::ret0_stub as *const () as usize,
    }
}

/// The canonical RET0 function without claiming the engine (for queries):
/// what a key pointed at RET0 by any copy holds.
pub(crate) fn ret0_known() -> usize {
    match known() {
        Some(t) => t.ret0_stub as usize,
        None => crate::registry::ret0_stub as *const () as usize,
    }
}

/// The canonical `ret` stub without claiming the engine (for queries).
pub(crate) fn ret_known() -> usize {
    match known() {
        Some(t) => t.ret_stub as usize,
        None => crate::registry::ret_stub as *const () as usize,
    }
}

/// Whether the serving engine owns its park signal (async-signal-safe).
pub(crate) fn park_owned() -> bool {
    match known() {
        Some(t) if !std::ptr::eq(t, &OURS) => {
            // SAFETY: an entry point of a table of our version.
            unsafe { (t.park_owned)() != 0 }
        }
        _ => super::park::owned(),
    }
}

/// The program claims the park signal: parking is off in the serving
/// engine.
pub(crate) fn park_disown() {
    match known() {
        Some(t) if !std::ptr::eq(t, &OURS) => {
            // SAFETY: an entry point of a table of our version.
            unsafe { (t.park_disown)() }
        }
        _ => super::park::disown(),
    }
}

/// Whether `handler` is the serving engine's park handler (or ours).
pub(crate) fn is_park_handler(handler: usize) -> bool {
    super::park::is_handler(handler) || known().is_some_and(|t| t.park_handler as usize == handler)
}
