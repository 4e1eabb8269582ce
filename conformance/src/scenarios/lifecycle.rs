//! Lifecycles and their error paths: a module that cannot be unregistered
//! is never unmapped, a module still in its init function cannot be
//! unloaded, init text released before `init()`, init sites on a partial
//! page, and a `SIGTRAP` handler whose first installation failed.

use std::sync::Mutex;
use std::time::Duration;

use static_call_core::text::{self, Fault};
use static_call_core::{Error, InitPolicy, ModuleId, ModuleSpec};

use super::cdylib::build_shared_object;
use super::init::maps_perms;
use super::modules::make;
use super::shared_object::so_fn;
use super::{SpinCaller, addr_of, lib};
use crate::runner::{Outcome, ScenarioResult, spawn_cell};
use crate::targets::{add1, add2, add3};
use crate::{Adapter, AddFn};

/// What [`static_call_test_hook_module_init`] does, set by the scenario.
static HOOK: Mutex<Option<fn(usize)>> = Mutex::new(None);

/// Called by the test shared object's init function (found with `dlsym`)
/// when `STATIC_CALL_TEST_MODULE_INIT_HOOK` is set, with the address of a
/// function of the module (`fn() -> u64`).
#[unsafe(no_mangle)]
pub extern "C" fn static_call_test_hook_module_init(module_fn: usize) {
    if let Some(f) = *HOOK.lock().unwrap_or_else(|e| e.into_inner()) {
        f(module_fn);
    }
}

/// Points `ADD` into the loading module (so that its sites call it
/// directly and unregistering must write them back), then makes every
/// `pwrite` of the engine fail, so that undoing the failing init fails.
fn point_into_module_then_fail<A: Adapter>(module_fn: usize) {
    // SAFETY: the module's `init_result` ignores its argument and returns
    // a u64: callable as an AddFn.
    let f: AddFn = unsafe { std::mem::transmute::<usize, AddFn>(module_fn) };
    if A::add().update(f).is_ok() {
        text::inject_fault_for_tests(Some(Fault::ProcMemWrite { after: 0 }));
    }
}

/// Whether `/proc/self/maps` shows a mapping of `path`.
fn mapped(path: &str) -> Result<bool, String> {
    let maps = static_call_core::maps::mappings().map_err(|e| e.to_string())?;
    Ok(maps.iter().any(|m| m.name == path))
}

/// A fresh copy of the test shared object (its own inode, so `dlopen`
/// maps it anew and `dlclose` really unmaps it).
fn so_copy(tag: &str) -> Result<String, String> {
    let so = build_shared_object()?;
    let dir = crate::runner::target_dir().join("tmp");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let to = dir.join(format!("lifecycle-{}-{tag}.so", std::process::id()));
    std::fs::copy(&so, &to).map_err(|e| format!("copy {}: {e}", so.display()))?;
    std::fs::canonicalize(&to)
        .map_err(|e| e.to_string())?
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| "non-UTF-8 path".into())
}

/// A module whose unregistering fails stays registered and mapped: after a
/// failed `close()`, and after a failed init whose undoing failed.
pub(crate) fn module_unload_fails<A: Adapter>() -> ScenarioResult {
    if !A::caps().patches_sites {
        return Ok(Outcome::Skip(
            "unloading writes no code here, so it cannot fail".into(),
        ));
    }
    let (a, b) = (so_copy("close")?, so_copy("init")?);
    let r = spawn_cell(
        A::NAME,
        "module_unload_fails_child",
        &[],
        &[("STATIC_CALL_TEST_SO_A", &a), ("STATIC_CALL_TEST_SO_B", &b)],
        Duration::from_secs(60),
    );
    let _ = (std::fs::remove_file(&a), std::fs::remove_file(&b));
    r.result()
}

pub(crate) fn module_unload_fails_child<A: Adapter>() -> ScenarioResult {
    let var = |v: &str| std::env::var(v).map_err(|_| format!("{v} unset"));
    let (a, b) = (var("STATIC_CALL_TEST_SO_A")?, var("STATIC_CALL_TEST_SO_B")?);
    // Keep the hook linked in: the shared object finds it with dlsym.
    std::hint::black_box(static_call_test_hook_module_init as *const ());
    lib(A::init_with(InitPolicy::Track), "init")?;

    // 1. close() whose unregistering fails.
    // SAFETY: our own test module.
    let so = lib(unsafe { A::load_shared_object(&a) }, "load")?;
    let call = so_fn(&so, A::SYMBOL_PREFIX, "call_add")?;
    let init_result = so_fn(&so, A::SYMBOL_PREFIX, "init_result")?;
    let id = so.id();
    // A target inside the module: its sites call it directly, so
    // unregistering must write them back (to their near stub).
    lib(A::add().update(init_result), "update")?;
    ensure!(
        call(2) == init_result(0),
        "module call after update: {}",
        call(2)
    );
    text::inject_fault_for_tests(Some(Fault::ProcMemWrite { after: 0 }));
    // SAFETY: the module is not used after a successful close (and this
    // one must fail).
    let r = unsafe { so.close() };
    text::inject_fault_for_tests(None);
    let closed = match r {
        Err(e @ Error::ModuleLeaked { id: i, .. }) if i == id.0 => e.to_string(),
        other => return Err(format!("close with failing writes: {other:?}")),
    };
    ensure!(
        mapped(&a)?,
        "close() failed to unregister the module but unmapped it anyway"
    );
    ensure!(
        A::registry().modules().contains(&id),
        "a leaked module is no longer listed"
    );
    lib(A::add().update(add3), "update after the failed close")?;
    ensure!(call(2) == 5, "the leaked module's site missed an update");
    // SAFETY: still mapped (leaked on purpose).
    lib(unsafe { A::registry().unload_module(id) }, "unload later")?;
    lib(A::add().update(add1), "update after unload")?;
    // Unregistered: its site calls its near stub again, which jumps
    // through the trampoline.
    ensure!(call(2) == 3, "the unloaded module's call gave {}", call(2));

    // 2. A failing init whose undoing fails.
    *HOOK.lock().unwrap_or_else(|e| e.into_inner()) = Some(point_into_module_then_fail::<A>);
    // SAFETY: single-threaded so far (the child); our own test module.
    unsafe {
        std::env::set_var("STATIC_CALL_TEST_MODULE_INIT_FAIL", "1");
        std::env::set_var("STATIC_CALL_TEST_MODULE_INIT_HOOK", "1");
    }
    // SAFETY: our own test module.
    let r = unsafe { A::load_shared_object(&b) };
    text::inject_fault_for_tests(None);
    let (failed, leaked_id) = match r {
        Err(e @ Error::ModuleLeaked { id, .. }) => (e.to_string(), ModuleId(id)),
        other => return Err(format!("load whose init and undo fail: {other:?}")),
    };
    ensure!(
        mapped(&b)?,
        "a module whose failed load could not be undone was unmapped"
    );
    ensure!(
        A::registry().modules().contains(&leaked_id),
        "the leaked module is not listed"
    );
    lib(A::add().update(add2), "update with the leaked module")?;
    ensure!(A::call_add(2) == 4, "program call");
    lib(
        // SAFETY: still mapped (leaked on purpose).
        unsafe { A::registry().unload_module(leaked_id) },
        "unload the leaked module",
    )?;
    Ok(Outcome::Pass(format!(
        "close: '{closed}'; load: '{failed}'; both stayed mapped and registered, followed updates, and unloaded later"
    )))
}

/// A module is `Loading` while its init function runs: not listed, and
/// unloading it is refused.
pub(crate) fn module_loading_refused<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let m = make::<A>(&[A::add().raw()], 2, 1, false, None)?;
    let mut seen: Result<(usize, Vec<ModuleId>), String> = Err("init never ran".into());
    let mut init = || {
        // Another thread, as a concurrent unloader would be.
        seen = std::thread::spawn(|| {
            let listed = A::registry().modules();
            let mut loading = 0;
            for k in 1..=64 {
                // SAFETY: only a refusal or "unknown" is acceptable here;
                // a success is the bug this scenario catches (and the
                // module's memory stays mapped either way).
                match unsafe { A::registry().unload_module(ModuleId(k)) } {
                    Err(Error::ModuleLoading { .. }) => loading += 1,
                    Err(Error::UnknownModule { .. }) => {}
                    other => return Err(format!("unload of module {k} during init: {other:?}")),
                }
            }
            Ok((loading, listed))
        })
        .join()
        .unwrap_or_else(|_| Err("unloader thread panicked".into()));
        Ok(())
    };
    let spec = ModuleSpec {
        name: "gen-loading",
        sections: m.sections,
    };
    // SAFETY: the module stays mapped until unloaded below.
    let id = lib(unsafe { A::load_module(spec, Some(&mut init)) }, "load")?;
    let (loading, listed) = seen?;
    ensure!(
        loading == 1,
        "{loading} module(s) refused as loading during init (expected 1)"
    );
    ensure!(listed.is_empty(), "modules() listed {listed:?} during init");
    ensure!(
        A::registry().modules() == vec![id],
        "not listed once loaded"
    );
    // SAFETY: still mapped.
    lib(unsafe { A::registry().unload_module(id) }, "unload")?;
    Ok(Outcome::Pass(
        "during init: not listed, unload refused (ModuleLoading); listed and unloaded after".into(),
    ))
}

/// `free_init()` before `init()`: `init()` skips the released init sites
/// and patches the rest.
pub(crate) fn free_init_before_init<A: Adapter>() -> ScenarioResult {
    let (lo, hi) = lib(A::free_init(), "free_init before init")?;
    ensure!(hi > lo, "nothing released");
    lib(A::init_with(InitPolicy::Track), "init after free_init")?;
    let s = A::stats();
    ensure!(
        s.init > 0 && s.init_released == s.init,
        "init sites not counted as released: {s:?}"
    );
    lib(A::add().update(add2), "update")?;
    ensure!(
        A::call_add(2) == 4 && A::call_add_2(2) == 4,
        "program sites after update"
    );
    super::expect_patched::<A, _>(A::add(), Some(addr_of(add2)))?;
    let perms = maps_perms(lo, hi)?;
    ensure!(
        perms.iter().all(|p| p.starts_with("---")),
        "released pages accessible: {perms:?}"
    );
    Ok(Outcome::Pass(format!(
        "init() after free_init: {} released init site(s) skipped, {} sites patched; updates work",
        s.init_released,
        s.sites - s.init_released
    )))
}

/// A module whose init region ends on a partial page: only sites in the
/// released whole pages are init sites; those on the partial page stay
/// executable and keep following updates.
pub(crate) fn init_partial_page<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    // Enough init functions (14 to 33 bytes each) to spill past one page.
    let mut m = make::<A>(&[A::add().raw()], 1, 400, false, None)?;
    let inits: Vec<_> = m.funcs.iter().filter(|f| f.init).copied().collect();
    let start = m.sections.init.0;
    let last = inits.iter().map(|f| f.site).max().ok_or("no init sites")?;
    // End the region right after the last init function (not page-aligned).
    let end = last + 16;
    ensure!(
        end - start > 4096 && !end.is_multiple_of(4096),
        "init block {start:#x}..{end:#x} does not end on a partial page"
    );
    m.sections.init = (start, end);
    let page_end = end & !4095;
    // Functions wholly on the partial page (callable after the release),
    // and sites whose slot touches a released page (the init sites).
    let on_partial: Vec<_> = inits.iter().filter(|f| f.addr >= page_end).collect();
    let in_whole = inits.iter().filter(|f| f.site < page_end).count();
    ensure!(!on_partial.is_empty(), "no init site on the partial page");
    let spec = ModuleSpec {
        name: "gen-partial",
        sections: m.sections,
    };
    // SAFETY: the module stays mapped until unloaded below; nothing runs
    // in its released pages after init.
    let id = lib(
        unsafe { A::load_module(spec, Some(&mut || Ok(()))) },
        "load",
    )?;
    let ms = lib(A::registry().module_stats(id), "module_stats")?;
    let (lo, hi) = ms.init_pages.ok_or("init not released")?;
    ensure!(
        (lo, hi) == (start, page_end),
        "released {lo:#x}..{hi:#x}, expected the whole pages {start:#x}..{page_end:#x}"
    );
    ensure!(
        maps_perms(lo, hi)?.iter().all(|p| p.starts_with("---")),
        "released pages still accessible"
    );
    ensure!(
        ms.init == in_whole,
        "{} init sites counted, {in_whole} lie in the released pages",
        ms.init
    );
    for target in [add2 as extern "C" fn(u64) -> u64, add3] {
        lib(A::add().update(target), "update")?;
        let want = target(2);
        for f in &on_partial {
            // SAFETY: on the partial page, which stays mapped and
            // executable.
            let got = unsafe { f.call(2) };
            ensure!(
                got == want,
                "init site {:#x} on the partial page gave {got}, expected {want}: it missed an update",
                f.site
            );
        }
    }
    // SAFETY: still mapped.
    lib(unsafe { A::registry().unload_module(id) }, "unload")?;
    lib(A::add().update(add1), "restore")?;
    Ok(Outcome::Pass(format!(
        "{in_whole} init sites in {} released page(s) skipped; {} on the trailing partial page followed 2 updates",
        (hi - lo) / 4096,
        on_partial.len()
    )))
}

/// The first installation of the `SIGTRAP` handler fails: the error says
/// so, and the next attempt installs it (no `TrapHandlerReplaced` later).
pub(crate) fn sigaction_retry<A: Adapter>() -> ScenarioResult {
    if !A::caps().writes_code() {
        return Ok(Outcome::Skip("writes no code: no trap handler".into()));
    }
    text::inject_fault_for_tests(Some(Fault::Sigaction));
    let first = A::init_with(InitPolicy::Track);
    text::inject_fault_for_tests(None);
    match &first {
        Err(Error::Syscall { op, .. }) if op.contains("sigaction") => {}
        other => return Err(format!("init with sigaction failing: {other:?}")),
    }
    lib(A::init_with(InitPolicy::Track), "init after the fault")?;
    let caller = SpinCaller::start::<A>();
    let mut updates = 0;
    while caller.calls().load(std::sync::atomic::Ordering::Relaxed) < 200_000 && updates < 20_000 {
        let f = if updates % 2 == 0 { add2 } else { add1 };
        lib(A::spin().update(f), "update after the retry")?;
        updates += 1;
    }
    let (calls, wrong) = caller.finish()?;
    ensure!(wrong == 0, "{wrong} wrong results");
    Ok(Outcome::Pass(format!(
        "'{}', then installed on retry: {updates} updates under {calls} calls, 0 wrong",
        first.err().map(|e| e.to_string()).unwrap_or_default()
    )))
}
