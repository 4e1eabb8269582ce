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
