//! Scenario bodies, written once and generic over the [`Adapter`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use static_call_core::{Error, Flavor, InitPolicy, Place, Signature, StaticCall, text};

use crate::decode::{Insn, insn_at};
use crate::modules::*;
use crate::runner::{Mode, Outcome, Scenario, ScenarioResult, spawn_cell};
use crate::targets::{HOOK_CALLS, HOOK_SUM, add1, add2, add3, hook};
use crate::{Adapter, AddFn, place};

pub(crate) fn lib<T>(r: Result<T, Error>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// The catalogue for one implementation.
pub fn catalogue<A: Adapter>() -> Vec<Scenario> {
    macro_rules! sc {
        ($name:ident) => {
            sc!($name, Mode::Child)
        };
        ($name:ident, $mode:expr) => {
            Scenario {
                name: stringify!($name),
                run: $name::<A>,
                mode: $mode,
            }
        };
    }
    vec![
        sc!(selftest),
        sc!(query),
        sc!(same_target_noop),
        sc!(cond_none),
        sc!(pre_init),
        sc!(init_twice),
        sc!(init_text),
        sc!(init_strict),
        sc!(corrupt_site, Mode::Parent),
        sc!(bad_trampoline),
        sc!(torture),
        sc!(naive_patcher_caught, Mode::Parent),
        sc!(fallback_engine),
        sc!(concurrent_updaters),
        sc!(no_wx_mapping),
        sc!(valgrind_selftest, Mode::Parent),
        sc!(far_target),
        sc!(inlined_copies),
        sc!(cross_crate_key),
        sc!(signatures),
        sc!(small_default_target),
        sc!(fork_child),
        sc!(trap_handler_replaced),
        sc!(many_keys),
        sc!(module_load_after_update),
        sc!(module_before_init),
        sc!(module_unload_then_update),
        sc!(module_reload),
        sc!(module_init_region),
        sc!(module_load_failure),
        sc!(module_init_failure),
        sc!(module_errors),
        sc!(module_far),
        sc!(module_many),
        sc!(module_concurrent),
        sc!(shared_object, Mode::Parent),
        sc!(shared_object_child, Mode::Hidden),
        sc!(selftest_print, Mode::Hidden),
        sc!(torture_naive, Mode::Hidden),
    ]
}

// ---------------------------------------------------------------- helpers

/// Sites of `key` in the main table (works before and after init).
pub(crate) fn sites<A: Adapter, F>(key: &StaticCall<F>) -> Vec<(usize, bool)> {
    let k = key.raw().addr();
    A::registry()
        .main_table()
        .into_iter()
        .filter(|e| e.1 == k)
        .map(|e| (e.0, e.2))
        .collect()
}

/// The sites of `key` and its trampoline.
pub(crate) fn places_of<A: Adapter, F>(key: &StaticCall<F>) -> Vec<usize> {
    let mut places: Vec<usize> = sites::<A, F>(key).into_iter().map(|s| s.0).collect();
    places.extend(key.raw().trampoline());
    places
}

pub(crate) fn insn(addr: usize) -> Insn {
    // SAFETY: sites and trampolines are live code of this binary.
    unsafe { insn_at(addr) }
}

pub(crate) fn expect_at(addr: usize, want: &Insn, what: &str) -> Result<(), String> {
    let got = insn(addr);
    ensure!(
        &got == want,
        "{what} at {addr:#x}: decoded {got:?}, expected {want:?}"
    );
    Ok(())
}

/// What an un-patched site of this implementation calls.
pub(crate) fn unpatched_target<A: Adapter, F>(key: &StaticCall<F>) -> usize {
    match A::flavor() {
        Flavor::Indirect => static_call_indirect::retpoline_rax as *const () as usize,
        _ => key.raw().trampoline().expect("trampoline"),
    }
}

/// Checks every (non-released) site of `key` holds what the design says
/// for target `t` (`None`: none), and the trampoline too.
pub(crate) fn expect_patched<A: Adapter, F>(
    key: &StaticCall<F>,
    t: Option<usize>,
) -> Result<(), String> {
    let unpatched = unpatched_target::<A, F>(key);
    let initialized = A::registry().is_initialized();
    for (s, _) in sites::<A, F>(key) {
        let want = match (A::flavor(), initialized, t) {
            (Flavor::InlinePatch, true, None) => Insn::Nop5,
            (Flavor::InlinePatch, true, Some(t)) if static_call_core::insn::in_range(s, t) => {
                Insn::Call(t)
            }
            _ => Insn::Call(unpatched),
        };
        expect_at(s, &want, "site")?;
    }
    if let Some(tr) = key.raw().trampoline() {
        match t {
            None => expect_at(tr, &Insn::Ret, "trampoline")?,
            Some(t) if static_call_core::insn::in_range(tr, t) => {
                expect_at(tr, &Insn::Jmp(t), "trampoline")?
            }
            Some(t) => {
                // A relay in range: jmp qword ptr [rip+0]; .quad t
                let Insn::Jmp(relay) = insn(tr) else {
                    return Err(format!("trampoline {tr:#x} does not jump: {:?}", insn(tr)));
                };
                // SAFETY: the relay is live code of the library.
                let b = unsafe { crate::decode::read_code(relay, 14) };
                let dest = u64::from_le_bytes(b[6..14].try_into().expect("8 bytes")) as usize;
                ensure!(
                    b[..6] == [0xff, 0x25, 0, 0, 0, 0] && dest == t,
                    "relay at {relay:#x} is {b:02x?}, expected jmp [rip] to {t:#x}"
                );
            }
        }
    }
    Ok(())
}

pub(crate) fn addr_of(f: AddFn) -> usize {
    f as *const () as usize
}

// ---------------------------------------------------------------- basic

/// The kernel's self-test: no update 2→3, `add2` 2→4, `add1` 2→3.
fn selftest<A: Adapter>() -> ScenarioResult {
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
fn selftest_print<A: Adapter>() -> ScenarioResult {
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
    if A::flavor() != Flavor::Indirect {
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

fn query<A: Adapter>() -> ScenarioResult {
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
fn same_target_noop<A: Adapter>() -> ScenarioResult {
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
fn cond_none<A: Adapter>() -> ScenarioResult {
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
    let form = match A::flavor() {
        Flavor::InlinePatch => "NOP at the site, ret in the trampoline",
        Flavor::Trampoline => "ret in the trampoline",
        Flavor::Indirect => "pointer to the shared ret stub",
    };
    Ok(Outcome::Pass(format!("none: {form}; nothing called")))
}

// ---------------------------------------------------------------- init

/// Updates before `init()` go through the trampoline; site bytes stay;
/// `init()` patches to the latest target.
fn pre_init<A: Adapter>() -> ScenarioResult {
    ensure!(!A::registry().is_initialized(), "initialised already");
    let s = sites::<A, _>(A::add());
    ensure!(
        s.len() >= 3,
        "expected at least 3 sites of ADD, found {}",
        s.len()
    );
    let unpatched = Insn::Call(unpatched_target::<A, _>(A::add()));
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
    let after = match A::flavor() {
        Flavor::InlinePatch => "init() made them call add3 directly",
        Flavor::Trampoline => "they still call the trampoline, which jumps to add3",
        Flavor::Indirect => "they call the retpoline; the pointer holds add3",
    };
    let before = match A::flavor() {
        Flavor::Indirect => "their call to the retpoline thunk",
        _ => "their call to the trampoline",
    };
    Ok(Outcome::Pass(format!(
        "{} sites kept {before} through two pre-init updates; {after}",
        s.len()
    )))
}

fn init_twice<A: Adapter>() -> ScenarioResult {
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

pub(crate) fn maps_perms(lo: usize, hi: usize) -> Result<Vec<String>, String> {
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for l in maps.lines() {
        let mut it = l.split_whitespace();
        let (Some(r), Some(p)) = (it.next(), it.next()) else {
            continue;
        };
        let Some((a, b)) = r.split_once('-') else {
            continue;
        };
        let (a, b) = (
            usize::from_str_radix(a, 16).unwrap_or(0),
            usize::from_str_radix(b, 16).unwrap_or(0),
        );
        if a < hi && lo < b {
            out.push(p.to_string());
        }
    }
    Ok(out)
}

/// Init-text sites are patched during init, skipped once released.
fn init_text<A: Adapter>() -> ScenarioResult {
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
    if A::flavor() == Flavor::InlinePatch {
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
fn init_strict<A: Adapter>() -> ScenarioResult {
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
            let unpatched = Insn::Call(unpatched_target::<A, _>(A::add()));
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

// ---------------------------------------------------------------- bad input

/// A crafted site entry over bytes that are not the expected call (in the
/// `crafted` binary, whose table holds one) is refused and nothing is
/// written.
fn corrupt_site<A: Adapter>() -> ScenarioResult {
    let bin = &crate::runner::config().crafted_bin;
    let out = std::process::Command::new(bin)
        .arg(A::NAME)
        .output()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("@@outcome "))
        .ok_or_else(|| {
            format!(
                "crafted binary printed no outcome ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    match line.split_once(' ') {
        Some(("pass", m)) => Ok(Outcome::Pass(m.to_string())),
        Some((_, m)) => Err(m.to_string()),
        None => Err(line.to_string()),
    }
}

#[inline(never)]
extern "C" fn not_a_trampoline(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(3)
}

/// A key whose trampoline pointer is an ordinary function: the update is
/// refused with an error naming it, and its bytes are unchanged.
fn bad_trampoline<A: Adapter>() -> ScenarioResult {
    if A::flavor() == Flavor::Indirect {
        return Ok(Outcome::Skip(
            "no trampoline: an update is one atomic store".into(),
        ));
    }
    // A key with a bogus trampoline, leaked to get a 'static reference.
    let f = not_a_trampoline as *const u8;
    // SAFETY: deliberately wrong trampoline; the library must refuse it
    // before writing anything. Its registry is the implementation's.
    let key: &'static StaticCall<AddFn> = Box::leak(Box::new(unsafe {
        StaticCall::__new(A::registry(), f, add1 as *const u8)
    }));
    lib(A::init_with(InitPolicy::Track), "init")?;
    // SAFETY: live code.
    let before = unsafe { crate::decode::read_code(f as usize, 16) };
    let r = key.update(add2);
    // SAFETY: live code.
    let after = unsafe { crate::decode::read_code(f as usize, 16) };
    ensure!(before == after, "bytes of the non-trampoline changed");
    ensure!(not_a_trampoline(2) == 6, "the function no longer works");
    match r {
        Err(
            e @ Error::UnexpectedBytes {
                place: Place::Trampoline,
                addr,
                key: k,
                ..
            },
        ) if addr == f as usize && k == key.raw().addr() => {
            ensure!(
                key.query().map(addr_of) == Some(addr_of(add1)),
                "target changed despite the error"
            );
            Ok(Outcome::Pass(format!("refused: {e}")))
        }
        Err(e) => Err(format!("wrong error: {e}")),
        Ok(()) => Err("update through a bogus trampoline succeeded".into()),
    }
}

// ---------------------------------------------------------------- threads

struct TortureFigures {
    threads: usize,
    calls: u64,
    updates: u64,
    wrong: u64,
    emulated: u64,
    restarted: u64,
    secs: f64,
}

fn torture_run<A: Adapter>(duration: Duration) -> Result<TortureFigures, String> {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let spin_sites: Vec<usize> = sites::<A, _>(A::spin()).into_iter().map(|s| s.0).collect();
    let near = spin_sites
        .first()
        .copied()
        .unwrap_or(A::call_spin as *const () as usize);
    let t = place::flip_targets(near)?;
    let mut slots = spin_sites.clone();
    slots.extend(A::spin().raw().trampoline());
    for &s in &slots {
        ensure!(
            place::all_bytes_differ(s, t.a, t.b),
            "rel32 from {s:#x} to the two targets share a byte"
        );
    }
    // SAFETY: t.a and t.b are `lea rax, [rdi+n]; ret` — extern "C" fn(u64) -> u64.
    let (fa, fb): (AddFn, AddFn) = unsafe {
        (
            <AddFn as Signature>::from_addr(t.a as *const u8),
            <AddFn as Signature>::from_addr(t.b as *const u8),
        )
    };
    lib(A::spin().update(fa), "update to the first target")?;
    let threads = 2;
    let stop = Arc::new(AtomicBool::new(false));
    let wrong = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, wrong, calls) = (stop.clone(), wrong.clone(), calls.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut bad = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for i in 0..1000u64 {
                        let r = A::call_spin(i);
                        if r != i + 1 && r != i + 2 {
                            bad += 1;
                        }
                    }
                    n += 1000;
                }
                calls.fetch_add(n, Ordering::SeqCst);
                wrong.fetch_add(bad, Ordering::SeqCst);
            })
        })
        .collect();
    let traps0 = text::trap_stats();
    let start = Instant::now();
    let mut updates = 0u64;
    let mut err = None;
    while start.elapsed() < duration {
        for f in [fb, fa] {
            if let Err(e) = A::spin().update(f) {
                err = Some(e);
                break;
            }
            updates += 1;
        }
        if err.is_some() {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join()
            .map_err(|_| "a caller thread panicked".to_string())?;
    }
    let secs = start.elapsed().as_secs_f64();
    let traps = text::trap_stats();
    if let Some(e) = err {
        return Err(format!("update failed: {e}"));
    }
    // Leave the key on a function that outlives the mappings.
    lib(A::spin().update(add1), "final update")?;
    drop(t);
    Ok(TortureFigures {
        threads,
        calls: calls.load(Ordering::SeqCst),
        updates,
        wrong: wrong.load(Ordering::SeqCst),
        emulated: traps.emulated - traps0.emulated,
        restarted: traps.restarted - traps0.restarted,
        secs,
    })
}

pub(crate) fn torture_secs() -> u64 {
    2 * crate::runner::soak_factor()
}

/// Callers on two threads while the main thread flips the target between
/// two places whose rel32 differ in every byte.
fn torture<A: Adapter>() -> ScenarioResult {
    let f = torture_run::<A>(Duration::from_secs(torture_secs()))?;
    ensure!(f.calls > 0 && f.updates > 0, "no calls or no updates");
    ensure!(f.wrong == 0, "{} wrong results", f.wrong);
    Ok(Outcome::Pass(format!(
        "threads={} calls={} updates={} traps emulated={} restarted={} wrong=0 in {:.1}s ({:.1} us/update)",
        f.threads,
        f.calls,
        f.updates,
        f.emulated,
        f.restarted,
        f.secs,
        f.secs * 1e6 / f.updates as f64
    )))
}

/// Hidden: the torture run with the naive byte-by-byte patcher.
fn torture_naive<A: Adapter>() -> ScenarioResult {
    // SAFETY: this child process exists to show the naive patcher breaks.
    unsafe { text::use_naive_patcher_for_tests(true) };
    let f = torture_run::<A>(Duration::from_secs(5))?;
    ensure!(f.wrong == 0, "naive patcher: {} wrong results", f.wrong);
    Ok(Outcome::Pass(format!(
        "naive patcher survived {} updates",
        f.updates
    )))
}

/// Proof that the torture scenario can fail: with the test-only naive
/// patcher, the same run crashes or computes wrong results.
fn naive_patcher_caught<A: Adapter>() -> ScenarioResult {
    if A::flavor() == Flavor::Indirect {
        return Ok(Outcome::Skip(
            "nothing is patched: an update is one atomic store".into(),
        ));
    }
    let r = spawn_cell(A::NAME, "torture_naive", &[], &[], Duration::from_secs(60));
    match (&r.outcome, r.success) {
        (Some(Outcome::Pass(m)), true) => {
            Err(format!("torture did not catch the naive patcher: {m}"))
        }
        (Some(Outcome::Fail(m)), _) if m.contains("wrong results") => {
            Ok(Outcome::Pass(format!("caught: {m}")))
        }
        _ => Ok(Outcome::Pass(format!("caught: child {}", r.status))),
    }
}

// ---------------------------------------------------------------- security and tools

/// No mapping is writable and executable after any operation.
fn no_wx_mapping<A: Adapter>() -> ScenarioResult {
    let check = |when: &str| -> Result<(), String> {
        let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| e.to_string())?;
        let wx: Vec<&str> = maps
            .lines()
            .filter(|l| {
                let p = l.split_whitespace().nth(1).unwrap_or("");
                p.as_bytes().get(1) == Some(&b'w') && p.as_bytes().get(2) == Some(&b'x')
            })
            .collect();
        ensure!(wx.is_empty(), "writable+executable mapping {when}: {wx:?}");
        Ok(())
    };
    check("at start")?;
    lib(A::add().update(add2), "pre-init update")?;
    check("after a pre-init update")?;
    lib(A::init_with(InitPolicy::Track), "init")?;
    check("after init")?;
    for f in [add3, add1, add2] {
        lib(A::add().update(f), "update")?;
        check("after an update")?;
    }
    lib(A::hook().update_cond(Some(hook)), "update_cond")?;
    lib(A::hook().update_cond(None), "update_cond")?;
    check("after conditional updates")?;
    let m = crate::modules::make::<A>(&[A::add().raw()], 4, 2, false, None)?;
    check("after generating a module")?;
    let mut init = || Ok(());
    // SAFETY: the module outlives its registration.
    let id = lib(
        unsafe {
            A::load_module(
                static_call_core::ModuleSpec {
                    name: "gen-wx",
                    sections: m.sections,
                },
                Some(&mut init),
            )
        },
        "load",
    )?;
    check("after a module load with init")?;
    lib(A::add().update(add3), "update")?;
    crate::modules::unload::<A>(id)?;
    check("after a module unload")?;
    lib(A::add().update(add2), "update")?;
    lib(A::free_init(), "free_init")?;
    check("after free_init")?;
    ensure!(A::call_add(2) == 4, "wrong result");
    Ok(Outcome::Pass(
        "no rwx mapping after pre-init update, init, updates, module load/init/unload, free_init"
            .into(),
    ))
}

/// The self-test under `valgrind --tool=none` (default settings) prints
/// what it prints natively.
fn valgrind_selftest<A: Adapter>() -> ScenarioResult {
    if std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_err()
    {
        return Ok(Outcome::Skip("valgrind is not installed".into()));
    }
    let results = |r: &crate::runner::ChildRun| -> Vec<String> {
        r.stdout
            .lines()
            .filter(|l| l.starts_with("result "))
            .map(String::from)
            .collect()
    };
    let native = spawn_cell(A::NAME, "selftest_print", &[], &[], Duration::from_secs(60));
    let vg = spawn_cell(
        A::NAME,
        "selftest_print",
        &["valgrind", "--tool=none", "-q"],
        &[],
        Duration::from_secs(300),
    );
    let (n, v) = (results(&native), results(&vg));
    ensure!(
        matches!(native.outcome, Some(Outcome::Pass(_))),
        "native run failed ({}): {}",
        native.status,
        native.stdout
    );
    ensure!(
        matches!(vg.outcome, Some(Outcome::Pass(_))) && vg.success,
        "valgrind run failed ({}): {}\n{}",
        vg.status,
        vg.stdout,
        vg.stderr
    );
    ensure!(n == v && n.len() == 3, "native {n:?} vs valgrind {v:?}");
    ensure!(
        native.stdout.contains("under valgrind: false")
            && vg.stdout.contains("under valgrind: true"),
        "the valgrind child did not run under valgrind:\n{}",
        vg.stdout
    );
    let engine = |r: &crate::runner::ChildRun| {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix("engine: "))
            .unwrap_or("no code written")
            .to_string()
    };
    Ok(Outcome::Pass(format!(
        "valgrind --tool=none: {}; engine natively: {}; under valgrind: {}",
        v.join("; "),
        engine(&native),
        engine(&vg)
    )))
}

// ---------------------------------------------------------------- many sites

/// The same key called from several inlined copies of one function: every
/// copy is its own site, and every copy is patched.
fn inlined_copies<A: Adapter>() -> ScenarioResult {
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
fn many_keys<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let keys: Vec<&'static static_call_core::RawKey> = A::many().iter().map(|k| k.raw()).collect();
    let m = crate::modules::make::<A>(&keys, 50, 0, false, None)?;
    let id = crate::modules::load::<A>(&m, "gen-many")?;
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
    crate::modules::unload::<A>(id)?;
    Ok(Outcome::Pass(format!(
        "8 keys x 51 sites; one update left {} other sites untouched",
        others.len()
    )))
}

/// A target beyond rel32 reach of every site and of the trampoline: sites
/// fall back to the trampoline, which jumps through a relay in range.
fn far_target<A: Adapter>() -> ScenarioResult {
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
    if A::flavor() == Flavor::InlinePatch {
        ensure!(s.fallback >= 3, "expected the ADD sites as fallback: {s:?}");
    }
    lib(A::add().update(add2), "back to a near target")?;
    ensure!(A::call_add(2) == 4, "near target after far");
    expect_patched::<A, _>(A::add(), Some(addr_of(add2)))?;
    drop(m);
    let how = match A::flavor() {
        Flavor::InlinePatch => format!(
            "{} fallback sites call the trampoline, which jumps through a relay; direct again after",
            s.fallback
        ),
        Flavor::Trampoline => "the trampoline jumps through a relay in range".to_string(),
        Flavor::Indirect => "the pointer reaches it as any other".to_string(),
    };
    Ok(Outcome::Pass(format!(
        "target {:.1} TiB away: {how}",
        dist as f64 / (1u64 << 40) as f64
    )))
}

/// A key defined in one crate (the conformance library) and called from
/// another (the test binary): the site is in the caller's table.
fn cross_crate_key<A: Adapter>() -> ScenarioResult {
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
    Ok(Outcome::Pass(
        "key defined in static_call_conformance::cross, called and patched in the test binary"
            .into(),
    ))
}

/// Six arguments of mixed types and a `bool` return reach the target
/// intact, before and after init and across updates.
fn signatures<A: Adapter>() -> ScenarioResult {
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

/// A forked child updates its own code, never its parent's (the engine
/// reopens `/proc/self/mem` in the child).
fn fork_child<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update in the parent")?;
    // SAFETY: this cell's process is single-threaded here; the child only
    // updates a key, checks a call and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let ok = A::add().update(add3).is_ok() && A::call_add(2) == 5;
        // SAFETY: leave the child without running the parent's exit paths.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    ensure!(pid > 0, "fork failed");
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child's update failed (status {status:#x})"
    );
    ensure!(A::call_add(2) == 4, "the child's update changed the parent");
    expect_patched::<A, _>(A::add(), Some(addr_of(add2)))?;
    lib(A::add().update(add1), "update in the parent after fork")?;
    ensure!(A::call_add(2) == 3, "parent update after fork");
    Ok(Outcome::Pass(
        "child updated its own code; parent's sites unchanged and still updatable".into(),
    ))
}

/// If the program replaces the SIGTRAP handler, updates are refused with a
/// typed error and nothing is written.
fn trap_handler_replaced<A: Adapter>() -> ScenarioResult {
    if A::flavor() == Flavor::Indirect {
        return Ok(Outcome::Skip(
            "writes no code, so needs no SIGTRAP handler".into(),
        ));
    }
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update")?;
    let places = places_of::<A, _>(A::add());
    let read = || snapshot(&places);
    let before = read();
    // SAFETY: zeroed sigactions are valid; no batch is in flight.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut ign: libc::sigaction = unsafe { std::mem::zeroed() };
    ign.sa_sigaction = libc::SIG_IGN;
    // SAFETY: valid arguments.
    unsafe { libc::sigaction(libc::SIGTRAP, &ign, &mut old) };
    let r = A::add().update(add3);
    // SAFETY: restores what was there.
    unsafe { libc::sigaction(libc::SIGTRAP, &old, std::ptr::null_mut()) };
    let msg = match r {
        Err(e @ Error::TrapHandlerReplaced { .. }) => e.to_string(),
        Err(e) => return Err(format!("wrong error: {e}")),
        Ok(()) => return Err("patched without its SIGTRAP handler".into()),
    };
    ensure!(read() == before, "bytes changed");
    ensure!(A::call_add(2) == 4, "target changed");
    lib(A::add().update(add3), "update with the handler back")?;
    ensure!(A::call_add(2) == 5, "update after restoring");
    Ok(Outcome::Pass(format!("refused: {msg}")))
}

/// A key whose default target is a small function that optimised builds
/// may copy: the key's pointer and the trampoline's jump may then name
/// different copies. The first update must still pass the trampoline check
/// (the registry adopts the trampoline's target), and query returns a
/// function that behaves as the default.
fn small_default_target<A: Adapter>() -> ScenarioResult {
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

/// The engine's fallbacks (an mprotect window per write, mprotect
/// shootdowns instead of membarrier) under the torture run.
fn fallback_engine<A: Adapter>() -> ScenarioResult {
    if A::flavor() == Flavor::Indirect {
        return Ok(Outcome::Skip("writes no code".into()));
    }
    text::use_fallbacks_for_tests(true);
    let e = lib(text::engine_info(), "engine_info")?;
    ensure!(!e.proc_mem && !e.membarrier, "fallbacks not in use: {e:?}");
    let f = torture_run::<A>(Duration::from_secs(torture_secs() / 2))?;
    ensure!(f.wrong == 0, "{} wrong results", f.wrong);
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| e.to_string())?;
    ensure!(
        !maps.lines().any(|l| l
            .split_whitespace()
            .nth(1)
            .is_some_and(|p| p.contains("wx"))),
        "an rwx mapping outlived an update"
    );
    Ok(Outcome::Pass(format!(
        "mprotect writes + shootdowns: calls={} updates={} traps emulated={} wrong=0 ({:.1} us/update); no rwx mapping left",
        f.calls,
        f.updates,
        f.emulated,
        f.secs * 1e6 / f.updates as f64
    )))
}

/// Several threads update the same keys at once while another calls them:
/// updates serialise, no call goes wrong, and every site and trampoline
/// ends in the state of the key's final target.
fn concurrent_updaters<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let stop = Arc::new(AtomicBool::new(false));
    let wrong = Arc::new(AtomicU64::new(0));
    let caller = {
        let (stop, wrong) = (stop.clone(), wrong.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for x in 0..100u64 {
                    let (a, b) = (A::call_add(x), A::call_inl(0, x));
                    if !(x + 1..=x + 3).contains(&a) || !(x + 1..=x + 3).contains(&b) {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let updaters: Vec<_> = (0..3u64)
        .map(|t| {
            std::thread::spawn(move || -> Result<u64, String> {
                let fs = [add1 as AddFn, add2, add3];
                let mut n = 0u64;
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(800) {
                    let f = fs[((n + t) % 3) as usize];
                    A::add().update(f).map_err(|e| e.to_string())?;
                    A::inl().update(f).map_err(|e| e.to_string())?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for u in updaters {
        total += u.join().map_err(|_| "an updater panicked".to_string())??;
    }
    stop.store(true, Ordering::SeqCst);
    caller
        .join()
        .map_err(|_| "the caller panicked".to_string())?;
    ensure!(
        wrong.load(Ordering::SeqCst) == 0,
        "{} wrong results",
        wrong.load(Ordering::SeqCst)
    );
    for key in [A::add(), A::inl()] {
        let f = key.query().ok_or("no target")?;
        expect_patched::<A, _>(key, Some(addr_of(f)))?;
    }
    let want = A::add().query().map(|f| f(2));
    ensure!(
        Some(A::call_add(2)) == want,
        "final call disagrees with the final target"
    );
    Ok(Outcome::Pass(format!(
        "3 updater threads, {total} update pairs, 1 caller: 0 wrong; sites and trampolines match the final targets"
    )))
}
