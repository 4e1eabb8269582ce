//! RET0: the shared "return 0" target (the kernel's
//! `__static_call_return0`), written as `xor eax, eax` at inline-patched
//! sites; a trampoline jumps to the shared function like to any target.

use super::*;

/// Checks every site (and the trampoline) of `ADD` holds the RET0 form.
fn expect_ret0<A: Adapter>() -> Result<(), String> {
    let key = A::add();
    if A::caps().patches_sites {
        for s in key.sites().iter().filter(|s| !s.released) {
            expect_at(s.addr, &Insn::Xor5, "site on RET0")?;
        }
    }
    let f = key.query().ok_or("query gave none")?;
    ensure!(
        std::ptr::eq(f as *const (), static_call_core::ret0_stub as *const ()),
        "the key does not hold the shared RET0 function"
    );
    if let Some(t) = key.raw().trampoline() {
        // One instruction in the slot: `jmp` to the RET0 function.
        expect_trampoline(t, Some(f as usize)).map_err(|e| format!("on RET0: {e}"))?;
    }
    Ok(())
}

/// A key pointed at RET0 returns 0 everywhere, decodes as the RET0 forms,
/// and goes back to a function; bool and six-argument keys too.
pub(crate) fn ret0_selftest<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update_ret0(), "update_ret0")?;
    ensure!(A::add().is_ret0(), "is_ret0 false after update_ret0");
    ensure!(
        A::call_add(2) == 0 && A::call_add_2(7) == 0,
        "RET0 calls gave {} and {}",
        A::call_add(2),
        A::call_add_2(7)
    );
    ensure!(
        A::add().query().map(|f| f(5)) == Some(0),
        "the queried RET0 function does not return 0"
    );
    expect_ret0::<A>()?;
    // Again: the same target, nothing written.
    let places = places_of::<A, _>(A::add());
    let before = snapshot(&places);
    lib(A::add().update_ret0(), "second update_ret0")?;
    ensure!(
        snapshot(&places) == before,
        "a repeated RET0 update wrote code"
    );
    lib(A::add().update(add2), "update back to add2")?;
    ensure!(
        !A::add().is_ret0() && A::call_add(2) == 4,
        "after RET0 -> add2"
    );
    expect_patched::<A, _>(A::add(), Some(addr_of(add2)))?;
    lib(A::pred().update_ret0(), "bool key to RET0")?;
    ensure!(!A::call_pred(1), "a bool key on RET0 returned true");
    lib(A::mix().update_ret0(), "six-argument key to RET0")?;
    let m = A::call_mix(1, 2, 3, 4, true, std::ptr::null());
    ensure!(m == 0, "a six-argument key on RET0 returned {m}");
    lib(A::pred().update(crate::targets::is_odd), "bool key back")?;
    ensure!(A::call_pred(1), "bool key after RET0");
    let caps = A::caps();
    let form = match (caps.patches_sites, caps.has_trampoline) {
        (true, _) => "sites hold `xor eax, eax`, the trampoline `jmp` to the RET0 function",
        (false, true) => "the trampoline holds `jmp` to the RET0 function",
        (false, false) => "the key points at the shared RET0 function",
    };
    Ok(Outcome::Pass(format!(
        "ADD, a bool and a six-argument key returned 0 on RET0 ({form}); back to functions after"
    )))
}

/// The torture run with RET0 between its two targets: every call returns
/// one of the targets' results or 0, and (where code is written) callers
/// ran into the breakpoints of RET0 forms too.
pub(crate) fn ret0_torture<A: Adapter>() -> ScenarioResult {
    let f = threads::torture_run::<A>(Duration::from_secs(threads::torture_secs()), true)?;
    ensure!(
        f.wrong == 0,
        "{} wrong results in {} calls",
        f.wrong,
        f.calls
    );
    ensure!(f.zeros > 0, "no call ever returned 0 from RET0");
    ensure!(
        !A::caps().writes_code() || f.emulated + f.restarted > 0,
        "no caller hit a breakpoint in {} updates",
        f.updates
    );
    Ok(Outcome::Pass(format!(
        "threads={} {} updates among two targets and RET0 under {} calls ({} returned 0): 0 wrong; traps emulated={} restarted={}",
        f.threads, f.updates, f.calls, f.zeros, f.emulated, f.restarted
    )))
}

/// RET0 and none side by side: a conditional key set to none and back
/// while `ADD` is on RET0, each unaffected by the other.
pub(crate) fn ret0_and_none<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update_ret0(), "ADD to RET0")?;
    let calls0 = crate::targets::HOOK_CALLS.load(Ordering::SeqCst);
    A::call_hook(1);
    ensure!(
        crate::targets::HOOK_CALLS.load(Ordering::SeqCst) == calls0,
        "a none hook was called"
    );
    lib(A::hook().update_cond(Some(hook)), "hook on")?;
    A::call_hook(1);
    ensure!(
        crate::targets::HOOK_CALLS.load(Ordering::SeqCst) == calls0 + 1,
        "the hook was not called"
    );
    ensure!(A::call_add(2) == 0, "ADD left RET0 when the hook changed");
    lib(A::hook().update_cond(None), "hook off")?;
    expect_ret0::<A>()?;
    lib(A::add().update(add1), "ADD back")?;
    A::call_hook(1);
    ensure!(
        A::call_add(2) == 3 && crate::targets::HOOK_CALLS.load(Ordering::SeqCst) == calls0 + 1,
        "after both went back"
    );
    Ok(Outcome::Pass(
        "ADD on RET0 while HOOK went none -> hook -> none: each kept its own form".into(),
    ))
}
