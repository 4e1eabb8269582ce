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
//! Only `#[repr(C)]` data crosses: slot writes ([`CSlotWrite`]), errors
//! ([`CError`], turned back into the caller's [`Error`]), the engine's
//! description and counters. A copy that finds a table of another version
//! (or of another layout) refuses every engine operation with
//! [`Error::EngineVersion`], writing nothing.
//!
//! The table's first two words (`version`, `table_size`) are the part
//! every version keeps: a copy reads nothing else of a table whose version
//! is not its own.

use std::sync::atomic::{AtomicPtr, Ordering};

use crate::error::{Error, Place, Result};
use crate::insn::{Form, SLOT_LEN};

use super::{EngineInfo, EngineStats, SlotWrite};

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

/// A slot write as it crosses copies ([`SlotWrite`]).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct CSlotWrite {
    addr: usize,
    key: usize,
    /// The target or pointer of `form` (0 when it has none).
    target: usize,
    old: [u8; SLOT_LEN],
    new: [u8; SLOT_LEN],
    /// [`Form`]'s variant: see [`form_code`].
    form: u8,
    /// 0: a call site; 1: a trampoline.
    place: u8,
}

fn form_code(f: Form) -> (u8, usize) {
    match f {
        Form::Call(t) => (1, t),
        Form::Jmp(t) => (2, t),
        Form::Nop => (3, 0),
        Form::Ret => (4, 0),
        Form::Zero => (5, 0),
        Form::CallVia(p) => (6, p),
    }
}

fn form_of(code: u8, t: usize) -> Option<Form> {
    Some(match code {
        1 => Form::Call(t),
        2 => Form::Jmp(t),
        3 => Form::Nop,
        4 => Form::Ret,
        5 => Form::Zero,
        6 => Form::CallVia(t),
        _ => return None,
    })
}

impl CSlotWrite {
    fn from(s: &SlotWrite) -> CSlotWrite {
        let (form, target) = form_code(s.form);
        CSlotWrite {
            addr: s.addr,
            key: s.key,
            target,
            old: s.old,
            new: s.new,
            form,
            place: match s.place {
                Place::Site => 0,
                Place::Trampoline => 1,
            },
        }
    }

    fn to_slot(self) -> Option<SlotWrite> {
        Some(SlotWrite {
            addr: self.addr,
            old: self.old,
            new: self.new,
            form: form_of(self.form, self.target)?,
            place: match self.place {
                0 => Place::Site,
                1 => Place::Trampoline,
                _ => return None,
            },
            key: self.key,
        })
    }
}

/// Bytes of text an error carries across (what was expected, or the
/// message of an error no other kind describes).
const TEXT_LEN: usize = 256;

/// An engine error as it crosses copies.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct CError {
    /// 0: none; see the `K_*` constants.
    kind: u32,
    /// 0: a call site; 1: a trampoline.
    place: u8,
    found_len: u8,
    found: [u8; 16],
    addr: usize,
    key: usize,
    errno: i32,
    tid: i32,
    tracer: i32,
    /// The failed operation's name (`Syscall::op`): a string of the
    /// serving copy, whose object is pinned for the life of the process.
    op: *const u8,
    op_len: usize,
    /// `TrapHandlerReplaced::found`.
    handler: usize,
    text_len: u32,
    text: [u8; TEXT_LEN],
}

const K_UNEXPECTED: u32 = 1;
const K_SYSCALL: u32 = 2;
const K_HANDLER: u32 = 3;
const K_TRACED: u32 = 4;
const K_OTHER: u32 = 5;
const K_BAD_INPUT: u32 = 6;

impl CError {
    fn none() -> CError {
        CError {
            kind: 0,
            place: 0,
            found_len: 0,
            found: [0; 16],
            addr: 0,
            key: 0,
            errno: 0,
            tid: 0,
            tracer: 0,
            op: std::ptr::null(),
            op_len: 0,
            handler: 0,
            text_len: 0,
            text: [0; TEXT_LEN],
        }
    }

    fn set_text(&mut self, t: &str) {
        // Cut at a character boundary.
        let mut n = t.len().min(TEXT_LEN);
        while !t.is_char_boundary(n) {
            n -= 1;
        }
        self.text[..n].copy_from_slice(&t.as_bytes()[..n]);
        self.text_len = n as u32;
    }

    fn text(&self) -> String {
        let n = (self.text_len as usize).min(TEXT_LEN);
        String::from_utf8_lossy(&self.text[..n]).into_owned()
    }

    fn from(e: &Error) -> CError {
        let mut c = CError::none();
        match e {
            Error::UnexpectedBytes {
                place,
                addr,
                key,
                found,
                expected,
            } => {
                c.kind = K_UNEXPECTED;
                c.place = u8::from(*place == Place::Trampoline);
                let n = found.len().min(c.found.len());
                c.found[..n].copy_from_slice(&found[..n]);
                c.found_len = n as u8;
                c.addr = *addr;
                c.key = *key;
                c.set_text(expected);
            }
            Error::Syscall { op, addr, errno } => {
                c.kind = K_SYSCALL;
                c.op = op.as_ptr();
                c.op_len = op.len();
                c.addr = *addr;
                c.errno = *errno;
            }
            Error::TrapHandlerReplaced { found } => {
                c.kind = K_HANDLER;
                c.handler = *found;
            }
            Error::Traced { tracer, tid } => {
                c.kind = K_TRACED;
                c.tracer = *tracer;
                c.tid = *tid;
            }
            e => {
                c.kind = K_OTHER;
                c.set_text(&e.to_string());
            }
        }
        c
    }

    fn to_error(self) -> Error {
        match self.kind {
            K_UNEXPECTED => Error::UnexpectedBytes {
                place: if self.place == 1 {
                    Place::Trampoline
                } else {
                    Place::Site
                },
                addr: self.addr,
                key: self.key,
                found: self.found[..usize::from(self.found_len).min(16)].to_vec(),
                expected: self.text(),
            },
            K_SYSCALL => Error::Syscall {
                op: op_name(self.op, self.op_len),
                addr: self.addr,
                errno: self.errno,
            },
            K_HANDLER => Error::TrapHandlerReplaced {
                found: self.handler,
            },
            K_TRACED => Error::Traced {
                tracer: self.tracer,
                tid: self.tid,
            },
            K_BAD_INPUT => Error::EngineFailed {
                message: "a slot write that this copy could not read (an unknown form or place)"
                    .into(),
            },
            _ => Error::EngineFailed {
                message: self.text(),
            },
        }
    }
}

/// The serving copy's name of a failed operation, as a `&'static str`.
fn op_name(p: *const u8, len: usize) -> &'static str {
    if p.is_null() || len > 256 {
        return "the engine";
    }
    // SAFETY: a string literal of the serving copy, whose object is pinned
    // (`RTLD_NODELETE`) for the life of the process: never unmapped.
    let bytes = unsafe { std::slice::from_raw_parts(p, len) };
    std::str::from_utf8(bytes).unwrap_or("the engine")
}

/// [`EngineInfo`] across copies.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CInfo {
    proc_mem: u8,
    membarrier: u8,
}

/// [`EngineStats`] and the park counters across copies.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CStats {
    batches: u64,
    slots: u64,
    writes: u64,
    core_syncs: u64,
    traps_emulated: u64,
    traps_restarted: u64,
    park_rounds: u64,
    park_incomplete: u64,
    park_waited_ns: u64,
}

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

// ---- Calls into another copy's engine -------------------------------

fn check(r: i32, e: CError) -> Result<()> {
    if r == 0 { Ok(()) } else { Err(e.to_error()) }
}

/// [`super::local::write_batch`] of the serving engine.
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
/// `w` holds `n` slot writes meeting [`super::local::write_batch`]'s
/// contract; `err` is a valid error record.
unsafe extern "C" fn x_write_batch(w: *const CSlotWrite, n: usize, err: *mut CError) -> i32 {
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
    match unsafe { super::local::write_batch(&batch) } {
        Ok(()) => 0,
        Err(e) => fail(err, &e),
    }
}

/// # Safety
/// As [`super::local::write_fresh`]; `bytes` valid for `len` bytes,
/// `written` and `err` valid.
unsafe extern "C" fn x_write_fresh(
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
    match unsafe { super::local::write_fresh(addr, b) } {
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
/// As [`super::local::release`]; `out` and `err` valid.
unsafe extern "C" fn x_release(
    start: usize,
    end: usize,
    out: *mut [usize; 2],
    err: *mut CError,
) -> i32 {
    let _entered = crate::gate::enter_nested();
    // SAFETY: the caller's contract.
    match unsafe { super::local::release(start, end) } {
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
unsafe extern "C" fn x_forget_slots(addrs: *const usize, n: usize, err: *mut CError) -> i32 {
    let _entered = crate::gate::enter_nested();
    let a = if n == 0 || addrs.is_null() {
        &[][..]
    } else {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(addrs, n) }
    };
    match super::local::forget_slots(a) {
        Ok(()) => 0,
        Err(e) => fail(err, &e),
    }
}

/// # Safety
/// `out` and `err` valid.
unsafe extern "C" fn x_info(out: *mut CInfo, err: *mut CError) -> i32 {
    let _entered = crate::gate::enter_nested();
    match super::local::engine_info() {
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
unsafe extern "C" fn x_stats(out: *mut CStats) {
    let s = super::local::engine_stats();
    let (park_rounds, park_incomplete, park_waited_ns) = super::park::stats();
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

unsafe extern "C" fn x_trap_table_len() -> usize {
    let _entered = crate::gate::enter_nested();
    super::local::trap_table_len()
}

unsafe extern "C" fn x_mappings_changed() {
    super::pristine::forget();
}

unsafe extern "C" fn x_park_owned() -> u8 {
    u8::from(super::park::owned())
}

unsafe extern "C" fn x_park_disown() {
    super::park::disown();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_cross_unchanged() {
        let cases = [
            Error::UnexpectedBytes {
                place: Place::Trampoline,
                addr: 0x1000,
                key: 0x2000,
                found: vec![0xe9, 1, 2, 3, 4],
                expected: "the bytes validated before the batch".into(),
            },
            Error::Syscall {
                op: "pwrite(/proc/self/mem)",
                addr: 0x3000,
                errno: libc::EPERM,
            },
            Error::TrapHandlerReplaced { found: 1 },
            Error::Traced { tracer: 7, tid: 9 },
        ];
        for e in cases {
            assert_eq!(CError::from(&e).to_error(), e);
        }
        let other = Error::Reentrant { op: "update" };
        assert_eq!(
            CError::from(&other).to_error(),
            Error::EngineFailed {
                message: other.to_string()
            }
        );
    }

    #[test]
    fn slot_writes_cross_unchanged() {
        for form in [
            Form::Call(0x1234),
            Form::Jmp(0x5678),
            Form::Nop,
            Form::Ret,
            Form::Zero,
        ] {
            let s = SlotWrite {
                addr: 0x4000,
                old: [0xe8, 0, 0, 0, 0],
                new: [0x0f, 0x1f, 0x44, 0, 0],
                form,
                place: Place::Site,
                key: 0x5000,
            };
            let back = CSlotWrite::from(&s).to_slot().expect("decodes");
            assert_eq!(
                (
                    back.addr, back.old, back.new, back.form, back.place, back.key
                ),
                (s.addr, s.old, s.new, s.form, s.place, s.key)
            );
        }
    }
}
