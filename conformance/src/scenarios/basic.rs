//! Basic behaviour: the kernel self-test, queries, conditional calls,
//! many keys and sites, signatures, far targets, keys across crates.

#[allow(unused_imports)]
use super::*;

/// The kernel's self-test: no update 2→3, `add2` 2→4, `add1` 2→3.
pub(crate) fn selftest<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let steps: [(Option<AddFn>, u64); 3] = [(None, 3), (Some(add2), 4), (Some(add1), 3)];
    for (i, (f, want)) in steps.into_iter().enumerate() {
        if let Some(f) = f {
            lib(A::add().update(f), "update")?;
        }
        let (r1, r2) = (A::call_add(2), A::call_add_2(2));
        ensure!(
            r1 == want && r2 == want,
            "step {i}: 2 gave {r1} and {r2}, expected {want}"
        );
        let cur = A::add().query().map(addr_of);
        expect_patched::<A, _>(A::add(), cur)?;
    }
    let n = 2000u32;
    let t = Instant::now();
    for i in 0..n {
        lib(
            A::add().update(if i % 2 == 0 { add2 } else { add1 }),
            "update",
        )?;
    }
    let per_update = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let s = A::stats();
    Ok(Outcome::Pass(format!(
        "3, 4, 3 at both sites; {per_update:.1} us per update ({} sites of ADD); binary has {} sites ({} direct, {} via trampoline, {} indirect, {} in init text) over {} keys",
        sites::<A, _>(A::add()).len(),
        s.sites,
        s.direct,
        s.via_trampoline,
        s.indirect,
        s.init,
        s.keys
    )))
}

/// Hidden: the self-test, printing each result (compared natively and
/// under valgrind).
pub(crate) fn selftest_print<A: Adapter>() -> ScenarioResult {
    println!(
        "under valgrind: {}",
        static_call_core::running_on_valgrind()
    );
    lib(A::init_with(InitPolicy::Track), "init")?;
    let steps: [(Option<AddFn>, u64); 3] = [(None, 3), (Some(add2), 4), (Some(add1), 3)];
    let mut ok = true;
    for (i, (f, want)) in steps.into_iter().enumerate() {
        if let Some(f) = f {
            lib(A::add().update(f), "update")?;
        }
        let r = A::call_add(2);
        println!("result step {i}: 2 -> {r}");
        ok &= r == want;
    }
    ensure!(ok, "wrong results");
    if A::caps().writes_code() {
        let e = lib(text::engine_info(), "engine_info")?;
        println!(
            "engine: writes via {}, cores synchronised by {}",
            if e.proc_mem {
                "/proc/self/mem"
            } else {
                "mprotect windows"
            },
            if e.membarrier {
                "membarrier"
            } else {
                "mprotect shootdowns"
            }
        );
    }
    Ok(Outcome::Pass(String::new()))
}

pub(crate) fn query<A: Adapter>() -> ScenarioResult {
    ensure!(
        A::add().query().map(addr_of) == Some(addr_of(add1)),
        "default target is not add1"
    );
    ensure!(
        A::hook().query().is_none(),
        "a key defined as None queries as Some"
    );
    lib(A::add().update(add3), "update before init")?;
    ensure!(
        A::add().query().map(addr_of) == Some(addr_of(add3)),
        "query after update"
    );
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update")?;
    ensure!(
        A::add().query().map(addr_of) == Some(addr_of(add2)),
        "query after update"
    );
    lib(A::hook().update_cond(Some(hook)), "update_cond")?;
    ensure!(
        A::hook().query().is_some(),
        "query of a conditional key set to a function"
    );
    lib(A::hook().update_cond(None), "update_cond")?;
    ensure!(
        A::hook().query().is_none(),
        "query of a conditional key set to none"
    );
    Ok(Outcome::Pass(
        "default, pre-init, post-init and none targets".into(),
    ))
}

/// Updating to the current target writes nothing.
pub(crate) fn same_target_noop<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update")?;
    let places = places_of::<A, _>(A::add());
    let before = snapshot(&places);
    let traps = text::trap_stats();
    lib(A::add().update(add2), "update to the same target")?;
    ensure!(snapshot(&places) == before, "bytes changed");
    ensure!(text::trap_stats() == traps, "the handler ran");
    ensure!(A::call_add(2) == 4, "wrong result");
    Ok(Outcome::Pass(format!("{} places unchanged", places.len())))
}

/// A conditional key set to none does nothing; back to a function works.
pub(crate) fn cond_none<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let hook_addr = hook as *const () as usize;
    ensure!(A::hook().query().is_none(), "starts as none");
    expect_patched::<A, _>(A::hook(), None)?;
    A::call_hook(5);
    ensure!(
        HOOK_CALLS.load(Ordering::SeqCst) == 0,
        "none target called something"
    );
    lib(A::hook().update_cond(Some(hook)), "update to hook")?;
    expect_patched::<A, _>(A::hook(), Some(hook_addr))?;
    A::call_hook(5);
    ensure!(
        HOOK_CALLS.load(Ordering::SeqCst) == 1 && HOOK_SUM.load(Ordering::SeqCst) == 5,
        "hook not called once with 5"
    );
    lib(A::hook().update_cond(None), "update to none")?;
    expect_patched::<A, _>(A::hook(), None)?;
    A::call_hook(7);
    ensure!(
        HOOK_CALLS.load(Ordering::SeqCst) == 1,
        "none target called something"
    );
    lib(A::hook().update_cond(Some(hook)), "back to hook")?;
    A::call_hook(7);
    ensure!(
        HOOK_SUM.load(Ordering::SeqCst) == 12,
        "hook not called after none"
    );
    let form = A::caps().none_form();
    Ok(Outcome::Pass(format!("none: {form}; nothing called")))
}

/// The same key called from several inlined copies of one function: every
/// copy is its own site, and every copy is patched.
pub(crate) fn inlined_copies<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let s = sites::<A, _>(A::inl());
    ensure!(
        s.len() == 3,
        "expected 3 inlined copies, found {} sites",
        s.len()
    );
    for f in [add2 as AddFn, add3] {
        lib(A::inl().update(f), "update")?;
        for w in 0..3 {
            ensure!(A::call_inl(w, 2) == f(2), "copy {w} wrong");
        }
        expect_patched::<A, _>(A::inl(), Some(addr_of(f)))?;
    }
    Ok(Outcome::Pass(
        "3 inlined copies = 3 sites, all patched on every update".into(),
    ))
}

/// Many keys with many sites: updating one key leaves every other key's
/// sites byte-for-byte untouched.
pub(crate) fn many_keys<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let keys: Vec<&'static static_call_core::RawKey> = A::many().iter().map(|k| k.raw()).collect();
    let m = crate::scenarios::modules::make::<A>(&keys, 50, 0, false, None)?;
    let id = crate::scenarios::modules::load::<A>(&m, "gen-many")?;
    let others: Vec<usize> = m
        .funcs
        .iter()
        .filter(|f| f.key != 3)
        .map(|f| f.site)
        .chain(
            A::many()
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 3)
                .flat_map(|(_, k)| A::registry().sites_of(k.raw()).into_iter().map(|s| s.0)),
        )
        .collect();
    let snap = || snapshot(&others);
    let before = snap();
    lib(A::many()[3].update(add2), "update K3")?;
    ensure!(snap() == before, "updating K3 changed another key's site");
    for (i, _) in A::many().iter().enumerate() {
        let want = if i == 3 { 4 } else { 3 };
        ensure!(A::call_many(i, 2) == want, "key {i} wrong");
    }
    for f in &m.funcs {
        let want = if f.key == 3 { 4 } else { 3 };
        // SAFETY: loaded module, mapped.
        let got = unsafe { f.call(2) };
        ensure!(got == want, "module site of key {} wrong", f.key);
    }
    expect_patched::<A, _>(A::many()[3], Some(addr_of(add2)))?;
    crate::scenarios::modules::unload::<A>(id)?;
    Ok(Outcome::Pass(format!(
        "8 keys x 51 sites; one update left {} other sites untouched",
        others.len()
    )))
}

/// A target beyond rel32 reach of every site and of the trampoline: sites
/// fall back to the trampoline, which jumps through a relay in range.
pub(crate) fn far_target<A: Adapter>() -> ScenarioResult {
    use static_call_core::text::exec::{ExecMemory, Placement};
    lib(A::init_with(InitPolicy::Track), "init")?;
    // lea rax, [rdi + 7]; ret
    let m = lib(
        ExecMemory::new(Placement::Anywhere, &[0x48, 0x8d, 0x47, 0x07, 0xc3]),
        "map far target",
    )?;
    let dist = m.addr().abs_diff(A::call_add as *const () as usize);
    ensure!(
        dist > 1 << 32,
        "the kernel put the target only {dist:#x} away"
    );
    // SAFETY: the mapping holds an extern "C" fn(u64) -> u64.
    let far: AddFn = unsafe { <AddFn as Signature>::from_addr(m.addr() as *const u8) };
    lib(A::add().update(far), "update to the far target")?;
    ensure!(
        A::call_add(2) == 9 && A::call_add_2(2) == 9,
        "far target not reached"
    );
    expect_patched::<A, _>(A::add(), Some(m.addr()))?;
    let s = A::stats();
    if A::caps().patches_sites {
        ensure!(s.fallback >= 3, "expected the ADD sites as fallback: {s:?}");
    }
    lib(A::add().update(add2), "back to a near target")?;
    ensure!(A::call_add(2) == 4, "near target after far");
    expect_patched::<A, _>(A::add(), Some(addr_of(add2)))?;
    drop(m);
    let caps = A::caps();
    let how = match (caps.patches_sites, caps.has_trampoline) {
        (true, _) => format!(
            "{} fallback sites call the trampoline, which jumps through a relay; direct again after",
            s.fallback
        ),
        (false, true) => "the trampoline jumps through a relay in range".to_string(),
        (false, false) => "the pointer reaches it as any other".to_string(),
    };
    Ok(Outcome::Pass(format!(
        "target {:.1} TiB away: {how}",
        dist as f64 / (1u64 << 40) as f64
    )))
}

/// A key defined in one crate (the conformance library) and called from
/// another (the test binary): the site is in the caller's table.
pub(crate) fn cross_crate_key<A: Adapter>() -> ScenarioResult {
    ensure!(A::call_cross(2) == 3, "before init");
    lib(A::init_with(InitPolicy::Track), "init")?;
    let s = sites::<A, _>(A::cross());
    ensure!(
        s.len() == 1,
        "expected the one site in the test binary, found {}",
        s.len()
    );
    lib(A::cross().update(add2), "update")?;
    ensure!(A::call_cross(2) == 4, "after update");
    expect_patched::<A, _>(A::cross(), Some(addr_of(add2)))?;
    let defined = if A::LISTED {
        "static_call_conformance::cross"
    } else {
        "the adapter's module (an implementation on no list has no key in the suite's crate)"
    };
    Ok(Outcome::Pass(format!(
        "key defined in {defined}, called and patched in the test binary"
    )))
}

/// Six arguments of mixed types and a `bool` return reach the target
/// intact, before and after init and across updates.
pub(crate) fn signatures<A: Adapter>() -> ScenarioResult {
    use crate::targets::{is_even, is_odd, mix6, mix6_neg};
    let byte = 9u8;
    let args = (
        u64::from(u32::MAX) + 5,
        0xdead_beef_u32,
        -12i16,
        -7i8,
        true,
        &byte as *const u8,
    );
    let direct = mix6(args.0, args.1, args.2, args.3, args.4, args.5);
    let call = || A::call_mix(args.0, args.1, args.2, args.3, args.4, args.5);
    ensure!(call() == direct, "before init: {} vs {direct}", call());
    ensure!(A::call_pred(3) && !A::call_pred(4), "bool before init");
    lib(A::mix().update(mix6_neg), "update before init")?;
    ensure!(call() == -direct, "pre-init update");
    lib(A::init_with(InitPolicy::Track), "init")?;
    ensure!(call() == -direct, "after init");
    lib(A::mix().update(mix6), "update")?;
    ensure!(call() == direct, "after update");
    lib(A::pred().update(is_even), "update bool key")?;
    ensure!(!A::call_pred(3) && A::call_pred(4), "bool after update");
    lib(A::pred().update(is_odd), "update bool key back")?;
    ensure!(A::call_pred(3), "bool back");
    Ok(Outcome::Pass(format!(
        "fn(u64, u32, i16, i8, bool, *const u8) -> i64 gives {direct} as a direct call does; bool returns right"
    )))
}

/// A key whose default target is a small function that optimised builds
/// may copy: the key's pointer and the trampoline's jump may then name
/// different copies. The first update must still pass the trampoline check
/// (the registry adopts the trampoline's target), and query returns a
/// function that behaves as the default.
pub(crate) fn small_default_target<A: Adapter>() -> ScenarioResult {
    let q = A::small().query().ok_or("no target")?;
    ensure!(q(21) == 42 && A::call_small(21) == 42, "default target");
    lib(A::small().update(add2), "first update")?;
    ensure!(A::call_small(2) == 4, "after update");
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::small().update(crate::twice), "back to the default")?;
    ensure!(A::call_small(21) == 42, "back");
    let note = match A::small().raw().trampoline() {
        Some(_) => "first update passed the trampoline check; default restored",
        None => "no trampoline; default restored",
    };
    Ok(Outcome::Pass(note.into()))
}

/// A key defined inside a function, named like a key of the enclosing
/// module: each names itself (its trampoline, its sites, its updates).
pub(crate) fn local_key_shadowing<A: Adapter>() -> ScenarioResult {
    let (local, call_local) = A::local_shadow();
    ensure!(
        !std::ptr::eq(local, A::shadow()),
        "the local key is the module's key"
    );
    ensure!(
        call_local(1) == 3 && A::call_shadow(1) == 2,
        "defaults before init: local {} (want 3), module {} (want 2)",
        call_local(1),
        A::call_shadow(1)
    );
    lib(A::init_with(InitPolicy::Track), "init")?;
    ensure!(
        call_local(1) == 3 && A::call_shadow(1) == 2,
        "defaults after init"
    );
    lib(local.update(add3), "update of the local key")?;
    ensure!(
        call_local(1) == 4 && A::call_shadow(1) == 2,
        "after updating the local key: local {} (want 4), module {} (want 2)",
        call_local(1),
        A::call_shadow(1)
    );
    lib(A::shadow().update(add2), "update of the module's key")?;
    ensure!(
        call_local(1) == 4 && A::call_shadow(1) == 3,
        "after updating the module's key: local {} (want 4), module {} (want 3)",
        call_local(1),
        A::call_shadow(1)
    );
    let (l, m) = (
        sites::<A, AddFn>(local).len(),
        sites::<A, AddFn>(A::shadow()).len(),
    );
    ensure!(
        l == 1 && m == 1,
        "sites: local {l}, module {m} (want 1 each)"
    );
    Ok(Outcome::Pass(
        "a key defined in a function and a module key of the same name: one site each, updated apart".into(),
    ))
}

/// Many distinct far targets for one key: each needs a relay stub near the
/// trampoline, and there is room for them (the search for a free place
/// near the trampoline finds the gaps that exist).
pub(crate) fn many_far_targets<A: Adapter>() -> ScenarioResult {
    use static_call_core::text::exec::{ExecMemory, Placement};
    lib(A::init_with(InitPolicy::Track), "init")?;
    let n = 100u64;
    let mut targets = Vec::new();
    for i in 0..n {
        // mov rax, rdi; add rax, imm8 (i % 100); ret
        let m = lib(
            ExecMemory::new(
                Placement::Anywhere,
                &[0x48, 0x89, 0xf8, 0x48, 0x83, 0xc0, (i % 100) as u8, 0xc3],
            ),
            "map a far target",
        )?;
        ensure!(
            m.addr().abs_diff(A::call_add as *const () as usize) > 1 << 32,
            "target {i} is near"
        );
        // SAFETY: the mapping holds an extern "C" fn(u64) -> u64.
        let f: AddFn = unsafe { <AddFn as Signature>::from_addr(m.addr() as *const u8) };
        lib(A::add().update(f), &format!("update to far target {i}"))?;
        ensure!(
            A::call_add(1000) == 1000 + i % 100,
            "far target {i}: got {}",
            A::call_add(1000)
        );
        targets.push(m);
    }
    lib(A::add().update(add1), "back to a near target")?;
    ensure!(A::call_add(2) == 3, "near target after the far ones");
    // Relays are packed (16 bytes each, many to a page), not a page each.
    let relay = A::stats().relay_bytes;
    ensure!(
        relay < 3 * 4096,
        "{n} relays take {relay} bytes (a page each?)"
    );
    // Going back to a far target reuses its relay.
    // SAFETY: the mapping holds an extern "C" fn(u64) -> u64.
    let f: AddFn = unsafe { <AddFn as Signature>::from_addr(targets[7].addr() as *const u8) };
    lib(A::add().update(f), "back to far target 7")?;
    ensure!(A::call_add(1000) == 1007, "far target 7 again");
    ensure!(
        A::stats().relay_bytes == relay,
        "a second visit to a far target made a new relay"
    );
    lib(A::add().update(add1), "restore")?;
    if !A::caps().has_trampoline {
        return Ok(Outcome::Pass(format!(
            "{n} distinct far targets, each reached through the pointer; no relay needed"
        )));
    }
    Ok(Outcome::Pass(format!(
        "{n} distinct far targets, each reached through its relay; relays take {relay} bytes, reused on a second visit"
    )))
}

/// `KEY.sites()`: every registered site of a key, with its module, init
/// flags and current form, agreeing with an independent decode.
pub(crate) fn key_sites<A: Adapter>() -> ScenarioResult {
    ensure!(
        A::add().sites().is_empty(),
        "sites listed before init(): {:?}",
        A::add().sites()
    );
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update")?;
    let list = A::add().sites();
    ensure!(
        list.len() == A::registry().sites_of(A::add().raw()).len() && list.len() >= 3,
        "{} sites listed, the registry links {}",
        list.len(),
        A::registry().sites_of(A::add().raw()).len()
    );
    let unpatched = unpatched_target::<A, _>(A::add());
    for s in &list {
        ensure!(
            s.module.is_none(),
            "a program site listed in a module: {s:?}"
        );
        ensure!(!s.released, "released before free_init: {s:?}");
        let decoded = match s.form {
            Some(static_call_core::insn::Form::Call(t)) => Insn::Call(t),
            Some(static_call_core::insn::Form::CallVia(p)) => Insn::CallVia(p),
            other => return Err(format!("site {:#x} listed as {other:?}", s.addr)),
        };
        ensure!(
            decoded == insn(s.addr),
            "site {:#x}: listed {decoded:?}, decoded {:?}",
            s.addr,
            insn(s.addr)
        );
        let want = if A::caps().patches_sites {
            addr_of(add2)
        } else {
            unpatched
        };
        ensure!(
            decoded == home_insn::<A>(want),
            "site {:#x} calls {decoded:?}, expected {want:#x}",
            s.addr
        );
    }
    let init = list.iter().filter(|s| s.init).count();
    lib(A::free_init(), "free_init")?;
    let after = A::add().sites();
    ensure!(
        after.iter().filter(|s| s.released).count() == init && init > 0,
        "after free_init: {} released, {init} init sites",
        after.iter().filter(|s| s.released).count()
    );
    Ok(Outcome::Pass(format!(
        "{} sites listed ({init} in init text, released after free_init), forms agree with iced-x86",
        list.len()
    )))
}

/// The engine's counters follow one update: one batch of the key's slots,
/// three core synchronisations, at least one write per phase.
pub(crate) fn engine_counters<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let before = text::engine_stats();
    lib(A::add().update(add2), "update")?;
    let after = text::engine_stats();
    let d = |a: u64, b: u64| a - b;
    let (batches, slots, writes, syncs) = (
        d(after.batches, before.batches),
        d(after.slots, before.slots),
        d(after.writes, before.writes),
        d(after.core_syncs, before.core_syncs),
    );
    let caps = A::caps();
    if !caps.writes_code() {
        ensure!(
            batches == 0 && slots == 0 && writes == 0 && syncs == 0,
            "an indirect update touched the engine: {after:?} after {before:?}"
        );
        return Ok(Outcome::Pass(
            "an update wrote no code: counters unchanged".into(),
        ));
    }
    let sites = if caps.patches_sites {
        A::add().sites().iter().filter(|s| !s.released).count() as u64
    } else {
        0
    };
    ensure!(
        batches == 1 && slots == sites + 1 && syncs == 3 && writes >= 3,
        "one update of {sites} sites + trampoline: {batches} batches, {slots} slots, {writes} writes, {syncs} syncs"
    );
    Ok(Outcome::Pass(format!(
        "one update: 1 batch, {slots} slots in {writes} writes, 3 core syncs"
    )))
}
