//! Before `init()`, `init()` itself, and init text.

#[allow(unused_imports)]
use super::*;

/// Updates before `init()` go through the trampoline; site bytes stay;
/// `init()` patches to the latest target.
pub(crate) fn pre_init<A: Adapter>() -> ScenarioResult {
    ensure!(!A::registry().is_initialized(), "initialised already");
    let s = sites::<A, _>(A::add());
    ensure!(
        s.len() >= 3,
        "expected at least 3 sites of ADD, found {}",
        s.len()
    );
    let unpatched = home_insn::<A>(unpatched_target::<A, _>(A::add()));
    for &(a, _) in &s {
        expect_at(a, &unpatched, "site before init")?;
    }
    lib(A::add().update(add2), "update before init")?;
    ensure!(A::call_add(2) == 4, "pre-init update not seen");
    lib(A::add().update(add3), "second update before init")?;
    ensure!(
        A::call_add(2) == 5 && A::call_add_2(2) == 5,
        "last pre-init update does not win"
    );
    for &(a, _) in &s {
        expect_at(a, &unpatched, "site after a pre-init update")?;
    }
    if let Some(t) = A::add().raw().trampoline() {
        expect_at(
            t,
            &Insn::Jmp(addr_of(add3)),
            "trampoline after a pre-init update",
        )?;
    }
    lib(A::init_with(InitPolicy::Track), "init")?;
    ensure!(A::call_add(2) == 5, "wrong after init");
    expect_patched::<A, _>(A::add(), Some(addr_of(add3)))?;
    let caps = A::caps();
    let after = match (caps.patches_sites, caps.unpatched) {
        (true, _) => "init() made them call add3 directly",
        (false, Unpatched::Trampoline) => "they still call the trampoline, which jumps to add3",
        (false, Unpatched::Thunk) => "they call the retpoline; the pointer holds add3",
        (false, Unpatched::ThroughKey) => "they call through the pointer, which holds add3",
    };
    let before = match caps.unpatched {
        Unpatched::Thunk => "their call to the retpoline thunk",
        Unpatched::Trampoline => "their call to the trampoline",
        Unpatched::ThroughKey => "their load of the key and call through it",
    };
    Ok(Outcome::Pass(format!(
        "{} sites kept {before} through two pre-init updates; {after}",
        s.len()
    )))
}

pub(crate) fn init_twice<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update")?;
    let before = A::stats();
    lib(A::init_with(InitPolicy::Track), "second init")?;
    lib(A::init_with(InitPolicy::Strict), "third init, other policy")?;
    ensure!(A::stats() == before, "a second init changed the registry");
    ensure!(A::call_add(2) == 4, "a second init changed the target");
    expect_patched::<A, _>(A::add(), Some(addr_of(add2)))?;
    Ok(Outcome::Pass(
        "second and third init() change nothing".into(),
    ))
}

/// The permissions of every mapping that overlaps `lo..hi`.
pub(crate) fn maps_perms(lo: usize, hi: usize) -> Result<Vec<String>, String> {
    Ok(static_call_core::maps::mappings()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|m| m.start < hi && lo < m.end)
        .map(|m| m.perms)
        .collect())
}

/// Init-text sites are patched during init, skipped once released.
pub(crate) fn init_text<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let init_sites: Vec<usize> = sites::<A, _>(A::add())
        .into_iter()
        .filter(|s| s.1)
        .map(|s| s.0)
        .collect();
    ensure!(!init_sites.is_empty(), "no site of ADD is flagged INIT");
    ensure!(
        A::init_call_add(2) == 3,
        "init function gives the wrong result"
    );
    lib(A::add().update(add2), "update during init")?;
    ensure!(
        A::init_call_add(2) == 4,
        "init site missed an update during init"
    );
    if A::caps().patches_sites {
        for &s in &init_sites {
            expect_at(s, &Insn::Call(addr_of(add2)), "init site during init")?;
        }
    }
    let (lo, hi) = lib(A::free_init(), "free_init")?;
    ensure!(hi > lo, "free_init released no whole page");
    let perms = maps_perms(lo, hi)?;
    ensure!(
        !perms.is_empty() && perms.iter().all(|p| p.starts_with("---")),
        "released init text {lo:#x}..{hi:#x} is still accessible: {perms:?}"
    );
    ensure!(
        init_sites.iter().all(|&s| s >= lo && s < hi),
        "an init site lies outside the released pages"
    );
    lib(A::add().update(add3), "update after free_init")?;
    ensure!(
        A::call_add(2) == 5 && A::call_add_2(2) == 5,
        "non-init sites wrong after free_init"
    );
    lib(A::add().update(add1), "second update after free_init")?;
    ensure!(A::call_add(2) == 3, "wrong after second update");
    lib(A::free_init(), "second free_init")?;
    let s = A::stats();
    ensure!(s.init_released == s.init && s.init > 0, "stats: {s:?}");
    Ok(Outcome::Pass(format!(
        "{} init site(s) patched during init; {:#x}..{:#x} released ({} pages, now ---p); later updates skip them",
        init_sites.len(),
        lo,
        hi,
        (hi - lo) / 4096
    )))
}

/// The strict policy refuses init-text sites by name and patches nothing.
pub(crate) fn init_strict<A: Adapter>() -> ScenarioResult {
    let init_sites: Vec<usize> = {
        let (lo, hi) = A::registry().main_sections().init;
        sites::<A, _>(A::add())
            .into_iter()
            .map(|s| s.0)
            .filter(|&s| s >= lo && s < hi)
            .collect()
    };
    ensure!(!init_sites.is_empty(), "no site of ADD in init text");
    lib(A::add().update(add2), "update before init")?;
    match A::init_with(InitPolicy::Strict) {
        Err(Error::InitSitesRefused { sites: refused }) => {
            for s in &init_sites {
                ensure!(
                    refused
                        .iter()
                        .any(|(a, k)| a == s && *k == A::add().raw().addr()),
                    "error does not name init site {s:#x}: {refused:x?}"
                );
            }
            let msg = Error::InitSitesRefused {
                sites: refused.clone(),
            }
            .to_string();
            ensure!(
                !A::registry().is_initialized(),
                "initialised despite the error"
            );
            let unpatched = home_insn::<A>(unpatched_target::<A, _>(A::add()));
            for (s, _) in sites::<A, _>(A::add()) {
                expect_at(s, &unpatched, "site after refused init")?;
            }
            ensure!(A::call_add(2) == 4, "wrong result after refused init");
            Ok(Outcome::Pass(format!("refused: {msg}")))
        }
        Err(e) => Err(format!("wrong error: {e}")),
        Ok(()) => Err("strict init accepted init-text sites".into()),
    }
}
