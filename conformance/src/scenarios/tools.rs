//! Security and tools: W^X and valgrind.

#[allow(unused_imports)]
use super::*;

/// No mapping is writable and executable after any operation.
pub(crate) fn no_wx_mapping<A: Adapter>() -> ScenarioResult {
    let check = |when: &str| -> Result<(), String> {
        let wx: Vec<_> = static_call_core::maps::mappings()
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|m| m.write && m.exec)
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
    let m = crate::scenarios::modules::make::<A>(&[A::add().raw()], 4, 2, false, None)?;
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
    crate::scenarios::modules::unload::<A>(id)?;
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
pub(crate) fn valgrind_selftest<A: Adapter>() -> ScenarioResult {
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

/// [`VG_UPDATES`] updates while a second thread calls the key, run under
/// `valgrind --tool=none` (default, unfair scheduling): they must finish in
/// bounded time with every call reaching the old or the new target, and
/// the caller must make progress between the updates.
/// Updates of [`valgrind_threads`]: under valgrind each one hands the
/// calling thread a whole time slice (about 0.15 to 0.4 s here), so a few
/// dozen show progress without taking minutes.
const VG_UPDATES: u32 = 20;

pub(crate) fn valgrind_threads<A: Adapter>() -> ScenarioResult {
    if std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_err()
    {
        return Ok(Outcome::Skip("valgrind is not installed".into()));
    }
    let t = Instant::now();
    let vg = spawn_cell(
        A::NAME,
        "threads_updates_child",
        &["valgrind", "--tool=none", "-q"],
        &[],
        Duration::from_secs(180),
    );
    match vg.result().map_err(|e| format!("under valgrind: {e}"))? {
        Outcome::Pass(m) => Ok(Outcome::Pass(format!(
            "under valgrind --tool=none in {:.1} s: {m}",
            t.elapsed().as_secs_f64()
        ))),
        other => Ok(other),
    }
}

/// The child of [`valgrind_threads`].
pub(crate) fn threads_updates_child<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    // The caller never yields: under valgrind's default (unfair)
    // scheduling it keeps the CPU whenever the updater makes a system
    // call, as a busy program's thread would.
    let caller = SpinCaller::start::<A>();
    let calls = caller.calls();
    // The caller must really run between the updates (valgrind runs one
    // thread at a time): wait for its calls to advance after each update.
    let advance = |n: u64| {
        let (start, t) = (calls.load(Ordering::Relaxed), Instant::now());
        while calls.load(Ordering::Relaxed) < start + n && t.elapsed() < Duration::from_secs(2) {
            // A system call lets valgrind run the other thread.
            std::thread::sleep(Duration::from_micros(100));
        }
    };
    advance(1000);
    let traps = text::trap_stats();
    let t = Instant::now();
    let mut result = Ok(());
    // The caller's count before each update and after the last: it must
    // move between updates, not only once the updater is done.
    let mut seen = Vec::with_capacity(VG_UPDATES as usize + 1);
    for i in 0..VG_UPDATES {
        seen.push(calls.load(Ordering::Relaxed));
        let f = if i % 2 == 0 { add2 } else { add1 };
        if let Err(e) = A::spin().update(f) {
            result = Err(format!("update {i}: {e}"));
            break;
        }
    }
    seen.push(calls.load(Ordering::Relaxed));
    let took = t.elapsed();
    let (n, w) = caller.finish()?;
    result?;
    let during = seen[seen.len() - 1] - seen[0];
    let moved = seen.windows(2).filter(|p| p[1] > p[0]).count();
    let after = text::trap_stats();
    ensure!(w == 0, "{w} calls reached a wrong target");
    ensure!(A::call_spin(1) == 2, "final target");
    // Under valgrind the engine replaces each slot with one store (valgrind
    // runs one thread at a time), so no breakpoint is ever hit: with the
    // breakpoint protocol the caller can take millions of traps while the
    // updater waits for a time slice.
    let trapped = after.emulated - traps.emulated;
    ensure!(
        !static_call_core::running_on_valgrind() || trapped == 0,
        "{trapped} breakpoint traps under valgrind in {:.1} s",
        took.as_secs_f64()
    );
    // Progress: the caller ran between at least a tenth of the updates
    // (the updater yields after each batch under valgrind; without that the
    // caller ran between 1 to 3 of 200, not at all until the loop ended;
    // with it, 145 to 200 of 200 on an idle machine and 36 on a 2-CPU
    // machine running other builds).
    ensure!(
        moved as u32 * 10 >= VG_UPDATES,
        "the caller made {during} calls during the {VG_UPDATES} updates and moved between only {moved} of them ({} calls in all)",
        n
    );
    Ok(Outcome::Pass(format!(
        "{VG_UPDATES} updates in {:.2} s with a calling thread ({during} calls during them, between {moved} of {VG_UPDATES} updates; {n} in all, 0 wrong, {} traps emulated)",
        took.as_secs_f64(),
        after.emulated - traps.emulated
    )))
}
