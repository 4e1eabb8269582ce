//! Edges of the API and of the engine (issue 19): the README's plugin
//! built in both profiles, and the corner cases of the registry, the
//! module life and the trap handler.

use std::time::Duration;

use static_call_core::{InitPolicy, StaticCall};

use super::lib;
use super::modules::build_cdylib;
use crate::runner::{Outcome, ScenarioResult, spawn_cell};
use crate::targets::{add1, add2, add3};
use crate::{Adapter, AddFn};

// ------------------------------------------------------------ README plugin

// The keys the README's plugin declares, exported under the symbol names
// it links to (`build.rs` exports `my_add*` dynamically): `my_add` for the
// inline-patch copy (the README's text), `my_add_<impl>` for the others.
static_call_inline_patch::define_static_call!(
    #[unsafe(export_name = "my_add")]
    static MY_ADD_INLINE_PATCH: extern "C" fn(u64) -> u64 = add1;
);
static_call_trampoline::define_static_call!(
    #[unsafe(export_name = "my_add_trampoline")]
    static MY_ADD_TRAMPOLINE: extern "C" fn(u64) -> u64 = add1;
);
static_call_indirect::define_static_call!(
    #[unsafe(export_name = "my_add_indirect")]
    static MY_ADD_INDIRECT: extern "C" fn(u64) -> u64 = add1;
);

/// This implementation's README key and the plugin's entry point for it.
fn readme_key<A: Adapter>() -> Result<(&'static StaticCall<AddFn>, String), String> {
    Ok(match A::SYMBOL_PREFIX {
        "inline_patch" => (&MY_ADD_INLINE_PATCH, "plugin_entry".into()),
        "trampoline" => (&MY_ADD_TRAMPOLINE, "plugin_entry_trampoline".into()),
        "indirect" => (&MY_ADD_INDIRECT, "plugin_entry_indirect".into()),
        other => return Err(format!("no README key for implementation {other}")),
    })
}

/// The README's plugin block: the text between the fence line "```rs" and
/// the closing fence of the "Modules" section's block that starts with
/// the plugin's own first line.
fn readme_plugin_block(readme: &str) -> Option<&str> {
    let start = readme.find("```rs\n// src/lib.rs of the plugin crate")? + "```rs\n".len();
    let len = readme[start..].find("\n```\n")? + 1;
    Some(&readme[start..start + len])
}

/// The README's plugin (`init_text!` and `module!` in one module; the
/// crate `conformance/readme-plugin`, whose source is the README's text),
/// built in debug and in release as one codegen unit, loads (its init
/// function calls its init-text site), follows an update, releases its
/// init page and closes.
pub(crate) fn readme_plugin<A: Adapter>() -> ScenarioResult {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../README.md"))
        .map_err(|e| format!("README.md: {e}"))?;
    let source = std::fs::read_to_string(root.join("readme-plugin/src/plugin.rs"))
        .map_err(|e| format!("readme-plugin/src/plugin.rs: {e}"))?;
    let block = readme_plugin_block(&readme)
        .ok_or("README.md has no ```rs block starting \"// src/lib.rs of the plugin crate\"")?;
    ensure!(
        block == source,
        "the README's plugin and conformance/readme-plugin/src/plugin.rs differ:\n--- README\n{block}--- plugin.rs\n{source}"
    );
    let mut notes = Vec::new();
    for release in [false, true] {
        let so = build_cdylib(
            "static-call-readme-plugin",
            "libstatic_call_readme_plugin.so",
            release,
        )?;
        let profile = if release { "release" } else { "debug" };
        let r = spawn_cell(
            A::NAME,
            "readme_plugin_child",
            &[],
            &[("STATIC_CALL_TEST_SO", so.to_str().unwrap_or(""))],
            Duration::from_secs(60),
        );
        match r.result().map_err(|e| format!("{profile} build: {e}"))? {
            Outcome::Pass(m) => notes.push(format!("{profile}: {m}")),
            other => return Ok(other),
        }
    }
    Ok(Outcome::Pass(format!(
        "README text = plugin.rs; {}",
        notes.join("; ")
    )))
}

pub(crate) fn readme_plugin_child<A: Adapter>() -> ScenarioResult {
    let path = std::env::var("STATIC_CALL_TEST_SO").map_err(|_| "STATIC_CALL_TEST_SO unset")?;
    let (key, entry_name) = readme_key::<A>()?;
    lib(A::init_with(InitPolicy::Track), "init")?;
    // SAFETY: the README's plugin, built from this workspace.
    let so = lib(
        unsafe { A::load_shared_object(&path) },
        "load_shared_object",
    )?;
    let sym = std::ffi::CString::new(entry_name).map_err(|e| e.to_string())?;
    let p = so
        .symbol(&sym)
        .ok_or_else(|| format!("symbol {sym:?} missing"))?;
    // SAFETY: the plugin defines it as extern "C" fn(u64) -> u64.
    let entry: extern "C" fn(u64) -> u64 = unsafe { std::mem::transmute(p) };
    ensure!(entry(2) == 3, "plugin call before update: {}", entry(2));
    lib(key.update(add2), "update")?;
    ensure!(entry(2) == 4, "plugin call after update: {}", entry(2));
    let ms = lib(A::registry().module_stats(so.id()), "module_stats")?;
    ensure!(
        ms.sites == 2 && ms.init == 1,
        "module stats: {} sites, {} in init text (expected 2 and 1): {ms:?}",
        ms.sites,
        ms.init
    );
    let (lo, hi) = ms.init_pages.ok_or("init text not released")?;
    ensure!(hi > lo, "no whole init page released: {lo:#x}..{hi:#x}");
    let perms = super::init::maps_perms(lo, hi)?;
    ensure!(
        !perms.is_empty() && perms.iter().all(|p| p.starts_with("---")),
        "released init pages {lo:#x}..{hi:#x} are {perms:?}"
    );
    // SAFETY: nothing of the plugin is used after close.
    lib(unsafe { so.close() }, "close")?;
    lib(key.update(add1), "update after close")?;
    Ok(Outcome::Pass(format!(
        "loaded (init ran its init-text site), 2 sites followed an update, init page {lo:#x}..{hi:#x} ---p, closed"
    )))
}

// ------------------------------------------------------- module init panics

/// A module whose init function panics leaves no trace, as one whose init
/// fails: the panic reaches the caller, the module is not left `Loading`
/// (no key links it, its sites hold their stub call again, the registry's
/// statistics are as before) and the same table loads and unloads again.
pub(crate) fn module_init_panic<A: Adapter>() -> ScenarioResult {
    use super::modules::{load, make, snapshot, unload};
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update")?;
    let keys = vec![A::add().raw(), A::spin().raw()];
    let m = make::<A>(&keys, 4, 2, false, None)?;
    let before = A::stats();
    let modules_before = A::registry().modules();
    let addrs: Vec<usize> = m.funcs.iter().map(|f| f.site).collect();
    let bytes = snapshot(&addrs);
    let mut ran = false;
    let mut init = || -> Result<(), String> {
        ran = true;
        panic!("module init panics (scenario module_init_panic)");
    };
    let spec = static_call_core::ModuleSpec {
        name: "gen-init-panics",
        sections: m.sections,
    };
    // The panic's message is expected: keep it out of the cell's stderr.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the module stays mapped for the whole scenario.
        unsafe { A::load_module(spec, Some(&mut init)) }
    }));
    std::panic::set_hook(hook);
    ensure!(ran, "the init function did not run");
    match r {
        Err(_) => {}
        Ok(Ok(id)) => return Err(format!("load returned {id:?} although init panicked")),
        Ok(Err(e)) => return Err(format!("load returned an error instead of the panic: {e}")),
    }
    ensure!(
        A::registry().modules() == modules_before,
        "modules {:?} -> {:?}: the module stayed registered",
        modules_before,
        A::registry().modules()
    );
    ensure!(
        A::stats() == before,
        "registry changed: {before:?} -> {:?}",
        A::stats()
    );
    ensure!(
        snapshot(&addrs) == bytes,
        "sites stayed patched after the panicking init"
    );
    lib(A::add().update(add3), "update after the panic")?;
    ensure!(
        snapshot(&addrs) == bytes,
        "a later update wrote the panicked module's sites"
    );
    let again = load::<A>(&m, "gen-init-panics-again")?;
    unload::<A>(again)?;
    lib(A::add().update(add1), "update")?;
    Ok(Outcome::Pass(
        "the panic reached the caller; module not listed, stats as before, sites back to their stub call, the table loads and unloads again".into(),
    ))
}
