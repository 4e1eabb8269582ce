//! Shared-object scenarios: cdylibs built from this workspace's list
//! ([`super::cdylib`]), loaded with `load_shared_object`, their sites
//! followed through updates, their init text released, their refusals.

use super::module_kit::describe_sites;
use super::*;

/// Checks that a loaded module's init text was released: its whole pages
/// (there must be some when `pages`, none otherwise) are `---p` in
/// `/proc/self/maps`. Says which.
fn released_init_pages(ms: &static_call_core::ModuleStats, pages: bool) -> Result<String, String> {
    let (lo, hi) = ms.init_pages.ok_or("init text not released")?;
    if !pages {
        ensure!(
            hi == lo,
            "init pages {lo:#x}..{hi:#x} released, none expected"
        );
        return Ok("no init text to release".into());
    }
    ensure!(
        hi > lo,
        "the init text holds no whole page: {lo:#x}..{hi:#x}"
    );
    let perms = crate::scenarios::init::maps_perms(lo, hi)?;
    ensure!(
        !perms.is_empty() && perms.iter().all(|p| p.starts_with("---")),
        "released init pages {lo:#x}..{hi:#x} are {perms:?}"
    );
    Ok(format!("init page(s) {lo:#x}..{hi:#x} ---p"))
}

/// The README's minimal plugin (`module!(init = …)`, no `init_text!`),
/// built in debug and in release, loads, follows updates and unloads.
pub(crate) fn shared_object_minimal<A: Adapter>() -> ScenarioResult {
    if !A::LISTED {
        return Ok(Outcome::Skip(format!(
            "needs a copy built from the workspace's implementations list, and {} is not on it",
            A::NAME
        )));
    }
    let mut notes = Vec::new();
    for release in [false, true] {
        let so = build_cdylib(
            "static-call-test-minimal",
            "libstatic_call_test_minimal.so",
            release,
        )?;
        let r = spawn_cell(
            A::NAME,
            "shared_object_minimal_child",
            &[],
            &[("STATIC_CALL_TEST_SO", so.to_str().unwrap_or(""))],
            Duration::from_secs(60),
        );
        let profile = if release { "release" } else { "debug" };
        match r.result().map_err(|e| format!("{profile} build: {e}"))? {
            Outcome::Pass(m) => notes.push(format!("{profile}: {m}")),
            other => return Ok(other),
        }
    }
    Ok(Outcome::Pass(notes.join("; ")))
}

pub(crate) fn shared_object_minimal_child<A: Adapter>() -> ScenarioResult {
    let path = std::env::var("STATIC_CALL_TEST_SO").map_err(|_| "STATIC_CALL_TEST_SO unset")?;
    lib(A::init_with(InitPolicy::Track), "init")?;
    // SAFETY: our own test module, built from this workspace.
    let so = lib(
        unsafe { A::load_shared_object(&path) },
        "load_shared_object",
    )?;
    let sym = std::ffi::CString::new(format!("minimal_{}_entry", A::SYMBOL_PREFIX))
        .map_err(|e| e.to_string())?;
    let p = so
        .symbol(&sym)
        .ok_or_else(|| format!("symbol {sym:?} missing"))?;
    // SAFETY: the plugin defines it as extern "C" fn(u64) -> u64.
    let entry: extern "C" fn(u64) -> u64 = unsafe { std::mem::transmute(p) };
    ensure!(entry(2) == 3, "plugin call before update: {}", entry(2));
    lib(A::add().update(add2), "update")?;
    ensure!(entry(2) == 4, "plugin call after update: {}", entry(2));
    let ms = lib(A::registry().module_stats(so.id()), "module_stats")?;
    ensure!(ms.sites == 1, "module stats: {ms:?}");
    // module!(init = f) alone puts nothing in init text.
    let released = released_init_pages(&ms, false)?;
    // SAFETY: nothing of the module is used after close.
    lib(unsafe { so.close() }, "close")?;
    lib(A::add().update(add1), "update after close")?;
    Ok(Outcome::Pass(format!(
        "loaded, 1 site followed an update, {released}, closed ({} fallback, {} direct)",
        ms.fallback, ms.direct
    )))
}

pub(crate) fn shared_object<A: Adapter>() -> ScenarioResult {
    if !A::LISTED {
        return Ok(Outcome::Skip(format!(
            "needs a copy built from the workspace's implementations list, and {} is not on it",
            A::NAME
        )));
    }
    let so = build_shared_object()?;
    spawn_cell(
        A::NAME,
        "shared_object_child",
        &[],
        &[("STATIC_CALL_TEST_SO", so.to_str().unwrap_or(""))],
        Duration::from_secs(60),
    )
    .result()
}

pub(crate) fn so_fn(
    so: &static_call_core::SharedObject,
    prefix: &str,
    name: &str,
) -> Result<extern "C" fn(u64) -> u64, String> {
    let sym = std::ffi::CString::new(format!("so_{prefix}_{name}")).map_err(|e| e.to_string())?;
    let p = so
        .symbol(&sym)
        .ok_or_else(|| format!("symbol {sym:?} missing"))?;
    // SAFETY: the module defines these as extern "C" fn(u64) -> u64 (or
    // fn() -> u64, which ignores the argument).
    Ok(unsafe { std::mem::transmute::<*const std::ffi::c_void, extern "C" fn(u64) -> u64>(p) })
}

/// Whether the object at `path` is mapped in this process now (a
/// `RTLD_NOLOAD` open finds it; the probe's reference is dropped again).
fn is_mapped(path: &str) -> bool {
    // SAFETY: RTLD_NOLOAD only finds an object already loaded: nothing is
    // mapped or initialised; the extra reference is closed on drop.
    unsafe { libloading::os::unix::Library::open(Some(path), libc::RTLD_NOLOAD | libc::RTLD_LAZY) }
        .is_ok()
}

/// `SharedObject::open`'s refusals: a missing file, a path with a NUL byte
/// and an object without the descriptor each give `Error::SharedObject`
/// naming the path (and the descriptor), with nothing registered and the
/// object closed again.
fn shared_object_refusals<A: Adapter>(path: &str) -> Result<String, String> {
    let before = A::stats();
    let missing = format!("{path}.missing");
    let no_descriptor = c"static_call_test_no_such_descriptor";
    let mut seen = Vec::new();
    for (p, descriptor, want) in [
        (missing.as_str(), c"unused", "No such file"),
        ("bad\0path", c"unused", "NUL byte"),
        (path, no_descriptor, "static_call_test_no_such_descriptor"),
    ] {
        ensure!(!is_mapped(path), "{path} is mapped before opening {p:?}");
        // SAFETY: our own test module (or no object at all); its
        // initialisers only resolve what they forward to.
        let r = unsafe { static_call_core::SharedObject::open(A::registry(), p, descriptor) };
        match r {
            Err(Error::SharedObject { path: got, message }) => {
                ensure!(
                    got == p && message.contains(want),
                    "opening {p:?}: SharedObject error names {got:?}, says {message:?} (wanted {want:?})"
                );
                seen.push(message);
            }
            Err(e) => return Err(format!("opening {p:?}: wrong error: {e}")),
            Ok(_) => return Err(format!("opening {p:?} with {descriptor:?} succeeded")),
        }
        ensure!(
            !is_mapped(path),
            "{path} is still mapped after the refused open of {p:?}"
        );
        let now = A::stats();
        ensure!(
            now.modules == before.modules && now.groups == before.groups,
            "the refused open of {p:?} left modules/groups {}/{} (were {}/{})",
            now.modules,
            now.groups,
            before.modules,
            before.groups
        );
    }
    Ok(seen.join("; "))
}

pub(crate) fn shared_object_child<A: Adapter>() -> ScenarioResult {
    let path = std::env::var("STATIC_CALL_TEST_SO").map_err(|_| "STATIC_CALL_TEST_SO unset")?;
    lib(A::init_with(InitPolicy::Track), "init")?;
    let refusals = shared_object_refusals::<A>(&path)?;
    let before = A::stats();
    // SAFETY: our own test module, built from this workspace.
    let so = lib(
        unsafe { A::load_shared_object(&path) },
        "load_shared_object",
    )?;
    let p = A::SYMBOL_PREFIX;
    let (call, call2, init_result) = (
        so_fn(&so, p, "call_add")?,
        so_fn(&so, p, "call_add_2")?,
        so_fn(&so, p, "init_result")?,
    );
    ensure!(
        init_result(0) == 3,
        "the module's init site gave {} during init",
        init_result(0)
    );
    ensure!(call(2) == 3 && call2(2) == 3, "module calls before update");
    lib(A::add().update(add2), "update")?;
    ensure!(
        call(2) == 4 && call2(2) == 4,
        "module calls after update: {} {}",
        call(2),
        call2(2)
    );
    ensure!(A::call_add(2) == 4, "program call after update");
    let ms = lib(A::registry().module_stats(so.id()), "module_stats")?;
    ensure!(
        ms.sites == 3 && ms.init == 1 && ms.init_pages.is_some(),
        "module stats: {ms:?}"
    );
    released_init_pages(&ms, true)?;
    let dist = (call as *const () as usize).abs_diff(A::call_add as *const () as usize);
    // SAFETY: nothing of the module is used after close.
    lib(unsafe { so.close() }, "close")?;
    ensure!(!is_mapped(&path), "{path} is still mapped after close");
    lib(A::add().update(add3), "update after close")?;
    ensure!(A::call_add(2) == 5, "program call after close");
    ensure!(A::stats().groups == before.groups, "groups leaked");
    // Reload, and a load whose init fails.
    // SAFETY: as above.
    let so = lib(unsafe { A::load_shared_object(&path) }, "reload")?;
    let call = so_fn(&so, p, "call_add")?;
    ensure!(call(2) == 5, "reloaded module call");
    // SAFETY: as above.
    lib(unsafe { so.close() }, "close")?;
    // SAFETY: single-threaded child process.
    unsafe { std::env::set_var("STATIC_CALL_TEST_MODULE_INIT_FAIL", "1") };
    // SAFETY: as above.
    let fail = match unsafe { A::load_shared_object(&path) } {
        Err(e @ Error::ModuleInitFailed { .. }) => e.to_string(),
        Err(e) => return Err(format!("wrong error: {e}")),
        Ok(_) => return Err("load succeeded although init failed".into()),
    };
    ensure!(
        A::stats().modules == before.modules,
        "failed load left a module"
    );
    ensure!(
        A::stats().groups == before.groups,
        "groups leaked after failed init"
    );
    lib(A::add().update(add1), "update after failed load")?;
    ensure!(A::call_add(2) == 3, "program call");
    Ok(Outcome::Pass(format!(
        "dlopen'd object {:.1} TiB away: {} ({} in init text, released), {} registry bytes; unload, reload, and '{fail}'; refused (closed, nothing registered): {refusals}",
        dist as f64 / (1u64 << 40) as f64,
        describe_sites(&ms),
        ms.init,
        ms.registry_bytes
    )))
}
