//! Module scenarios over generated modules (iced-x86, built and loaded by
//! [`super::module_kit`]), over every implementation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use static_call_core::{Error, InitPolicy, ModuleId, Place, RawKey};

use crate::decode::Insn;
use crate::genmod::GenModule;
use crate::runner::{Outcome, ScenarioResult};
use crate::scenarios::{addr_of, expect_at, insn, lib};
use crate::targets::{add1, add2, add3};
use crate::{Adapter, AddFn};

use super::module_kit::{baseline, check_module, describe_sites, program_code, spec};
pub(crate) use super::module_kit::{load, make, unload};

// ---------------------------------------------------------------- scenarios

/// A module loaded after an update calls the current target; updates while
/// it is loaded reach it.
pub(crate) fn module_load_after_update<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update")?;
    let m = make::<A>(&[A::add().raw()], 4, 0, false, None)?;
    let id = load::<A>(&m, "gen-near")?;
    check_module::<A>(&m, 0, addr_of(add2), 4, false)?;
    lib(A::add().update(add3), "update while loaded")?;
    check_module::<A>(&m, 0, addr_of(add3), 5, false)?;
    ensure!(A::call_add(2) == 5, "main program site wrong");
    let ms = lib(A::registry().module_stats(id), "module_stats")?;
    unload::<A>(id)?;
    Ok(Outcome::Pass(describe_sites(&ms)))
}

/// A module loaded before `init()` keeps its calls until `init()`.
pub(crate) fn module_before_init<A: Adapter>() -> ScenarioResult {
    let m = make::<A>(&[A::add().raw()], 3, 0, false, None)?;
    let id = load::<A>(&m, "gen-pre-init")?;
    check_module::<A>(&m, 0, addr_of(add1), 3, false)?;
    lib(A::add().update(add2), "update before init")?;
    check_module::<A>(&m, 0, addr_of(add2), 4, false)?; // sites still call the stub
    lib(A::init_with(InitPolicy::Track), "init")?;
    check_module::<A>(&m, 0, addr_of(add2), 4, false)?; // inline-patch: now direct
    unload::<A>(id)?;
    Ok(Outcome::Pass(
        "sites unpatched before init; init() patched them to the latest target".into(),
    ))
}

/// After unload, updates never touch the module's memory (made
/// inaccessible so a stray access would crash).
pub(crate) fn module_unload_then_update<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let before = baseline::<A>();
    let main_sites = A::registry().sites_of(A::add().raw()).len();
    let m = make::<A>(&[A::add().raw(), A::spin().raw()], 8, 0, false, None)?;
    let id = load::<A>(&m, "gen")?;
    ensure!(
        A::stats().modules == before.modules + 1,
        "module not counted"
    );
    unload::<A>(id)?;
    // SAFETY: unloaded; nobody may run or read it any more.
    lib(unsafe { m.code.make_inaccessible() }, "protect code")?;
    m.data.make_inaccessible();
    for f in [add2, add3, add1, add2] {
        lib(A::add().update(f), "update after unload")?;
        lib(A::spin().update(f), "update after unload")?;
    }
    ensure!(A::call_add(2) == 4, "main site wrong");
    let after = A::stats();
    ensure!(after.modules == before.modules, "module still counted");
    ensure!(
        after.groups == before.groups,
        "groups leaked: {} -> {}",
        before.groups,
        after.groups
    );
    ensure!(
        A::registry().sites_of(A::add().raw()).len() == main_sites,
        "key still lists module sites"
    );
    Ok(Outcome::Pass(
        "16 sites unloaded; memory made PROT_NONE; 8 updates ran without touching it".into(),
    ))
}

/// The same module loaded and unloaded many times.
pub(crate) fn module_reload<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let m = make::<A>(&[A::add().raw()], 16, 0, false, None)?;
    let before = baseline::<A>();
    let cycles = 200 * crate::runner::soak_factor();
    let targets = [(add1 as AddFn, 3), (add2, 4), (add3, 5)];
    for i in 0..cycles {
        let (f, want) = targets[(i % 3) as usize];
        lib(A::add().update(f), "update")?;
        let id = load::<A>(&m, "gen-reload")?;
        check_module::<A>(&m, 0, addr_of(f), want, false)?;
        unload::<A>(id)?;
        // Unloaded sites are back to their stub call.
        for fun in &m.funcs {
            expect_at(
                fun.site,
                &crate::scenarios::home_insn::<A>(m.homes[0]),
                "unloaded site",
            )?;
        }
    }
    let after = A::stats();
    ensure!(
        after.groups == before.groups && after.registry_bytes == before.registry_bytes,
        "registry grew over reloads: {before:?} -> {after:?}"
    );
    Ok(Outcome::Pass(format!(
        "{cycles} load/unload cycles of 16 sites; registry {} bytes before and after",
        after.registry_bytes
    )))
}

/// Module init regions: patched while the module loads (also by an update
/// from another thread during its init), released after, skipped then.
pub(crate) fn module_init_region<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let m = make::<A>(&[A::add().raw()], 2, 3, false, None)?;
    let init_fns: Vec<_> = m.funcs.iter().filter(|f| f.init).copied().collect();
    ensure!(init_fns.len() == 3, "expected 3 init functions");
    let mut seen = Vec::new();
    let mut init = || -> Result<(), String> {
        // SAFETY: the init region is mapped while the init function runs.
        seen.push(
            init_fns
                .iter()
                .map(|f| unsafe { f.call(2) })
                .collect::<Vec<_>>(),
        );
        // An update from another thread while the module initialises.
        std::thread::spawn(|| A::add().update(add2))
            .join()
            .map_err(|_| "updater panicked".to_string())?
            .map_err(|e| e.to_string())?;
        // SAFETY: as above.
        seen.push(
            init_fns
                .iter()
                .map(|f| unsafe { f.call(2) })
                .collect::<Vec<_>>(),
        );
        if A::caps().patches_sites {
            for f in &init_fns {
                if insn(f.site) != Insn::Call(addr_of(add2)) {
                    return Err(format!("init site {:#x} missed the update", f.site));
                }
            }
        }
        Ok(())
    };
    // SAFETY: the module outlives its registration; nothing runs the init
    // region after the init function returns.
    let id = lib(
        unsafe { A::load_module(spec(&m, "gen-init"), Some(&mut init)) },
        "load",
    )?;
    ensure!(
        seen == vec![vec![3; 3], vec![4; 3]],
        "init sites gave {seen:?}"
    );
    let (lo, hi) = m.sections.init;
    let perms = crate::scenarios::maps_perms(lo, hi)?;
    ensure!(
        !perms.is_empty() && perms.iter().all(|p| p.starts_with("---")),
        "module init region still accessible: {perms:?}"
    );
    lib(A::add().update(add3), "update after release")?;
    check_module::<A>(&m, 0, addr_of(add3), 5, false)?;
    let ms = lib(A::registry().module_stats(id), "module_stats")?;
    ensure!(ms.init == 3 && ms.init_pages.is_some(), "stats: {ms:?}");
    unload::<A>(id)?;
    Ok(Outcome::Pass(
        "3 init sites gave 3, then 4 after another thread's update during init; region released (---p); later updates skip it"
            .into(),
    ))
}

/// The first five bytes at each address (sites, trampolines).
pub(crate) fn snapshot(addrs: &[usize]) -> Vec<Vec<u8>> {
    addrs
        .iter()
        // SAFETY: live code.
        .map(|&a| unsafe { crate::decode::read_code(a, 5) })
        .collect()
}

/// A module whose last site is bad (after several good keys): refused,
/// no trace; everything works afterwards.
pub(crate) fn module_load_failure<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update")?;
    let keys: Vec<&'static RawKey> = A::many().iter().take(3).map(|k| k.raw()).collect();
    let bad = 3 * 4 - 1;
    let m = make::<A>(&keys, 4, 0, false, Some(bad))?;
    let before = A::stats();
    let key_sites: Vec<usize> = keys
        .iter()
        .map(|k| A::registry().sites_of(k).len())
        .collect();
    let addrs: Vec<usize> = m.funcs.iter().map(|f| f.site).collect();
    let bytes = snapshot(&addrs);
    // SAFETY: the module is mapped for the whole scenario.
    let r = unsafe { A::load_module(spec(&m, "gen-bad"), None) };
    let bad_site = m.funcs[bad].site;
    match r {
        Err(Error::UnexpectedBytes {
            place: Place::Site,
            addr,
            ..
        }) if addr == bad_site => {}
        Err(e) => return Err(format!("wrong error: {e}")),
        Ok(_) => return Err("a module with a corrupt site was loaded".into()),
    }
    ensure!(snapshot(&addrs) == bytes, "the failed load wrote code");
    ensure!(
        A::stats() == before,
        "registry changed: {before:?} -> {:?}",
        A::stats()
    );
    for (k, n) in keys.iter().zip(&key_sites) {
        ensure!(
            A::registry().sites_of(k).len() == *n,
            "a key lists the failed module"
        );
    }
    // Everything still works: updates, and another module's load and unload.
    for k in A::many().iter().take(3) {
        lib(k.update(add3), "update after failed load")?;
    }
    let good = make::<A>(&keys, 4, 0, false, None)?;
    let id = load::<A>(&good, "gen-good")?;
    check_module::<A>(&good, 1, addr_of(add3), 5, false)?;
    unload::<A>(id)?;
    ensure!(A::stats().groups == before.groups, "groups leaked");
    Ok(Outcome::Pass(format!(
        "site {bad_site:#x} (12th of 12, 3 keys) refused; no key lists the module, no byte changed; later updates and loads work"
    )))
}

/// A module whose init function fails: unloaded again, no trace (the
/// kernel's CVE-2024-50002 case).
pub(crate) fn module_init_failure<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update")?;
    let keys: Vec<&'static RawKey> = vec![A::add().raw(), A::spin().raw()];
    let m = make::<A>(&keys, 4, 2, false, None)?;
    let before = A::stats();
    let addrs: Vec<usize> = m.funcs.iter().map(|f| f.site).collect();
    let bytes = snapshot(&addrs);
    let mut patched_during_init = false;
    let mut init = || -> Result<(), String> {
        patched_during_init = m.funcs.iter().all(|f| {
            // SAFETY: mapped during init.
            unsafe { f.call(2) == if f.key == 0 { 4 } else { 3 } }
        });
        Err("module init refuses".into())
    };
    // SAFETY: mapped for the whole scenario.
    let r = unsafe { A::load_module(spec(&m, "gen-init-fails"), Some(&mut init)) };
    match r {
        Err(e @ Error::ModuleInitFailed { .. }) => {
            ensure!(
                patched_during_init,
                "sites were not live during module init"
            );
            ensure!(
                snapshot(&addrs) == bytes,
                "sites stayed patched after the failed init"
            );
            ensure!(
                A::stats() == before,
                "registry changed: {before:?} -> {:?}",
                A::stats()
            );
            for f in [add3, add1] {
                lib(A::add().update(f), "update after failed init")?;
            }
            ensure!(
                snapshot(&addrs) == bytes,
                "a later update touched the failed module"
            );
            // Unload of the failed module's (now unknown) handle is refused.
            let again = load::<A>(&m, "gen-retry")?;
            unload::<A>(again)?;
            Ok(Outcome::Pass(format!(
                "{e}; sites back to their stub call, registry as before"
            )))
        }
        Err(e) => Err(format!("wrong error: {e}")),
        Ok(_) => Err("load succeeded although init failed".into()),
    }
}

/// Bad input to the module API: typed errors, nothing changed.
pub(crate) fn module_errors<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let m = make::<A>(&[A::add().raw()], 2, 0, false, None)?;
    let id = load::<A>(&m, "gen")?;
    let before = A::stats();
    let m2 = make::<A>(&[A::add().raw()], 1, 0, false, None)?;
    // Every site involved: the program's, the loaded module's, the refused one's.
    let mut places = crate::scenarios::places_of::<A, _>(A::add());
    places.extend(m.funcs.iter().chain(&m2.funcs).map(|f| f.site));
    let bytes = snapshot(&places);
    let mut msgs = Vec::new();
    // Double load.
    // SAFETY: mapped.
    match unsafe { A::load_module(spec(&m, "gen-again"), None) } {
        Err(e @ Error::ModuleAlreadyLoaded { .. }) => msgs.push(e.to_string()),
        other => return Err(format!("double load: {other:?}")),
    }
    // Unknown handle.
    // SAFETY: unknown handle; nothing is touched.
    match unsafe { A::registry().unload_module(ModuleId(9_999)) } {
        Err(e @ Error::UnknownModule { .. }) => msgs.push(e.to_string()),
        other => return Err(format!("unknown unload: {other:?}")),
    }
    // A table whose key field (KEYREF) points at a slot holding the
    // address of something that is not a key: all zeros (a null registry
    // word), then arbitrary non-zero bytes. The slot lies in the table's
    // own page, so it is always within the entry's 32-bit reach.
    static NOT_A_KEY: [u64; 8] = [0; 8];
    static NOISE: [u64; 8] = [0x4141_4141_4141_4141; 8];
    let entry = m2.sections.sites.0;
    let slot = entry + 2048;
    for (what, fake) in [("zeros", NOT_A_KEY.as_ptr()), ("noise", NOISE.as_ptr())] {
        // SAFETY: the module's own writable table page: the entry's key
        // field, and a slot in the same page past the table.
        unsafe {
            std::ptr::write(slot as *mut usize, fake as usize);
            std::ptr::write((entry + 4) as *mut i32, (slot + 4 - entry) as i32);
        }
        // SAFETY: mapped.
        match unsafe { A::load_module(spec(&m2, "gen-not-a-key"), None) } {
            Err(e @ Error::CorruptEntry { .. }) => msgs.push(format!("{what}: {e}")),
            other => return Err(format!("table with a non-key ({what}): {other:?}")),
        }
    }
    ensure!(A::stats() == before, "registry changed");
    ensure!(
        snapshot(&places) == bytes,
        "a refused operation changed code"
    );
    lib(A::add().update(add2), "update")?;
    check_module::<A>(&m, 0, addr_of(add2), 4, false)?;
    unload::<A>(id)?;
    Ok(Outcome::Pass(format!(
        "{}; registry and {} sites byte-for-byte unchanged",
        msgs.join(" | "),
        places.len()
    )))
}

/// A module far beyond rel32 reach calls correctly and counts as fallback.
pub(crate) fn module_far<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let m = make::<A>(&[A::add().raw()], 6, 0, true, None)?;
    let dist = m.code.addr().abs_diff(program_code::<A>());
    ensure!(dist > 1 << 32, "module only {dist:#x} away");
    let id = load::<A>(&m, "gen-far")?;
    check_module::<A>(&m, 0, addr_of(add1), 3, false)?;
    lib(A::add().update(add2), "update")?;
    check_module::<A>(&m, 0, addr_of(add2), 4, false)?;
    let ms = lib(A::registry().module_stats(id), "module_stats")?;
    if A::caps().patches_sites {
        ensure!(ms.fallback == 6 && ms.direct == 0, "stats: {ms:?}");
    }
    unload::<A>(id)?;
    Ok(Outcome::Pass(format!(
        "{:.1} TiB away: {}",
        dist as f64 / (1u64 << 40) as f64,
        describe_sites(&ms)
    )))
}

/// Scale: a 10,000-site module, and 200 modules on one key.
pub(crate) fn module_many<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let keys: Vec<&'static RawKey> = A::many().iter().map(|k| k.raw()).collect();
    let big = make::<A>(&keys[..4], 2500, 0, false, None)?;
    let before = A::stats();
    let t = Instant::now();
    let id = load::<A>(&big, "gen-10k")?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let ms = lib(A::registry().module_stats(id), "module_stats")?;
    ensure!(ms.sites == 10_000, "sites: {}", ms.sites);
    let t = Instant::now();
    lib(A::many()[0].update(add2), "update")?;
    let update_ms = t.elapsed().as_secs_f64() * 1e3;
    check_module::<A>(&big, 0, addr_of(add2), 4, false)?;
    check_module::<A>(&big, 1, addr_of(add1), 3, false)?;
    let t = Instant::now();
    unload::<A>(id)?;
    let unload_ms = t.elapsed().as_secs_f64() * 1e3;

    let mods: Vec<GenModule> = (0..200)
        .map(|_| make::<A>(&keys[4..5], 5, 0, false, None))
        .collect::<Result<_, _>>()?;
    let ids: Vec<ModuleId> = mods
        .iter()
        .map(|m| load::<A>(m, "gen-small"))
        .collect::<Result<_, _>>()?;
    let with = A::stats();
    let t = Instant::now();
    lib(A::many()[4].update(add3), "update over 200 modules")?;
    let update200_ms = t.elapsed().as_secs_f64() * 1e3;
    for m in mods.iter().step_by(37) {
        check_module::<A>(m, 0, addr_of(add3), 5, false)?;
    }
    for id in ids {
        unload::<A>(id)?;
    }
    let after = A::stats();
    ensure!(after.groups == before.groups, "groups leaked");
    let per_group = (with.registry_bytes - before.registry_bytes) as f64 / 200.0;
    Ok(Outcome::Pass(format!(
        "10,000-site module: load {load_ms:.1} ms, update of 2,500 sites {update_ms:.1} ms, unload {unload_ms:.1} ms, module registry {} B for 4 keys, none per site ({:.3} B/site); \
         200 modules x 5 sites on one key: update {update200_ms:.1} ms, registry +{per_group:.0} B per (key, module)",
        ms.registry_bytes,
        ms.registry_bytes as f64 / 10_000.0
    )))
}

/// Loads, unloads and updates from different threads at once.
pub(crate) fn module_concurrent<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let before = A::stats();
    let keys: Vec<&'static RawKey> = vec![A::add().raw(), A::spin().raw()];
    let mods: Arc<Vec<GenModule>> = Arc::new(
        (0..4)
            .map(|_| make::<A>(&keys, 8, 0, false, None))
            .collect::<Result<_, _>>()?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    let mut hs = Vec::new();
    for t in 0..2 {
        let (mods, stop, cycles) = (mods.clone(), stop.clone(), cycles.clone());
        hs.push(std::thread::spawn(move || -> Result<(), String> {
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                let m = &mods[i % 2 + 2 * t];
                let id = load::<A>(m, "gen-concurrent")?;
                unload::<A>(id)?;
                cycles.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            Ok(())
        }));
    }
    {
        // Callers of every module (sites may be mid-update or unloaded:
        // either way they must return old-or-new).
        let (mods, stop, wrong) = (mods.clone(), stop.clone(), wrong.clone());
        hs.push(std::thread::spawn(move || -> Result<(), String> {
            while !stop.load(Ordering::Relaxed) {
                for m in mods.iter() {
                    for f in &m.funcs {
                        // SAFETY: modules stay mapped for the whole scenario.
                        let r = unsafe { f.call(2) };
                        if !(3..=5).contains(&r) {
                            wrong.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            Ok(())
        }));
    }
    let start = Instant::now();
    let dur = Duration::from_millis(1500 * crate::runner::soak_factor());
    let mut updates = 0u64;
    let seq = [add2 as AddFn, add3, add1];
    while start.elapsed() < dur {
        lib(A::add().update(seq[(updates % 3) as usize]), "update")?;
        lib(
            A::spin().update(seq[((updates + 1) % 3) as usize]),
            "update",
        )?;
        updates += 1;
    }
    stop.store(true, Ordering::SeqCst);
    for h in hs {
        h.join().map_err(|_| "thread panicked".to_string())??;
    }
    // A module loaded after all that ends with the newest target.
    let last = seq[((updates + 2) % 3) as usize];
    lib(A::add().update(last), "final update")?;
    let id = load::<A>(&mods[0], "gen-final")?;
    let want = last(2);
    check_module::<A>(&mods[0], 0, addr_of(last), want, false)?;
    unload::<A>(id)?;
    let after = A::stats();
    ensure!(
        wrong.load(Ordering::SeqCst) == 0,
        "{} wrong results",
        wrong.load(Ordering::SeqCst)
    );
    ensure!(
        after.groups == before.groups && after.modules == before.modules,
        "leak: {before:?} -> {after:?}"
    );
    Ok(Outcome::Pass(format!(
        "{} load/unload cycles on 2 threads, {} update pairs, a caller thread: 0 wrong, no deadlock, groups {} before and after",
        cycles.load(Ordering::SeqCst),
        updates,
        after.groups
    )))
}
