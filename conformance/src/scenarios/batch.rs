//! One batch for many keys (`Registry::batch`, `sc::batch` in every
//! implementation crate): one protocol round, all or nothing.
//!
//! * `batch_basic`: eight keys, a conditional key and a RET0 key in one
//!   batch — every site decoded afterwards, one engine batch, three core
//!   synchronisations, three writes per run of nearby slots (the `0xcc`
//!   padding between them does not cut a run); a key twice, a key of another implementation and an
//!   error of the closure each write nothing.
//! * `batch_faults`: every `pwrite` and `membarrier` of a batch of eight
//!   keys fails in turn: every key keeps its old target and code.
//! * `batch_torture`: a caller per key while the eight keys flip together:
//!   every call reaches the old or the new target.

#[allow(unused_imports)]
use super::*;
use crate::HookFn;
use static_call_core::Batch;

/// Sets the eight keys of `A::many()` to `f` in one batch.
fn all_to<A: Adapter>(f: AddFn) -> static_call_core::Result<()> {
    A::registry().batch(|b: &mut Batch<'_>| {
        for k in A::many() {
            b.update(k, f)?;
        }
        Ok(())
    })
}

/// Every one of the eight keys is at `f` (query, calls, decoded sites).
fn expect_all<A: Adapter>(f: AddFn, what: &str) -> Result<(), String> {
    let want = f(10);
    for (i, k) in A::many().into_iter().enumerate() {
        ensure!(
            k.query().map(|q| q(10)) == Some(want) && A::call_many(i, 10) == want,
            "{what}: key {i} does not call the expected target"
        );
        expect_patched::<A, AddFn>(k, Some(addr_of(f)))
            .map_err(|e| format!("{what}: key {i}: {e}"))?;
    }
    Ok(())
}

/// Eight keys, a conditional key set to a hook and a key set to RET0 in one
/// batch: each is where it should be, and the engine wrote one batch with
/// three core synchronisations. Then a key twice, a key of another
/// implementation and an error of the closure: nothing changes.
pub(crate) fn batch_basic<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    expect_all::<A>(add1, "before")?;
    let e0 = text::engine_stats();
    lib(
        A::registry().batch(|b| {
            for k in A::many() {
                b.update(k, add2)?;
            }
            b.update_cond(A::hook(), Some(hook))?;
            b.update_ret0(A::pred())?;
            ensure_len(b, 10)
        }),
        "batch",
    )?;
    let e1 = text::engine_stats();
    expect_all::<A>(add2, "after the batch")?;
    expect_patched::<A, HookFn>(A::hook(), Some(hook as *const () as usize))?;
    ensure!(A::pred().is_ret0() && !A::call_pred(3), "PRED is not RET0");
    let (batches, syncs) = (e1.batches - e0.batches, e1.core_syncs - e0.core_syncs);
    if A::caps().writes_code() {
        ensure!(
            batches == 1 && syncs == 3,
            "10 keys took {batches} engine batches and {syncs} core syncs (want 1 and 3)"
        );
        // One write per run of nearby slots and phase, even where the
        // compiler's `0xcc` padding lies between them (the file's own
        // bytes, which the engine may write back: `text/pristine.rs`).
        let mut slots = Vec::new();
        for k in A::many() {
            slots.extend(slots_of::<A, AddFn>(k));
        }
        slots.extend(slots_of::<A, HookFn>(A::hook()));
        slots.extend(slots_of::<A, extern "C" fn(u64) -> bool>(A::pred()));
        let runs = run_count(&mut slots);
        let writes = e1.writes - e0.writes;
        ensure!(
            writes == 3 * runs,
            "the batch's {} slots lie in {runs} runs, written with {writes} writes (want 3 per run: padding between slots cut the runs)",
            slots.len()
        );
    } else {
        ensure!(
            batches == 0,
            "{} writes no code, yet the engine wrote {batches} batches",
            A::NAME
        );
    }
    // A key twice: refused before anything is written.
    let dup = A::registry().batch(|b| {
        b.update(A::many()[0], add3)?;
        b.update(A::many()[1], add3)?;
        b.update(A::many()[0], add1)
    });
    ensure!(
        dup == Err(Error::BatchDuplicateKey {
            key: A::many()[0].raw().addr()
        }),
        "a key twice gave {dup:?}"
    );
    // A key of another implementation.
    let other: &'static StaticCall<AddFn> =
        if A::design().name == static_call_core::Design::INLINE_PATCH.name {
            &crate::cross::trampoline::CROSS
        } else {
            &crate::cross::inline_patch::CROSS
        };
    let foreign = A::registry().batch(|b| {
        b.update(A::many()[2], add3)?;
        b.update(other, add3)
    });
    ensure!(
        foreign
            == Err(Error::BatchForeignKey {
                key: other.raw().addr()
            }),
        "a foreign key gave {foreign:?}"
    );
    // The closure's own error.
    let own = A::registry().batch(|b| {
        b.update(A::many()[3], add3)?;
        Err(Error::UnknownModule { id: 77 })
    });
    ensure!(
        own == Err(Error::UnknownModule { id: 77 }),
        "the closure's error gave {own:?}"
    );
    expect_all::<A>(add2, "after the refused batches")?;
    ensure!(
        text::engine_stats().batches == e1.batches,
        "a refused batch wrote code"
    );
    // Back, in one batch again.
    lib(
        A::registry().batch(|b| {
            for k in A::many() {
                b.update(k, add1)?;
            }
            b.update_cond(A::hook(), None)?;
            b.update(A::pred(), crate::targets::is_odd)
        }),
        "batch back",
    )?;
    expect_all::<A>(add1, "back")?;
    Ok(Outcome::Pass(format!(
        "10 keys (8 plain, 1 conditional, 1 RET0) in {batches} engine batch with {syncs} core syncs; a key twice, a foreign key and the closure's error wrote nothing"
    )))
}

/// The slots an update of `key` writes: its trampoline, and its sites
/// where the design patches them.
fn slots_of<A: Adapter, F: static_call_core::Signature>(key: &StaticCall<F>) -> Vec<usize> {
    let mut v: Vec<usize> = key.raw().trampoline().into_iter().collect();
    if A::caps().patches_sites {
        v.extend(key.sites().iter().filter(|s| !s.released).map(|s| s.addr));
    }
    v
}

/// How many runs the engine groups `slots` into for a batch of this size:
/// sorted, split where the gap between two slots reaches a page or a run
/// would pass 64 KiB (`text/runs.rs`).
fn run_count(slots: &mut [usize]) -> u64 {
    const SLOT: usize = 5;
    let page = 4096;
    slots.sort_unstable();
    let mut runs = 0;
    let mut start = 0;
    for (i, &s) in slots.iter().enumerate() {
        if i == 0 || s - (slots[i - 1] + SLOT) > page - 1 || s + SLOT - start > 64 * 1024 {
            runs += 1;
            start = s;
        }
    }
    runs
}

fn ensure_len(b: &Batch<'_>, n: usize) -> static_call_core::Result<()> {
    assert_eq!(b.len(), n, "the batch holds {} keys", b.len());
    Ok(())
}

/// A batch of eight keys with each `pwrite` and each `membarrier` failing
/// in turn (and during the rollback): every failed batch leaves every key
/// at its old target, its code as before.
pub(crate) fn batch_faults<A: Adapter>() -> ScenarioResult {
    use static_call_core::text::Fault;
    if !A::caps().writes_code() {
        return Ok(Outcome::Skip(format!(
            "{} writes no code: a batch is eight atomic stores",
            A::NAME
        )));
    }
    lib(A::init_with(InitPolicy::Track), "init")?;
    let places: Vec<usize> = A::many()
        .into_iter()
        .flat_map(places_of::<A, AddFn>)
        .collect();
    let faults: Vec<Fault> = (0..3 * places.len() as u64)
        .map(|after| Fault::ProcMemWrite { after })
        .chain((0..3).map(|after| Fault::Membarrier { after }))
        .collect();
    let mut failed = 0;
    for f in &faults {
        let before: Vec<Insn> = places.iter().map(|&p| insn(p)).collect();
        text::inject_fault_for_tests(Some(*f));
        let r = all_to::<A>(add2);
        text::inject_fault_for_tests(None);
        match r {
            Err(Error::Syscall { .. }) => {
                failed += 1;
                for (&p, b) in places.iter().zip(&before) {
                    expect_at(p, b, &format!("after the failed batch ({f:?})"))?;
                }
                expect_all::<A>(add1, &format!("after the failed batch ({f:?})"))?;
            }
            Ok(()) => {
                expect_all::<A>(add2, "after a batch the fault let through")?;
                lib(all_to::<A>(add1), "back")?;
            }
            Err(e) => return Err(format!("{f:?}: unexpected error {e}")),
        }
    }
    ensure!(
        failed >= 4,
        "only {failed} of {} fault points failed a batch",
        faults.len()
    );
    lib(all_to::<A>(add2), "a batch after the faults")?;
    expect_all::<A>(add2, "after the faults")?;
    lib(all_to::<A>(add1), "back")?;
    Ok(Outcome::Pass(format!(
        "{failed} failed batches of 8 keys ({} slots; each pwrite and membarrier failing in turn): every key kept its old target and code",
        places.len()
    )))
}

/// One caller thread per key (eight) while the main thread flips all eight
/// keys between two targets in batches for 2 s: every call returns `x + 1`
/// or `x + 2`. The targets are placed so that the `rel32` of every slot to
/// one and to the other differ in all four bytes (as in `torture`), so a
/// torn slot cannot pass for a whole one.
pub(crate) fn batch_torture<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let slots: Vec<usize> = A::many()
        .into_iter()
        .flat_map(places_of::<A, AddFn>)
        .collect();
    let t = place::flip_targets(slots[0])?;
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
    lib(all_to::<A>(fa), "batch to the first target")?;
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut n, mut bad) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    for x in 1..=100u64 {
                        let r = A::call_many(i, x);
                        if r != x + 1 && r != x + 2 {
                            bad += 1;
                        }
                    }
                    n += 100;
                }
                (n, bad)
            })
        })
        .collect();
    let t = Instant::now();
    let mut batches = 0u64;
    let mut err = None;
    let traps0 = text::trap_stats();
    while t.elapsed() < Duration::from_secs(2) {
        let f = if batches.is_multiple_of(2) { fb } else { fa };
        if let Err(e) = all_to::<A>(f) {
            err = Some(e);
            break;
        }
        batches += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut calls, mut wrong) = (0, 0);
    for h in handles {
        let (n, b) = h.join().map_err(|_| "a caller panicked")?;
        calls += n;
        wrong += b;
    }
    if let Some(e) = err {
        return Err(format!("batch {batches} failed: {e}"));
    }
    lib(all_to::<A>(add1), "back")?;
    ensure!(
        wrong == 0,
        "{wrong} of {calls} calls reached a wrong target"
    );
    let traps = text::trap_stats().emulated - traps0.emulated;
    Ok(Outcome::Pass(format!(
        "{batches} batches of 8 keys ({} slots, rel32 differing in every byte) in 2 s with 8 callers: {calls} calls, 0 wrong, {traps} breakpoint traps served",
        slots.len()
    )))
}
