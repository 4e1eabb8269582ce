//! A program under a debugger keeps working: a cell that updates a key
//! whose sites other threads are calling runs to completion under `gdb`
//! in batch mode, with gdb's default handling of `SIGTRAP` (a breakpoint
//! of the engine's would stop it, and batch mode would then kill the
//! program) and the engine's park signal passed through.

use super::*;

/// Whether `gdb` can be run.
fn have_gdb() -> bool {
    std::process::Command::new("gdb")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The tracer of this process (`TracerPid`), or 0.
pub(crate) fn tracer_pid() -> i32 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `debugger_child` under `gdb -batch` and checks it completed.
pub(crate) fn debugger_gdb<A: Adapter>() -> ScenarioResult {
    if !have_gdb() {
        return Ok(Outcome::Skip("gdb is not installed".into()));
    }
    let handle = format!(
        "handle SIG{} nostop noprint pass",
        static_call_core::text::park_signal()
    );
    let run = spawn_cell(
        A::NAME,
        "debugger_child",
        &[
            // No "[New Thread …]" / "[Thread … exited]" lines: gdb prints
            // them on the stdout the child writes its outcome line to, and
            // one once landed in the middle of it.
            "gdb",
            "-batch",
            "-nx",
            "-q",
            "-ex",
            "set print thread-events off",
            "-ex",
            &handle,
            "-ex",
            "run",
            "--args",
        ],
        &[],
        Duration::from_secs(300),
    );
    let exited = run.stdout.contains("exited normally");
    match run.outcome.clone() {
        Some(Outcome::Pass(t)) if exited => Ok(Outcome::Pass(format!("under gdb -batch: {t}"))),
        Some(Outcome::Skip(t)) => Ok(Outcome::Skip(t)),
        o => Err(format!(
            "under gdb: outcome {o:?}, gdb {}; gdb said: {}",
            run.status,
            run.stdout
                .lines()
                .chain(run.stderr.lines())
                .filter(|l| !l.starts_with("[New Thread") && !l.starts_with("[Thread"))
                .take(12)
                .collect::<Vec<_>>()
                .join(" | ")
        )),
    }
}

/// Under a tracer: 300 updates of a key whose module sites two threads
/// call, every call checked; no breakpoint of the engine's may be taken
/// (the trap counters stay still).
pub(crate) fn debugger_child<A: Adapter>() -> ScenarioResult {
    let tracer = tracer_pid();
    ensure!(tracer != 0, "not traced (TracerPid 0): run under gdb");
    lib(A::init_with(InitPolicy::Track), "init")?;
    let key = A::add();
    lib(key.update(add1), "update")?;
    let traps0 = text::trap_stats();
    let spin = SpinCaller::start::<A>();
    let m = if A::caps().patches_sites {
        Some(make::<A>(&[key.raw()], 500, 0, false, None)?)
    } else {
        None
    };
    let id = m.as_ref().map(|m| load::<A>(m, "traced")).transpose()?;
    let stop = Arc::new(AtomicBool::new(false));
    let funcs: Vec<usize> = m
        .iter()
        .flat_map(|m| m.funcs.iter().map(|f| f.addr))
        .collect();
    let caller = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut calls, mut wrong) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) && !funcs.is_empty() {
                // SAFETY: generated `extern "C" fn(u64) -> u64`s of a
                // module that stays loaded until this thread is joined.
                let f: extern "C" fn(u64) -> u64 =
                    unsafe { std::mem::transmute(funcs[calls as usize % funcs.len()]) };
                let r = f(40);
                wrong += u64::from(r != 41 && r != 42);
                calls += 1;
            }
            (calls, wrong)
        })
    };
    let spin_key = A::spin();
    let mut failed = None;
    for i in 0..300u64 {
        let f = if i % 2 == 0 { add2 } else { add1 };
        if let Err(e) = key.update(f).and_then(|()| spin_key.update(f)) {
            failed = Some(format!("update {i}: {e}"));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (calls, wrong) = caller.join().map_err(|_| "the caller thread panicked")?;
    let (spins, spin_wrong) = spin.finish()?;
    if let Some(e) = failed {
        return Err(e);
    }
    lib(key.update(add1), "update")?;
    if let Some(id) = id {
        unload::<A>(id)?;
    }
    let traps = text::trap_stats();
    ensure!(
        wrong + spin_wrong == 0,
        "{wrong} of {calls} module calls and {spin_wrong} of {spins} calls of SPIN reached neither target"
    );
    ensure!(
        traps == traps0,
        "breakpoints were taken under the tracer: {traps0:?} -> {traps:?}"
    );
    Ok(Outcome::Pass(format!(
        "traced by {tracer}: 300 updates of two keys while {calls} module calls and {spins} calls of SPIN ran, 0 wrong, no breakpoint taken"
    )))
}
