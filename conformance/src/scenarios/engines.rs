//! One engine per process, first step: every copy of the engine a process
//! links can be found, in a fixed order, even when the executable exports
//! no symbol and a plugin that links its own copy (a key of its own) is
//! opened `RTLD_LOCAL`
//! (the rendezvous of `docs/DESIGN.md`, "One engine per process"; sharing
//! one engine between the copies is not built yet).

use super::*;

use static_call_core::text::rendezvous::{self, own_anchor};

/// Builds the test plugin `conformance/so-engine` (a `cdylib` with a key
/// of its own, so its own copy of the engine) and runs `engine_copies_child` with it.
pub(crate) fn engine_copies<A: Adapter>() -> ScenarioResult {
    let so = build_cdylib(
        "static-call-test-engine",
        "libstatic_call_test_engine.so",
        false,
    )?;
    spawn_cell(
        A::NAME,
        "engine_copies_child",
        &[],
        &[("STATIC_CALL_TEST_SO", so.to_str().unwrap_or(""))],
        Duration::from_secs(60),
    )
    .result()
}

/// One copy (ours) before the plugin is opened, two while it is (ours
/// first, the second inside the plugin's mapping), one after it closed.
pub(crate) fn engine_copies_child<A: Adapter>() -> ScenarioResult {
    let path = std::env::var("STATIC_CALL_TEST_SO").map_err(|_| "STATIC_CALL_TEST_SO unset")?;
    // The program's engine is started (as any program's is).
    lib(A::init_with(InitPolicy::Track), "init")?;
    let before = rendezvous::engine_copies();
    ensure!(
        before == [own_anchor()],
        "before the plugin: copies {before:x?}, expected only ours at {:#x}",
        own_anchor()
    );
    let c = std::ffi::CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: our own test plugin; its initialisers do nothing.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    ensure!(!h.is_null(), "dlopen of the test plugin failed");
    // SAFETY: a symbol of the plugin, an `extern "C" fn() -> usize`.
    let theirs = unsafe {
        let p = libc::dlsym(h, c"static_call_test_engine_anchor".as_ptr());
        ensure!(!p.is_null(), "the plugin lacks its anchor function");
        std::mem::transmute::<*mut libc::c_void, extern "C" fn() -> usize>(p)()
    };
    let during = rendezvous::engine_copies();
    ensure!(
        during == [own_anchor(), theirs],
        "with the plugin open: copies {during:x?}; expected ours {:#x}, then the plugin's {theirs:#x}",
        own_anchor()
    );
    // SAFETY: nothing of the plugin is used after this.
    unsafe { libc::dlclose(h) };
    let after = rendezvous::engine_copies();
    ensure!(
        after == before,
        "after closing the plugin: copies {after:x?}, expected {before:x?}"
    );
    Ok(Outcome::Pass(format!(
        "found by dl_iterate_phdr + PT_NOTE: ours at {:#x}; with the RTLD_LOCAL plugin open, its copy at {:#x} too; one again after close",
        own_anchor(),
        theirs
    )))
}

/// Builds the test plugin and runs `engine_refused_child` with it.
pub(crate) fn engine_refused<A: Adapter>() -> ScenarioResult {
    if !A::caps().writes_code() {
        return Ok(Outcome::Skip(
            "this implementation's updates write no code: the program never needs its engine"
                .into(),
        ));
    }
    let so = build_cdylib(
        "static-call-test-engine",
        "libstatic_call_test_engine.so",
        false,
    )?;
    spawn_cell(
        A::NAME,
        "engine_refused_child",
        &[],
        &[("STATIC_CALL_TEST_SO", so.to_str().unwrap_or(""))],
        Duration::from_secs(60),
    )
    .result()
}

/// The program runs its engine; the plugin (a later copy) updating its
/// own key is refused with `EngineElsewhere`, the program's `SIGTRAP`
/// handler stays the only one, and the program's updates go on.
pub(crate) fn engine_refused_child<A: Adapter>() -> ScenarioResult {
    let path = std::env::var("STATIC_CALL_TEST_SO").map_err(|_| "STATIC_CALL_TEST_SO unset")?;
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update")?;
    let handler = || {
        // SAFETY: zeroed is a valid sigaction to receive the current one.
        let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: querying only.
        unsafe { libc::sigaction(libc::SIGTRAP, std::ptr::null(), &mut cur) };
        cur.sa_sigaction
    };
    let ours = handler();
    let c = std::ffi::CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: our own test plugin; its initialisers do nothing.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    ensure!(!h.is_null(), "dlopen of the test plugin failed");
    type Update = unsafe extern "C" fn(u64, *mut u8, usize) -> i32;
    type Call = extern "C" fn(u64) -> u64;
    // SAFETY: symbols of the plugin with these signatures.
    let (update, call) = unsafe {
        let u = libc::dlsym(h, c"static_call_test_engine_update".as_ptr());
        let k = libc::dlsym(h, c"static_call_test_engine_call".as_ptr());
        ensure!(
            !u.is_null() && !k.is_null(),
            "the plugin lacks its functions"
        );
        (
            std::mem::transmute::<*mut libc::c_void, Update>(u),
            std::mem::transmute::<*mut libc::c_void, Call>(k),
        )
    };
    let mut msg = [0u8; 512];
    // SAFETY: `msg` holds 512 bytes.
    let r = unsafe { update(1, msg.as_mut_ptr(), msg.len()) };
    let text = std::ffi::CStr::from_bytes_until_nul(&msg)
        .map(|m| m.to_string_lossy().into_owned())
        .unwrap_or_default();
    let after = handler();
    let program_update = A::add().update(add1);
    let plugin_call = call(1);
    // SAFETY: nothing of the plugin is used after this.
    unsafe { libc::dlclose(h) };
    ensure!(
        r == 1 && text.contains("another copy of static-call-core"),
        "the plugin's update was not refused: returned {r} ({text:?})"
    );
    ensure!(
        after == ours,
        "the SIGTRAP handler changed from {ours:#x} to {after:#x}"
    );
    lib(program_update, "the program's update after the plugin's")?;
    ensure!(
        plugin_call == 2,
        "the plugin's key changed: call(1) = {plugin_call}"
    );
    Ok(Outcome::Pass(format!(
        "the plugin's own update was refused ({text}); one SIGTRAP handler; the program's updates go on"
    )))
}
