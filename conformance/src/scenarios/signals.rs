//! Signal masks and threads: no thread can block `SIGTRAP` through libc
//! (the library takes the mask-setting functions, `static_call_core::signals`),
//! so updates ask no thread anything and cost the same with 1,000 threads.
//!
//! * `sigfillset_handler`: a handler installed with a full `sa_mask`
//!   calls the key while another thread updates it (the check-then-act
//!   race of the old `/proc` scan killed this process).
//! * `parked_threads`: 1,000 threads that inherited an all-signals-blocked
//!   mask (the "block everything, then spawn workers" idiom) do not stop
//!   an update.
//! * `sigtrap_blocked_thread`: a thread that asks `pthread_sigmask` to
//!   block `SIGTRAP` keeps calling correctly through updates.
//! * `sigtrap_raw_syscall`: the documented limit — a raw `rt_sigprocmask`
//!   is not seen by the library; the opt-in diagnostic names the thread,
//!   and an update that puts a breakpoint in its way kills the process.

#[allow(unused_imports)]
use super::*;

/// The calling thread's blocked mask as the kernel has it (a raw
/// `rt_sigprocmask`, which the library does not take; async-signal-safe).
pub(crate) fn kernel_mask() -> u64 {
    let mut old = 0u64;
    // SAFETY: queries this thread's mask into an 8-byte buffer.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            std::ptr::null::<u64>(),
            &mut old,
            8,
        )
    };
    old
}

const TRAP_BIT: u64 = 1 << (libc::SIGTRAP - 1);

fn sigset(sigs: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: zeroed is a valid set; filled with valid signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn gettid() -> libc::pid_t {
    // SAFETY: no preconditions.
    unsafe { libc::gettid() }
}

/// Flips `SPIN` between `add1` and `add2` for `d`; returns the updates.
fn flip_for<A: Adapter>(d: Duration) -> Result<u64, String> {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < d {
        let f = if n.is_multiple_of(2) { add2 } else { add1 };
        lib(A::spin().update(f), "update")?;
        n += 1;
    }
    lib(A::spin().update(add1), "update back")?;
    Ok(n)
}

static IN_HANDLER: AtomicU64 = AtomicU64::new(0);
static HANDLER_CALLS: AtomicU64 = AtomicU64::new(0);
static HANDLER_WRONG: AtomicU64 = AtomicU64::new(0);
static HANDLER_TRAP_BLOCKED: AtomicU64 = AtomicU64::new(0);

/// `SIGUSR1` handler (installed with every signal in its `sa_mask`): calls
/// `SPIN` 100 times; every result must be `i + 1` or `i + 2`.
extern "C" fn calls_in_handler<A: Adapter>(_: libc::c_int) {
    IN_HANDLER.fetch_add(1, Ordering::Relaxed);
    if kernel_mask() & TRAP_BIT != 0 {
        HANDLER_TRAP_BLOCKED.fetch_add(1, Ordering::Relaxed);
    }
    for i in 0..100u64 {
        let r = A::call_spin(i);
        if r != i + 1 && r != i + 2 {
            HANDLER_WRONG.fetch_add(1, Ordering::Relaxed);
        }
    }
    HANDLER_CALLS.fetch_add(100, Ordering::Relaxed);
}

/// A busy thread whose `SIGUSR1` handler — installed with `sigfillset`
/// as its `sa_mask`, the common idiom — calls the key 100 times, sent
/// `SIGUSR1` at 10 kHz or more during 2 s of updates: no death, no wrong
/// result, and the handler never ran with `SIGTRAP` blocked.
pub(crate) fn sigfillset_handler<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    // SAFETY: installs a SIGUSR1 handler (unused otherwise in this cell's
    // process) whose mask is every signal.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = calls_in_handler::<A> as *const () as usize;
        act.sa_flags = libc::SA_RESTART;
        libc::sigfillset(&mut act.sa_mask);
        ensure!(
            libc::sigaction(libc::SIGUSR1, &act, std::ptr::null_mut()) == 0,
            "sigaction(SIGUSR1)"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _ = tx.send(gettid());
            let (mut n, mut bad) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let r = A::call_spin(7);
                if r != 8 && r != 9 {
                    bad += 1;
                }
                n += 1;
            }
            (n, bad)
        })
    };
    let tid = rx.recv().map_err(|e| e.to_string())?;
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // SAFETY: a 1 ns timer slack for this thread, so its short
            // sleeps are short; getpid has no preconditions.
            let pid = unsafe {
                libc::prctl(libc::PR_SET_TIMERSLACK, 1u64);
                libc::getpid()
            };
            let mut sent = 0u64;
            let t = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: sends SIGUSR1 to the busy thread of this process.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) };
                sent += 1;
                std::thread::sleep(Duration::from_micros(20));
            }
            (sent, t.elapsed().as_secs_f64())
        })
    };
    let updates = flip_for::<A>(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (sent, secs) = sender.join().map_err(|_| "the sender panicked")?;
    let (calls, bad) = busy.join().map_err(|_| "the busy thread panicked")?;
    let updates = updates?;
    let (handled, hcalls, hwrong, blocked) = (
        IN_HANDLER.load(Ordering::Relaxed),
        HANDLER_CALLS.load(Ordering::Relaxed),
        HANDLER_WRONG.load(Ordering::Relaxed),
        HANDLER_TRAP_BLOCKED.load(Ordering::Relaxed),
    );
    let rate = sent as f64 / secs;
    ensure!(
        bad == 0,
        "{bad} of {calls} calls of the busy thread were wrong"
    );
    ensure!(
        hwrong == 0,
        "{hwrong} of {hcalls} calls in the handler were wrong"
    );
    ensure!(
        blocked == 0,
        "the handler ran {blocked} times with SIGTRAP blocked"
    );
    ensure!(
        sent * 1000 >= (secs * 1000.0) as u64 * 10_000,
        "only {rate:.0} signals/s were sent (want >= 10 kHz)"
    );
    ensure!(handled > 1000, "the handler ran only {handled} times");
    Ok(Outcome::Pass(format!(
        "{updates} updates in 2 s; SIGUSR1 at {:.1} kHz to a busy thread, handler (sa_mask = all) ran {handled} times, {hcalls} calls in it, {calls} outside: 0 wrong, never with SIGTRAP blocked",
        rate / 1000.0
    )))
}

/// 1,000 threads spawned after their creator blocked every signal with
/// `pthread_sigmask` (they inherit its mask) and parked on a condition
/// variable: updates succeed, and each thread, woken, calls the key and
/// gets the new target.
pub(crate) fn parked_threads<A: Adapter>() -> ScenarioResult {
    const THREADS: usize = 1000;
    lib(A::init_with(InitPolicy::Track), "init")?;
    let gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let spawner = {
        let gate = gate.clone();
        std::thread::spawn(
            move || -> Result<Vec<std::thread::JoinHandle<u64>>, String> {
                let all = {
                    // SAFETY: zeroed is a valid set; filled.
                    let mut s: libc::sigset_t = unsafe { std::mem::zeroed() };
                    // SAFETY: as above.
                    unsafe { libc::sigfillset(&mut s) };
                    s
                };
                // SAFETY: blocks every signal in this thread (the library
                // keeps SIGTRAP out).
                unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut()) };
                (0..THREADS)
                    .map(|_| {
                        let gate = gate.clone();
                        std::thread::Builder::new()
                            .stack_size(64 * 1024)
                            .spawn(move || {
                                let (m, cv) = &*gate;
                                let mut go = m.lock().unwrap_or_else(|e| e.into_inner());
                                while !*go {
                                    go = cv.wait(go).unwrap_or_else(|e| e.into_inner());
                                }
                                drop(go);
                                (kernel_mask() & TRAP_BIT) | (A::call_add(1) << 8)
                            })
                            .map_err(|e| format!("spawn: {e}"))
                    })
                    .collect()
            },
        )
    };
    let handles = spawner.join().map_err(|_| "the spawner panicked")??;
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0);
    let mut updates = 0;
    for f in [add2, add3, add2, add3] {
        lib(
            A::add().update(f),
            &format!("update with {threads} threads"),
        )?;
        updates += 1;
    }
    {
        let (m, cv) = &*gate;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
    let mut wrong = 0;
    let mut blocked = 0;
    for h in handles {
        let r = h.join().map_err(|_| "a parked thread panicked")?;
        blocked += (r & TRAP_BIT != 0) as u32;
        wrong += (r >> 8 != 4) as u32;
    }
    lib(A::add().update(add1), "back")?;
    ensure!(threads > THREADS, "only {threads} threads were seen");
    ensure!(wrong == 0, "{wrong} woken threads got a wrong result");
    ensure!(blocked == 0, "{blocked} threads had SIGTRAP blocked");
    Ok(Outcome::Pass(format!(
        "{updates} updates with {threads} threads (1,000 parked, spawned with every signal blocked): all succeeded, each woken thread called the new target"
    )))
}

/// A thread that blocks `SIGTRAP` with `pthread_sigmask` (and `sigprocmask`)
/// keeps calling the key through 1 s of updates: the request succeeds
/// without blocking it (the kernel's mask says so), and no call is wrong.
pub(crate) fn sigtrap_blocked_thread<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    let stop = Arc::new(AtomicBool::new(false));
    let blocker = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("sc-blocks-trap".into())
            .spawn(move || -> Result<(u64, u64), String> {
                let set = sigset(&[libc::SIGTRAP, libc::SIGUSR2]);
                // SAFETY: asks to block SIGTRAP and SIGUSR2 in this thread,
                // then SIGTRAP again through sigprocmask.
                let (a, b) = unsafe {
                    (
                        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
                        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
                    )
                };
                ensure!(a == 0 && b == 0, "pthread_sigmask/sigprocmask failed");
                let m = kernel_mask();
                ensure!(m & TRAP_BIT == 0, "SIGTRAP is blocked (kernel mask {m:#x})");
                ensure!(
                    m & (1 << (libc::SIGUSR2 - 1)) != 0,
                    "SIGUSR2 is not blocked (kernel mask {m:#x}): the call did nothing"
                );
                let (mut n, mut bad) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let r = A::call_spin(n);
                    if r != n + 1 && r != n + 2 {
                        bad += 1;
                    }
                    n += 1;
                }
                Ok((n, bad))
            })
            .map_err(|e| e.to_string())?
    };
    let updates = flip_for::<A>(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (calls, bad) = blocker
        .join()
        .map_err(|_| "the blocking thread panicked")??;
    let updates = updates?;
    ensure!(bad == 0, "{bad} of {calls} calls were wrong");
    lib(
        static_call_core::text::check_sigtrap_masks(),
        "the diagnostic",
    )?;
    Ok(Outcome::Pass(format!(
        "a thread that blocked SIGTRAP with pthread_sigmask and sigprocmask (granted without SIGTRAP, SIGUSR2 blocked) made {calls} calls through {updates} updates: 0 wrong"
    )))
}

/// The documented limit: a thread that blocks `SIGTRAP` with a raw
/// `rt_sigprocmask` system call is not seen by the library. The opt-in
/// diagnostic `check_sigtrap_masks()` names it; in a forked child, updates
/// while such a thread calls the key kill the process with `SIGTRAP` (what
/// the kernel does to a blocked breakpoint trap) — for an implementation
/// that writes code; one that writes none leaves the child alive.
pub(crate) fn sigtrap_raw_syscall<A: Adapter>() -> ScenarioResult {
    lib(A::init_with(InitPolicy::Track), "init")?;
    // Blocks SIGTRAP with the raw system call, then runs `f`.
    fn raw_blocked<T>(f: impl FnOnce() -> T) -> T {
        let set = TRAP_BIT;
        // SAFETY: blocks SIGTRAP in this thread, bypassing libc.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                &set,
                std::ptr::null_mut::<u64>(),
                8,
            )
        };
        f()
    }
    // 1. The diagnostic names the thread.
    let (tx, rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::Builder::new()
        .name("sc-raw-mask".into())
        .spawn(move || {
            raw_blocked(|| {
                let _ = tx.send(gettid());
                let _ = release_rx.recv();
            })
        })
        .map_err(|e| e.to_string())?;
    let tid = rx.recv().map_err(|e| e.to_string())?;
    let found = static_call_core::text::check_sigtrap_masks();
    let _ = release_tx.send(());
    t.join().map_err(|_| "the raw-mask thread panicked")?;
    match found {
        Err(Error::TrapBlocked { tid: t, ref name }) => {
            ensure!(
                t == tid && name == "sc-raw-mask",
                "the diagnostic named {t} ({name}), not {tid}"
            );
        }
        other => {
            return Err(format!(
                "the diagnostic returned {other:?}, expected TrapBlocked"
            ));
        }
    }
    // 2. What an update does then, in a child.
    // SAFETY: the child spawns a thread, updates and `_exit`s; an alarm
    // ends it if it hangs.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child: a 10 s alarm, and no core file when the
        // expected SIGTRAP comes.
        unsafe {
            libc::alarm(10);
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        std::thread::spawn(move || {
            raw_blocked(|| {
                while !s2.load(Ordering::Relaxed) {
                    std::hint::black_box(A::call_spin(1));
                }
            })
        });
        let _ = flip_for::<A>(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        // SAFETY: leave the child at once.
        unsafe { libc::_exit(0) };
    }
    ensure!(pid > 0, "fork failed");
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let killed_by_trap = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTRAP;
    if A::caps().writes_code() {
        ensure!(
            killed_by_trap,
            "the child was not killed by SIGTRAP (status {status:#x})"
        );
        Ok(Outcome::Pass(format!(
            "raw rt_sigprocmask: check_sigtrap_masks() named thread {tid} (sc-raw-mask); a child updating while such a thread calls the key was killed by SIGTRAP (the documented limit)"
        )))
    } else {
        ensure!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child failed (status {status:#x})"
        );
        Ok(Outcome::Pass(format!(
            "raw rt_sigprocmask: check_sigtrap_masks() named thread {tid}; {} writes no code, so the child survived 3 s of updates",
            A::NAME
        )))
    }
}

/// Shared objects: the linker exports the library's definitions of the
/// mask-setting functions from the executable without being asked (lld,
/// Rust's default linker here, exports a definition that preempts one of a
/// shared library on the link line, libc's), so `guard()` reports shared
/// objects covered, a call through the global scope (what a shared
/// library's PLT finds) keeps `SIGTRAP` unblocked, and so does a call from
/// the code of the test shared object, which links its own copy of the
/// library (its own definitions are preempted by the executable's).
pub(crate) fn sigmask_shared_objects<A: Adapter>() -> ScenarioResult {
    if !A::LISTED {
        return Ok(Outcome::Skip(
            "the test shared object is built from the implementations list; this implementation is on no list".into(),
        ));
    }
    let so = build_shared_object()?;
    spawn_cell(
        A::NAME,
        "sigmask_shared_objects_child",
        &[],
        &[("STATIC_CALL_TEST_SO", so.to_str().unwrap_or(""))],
        Duration::from_secs(60),
    )
    .result()
}

pub(crate) fn sigmask_shared_objects_child<A: Adapter>() -> ScenarioResult {
    let path = std::env::var("STATIC_CALL_TEST_SO").map_err(|_| "STATIC_CALL_TEST_SO unset")?;
    let g = static_call_core::signals::guard();
    ensure!(g.program && g.shared_objects, "guard: {g:?}");
    // Through the global scope.
    let global = std::thread::spawn(|| {
        // SAFETY: looks pthread_sigmask up as a shared library's PLT would,
        // and blocks SIGTRAP through it in this thread.
        unsafe {
            let f = libc::dlsym(libc::RTLD_DEFAULT, c"pthread_sigmask".as_ptr());
            let f: extern "C" fn(
                libc::c_int,
                *const libc::sigset_t,
                *mut libc::sigset_t,
            ) -> libc::c_int = std::mem::transmute(f);
            let set = sigset(&[libc::SIGTRAP]);
            f(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        kernel_mask()
    })
    .join()
    .map_err(|_| "thread panicked")?;
    ensure!(
        global & TRAP_BIT == 0,
        "through RTLD_DEFAULT SIGTRAP was blocked: {global:#x}"
    );
    lib(A::init_with(InitPolicy::Track), "init")?;
    // SAFETY: our own test module, built from this workspace.
    let so = lib(
        unsafe { A::load_shared_object(&path) },
        "load_shared_object",
    )?;
    let f = so
        .symbol(c"so_block_sigtrap_mask")
        .ok_or("so_block_sigtrap_mask missing")?;
    // SAFETY: the module defines it as extern "C" fn() -> u64.
    let f: extern "C" fn() -> u64 = unsafe { std::mem::transmute(f) };
    let m = f();
    // SAFETY: nothing of the module is used after close.
    lib(unsafe { so.close() }, "close")?;
    ensure!(
        m & (1 << (libc::SIGUSR2 - 1)) != 0,
        "the module's call blocked nothing: {m:#x}"
    );
    ensure!(
        m & TRAP_BIT == 0,
        "the module's pthread_sigmask blocked SIGTRAP: {m:#x}"
    );
    Ok(Outcome::Pass(format!(
        "guard {g:?}; pthread_sigmask through RTLD_DEFAULT and from the test shared object's own code (mask {m:#x}) left SIGTRAP unblocked"
    )))
}
