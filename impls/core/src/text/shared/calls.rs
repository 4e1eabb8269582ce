//! Calls into another copy's engine through its table, and this copy's
//! entry points that other copies call through ours.

use super::EngineTable;
use super::wire::{CError, CInfo, CSlotWrite, CStats, K_BAD_INPUT};
use crate::error::{Error, Result};
use crate::text::{EngineInfo, EngineStats, SlotWrite};

// ---- Calls into another copy's engine -------------------------------

fn check(r: i32, e: CError) -> Result<()> {
    if r == 0 { Ok(()) } else { Err(e.to_error()) }
}

/// [`crate::text::local::write_batch`] of the serving engine.
pub(crate) fn write_batch(t: &EngineTable, batch: &[SlotWrite]) -> Result<()> {
    let c: Vec<CSlotWrite> = batch.iter().map(CSlotWrite::from).collect();
    let mut e = CError::none();
    // SAFETY: an entry point of a table of our version and layout, given
    // `c.len()` valid writes and a valid error record.
    let r = unsafe { (t.write_batch)(c.as_ptr(), c.len(), &mut e) };
    check(r, e)
}

pub(crate) fn write_fresh(t: &EngineTable, addr: usize, bytes: &[u8]) -> Result<bool> {
    let mut e = CError::none();
    let mut written = 0u8;
    // SAFETY: as above; `bytes` is valid for its length.
    let r = unsafe { (t.write_fresh)(addr, bytes.as_ptr(), bytes.len(), &mut written, &mut e) };
    check(r, e).map(|()| written != 0)
}

pub(crate) fn release(t: &EngineTable, start: usize, end: usize) -> Result<(usize, usize)> {
    let mut e = CError::none();
    let mut out = [0usize; 2];
    // SAFETY: as above.
    let r = unsafe { (t.release)(start, end, &mut out, &mut e) };
    check(r, e).map(|()| (out[0], out[1]))
}

pub(crate) fn forget_slots(t: &EngineTable, addrs: &[usize]) -> Result<()> {
    let mut e = CError::none();
    // SAFETY: as above.
    let r = unsafe { (t.forget_slots)(addrs.as_ptr(), addrs.len(), &mut e) };
    check(r, e)
}

pub(crate) fn info(t: &EngineTable) -> Result<EngineInfo> {
    let mut e = CError::none();
    let mut i = CInfo::default();
    // SAFETY: as above.
    let r = unsafe { (t.info)(&mut i, &mut e) };
    check(r, e).map(|()| EngineInfo {
        proc_mem: i.proc_mem != 0,
        membarrier: i.membarrier != 0,
    })
}

/// (engine counters, park counters) of the serving engine.
pub(crate) fn stats(t: &EngineTable) -> (EngineStats, (u64, u64, u64)) {
    let mut s = CStats::default();
    // SAFETY: as above.
    unsafe { (t.stats)(&mut s) };
    (
        EngineStats {
            batches: s.batches,
            slots: s.slots,
            writes: s.writes,
            core_syncs: s.core_syncs,
            traps_emulated: s.traps_emulated,
            traps_restarted: s.traps_restarted,
        },
        (s.park_rounds, s.park_incomplete, s.park_waited_ns),
    )
}

pub(crate) fn trap_table_len(t: &EngineTable) -> usize {
    // SAFETY: as above.
    unsafe { (t.trap_table_len)() }
}

pub(crate) fn mappings_changed(t: &EngineTable) {
    // SAFETY: as above.
    unsafe { (t.mappings_changed)() }
}

// ---- This copy's entry points, called by other copies ----------------

fn fail(err: *mut CError, e: &Error) -> i32 {
    // SAFETY: the caller passes a valid error record.
    if let Some(err) = unsafe { err.as_mut() } {
        *err = CError::from(e);
    }
    1
}

/// # Safety
/// `w` holds `n` slot writes meeting [`crate::text::local::write_batch`]'s
/// contract; `err` is a valid error record.
pub(super) unsafe extern "C" fn x_write_batch(
    w: *const CSlotWrite,
    n: usize,
    err: *mut CError,
) -> i32 {
    let _entered = crate::gate::enter_nested();
    let c = if n == 0 || w.is_null() {
        &[][..]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(w, n) }
    };
    let Some(batch) = c.iter().map(|s| s.to_slot()).collect::<Option<Vec<_>>>() else {
        // SAFETY: the caller passes a valid error record.
        if let Some(err) = unsafe { err.as_mut() } {
            *err = CError::none();
            err.kind = K_BAD_INPUT;
        }
        return 1;
    };
    // SAFETY: the caller's contract.
    match unsafe { crate::text::local::write_batch(&batch) } {
        Ok(()) => 0,
        Err(e) => fail(err, &e),
    }
}

/// # Safety
/// As [`crate::text::local::write_fresh`]; `bytes` valid for `len` bytes,
/// `written` and `err` valid.
pub(super) unsafe extern "C" fn x_write_fresh(
    addr: usize,
    bytes: *const u8,
    len: usize,
    written: *mut u8,
    err: *mut CError,
) -> i32 {
    let _entered = crate::gate::enter_nested();
    let b = if len == 0 || bytes.is_null() {
        &[][..]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(bytes, len) }
    };
    // SAFETY: the caller's contract.
    match unsafe { crate::text::local::write_fresh(addr, b) } {
        Ok(w) => {
            // SAFETY: the caller passes a valid flag.
            if let Some(out) = unsafe { written.as_mut() } {
                *out = u8::from(w);
            }
            0
        }
        Err(e) => fail(err, &e),
    }
}

/// # Safety
/// As [`crate::text::local::release`]; `out` and `err` valid.
pub(super) unsafe extern "C" fn x_release(
    start: usize,
    end: usize,
    out: *mut [usize; 2],
    err: *mut CError,
) -> i32 {
    let _entered = crate::gate::enter_nested();
    // SAFETY: the caller's contract.
    match unsafe { crate::text::local::release(start, end) } {
        Ok((lo, hi)) => {
            // SAFETY: the caller passes a valid pair.
            if let Some(out) = unsafe { out.as_mut() } {
                *out = [lo, hi];
            }
            0
        }
        Err(e) => fail(err, &e),
    }
}

/// # Safety
/// `addrs` holds `n` addresses; `err` valid.
pub(super) unsafe extern "C" fn x_forget_slots(
    addrs: *const usize,
    n: usize,
    err: *mut CError,
) -> i32 {
    let _entered = crate::gate::enter_nested();
    let a = if n == 0 || addrs.is_null() {
        &[][..]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(addrs, n) }
    };
    match crate::text::local::forget_slots(a) {
        Ok(()) => 0,
        Err(e) => fail(err, &e),
    }
}

/// # Safety
/// `out` and `err` valid.
pub(super) unsafe extern "C" fn x_info(out: *mut CInfo, err: *mut CError) -> i32 {
    let _entered = crate::gate::enter_nested();
    match crate::text::local::engine_info() {
        Ok(i) => {
            // SAFETY: the caller passes a valid record.
            if let Some(out) = unsafe { out.as_mut() } {
                *out = CInfo {
                    proc_mem: u8::from(i.proc_mem),
                    membarrier: u8::from(i.membarrier),
                };
            }
            0
        }
        Err(e) => fail(err, &e),
    }
}

/// # Safety
/// `out` valid.
pub(super) unsafe extern "C" fn x_stats(out: *mut CStats) {
    let s = crate::text::local::engine_stats();
    let (park_rounds, park_incomplete, park_waited_ns) = crate::text::park::stats();
    // SAFETY: the caller passes a valid record.
    if let Some(out) = unsafe { out.as_mut() } {
        *out = CStats {
            batches: s.batches,
            slots: s.slots,
            writes: s.writes,
            core_syncs: s.core_syncs,
            traps_emulated: s.traps_emulated,
            traps_restarted: s.traps_restarted,
            park_rounds,
            park_incomplete,
            park_waited_ns,
        };
    }
}

pub(super) unsafe extern "C" fn x_trap_table_len() -> usize {
    let _entered = crate::gate::enter_nested();
    crate::text::local::trap_table_len()
}

pub(super) unsafe extern "C" fn x_mappings_changed() {
    crate::text::pristine::forget();
}

pub(super) unsafe extern "C" fn x_park_owned() -> u8 {
    u8::from(crate::text::park::owned())
}

pub(super) unsafe extern "C" fn x_park_disown() {
    crate::text::park::disown();
}
