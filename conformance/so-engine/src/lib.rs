//! A plugin with keys of its own: it links its own copy of the engine
//! (its update path is compiled in). The conformance scenarios open it:
//! `engine_copies` checks that the program's copy of the engine and this
//! one find each other; `engine_shared` that this copy's updates are
//! written by the program's engine (one engine per process:
//! `docs/DESIGN.md`, "One engine per process"); `engines` loads, patches,
//! updates and unloads it in a loop while the program updates its own
//! keys, asks it about the program's keys, and builds it with the
//! `bumped` feature (an engine table of the next version), which the
//! program's engine must refuse.

use static_call_implementations::static_call_inline_patch::{
    self as sc, StaticCall, define_static_call, static_call,
};

extern "C" fn plus1(x: u64) -> u64 {
    x + 1
}

extern "C" fn plus2(x: u64) -> u64 {
    x + 2
}

define_static_call!(
    static OWN: extern "C" fn(u64) -> u64 = plus1;
);

/// This copy's engine anchor (where `dl_iterate_phdr` should find it).
#[unsafe(no_mangle)]
pub extern "C" fn static_call_test_engine_anchor() -> usize {
    static_call_core::text::rendezvous::own_anchor()
}

/// This copy's engine version (`ENGINE_VERSION`; one more with the
/// `bumped` feature).
#[unsafe(no_mangle)]
pub extern "C" fn static_call_test_engine_version() -> u32 {
    static_call_core::text::ENGINE_VERSION
}

/// Whether this copy serves the process's engine (it should not: the
/// program's copy came first).
#[unsafe(no_mangle)]
pub extern "C" fn static_call_test_engine_serves() -> bool {
    static_call_core::text::serves_engine()
}

/// Calls the plugin's own key.
#[unsafe(no_mangle)]
pub extern "C" fn static_call_test_engine_call(x: u64) -> u64 {
    static_call!(OWN(x))
}

/// How many call sites of the plugin's own key its registry knows (after
/// `init`: the patched ones).
#[unsafe(no_mangle)]
pub extern "C" fn static_call_test_engine_sites() -> usize {
    OWN.sites().len()
}

/// What an operation returned, for the program: 0 on success; 2 for
/// `Error::EngineVersion` (with the two versions in `versions`); else 1.
/// The error's text goes to `msg` (up to `len` bytes, NUL-terminated).
///
/// # Safety
/// `msg` is valid for `len` bytes of writes; `versions` is null or valid.
unsafe fn outcome(r: sc::Result<()>, msg: *mut u8, len: usize, versions: *mut [u32; 2]) -> i32 {
    let Err(e) = r else { return 0 };
    let t = e.to_string();
    let n = t.len().min(len.saturating_sub(1));
    if !msg.is_null() && len > 0 {
        // SAFETY: the caller's buffer holds `len` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(t.as_ptr(), msg, n);
            *msg.add(n) = 0;
        }
    }
    match e {
        sc::Error::EngineVersion { ours, found, .. } => {
            // SAFETY: the caller passes null or a valid pair.
            if let Some(v) = unsafe { versions.as_mut() } {
                *v = [ours, found];
            }
            2
        }
        _ => 1,
    }
}

/// Patches the plugin's sites (its registry's `init()`).
///
/// # Safety
/// `msg` is valid for `len` bytes of writes; `versions` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn static_call_test_engine_init(
    msg: *mut u8,
    len: usize,
    versions: *mut [u32; 2],
) -> i32 {
    // SAFETY: the caller's contract.
    unsafe { outcome(sc::init(), msg, len, versions) }
}

/// Points the plugin's own key at `plus2` (`which` odd) or `plus1`, or at
/// RET0 (`which` = `u64::MAX`).
///
/// # Safety
/// `msg` is valid for `len` bytes of writes; `versions` is null or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn static_call_test_engine_update(
    which: u64,
    msg: *mut u8,
    len: usize,
    versions: *mut [u32; 2],
) -> i32 {
    let r = if which == u64::MAX {
        OWN.update_ret0()
    } else {
        OWN.update(if which % 2 == 1 { plus2 } else { plus1 })
    };
    // SAFETY: the caller's contract.
    unsafe { outcome(r, msg, len, versions) }
}

/// Whether the plugin's own key is at RET0 (asked by this copy).
#[unsafe(no_mangle)]
pub extern "C" fn static_call_test_engine_own_is_ret0() -> bool {
    OWN.is_ret0()
}

/// The program's conditional key `key`, asked from this copy: 1 when
/// `query()` says none, 0 when it names a function.
///
/// # Safety
/// `key` is a live key of the program with this signature.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn static_call_test_engine_query_none(
    key: *const StaticCall<extern "C" fn(u64)>,
) -> u32 {
    // SAFETY: the caller's contract.
    u32::from(unsafe { &*key }.query().is_none())
}

/// The program's key `key`, asked from this copy: 1 when `is_ret0()`.
///
/// # Safety
/// `key` is a live key of the program with this signature.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn static_call_test_engine_is_ret0(
    key: *const StaticCall<extern "C" fn(u64) -> bool>,
) -> u32 {
    // SAFETY: the caller's contract.
    u32::from(unsafe { &*key }.is_ret0())
}
