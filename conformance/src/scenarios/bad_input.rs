//! Bad input: corrupt tables, wrong trampolines, a replaced trap handler.

#[allow(unused_imports)]
use super::*;

/// A crafted site entry over bytes that are not the expected call (in the
/// `crafted` binary, whose table holds one) is refused and nothing is
/// written.
pub(crate) fn corrupt_site<A: Adapter>() -> ScenarioResult {
    if !A::LISTED {
        return Ok(Outcome::Skip(format!(
            "needs a copy built from the workspace's implementations list, and {} is not on it",
            A::NAME
        )));
    }
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
pub(crate) fn bad_trampoline<A: Adapter>() -> ScenarioResult {
    if !A::caps().writes_code() {
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

/// If the program replaces the SIGTRAP handler, updates are refused with a
/// typed error and nothing is written.
pub(crate) fn trap_handler_replaced<A: Adapter>() -> ScenarioResult {
    if !A::caps().writes_code() {
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
