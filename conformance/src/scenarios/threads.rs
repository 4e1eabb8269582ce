//! Threads: the torture run and its proof that it can fail, concurrent
//! updaters, the engine fallbacks, fork.

#[allow(unused_imports)]
use super::*;

pub(crate) struct TortureFigures {
    pub(crate) threads: usize,
    pub(crate) calls: u64,
    /// Calls that returned 0 (RET0 among the targets).
    pub(crate) zeros: u64,
    pub(crate) updates: u64,
    pub(crate) wrong: u64,
    pub(crate) emulated: u64,
    pub(crate) restarted: u64,
    pub(crate) secs: f64,
}

/// Callers of `SPIN` (two, or `STATIC_CALL_THREADS`) while the main thread
/// flips it between two places whose rel32 differ in every byte — and,
/// `with_ret0`, RET0 between them. Every call must return one of the
/// targets' results.
pub(crate) fn torture_run<A: Adapter>(
    duration: Duration,
    with_ret0: bool,
) -> Result<TortureFigures, String> {
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
    // Two callers by default; STATIC_CALL_THREADS=n for more on a bigger
    // machine.
    let threads = std::env::var("STATIC_CALL_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n >= 1)
        .unwrap_or(2);
    let stop = Arc::new(AtomicBool::new(false));
    let (wrong, calls, zeros) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, wrong, calls, zeros) =
                (stop.clone(), wrong.clone(), calls.clone(), zeros.clone());
            std::thread::spawn(move || {
                let (mut n, mut bad, mut zero) = (0u64, 0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    for i in 1..=1000u64 {
                        let r = A::call_spin(i);
                        if r == 0 && with_ret0 {
                            zero += 1;
                        } else if r != i + 1 && r != i + 2 {
                            bad += 1;
                        }
                    }
                    n += 1000;
                }
                calls.fetch_add(n, Ordering::SeqCst);
                wrong.fetch_add(bad, Ordering::SeqCst);
                zeros.fetch_add(zero, Ordering::SeqCst);
            })
        })
        .collect();
    let traps0 = text::trap_stats();
    let start = Instant::now();
    let mut updates = 0u64;
    let mut err = None;
    // RET0 (None) between the two functions, when asked for.
    let cycle: &[Option<AddFn>] = if with_ret0 {
        &[Some(fb), None, Some(fa), None]
    } else {
        &[Some(fb), Some(fa)]
    };
    while start.elapsed() < duration {
        for f in cycle {
            let r = match f {
                Some(f) => A::spin().update(*f),
                None => A::spin().update_ret0(),
            };
            if let Err(e) = r {
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
        zeros: zeros.load(Ordering::SeqCst),
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
pub(crate) fn torture<A: Adapter>() -> ScenarioResult {
    let f = torture_run::<A>(Duration::from_secs(torture_secs()), false)?;
    ensure!(f.calls > 0 && f.updates > 0, "no calls or no updates");
    ensure!(f.wrong == 0, "{} wrong results", f.wrong);
    // Where updates write code, callers must have run into the protocol's
    // breakpoints: a run that never did proved nothing about them.
    ensure!(
        !A::caps().writes_code() || f.emulated + f.restarted > 0,
        "no caller ever hit a breakpoint in {} updates: the int3 path was not exercised",
        f.updates
    );
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
pub(crate) fn torture_naive<A: Adapter>() -> ScenarioResult {
    // SAFETY: this child process exists to show the naive patcher breaks.
    unsafe { text::use_naive_patcher_for_tests(true) };
    let f = torture_run::<A>(Duration::from_secs(5), false)?;
    ensure!(f.wrong == 0, "naive patcher: {} wrong results", f.wrong);
    Ok(Outcome::Pass(format!(
        "naive patcher survived {} updates",
        f.updates
    )))
}

/// Proof that the torture scenario can fail: with the test-only naive
/// patcher, the same run crashes or computes wrong results.
pub(crate) fn naive_patcher_caught<A: Adapter>() -> ScenarioResult {
    if !A::caps().writes_code() {
        return Ok(Outcome::Skip(
            "nothing is patched: an update is one atomic store".into(),
        ));
    }
    let r = spawn_cell(A::NAME, "torture_naive", &[], &[], Duration::from_secs(60));
    // Only a torn instruction's symptoms count: death by a fault signal,
    // or wrong results. A timeout, a failed spawn or any other failure is
    // not a catch.
    const TORN: [i32; 4] = [libc::SIGSEGV, libc::SIGILL, libc::SIGTRAP, libc::SIGBUS];
    match (&r.outcome, r.signal) {
        (_, Some(sig)) if TORN.contains(&sig) => {
            Ok(Outcome::Pass(format!("caught: child {}", r.status)))
        }
        (Some(Outcome::Fail(m)), None) if m.contains("wrong results") => {
            Ok(Outcome::Pass(format!("caught: {m}")))
        }
        (Some(Outcome::Pass(m)), _) => Err(format!("torture did not catch the naive patcher: {m}")),
        _ => Err(format!(
            "the naive-patcher child ended in a way that proves nothing: {}; {}",
            r.status,
            r.stderr.lines().last().unwrap_or("")
        )),
    }
}

/// The engine's fallbacks (an mprotect window per write, mprotect
/// shootdowns instead of membarrier) under the torture run.
pub(crate) fn fallback_engine<A: Adapter>() -> ScenarioResult {
    if !A::caps().writes_code() {
        return Ok(Outcome::Skip("writes no code".into()));
    }
    text::use_fallbacks_for_tests(true);
    let e = lib(text::engine_info(), "engine_info")?;
    ensure!(!e.proc_mem && !e.membarrier, "fallbacks not in use: {e:?}");
    let f = torture_run::<A>(Duration::from_secs(torture_secs() / 2), false)?;
    ensure!(f.wrong == 0, "{} wrong results", f.wrong);
    let maps = static_call_core::maps::mappings().map_err(|e| e.to_string())?;
    ensure!(
        !maps.iter().any(|m| m.write && m.exec),
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
pub(crate) fn concurrent_updaters<A: Adapter>() -> ScenarioResult {
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

/// A forked child updates its own code, never its parent's (the engine
/// reopens `/proc/self/mem` in the child).
pub(crate) fn fork_child<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update in the parent")?;
    fork_and_check(|| A::add().update(add3).is_ok() && A::call_add(2) == 5)
        .map_err(|e| format!("the child's update: {e}"))?;
    ensure!(A::call_add(2) == 4, "the child's update changed the parent");
    expect_patched::<A, _>(A::add(), Some(addr_of(add2)))?;
    lib(A::add().update(add1), "update in the parent after fork")?;
    ensure!(A::call_add(2) == 3, "parent update after fork");
    Ok(Outcome::Pass(
        "child updated its own code; parent's sites unchanged and still updatable".into(),
    ))
}

/// A system call that fails part way through an update (as one refused by
/// a seccomp filter installed after `init()` would): the update returns
/// the error, every slot holds its old instruction again, and a thread
/// calling the key all along never dies and never reaches a wrong target.
/// Each `pwrite` of the batch and each `membarrier` is made to fail in
/// turn, and keeps failing during the rollback.
pub(crate) fn rollback_faults<A: Adapter>() -> ScenarioResult {
    use static_call_core::text::Fault;
    if !A::caps().writes_code() {
        return Ok(Outcome::Skip("this design writes no code".into()));
    }
    lib(A::init_with(InitPolicy::Track), "init")?;
    let key = A::spin();
    let places = places_of::<A, AddFn>(key);
    let caller = SpinCaller::start::<A>();
    let calls = caller.calls();
    let writes = 3 * places.len() as u64;
    let faults: Vec<Fault> = (0..writes)
        .map(|after| Fault::ProcMemWrite { after })
        .chain((0..3).map(|after| Fault::Membarrier { after }))
        .collect();
    let mut failed = 0;
    // Lets the caller make some calls (it must be running through every
    // phase of the test, not only after it).
    let progress = |calls: &AtomicU64| {
        let (start, t) = (calls.load(Ordering::Relaxed), Instant::now());
        while calls.load(Ordering::Relaxed) < start + 1000 && t.elapsed() < Duration::from_secs(2) {
            std::thread::yield_now();
        }
    };
    let result = (|| -> Result<(), String> {
        for f in &faults {
            progress(calls);
            let before: Vec<Insn> = places.iter().map(|&p| insn(p)).collect();
            if !update_under_fault(key, *f, add2, add1)? {
                continue;
            }
            failed += 1;
            for (&p, b) in places.iter().zip(&before) {
                expect_at(p, b, &format!("after the failed update ({f:?})"))?;
            }
            ensure!(
                A::call_spin(1) == 2 && key.query().map(|q| q(1)) == Some(2),
                "{f:?}: the failed update changed the target"
            );
        }
        lib(key.update(add2), "an update after the faults")?;
        ensure!(A::call_spin(1) == 3, "the update after the faults");
        lib(key.update(add1), "and back")?;
        Ok(())
    })();
    let (n, w) = caller.finish()?;
    result?;
    ensure!(w == 0, "{w} calls reached a wrong target");
    ensure!(
        failed >= 4,
        "only {failed} of {} fault points failed an update",
        faults.len()
    );
    Ok(Outcome::Pass(format!(
        "{failed} failed updates ({} slots; each pwrite and membarrier failing in turn, and during the rollback): code as before each time, {} concurrent calls, 0 wrong",
        places.len(),
        n
    )))
}

/// Results of updates made from a signal handler: 1 ok, 2 refused as
/// re-entrant, 3 any other error.
static HANDLER_OK: AtomicU64 = AtomicU64::new(0);
static HANDLER_REENTRANT: AtomicU64 = AtomicU64::new(0);
static HANDLER_OTHER: AtomicU64 = AtomicU64::new(0);
static HANDLER_KEY: std::sync::atomic::AtomicPtr<StaticCall<AddFn>> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

extern "C" fn update_from_handler(_: libc::c_int) {
    let k = HANDLER_KEY.load(Ordering::SeqCst);
    if k.is_null() {
        return;
    }
    // SAFETY: set to a `&'static StaticCall` before the timer started.
    let key: &'static StaticCall<AddFn> = unsafe { &*k };
    match key.update(add3) {
        Ok(()) => HANDLER_OK.fetch_add(1, Ordering::SeqCst),
        Err(Error::Reentrant { .. }) => HANDLER_REENTRANT.fetch_add(1, Ordering::SeqCst),
        Err(_) => HANDLER_OTHER.fetch_add(1, Ordering::SeqCst),
    };
}

/// `update()` from a signal handler that interrupts an update on the same
/// thread is refused with `Error::Reentrant` instead of deadlocking; from a
/// handler that interrupts other code it works. A fast interval timer
/// interrupts a thread that does nothing but update.
pub(crate) fn update_in_signal_handler<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let key = A::add();
    HANDLER_KEY.store(key as *const _ as *mut _, Ordering::SeqCst);
    // SAFETY: installs a handler for SIGALRM (which this cell's process
    // does not otherwise use) and starts a 50 µs interval timer.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = update_from_handler as *const () as usize;
        libc::sigemptyset(&mut act.sa_mask);
        ensure!(
            libc::sigaction(libc::SIGALRM, &act, std::ptr::null_mut()) == 0,
            "sigaction"
        );
        let t = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 50,
            },
            it_value: libc::timeval {
                tv_sec: 0,
                tv_usec: 50,
            },
        };
        ensure!(
            libc::setitimer(libc::ITIMER_REAL, &t, std::ptr::null_mut()) == 0,
            "setitimer"
        );
    }
    let t = Instant::now();
    let mut updates = 0u64;
    // Only updates run here: the handler never interrupts an allocation
    // outside one (an update allocates inside, where the handler is
    // refused before it allocates).
    while t.elapsed() < Duration::from_secs(1) || HANDLER_REENTRANT.load(Ordering::SeqCst) == 0 {
        if t.elapsed() > Duration::from_secs(20) {
            break;
        }
        let f = if updates.is_multiple_of(2) {
            add2
        } else {
            add1
        };
        match key.update(f) {
            Ok(()) => updates += 1,
            Err(e) => return Err(format!("update in the loop: {e}")),
        }
    }
    // SAFETY: stops the timer.
    unsafe {
        let t: libc::itimerval = std::mem::zeroed();
        libc::setitimer(libc::ITIMER_REAL, &t, std::ptr::null_mut());
    }
    HANDLER_KEY.store(std::ptr::null_mut(), Ordering::SeqCst);
    let (ok, re, other) = (
        HANDLER_OK.load(Ordering::SeqCst),
        HANDLER_REENTRANT.load(Ordering::SeqCst),
        HANDLER_OTHER.load(Ordering::SeqCst),
    );
    ensure!(
        other == 0,
        "{other} updates from the handler failed otherwise"
    );
    ensure!(
        re > 0,
        "no signal landed inside an update in 20 s ({ok} outside)"
    );
    lib(key.update(add1), "update after the timer")?;
    ensure!(A::call_add(1) == 2, "a call after the timer");
    Ok(Outcome::Pass(format!(
        "{updates} updates under a 50 µs timer: {re} handler updates refused as re-entrant, {ok} succeeded, no deadlock"
    )))
}

/// `fork` while another thread updates in a loop: each child can update
/// and call (fork waits for the update in flight), never hangs.
pub(crate) fn fork_during_updates<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let stop = Arc::new(AtomicBool::new(false));
    let updater = {
        let stop = stop.clone();
        std::thread::spawn(move || -> Result<u64, String> {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let f = if n.is_multiple_of(2) { add2 } else { add1 };
                A::spin().update(f).map_err(|e| e.to_string())?;
                n += 1;
            }
            Ok(n)
        })
    };
    let mut children = 0;
    let result = (|| -> Result<(), String> {
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(2));
            fork_and_check(|| {
                A::add().update(add3).is_ok()
                    && A::call_add(2) == 5
                    && A::spin().update(add3).is_ok()
                    && A::call_spin(2) == 5
            })
            .map_err(|e| format!("child {children}: {e}"))?;
            children += 1;
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    let n = updater.join().map_err(|_| "the updater panicked")??;
    result?;
    Ok(Outcome::Pass(format!(
        "{children} children forked while another thread made {n} updates: each updated and called its own code"
    )))
}

static STEP_TRAPS: AtomicU64 = AtomicU64::new(0);
static INT3_TRAPS: AtomicU64 = AtomicU64::new(0);
static PLANTED: AtomicU64 = AtomicU64::new(0);

/// The program's own SIGTRAP handler, installed before the library's: it
/// ends single-stepping (clears TF) and serves its own `int3` (planted at
/// the end of a page) by returning from it.
extern "C" fn own_sigtrap(_: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    const TRAP_TRACE: libc::c_int = 2;
    // SAFETY: valid for an SA_SIGINFO handler.
    let (code, uc) = unsafe { ((*info).si_code, &mut *(ctx as *mut libc::ucontext_t)) };
    let g = &mut uc.uc_mcontext.gregs;
    if code == TRAP_TRACE {
        g[libc::REG_EFL as usize] &= !0x100;
        STEP_TRAPS.fetch_add(1, Ordering::SeqCst);
    } else if g[libc::REG_RIP as usize] as u64 == PLANTED.load(Ordering::SeqCst) + 1 {
        // Return from the planted `int3` as a `ret` would.
        let sp = g[libc::REG_RSP as usize] as usize;
        // SAFETY: the planted code was entered by a call: the return
        // address is on top of the stack.
        g[libc::REG_RIP as usize] = unsafe { *(sp as *const i64) };
        g[libc::REG_RSP as usize] = (sp + 8) as i64;
        INT3_TRAPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// The library's SIGTRAP handler takes only its own traps: a single step
/// right after an instruction whose last byte is `e8` (which looks like the
/// start of a `call` of ours) and a foreign `int3` in the last byte before
/// a `PROT_NONE` page both go to the program's own handler, untouched,
/// without the library reading memory that is not mapped.
pub(crate) fn foreign_traps<A: Adapter>() -> ScenarioResult {
    // SAFETY: installs the program's handler before the library's (which
    // init() installs, chaining to it).
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = own_sigtrap as *const () as usize;
        act.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut act.sa_mask);
        ensure!(
            libc::sigaction(libc::SIGTRAP, &act, std::ptr::null_mut()) == 0,
            "sigaction"
        );
    }
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(
        A::add().update(add2),
        "an update (the library's handler is in place)",
    )?;
    // 1. Single step over `mov al, 0xe8`, followed by NOPs: at the trap,
    // the byte before RIP is e8 and the next four make a whole `call`.
    // SAFETY: sets TF for one instruction; the program's handler clears it.
    unsafe {
        std::arch::asm!(
            "pushfq",
            "or qword ptr [rsp], 0x100",
            "popfq",
            "mov al, 0xe8",
            "nop", "nop", "nop", "nop", "nop",
            out("rax") _,
        );
    }
    ensure!(
        STEP_TRAPS.load(Ordering::SeqCst) >= 1,
        "the single-step trap did not reach the program's handler"
    );
    // 2. `int3` in the last byte of an executable page followed by a
    // PROT_NONE page.
    let page = 4096usize;
    // SAFETY: a fresh anonymous mapping of two pages, ours alone.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    ensure!(base != libc::MAP_FAILED, "mmap");
    let base = base as usize;
    let planted = base + page - 1;
    // SAFETY: our own mapping: write the int3, then make the first page
    // executable (not writable) and the second inaccessible.
    unsafe {
        *(planted as *mut u8) = 0xcc;
        ensure!(
            libc::mprotect(base as *mut _, page, libc::PROT_READ | libc::PROT_EXEC) == 0
                && libc::mprotect((base + page) as *mut _, page, libc::PROT_NONE) == 0,
            "mprotect"
        );
    }
    PLANTED.store(planted as u64, Ordering::SeqCst);
    // SAFETY: the planted byte is an `int3` the program's handler returns
    // from as a `ret`.
    let f: extern "C" fn() = unsafe { std::mem::transmute(planted) };
    let t = Instant::now();
    f();
    let foreign = t.elapsed();
    ensure!(
        INT3_TRAPS.load(Ordering::SeqCst) == 1,
        "the foreign int3 did not reach the program's handler"
    );
    // The library's own traps still work.
    lib(A::add().update(add1), "an update after the foreign traps")?;
    ensure!(A::call_add(1) == 2, "a call after the foreign traps");
    // SAFETY: our own mapping, no longer used.
    unsafe { libc::munmap(base as *mut _, 2 * page) };
    Ok(Outcome::Pass(format!(
        "a single step after `e8` and an int3 before a PROT_NONE page went to the program's handler ({:.1} us for the int3)",
        foreign.as_secs_f64() * 1e6
    )))
}
