//! Scale: a 10,000-site module updated in a continuous loop while a
//! separate process watches this one's memory map for a writable and
//! executable mapping (W^X as seen from outside), and the proof that the
//! watch can fail.

use super::*;

/// A thread that calls a generated module's functions in turn with 40
/// (each must return 41 or 42: its key flips between add1 and add2) until
/// stopped.
struct ModuleCaller {
    stop: Arc<AtomicBool>,
    wrong: Arc<AtomicU64>,
    handle: std::thread::JoinHandle<u64>,
}

impl ModuleCaller {
    fn start(m: &crate::genmod::GenModule) -> ModuleCaller {
        let stop = Arc::new(AtomicBool::new(false));
        let wrong = Arc::new(AtomicU64::new(0));
        let funcs: Vec<usize> = m.funcs.iter().map(|f| f.addr).collect();
        let handle = {
            let (stop, wrong) = (stop.clone(), wrong.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: generated `extern "C" fn(u64) -> u64`s of a
                    // module that stays loaded until this thread is joined
                    // (`finish` comes before the unload).
                    let f: extern "C" fn(u64) -> u64 =
                        unsafe { std::mem::transmute(funcs[n as usize % funcs.len()]) };
                    let r = f(40);
                    if r != 41 && r != 42 {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
                n
            })
        };
        ModuleCaller {
            stop,
            wrong,
            handle,
        }
    }

    /// Stops the thread: (calls, wrong results).
    fn finish(self) -> Result<(u64, u64), String> {
        self.stop.store(true, Ordering::Relaxed);
        let calls = self
            .handle
            .join()
            .map_err(|_| "the caller thread panicked")?;
        Ok((calls, self.wrong.load(Ordering::Relaxed)))
    }
}

/// Sites of the generated module.
const WX_SITES: usize = 10_000;
/// Environment of the watcher cell: `pid,address,milliseconds`.
const WX_WATCH_ENV: &str = "STATIC_CALL_WX_WATCH";
/// Fewest samples a watch must take for its 0 to mean something.
const WX_MIN_SAMPLES: u64 = 100;

/// What the watcher process saw.
struct Watch {
    samples: u64,
    /// Samples in which a mapping was writable and executable.
    wx: u64,
    /// Samples that listed the module's code (so it watched the right
    /// process, with the module loaded).
    seen: u64,
    first: String,
}

/// The 10,000-site update loop under an outside W^X watch, by the engine's
/// normal write path (`fallback`: its `mprotect` RWX fallback, which the
/// watch must catch). Returns the watch and (updates, calls made by a
/// concurrent caller of the module's functions).
fn watched_update_loop<A: Adapter>(fallback: bool) -> Result<(Watch, u64, u64), String> {
    lib(A::init_with(InitPolicy::Track), "init")?;
    if fallback {
        text::use_fallbacks_for_tests(true);
        let e = lib(text::engine_info(), "engine_info")?;
        ensure!(!e.proc_mem, "the mprotect fallback is not in use: {e:?}");
    }
    let key = A::add();
    let m = crate::scenarios::modules::make::<A>(&[key.raw()], WX_SITES, 0, false, None)?;
    let id = crate::scenarios::modules::load::<A>(&m, "scale-wx")?;
    lib(key.update(add1), "update")?;
    // A caller of the module's functions: every call must reach add1 or
    // add2 while the loop flips between them.
    let caller = ModuleCaller::start(&m);
    // The watcher runs for a fixed time; the loop runs from before it
    // starts until after it ends, so every sample falls in the loop.
    let ms = 2000 * crate::runner::soak_factor();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        // SAFETY: getpid has no preconditions.
        let arg = format!("{},{},{ms}", unsafe { libc::getpid() }, m.funcs[0].site);
        std::thread::spawn(move || {
            let r = spawn_cell(
                A::NAME,
                "scale_wx_watcher",
                &[],
                &[(WX_WATCH_ENV, &arg)],
                Duration::from_millis(ms + 60_000),
            );
            done.store(true, Ordering::SeqCst);
            r
        })
    };
    let mut updates = 0u64;
    let mut failed = None;
    while !done.load(Ordering::SeqCst) {
        let f = if updates.is_multiple_of(2) {
            add2
        } else {
            add1
        };
        if let Err(e) = key.update(f) {
            failed = Some(format!("update {updates}: {e}"));
            break;
        }
        updates += 1;
    }
    let run = watcher.join().map_err(|_| "the watcher thread panicked")?;
    let (calls, w) = caller.finish()?;
    if let Some(e) = failed {
        return Err(e);
    }
    lib(key.update(add1), "update")?;
    crate::scenarios::modules::unload::<A>(id)?;
    text::use_fallbacks_for_tests(false);
    ensure!(w == 0, "{w} of {calls} calls reached neither target");
    let text = match &run.outcome {
        Some(Outcome::Pass(t)) => t.clone(),
        _ => {
            return Err(format!(
                "the watcher process failed ({}): {:?} {}",
                run.status, run.outcome, run.stderr
            ));
        }
    };
    let field = |name: &str| -> Result<u64, String> {
        text.split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("the watcher said {text:?}, without {name}"))
    };
    let watch = Watch {
        samples: field("samples")?,
        wx: field("wx")?,
        seen: field("seen")?,
        first: text.split_once("first=").map_or("", |f| f.1).to_string(),
    };
    Ok((watch, updates, calls))
}

/// A continuous loop of updates of a key with 10,000 sites (a generated
/// module) while another process reads this one's `/proc/<pid>/maps` as
/// fast as it can: no sample may show a writable and executable mapping,
/// and the watch must have taken many samples, all of them of this process
/// with the module loaded, all during the loop.
pub(crate) fn scale_wx_watch<A: Adapter>() -> ScenarioResult {
    if !A::caps().writes_code() {
        return Ok(Outcome::Skip("writes no code".into()));
    }
    let (w, updates, calls) = watched_update_loop::<A>(false)?;
    ensure!(
        w.samples >= WX_MIN_SAMPLES && w.seen == w.samples,
        "the watch took {} samples ({} with the module), expected at least {WX_MIN_SAMPLES}, all with it",
        w.samples,
        w.seen
    );
    ensure!(updates >= 10, "only {updates} updates during the watch");
    ensure!(
        w.wx == 0,
        "{} of {} samples from outside showed a writable+executable mapping, first: {}",
        w.wx,
        w.samples,
        w.first
    );
    Ok(Outcome::Pass(format!(
        "{updates} updates of {WX_SITES} sites under an outside watch: {} samples of /proc/<pid>/maps, 0 writable+executable; {calls} concurrent calls, 0 wrong",
        w.samples
    )))
}

/// Hidden: the same loop on the engine's `mprotect` RWX fallback, which
/// opens a writable+executable window for every write; fails when the
/// watch sees one.
pub(crate) fn scale_wx_watch_fallback<A: Adapter>() -> ScenarioResult {
    let (w, updates, _) = watched_update_loop::<A>(true)?;
    ensure!(
        w.wx == 0,
        "fallback: {} of {} samples from outside showed a writable+executable mapping ({updates} updates), first: {}",
        w.wx,
        w.samples,
        w.first
    );
    Ok(Outcome::Pass(format!(
        "fallback: {} samples, none writable+executable, in {updates} updates",
        w.samples
    )))
}

/// Proof that [`scale_wx_watch`] can fail: on the `mprotect` RWX fallback
/// (short W+X windows), the same watch catches a window.
pub(crate) fn scale_wx_watch_caught<A: Adapter>() -> ScenarioResult {
    if !A::caps().writes_code() {
        return Ok(Outcome::Skip("writes no code".into()));
    }
    // The fallback's RWX windows are brief: on a loaded machine the watcher
    // can get no CPU while one is open (seen once in 56 updates, 1,946
    // samples). A watch that can see them catches one within three runs.
    let mut missed = Vec::new();
    for attempt in 1..=3 {
        let r = spawn_cell(
            A::NAME,
            "scale_wx_watch_fallback",
            &[],
            &[],
            Duration::from_secs(120 * crate::runner::soak_factor()),
        );
        match &r.outcome {
            Some(Outcome::Fail(m)) if m.contains("writable+executable") => {
                return Ok(Outcome::Pass(format!("caught (run {attempt}): {m}")));
            }
            Some(Outcome::Pass(m)) => missed.push(m.clone()),
            o => {
                return Err(format!(
                    "the fallback run ended otherwise ({}): {o:?} {}",
                    r.status, r.stderr
                ));
            }
        }
    }
    Err(format!(
        "the watch missed the RWX fallback in 3 runs: {}",
        missed.join(" | ")
    ))
}

/// Hidden: the outside watcher. Reads `/proc/<pid>/maps` of the process
/// named by `STATIC_CALL_WX_WATCH` (`pid,address,milliseconds`) in a loop
/// for that long; counts samples, samples with a writable+executable
/// mapping, and samples that list a mapping holding the address.
// Every catalogue entry is generic over the adapter; this one needs none.
#[allow(clippy::extra_unused_type_parameters)]
pub(crate) fn scale_wx_watcher<A: Adapter>() -> ScenarioResult {
    let arg = std::env::var(WX_WATCH_ENV).map_err(|_| format!("no {WX_WATCH_ENV}"))?;
    let p: Vec<u64> = arg.split(',').filter_map(|x| x.parse().ok()).collect();
    let [pid, addr, ms] = p[..] else {
        return Err(format!("{WX_WATCH_ENV}={arg:?}"));
    };
    let until = Instant::now() + Duration::from_millis(ms);
    let (mut samples, mut wx, mut seen, mut first) = (0u64, 0u64, 0u64, String::new());
    while Instant::now() < until {
        let Ok(maps) = static_call_core::maps::mappings_of(pid as u32) else {
            break;
        };
        samples += 1;
        let addr = addr as usize;
        seen += u64::from(maps.iter().any(|m| (m.start..m.end).contains(&addr)));
        if let Some(m) = maps.iter().find(|m| m.write && m.exec) {
            wx += 1;
            if first.is_empty() {
                first = format!("{:x}-{:x} {} {}", m.start, m.end, m.perms, m.name);
            }
        }
    }
    Ok(Outcome::Pass(format!(
        "samples={samples} wx={wx} seen={seen} first={first}"
    )))
}

/// Sites of the module in [`scale_rollback_faults`].
const ROLLBACK_SITES: usize = 2_000;

/// Coalesced writes that fail part way: a key with 2,000 sites in one
/// module (one run) and its trampoline (another), each `pwrite` and each
/// `membarrier` of the batch failing in turn while a thread calls the
/// module. After every failed update the module's whole code (sites and
/// the bytes between them) and the trampoline are byte for byte as before,
/// and every call reached the old or the new target.
pub(crate) fn scale_rollback_faults<A: Adapter>() -> ScenarioResult {
    use static_call_core::text::Fault;
    if !A::caps().writes_code() {
        return Ok(Outcome::Skip("this design writes no code".into()));
    }
    lib(A::init_with(InitPolicy::Track), "init")?;
    let key = A::add();
    lib(key.update(add1), "update")?;
    let m = crate::scenarios::modules::make::<A>(&[key.raw()], ROLLBACK_SITES, 0, false, None)?;
    let id = crate::scenarios::modules::load::<A>(&m, "scale-rollback")?;
    let tramp = key.raw().trampoline().ok_or("no trampoline")?;
    let code = || {
        // SAFETY: the module's code and the trampoline are mapped code.
        unsafe {
            (
                crate::decode::read_code(m.code.addr(), m.code.len()),
                crate::decode::read_code(tramp, 5),
            )
        }
    };
    let caller = ModuleCaller::start(&m);
    let faults: Vec<Fault> = (0..6)
        .map(|after| Fault::ProcMemWrite { after })
        .chain((0..3).map(|after| Fault::Membarrier { after }))
        .collect();
    let mut failed = 0;
    let result = (|| -> Result<(), String> {
        for f in &faults {
            let before = code();
            if !update_under_fault(key, *f, add2, add1)? {
                continue;
            }
            failed += 1;
            let after = code();
            if after != before {
                let at = after
                    .0
                    .iter()
                    .zip(&before.0)
                    .position(|(a, b)| a != b)
                    .map_or("the trampoline".to_string(), |i| {
                        format!("{:#x}", m.code.addr() + i)
                    });
                return Err(format!("{f:?}: the code changed at {at}"));
            }
            ensure!(
                key.query().map(|q| q(40)) == Some(41),
                "{f:?}: the failed update changed the target"
            );
        }
        lib(key.update(add2), "an update after the faults")?;
        check_all(&m, 42)?;
        lib(key.update(add1), "and back")?;
        check_all(&m, 41)
    })();
    let (calls, w) = caller.finish()?;
    result?;
    crate::scenarios::modules::unload::<A>(id)?;
    ensure!(w == 0, "{w} of {calls} calls reached neither target");
    let want = if A::caps().patches_sites { 9 } else { 6 };
    ensure!(
        failed >= want,
        "only {failed} of {} fault points failed an update",
        faults.len()
    );
    Ok(Outcome::Pass(format!(
        "{failed} failed updates of {ROLLBACK_SITES} sites + trampoline (each pwrite and membarrier failing in turn): module code and trampoline byte for byte as before each time; {calls} concurrent calls, 0 wrong"
    )))
}

/// Every function of `m` returns `want` for 40.
fn check_all(m: &crate::genmod::GenModule, want: u64) -> Result<(), String> {
    for f in &m.funcs {
        // SAFETY: the module is loaded and mapped; it has no init region.
        let got = unsafe { f.call(40) };
        ensure!(got == want, "site {:#x}: {got}, expected {want}", f.site);
    }
    Ok(())
}
