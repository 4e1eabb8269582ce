//! Wall time: call cost (hot, 6 arguments, 1,024 sites, conditional
//! none; and hot-1arg again on a thread with indirect-branch speculation
//! disabled) in interleaved rounds with an A/A control
//! ([`static_call_bench::rounds`]); update latency against the key's site
//! count (idle and with two threads calling) and a 1-site update among
//! 100,000 foreign sites as single updates timed one by one (median, p99,
//! max, and the first, cold update apart); module load and unload and the
//! test shared object's open and close with criterion (its mean); the
//! thread axis of update latency ([`static_call_bench::threads`]: a 1-site
//! update with other threads parked or calling the key, a batch of 100 keys
//! against 100 updates one by one); a conditional key's switch with 1 to
//! 2,000 sites, `update_cond` against the `static-keys` peer, idle only
//! (`update/cond-sites`). Every site is decoded and checked before
//! anything is measured.
//!
//! Each figure is what this run measured: criterion's estimate files are
//! deleted before each benchmark and read only if it wrote them again, and
//! a filter (`cargo bench -- call-hot-1arg`, `-- plain-indirect/`:
//! [`static_call_bench::subjects::Selection`]) leaves the other figures
//! out of the part, marked "not selected", instead of carrying old ones
//! forward.
//!
//! `STATIC_CALL_BENCH_QUICK=1` for the quick mode.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use static_call_bench::parts::{Part, write_and_assemble};
use static_call_bench::rounds::{self, bootstrap_median, median, quantile};
use static_call_bench::subjects::{self, CALL_SCENARIOS, SUBJECTS, implementations};
use static_call_bench::targets::{add1, flip_target};
use static_call_bench::threads::{self, Samples};
use static_call_bench::{FOREIGN_SITES, SITE_COUNTS, prove, quick, scale};
use static_call_bundle::{Figure, Instrument, Interval, Metric, Per, Ratio, Statistic, scenario};

fn fail(what: &str) -> ! {
    eprintln!("criterion benchmarks: {what}");
    eprintln!(
        "criterion benchmarks: stopping: a benchmark that does not measure what its name says is not run"
    );
    std::process::exit(1);
}

struct Ctx {
    c: Criterion,
    part: Part,
}

/// Criterion's output directory of one benchmark.
fn bench_path(dir: &str, fun: &str, param: Option<u64>) -> std::path::PathBuf {
    let mut p = static_call_bench::target_dir()
        .join("criterion")
        .join(dir)
        .join(fun);
    if let Some(n) = param {
        p = p.join(n.to_string());
    }
    p
}

/// Deletes criterion's estimates of one benchmark, so that [`record`]
/// reads only what this run writes.
fn forget(dir: &str, fun: &str, param: Option<u64>) {
    let p = bench_path(dir, fun, param).join("new");
    if let Err(e) = std::fs::remove_dir_all(&p)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        fail(&format!("{}: {e}", p.display()));
    }
}

/// Reads criterion's estimate of the mean for one benchmark, scaled (only
/// if this run wrote it: [`forget`] deleted the old one first).
fn record(
    ctx: &mut Ctx,
    dir: &str,
    fun: &str,
    param: Option<u64>,
    (scenario, subject, metric, per): (&str, &str, Metric, Per),
    scale: f64,
) {
    let p = bench_path(dir, fun, param);
    let est = p.join("new/estimates.json");
    let sample = p.join("new/sample.json");
    let read = |f: &std::path::Path| -> Result<serde_json::Value, String> {
        let t = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        serde_json::from_str(&t).map_err(|e| format!("{}: {e}", f.display()))
    };
    match read(&est) {
        Ok(v) => {
            let mean = &v["mean"];
            let n = |x: &serde_json::Value| x.as_f64().unwrap_or(f64::NAN) / scale;
            let samples = read(&sample)
                .ok()
                .and_then(|s| s["iters"].as_array().map(|a| a.len() as u64));
            ctx.part.figures.push(Figure {
                scenario: scenario.into(),
                subject: subject.into(),
                sites: param,
                metric,
                per,
                instrument: Instrument::Criterion,
                value: n(&mean["point_estimate"]),
                interval: Some(Interval {
                    low: n(&mean["confidence_interval"]["lower_bound"]),
                    high: n(&mean["confidence_interval"]["upper_bound"]),
                    level: mean["confidence_interval"]["confidence_level"]
                        .as_f64()
                        .unwrap_or(0.95),
                }),
                samples,
                note: Some(
                    "criterion's mean, flat sampling, with its bootstrap 95% interval".into(),
                ),
                statistic: Some(Statistic::Mean),
                raw: Vec::new(),
                first: None,
                ratio: None,
                histogram: None,
            });
        }
        Err(e) => ctx.part.missing(
            scenario,
            Some(subject),
            metric,
            format!("not measured in this run (filtered out, or criterion wrote no estimate): {e}"),
        ),
    }
}

fn dir_name(scenario: &str) -> String {
    scenario.replace('/', "-")
}

// ------------------------------------------------------------------ calls

/// Runs every call loop for a while before the first measurement, so
/// that the first subject measured does not pay for a cold CPU (clock
/// ramp, caches, predictors) that the later ones do not.
fn warm_up() {
    let until = Instant::now() + Duration::from_millis(if quick() { 300 } else { 2000 });
    while Instant::now() < until {
        for sc in &CALL_SCENARIOS {
            for s in SUBJECTS {
                if let Some(f) = (sc.pick)(&s.loops) {
                    subjects::run_checked(sc, s.name, f, 10_000 / sc.calls_per_unit);
                }
            }
        }
    }
}

/// The filter given on the command line (`cargo bench -- <filter>`):
/// [`subjects::Selection`] (subject names match whole, scenarios by
/// substring). criterion's own filter is switched off: this binary decides
/// what runs, and marks what it leaves out "not selected".
fn selection() -> subjects::Selection {
    subjects::Selection::current()
}

/// Marks what the selection leaves out of `scenario` among `subjects`.
fn left_out<'a>(
    ctx: &mut Ctx,
    scenario: &str,
    subjects: impl IntoIterator<Item = &'a str>,
    instrument: Instrument,
) {
    ctx.part
        .missing
        .extend(selection().left_out(scenario, subjects, Metric::WallTime, instrument));
}

fn implementation_names() -> Vec<&'static str> {
    implementations().map(|(s, _)| s.name).collect()
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

fn calls(ctx: &mut Ctx) {
    warm_up();
    let (n, batch) = (static_call_bench::rounds(), static_call_bench::batch_ns());
    let of = |sc: &subjects::CallScenario| -> Vec<&'static str> {
        SUBJECTS
            .iter()
            .filter(|s| (sc.pick)(&s.loops).is_some())
            .map(|s| s.name)
            .collect()
    };
    // A scenario selected for any subject is measured for all of its
    // subjects: the ratios need their references in the same rounds.
    for sc in &CALL_SCENARIOS {
        if !selection().selects_scenario(sc.id) {
            left_out(ctx, sc.id, of(sc), Instrument::Timer);
            continue;
        }
        let m = rounds::measure(sc, sc.id, n, batch, seed());
        eprintln!("call rounds: {} ({n} rounds)", sc.id);
        ctx.part.figures.extend(m.figures);
        ctx.part.rounds.extend(m.rounds);
    }
    let id = scenario::CALL_HOT_1_IB_OFF;
    if !selection().selects_scenario(id) {
        left_out(ctx, id, of(&CALL_SCENARIOS[0]), Instrument::Timer);
        return;
    }
    let s = seed();
    match rounds::with_indirect_speculation_disabled(move || {
        rounds::measure(&CALL_SCENARIOS[0], id, n, batch, s)
    }) {
        Ok((mut m, state)) => {
            eprintln!("call rounds: {id} ({n} rounds); the thread's control: {state}");
            for f in &mut m.figures {
                if let Some(note) = &mut f.note {
                    note.push_str(&format!(
                        "; on a thread after prctl(PR_SET_SPECULATION_CTRL, PR_SPEC_INDIRECT_BRANCH, PR_SPEC_FORCE_DISABLE), which then reported {state}"
                    ));
                }
            }
            ctx.part.figures.extend(m.figures);
            ctx.part.rounds.extend(m.rounds);
        }
        Err(e) => ctx.part.missing(id, None, Metric::WallTime, e),
    }
}

/// call/cold-*, call/trashed-predictor, call/polluted-*: generated code
/// (`static_call_bench::cold`).
fn cold_calls(ctx: &mut Ctx) {
    let o = static_call_bench::cold::run(&selection(), seed()).unwrap_or_else(|e| fail(&e));
    ctx.part.figures.extend(o.figures);
    ctx.part.rounds.extend(o.rounds);
    ctx.part.missing.extend(o.missing);
    ctx.part.sites.extend(o.sites);
}

// ---------------------------------------------------------------- updates

fn flip(key: &'static static_call_core::StaticCall<subjects::AddFn>, i: u64) {
    if let Err(e) = key.update(flip_target(i)) {
        fail(&format!("update failed: {e}"));
    }
}

/// Single updates of `key`, each timed on its own, flipping between two
/// targets: the first (cold: the key's first update since its sites were
/// loaded) apart, then `samples` more.
fn sample_updates(
    key: &'static static_call_core::StaticCall<subjects::AddFn>,
    samples: usize,
    counter: &mut u64,
) -> (f64, Vec<f64>) {
    let mut one = || {
        let t = Instant::now();
        flip(key, *counter);
        let ns = t.elapsed().as_nanos() as f64;
        *counter += 1;
        ns
    };
    let first = one();
    let v = (0..samples).map(|_| one()).collect();
    (first, v)
}

/// A latency figure from single-update samples: the median with a
/// bootstrap interval; p99, max and the first (cold) update in the note
/// (and recomputable from `raw`).
fn latency_figure(
    (sc, subject, sites): (&str, &str, Option<u64>),
    first: f64,
    v: Vec<f64>,
    extra: &str,
) -> Figure {
    let mut rng = rounds::Rng::new(seed());
    Figure {
        scenario: sc.into(),
        subject: subject.into(),
        sites,
        metric: Metric::WallTime,
        per: Per::Update,
        instrument: Instrument::Timer,
        value: median(&v),
        interval: Some(bootstrap_median(&v, &mut rng)),
        samples: Some(v.len() as u64),
        note: Some(format!(
            "median of {} single updates timed one by one (bootstrap 95% interval); p99 {:.0} ns, max {:.0} ns; first (cold) update {:.0} ns, not among the samples{extra}",
            v.len(),
            quantile(&v, 0.99),
            quantile(&v, 1.0),
            first
        )),
        statistic: Some(Statistic::Median),
        raw: v,
        first: Some(first),
        ratio: None,
        histogram: None,
    }
}

fn slow_group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    if quick() {
        g.warm_up_time(Duration::from_millis(50))
            .measurement_time(Duration::from_millis(300));
    } else {
        g.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(1500));
    }
    g
}

fn updates(ctx: &mut Ctx) {
    for busy in [false, true] {
        let sc = if busy {
            scenario::UPDATE_BUSY
        } else {
            scenario::UPDATE_IDLE
        };
        left_out(ctx, sc, implementation_names(), Instrument::Timer);
        for (s, imp) in implementations() {
            if !selection().selects(sc, s.name) {
                continue;
            }
            for &n in &SITE_COUNTS {
                let m =
                    scale::make(imp, &[imp.scale.raw()], n as usize).unwrap_or_else(|e| fail(&e));
                let id = scale::load(imp, &m, "scale").unwrap_or_else(|e| fail(&e));
                // The module's sites are the key's only sites.
                let sites = imp.registry.sites_of(imp.scale.raw()).len() as u64;
                if sites != n {
                    fail(&format!(
                        "{} {sc}: key SCALE has {sites} sites, expected {n}",
                        s.name
                    ));
                }
                let stop = Arc::new(AtomicBool::new(false));
                let wrong = Arc::new(AtomicU64::new(0));
                let calls = Arc::new(AtomicU64::new(0));
                let funcs: Arc<Vec<usize>> = Arc::new(m.funcs.iter().map(|f| f.addr).collect());
                let callers: Vec<_> = (0..if busy { 2 } else { 0 })
                    .map(|t| {
                        let (stop, wrong, calls, funcs) =
                            (stop.clone(), wrong.clone(), calls.clone(), funcs.clone());
                        std::thread::spawn(move || {
                            let mut i = t;
                            let mut local = 0u64;
                            while !stop.load(Ordering::Relaxed) {
                                // SAFETY: generated `extern "C" fn(u64) -> u64`s
                                // of a module that stays loaded until the
                                // callers are joined.
                                let f: extern "C" fn(u64) -> u64 =
                                    unsafe { std::mem::transmute(funcs[i % funcs.len()]) };
                                let r = f(40);
                                if r != 41 && r != 42 {
                                    wrong.fetch_add(1, Ordering::Relaxed);
                                }
                                i += 1;
                                local += 1;
                            }
                            calls.fetch_add(local, Ordering::Relaxed);
                        })
                    })
                    .collect();
                let mut counter = 0u64;
                let (first, v) = sample_updates(
                    imp.scale,
                    static_call_bench::latency_samples(n),
                    &mut counter,
                );
                stop.store(true, Ordering::Relaxed);
                for c in callers {
                    c.join()
                        .unwrap_or_else(|_| fail("a caller thread panicked"));
                }
                if wrong.load(Ordering::Relaxed) != 0 {
                    fail(&format!(
                        "{} {sc} {n}: {} of {} concurrent calls reached neither target",
                        s.name,
                        wrong.load(Ordering::Relaxed),
                        calls.load(Ordering::Relaxed)
                    ));
                }
                if let Err(e) = imp.scale.update(add1) {
                    fail(&format!("{}: {e}", s.name));
                }
                scale::check_calls(&m, add1, 1)
                    .unwrap_or_else(|e| fail(&format!("{} {sc}: {e}", s.name)));
                scale::unload(imp, id).unwrap_or_else(|e| fail(&e));
                let extra = if busy {
                    format!(
                        "; 2 threads made {} calls during the measurement, 0 wrong",
                        calls.load(Ordering::Relaxed)
                    )
                } else {
                    String::new()
                };
                ctx.part
                    .figures
                    .push(latency_figure((sc, s.name, Some(n)), first, v, &extra));
            }
        }
    }
}

/// A 1-site key alone, then among 100,000 sites of another key.
fn foreign(ctx: &mut Ctx) {
    let sc = scenario::UPDATE_FOREIGN;
    left_out(ctx, sc, implementation_names(), Instrument::Timer);
    for (s, imp) in implementations() {
        if !selection().selects(sc, s.name) {
            continue;
        }
        prove::prove_lone(s, imp).unwrap_or_else(|e| fail(&e));
        let mut counter = 0u64;
        for foreign in [0, FOREIGN_SITES] {
            let loaded = if foreign > 0 {
                let m = scale::make(imp, &[imp.foreign.raw()], foreign as usize)
                    .unwrap_or_else(|e| fail(&e));
                let id = scale::load(imp, &m, "foreign").unwrap_or_else(|e| fail(&e));
                Some((m, id))
            } else {
                None
            };
            let total = (imp.stats)().sites;
            let (first, v) = sample_updates(
                imp.lone,
                static_call_bench::latency_samples(1),
                &mut counter,
            );
            // The one site still reaches the key's target.
            let want = imp.lone.query().map_or(0, |f| f(5));
            if (imp.call_lone)(5) != want {
                fail(&format!(
                    "{} {sc}: the lone site does not reach its target",
                    s.name
                ));
            }
            if let Some((m, id)) = loaded {
                scale::check_calls(&m, add1, 997).unwrap_or_else(|e| fail(&e));
                scale::unload(imp, id).unwrap_or_else(|e| fail(&e));
            }
            ctx.part.figures.push(latency_figure(
                (sc, s.name, Some(foreign)),
                first,
                v,
                &format!("; {foreign} foreign sites on another key, {total} sites in the registry"),
            ));
        }
    }
}

// ---------------------------------------------------------------- modules

/// `iters` rounds of `open` then `close`, timing only the one `per` names.
fn open_close<T>(
    iters: u64,
    per: Per,
    mut open: impl FnMut() -> T,
    mut close: impl FnMut(T),
) -> Duration {
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        let t = Instant::now();
        let x = open();
        let opened = t.elapsed();
        let t = Instant::now();
        close(x);
        let closed = t.elapsed();
        timed += if per == Per::Load { opened } else { closed };
    }
    timed
}

fn modules(ctx: &mut Ctx) {
    let scs = [scenario::MODULE_LOAD, scenario::MODULE_UNLOAD];
    for sc in scs {
        left_out(ctx, sc, implementation_names(), Instrument::Criterion);
    }
    for (s, imp) in implementations() {
        if !scs.iter().any(|sc| selection().selects(sc, s.name)) {
            continue;
        }
        for &n in &SITE_COUNTS {
            let m = scale::make(imp, &[imp.scale.raw()], n as usize).unwrap_or_else(|e| fail(&e));
            for (sc, per) in [
                (scenario::MODULE_LOAD, Per::Load),
                (scenario::MODULE_UNLOAD, Per::Unload),
            ] {
                let dir = dir_name(sc);
                forget(&dir, s.name, Some(n));
                if !selection().selects(sc, s.name) {
                    continue;
                }
                {
                    let mut g = slow_group(&mut ctx.c, &dir);
                    g.bench_with_input(BenchmarkId::new(s.name, n), &n, |b, _| {
                        b.iter_custom(|iters| {
                            open_close(
                                iters,
                                per,
                                || scale::load(imp, &m, "scale").unwrap_or_else(|e| fail(&e)),
                                |id| scale::unload(imp, id).unwrap_or_else(|e| fail(&e)),
                            )
                        })
                    });
                    g.finish();
                }
                record(
                    ctx,
                    &dir,
                    s.name,
                    Some(n),
                    (sc, s.name, Metric::WallTime, per),
                    1.0,
                );
            }
            // The module still works after all those cycles.
            let id = scale::load(imp, &m, "scale").unwrap_or_else(|e| fail(&e));
            scale::check_calls(&m, add1, 1).unwrap_or_else(|e| fail(&format!("{}: {e}", s.name)));
            scale::unload(imp, id).unwrap_or_else(|e| fail(&e));
        }
    }
}

fn shared_objects(ctx: &mut Ctx) {
    let scs = [scenario::SO_OPEN, scenario::SO_CLOSE];
    for sc in scs {
        left_out(ctx, sc, implementation_names(), Instrument::Criterion);
    }
    if !implementations().any(|(s, _)| scs.iter().any(|sc| selection().selects(sc, s.name))) {
        return;
    }
    let so = match scale::shared_object() {
        Ok(p) => p,
        Err(e) => {
            for sc in [scenario::SO_OPEN, scenario::SO_CLOSE] {
                ctx.part.missing(
                    sc,
                    None,
                    Metric::WallTime,
                    format!("no test shared object: {e}"),
                );
            }
            return;
        }
    };
    let path = so.to_string_lossy().into_owned();
    for (s, imp) in implementations() {
        for (sc, per) in [
            (scenario::SO_OPEN, Per::Load),
            (scenario::SO_CLOSE, Per::Unload),
        ] {
            let dir = dir_name(sc);
            forget(&dir, s.name, None);
            if !selection().selects(sc, s.name) {
                continue;
            }
            let mut sites = 0u64;
            {
                let mut g = slow_group(&mut ctx.c, &dir);
                g.bench_function(s.name, |b| {
                    b.iter_custom(|iters| {
                        open_close(
                            iters,
                            per,
                            || {
                                (imp.open_shared_object)(&path)
                                    .unwrap_or_else(|e| fail(&e.to_string()))
                            },
                            |o| {
                                sites = imp
                                    .registry
                                    .module_stats(o.id())
                                    .map_or(0, |m| m.sites as u64);
                                // SAFETY: nothing of the object is in use.
                                unsafe { o.close() }.unwrap_or_else(|e| fail(&e.to_string()));
                            },
                        )
                    })
                });
                g.finish();
            }
            record(
                ctx,
                &dir,
                s.name,
                None,
                (sc, s.name, Metric::WallTime, per),
                1.0,
            );
            if let Some(f) = ctx.part.figures.last_mut().filter(|f| f.scenario == sc) {
                f.sites = Some(sites);
                f.note = Some(format!(
                    "dlopen of {}",
                    so.file_name()
                        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
                ));
            }
        }
    }
}

// ------------------------------------------------------------ thread axis

/// A latency figure from the thread axis's samples: the first update of
/// the run apart (cold), the rest as single-update samples, and the counts
/// that say where the time went in the note.
fn thread_figure(sc: &str, subject: &str, param: u64, s: &Samples, what: &str) -> Figure {
    let Some((&first, rest)) = s.ns.split_first() else {
        fail(&format!("{subject} {sc} {param}: no sample"));
    };
    let n = s.ns.len().max(1) as f64;
    let extra = format!(
        "; {what}; per update: {:.2} breakpoint traps served, {:.2} context switches of the updater, {:.1} function-call interrupts machine-wide{}",
        s.traps as f64 / n,
        s.ctx_switches as f64 / n,
        s.call_irqs as f64 / n,
        if s.note.is_empty() {
            String::new()
        } else {
            format!("; {}", s.note)
        }
    );
    latency_figure((sc, subject, Some(param)), first, rest.to_vec(), &extra)
}

/// update/threads (parked threads), update/threads-busy (busy callers),
/// update/batch-100-keys and update/100-keys-one-by-one (with their ratio
/// to one 1-key update with no other thread).
fn thread_axis(ctx: &mut Ctx) {
    let scs = [
        scenario::UPDATE_THREADS,
        scenario::UPDATE_THREADS_BUSY,
        scenario::UPDATE_BATCH_100,
        scenario::UPDATE_100_ONE_BY_ONE,
    ];
    for sc in scs {
        left_out(ctx, sc, implementation_names(), Instrument::Criterion);
    }
    if !implementations().any(|(s, _)| scs.iter().any(|sc| selection().selects(sc, s.name))) {
        return;
    }
    let (parked, busy, updates, rounds): (&[u64], &[u64], usize, usize) = if quick() {
        (&[0, 1000], &[1], 61, 21)
    } else {
        (&[0, 10, 100, 1000], &[1, 2, 4], 301, 101)
    };
    let cpus = threads::allowed_cpus().len();
    for imp in threads::thread_impls() {
        if !scs.iter().any(|sc| selection().selects(sc, imp.name)) {
            continue;
        }
        let mut idle: Option<Vec<f64>> = None;
        for &p in parked {
            let s = threads::update_with_parked(&imp, p as usize, updates).unwrap_or_else(|e| {
                fail(&format!("{} {}: {e}", imp.name, scenario::UPDATE_THREADS))
            });
            let f = thread_figure(
                scenario::UPDATE_THREADS,
                imp.name,
                p,
                &s,
                &format!(
                    "{p} other threads parked on a condition variable; the site decoded before and after"
                ),
            );
            if p == 0 {
                idle = Some(f.raw.clone());
            }
            ctx.part.figures.push(f);
        }
        for &c in busy {
            let s = threads::update_with_busy(&imp, c as usize, updates).unwrap_or_else(|e| {
                fail(&format!(
                    "{} {}: {e}",
                    imp.name,
                    scenario::UPDATE_THREADS_BUSY
                ))
            });
            let f = thread_figure(
                scenario::UPDATE_THREADS_BUSY,
                imp.name,
                c,
                &s,
                &format!(
                    "{c} thread(s) calling the key's one site in a loop, every result checked; {} threads on {cpus} CPUs{}",
                    c + 1,
                    if c as usize + 1 > cpus {
                        " (callers and updater outnumber the CPUs)"
                    } else {
                        ""
                    }
                ),
            );
            ctx.part.figures.push(f);
        }
        let (batch, one) = threads::batch_vs_single(&imp, rounds)
            .unwrap_or_else(|e| fail(&format!("{} {}: {e}", imp.name, scenario::UPDATE_BATCH_100)));
        let mut rng = rounds::Rng::new(seed());
        for (sc, s, what) in [
            (
                scenario::UPDATE_BATCH_100,
                &batch,
                "one sample = 100 keys of one site switched in one batch",
            ),
            (
                scenario::UPDATE_100_ONE_BY_ONE,
                &one,
                "one sample = the same 100 keys switched by 100 updates",
            ),
        ] {
            let mut f = thread_figure(sc, imp.name, 100, s, what);
            if let Some(base) = idle.as_deref()
                && let Some(interval) = rounds::bootstrap_ratio_of_medians(&f.raw, base, &mut rng)
            {
                f.ratio = Some(Ratio {
                    reference: format!(
                        "{} 0 (one 1-key update, no other thread)",
                        scenario::UPDATE_THREADS
                    ),
                    value: f.value / median(base),
                    interval,
                    raw: Vec::new(),
                });
            }
            ctx.part.figures.push(f);
        }
    }
}

// ------------------------------------------------------------ callers

/// callers/no-updates, callers/updates-1khz, callers/updates-flat-out: one
/// caller's per-call latency while the key is not updated, updated 1,000
/// times a second and updated flat out (`static_call_bench::callers`).
fn callers(ctx: &mut Ctx) {
    use static_call_bench::callers::{self, Updates};
    let modes = [Updates::None, Updates::PerSecond(1000), Updates::FlatOut];
    for m in modes {
        left_out(ctx, m.scenario(), implementation_names(), Instrument::Timer);
    }
    let secs = if quick() { 0.25 } else { 1.0 };
    for imp in threads::thread_impls() {
        let mut base: Option<f64> = None;
        for m in modes {
            if !selection().selects(m.scenario(), imp.name) {
                continue;
            }
            let r = callers::run(&imp, m, secs)
                .unwrap_or_else(|e| fail(&format!("{} {}: {e}", imp.name, m.scenario())));
            if r.stale != 0 {
                fail(&format!(
                    "{} {}: {} of {} calls reached a stale or wrong target",
                    imp.name,
                    m.scenario(),
                    r.stale,
                    r.calls
                ));
            }
            let figures = r.figures(m, imp.name, base);
            if m == Updates::None {
                base = Some(r.throughput());
            }
            ctx.part.figures.extend(figures);
        }
    }
}

// ------------------------------------------------------------ peers

/// The peers: their call figures' notes say how each site was proved (and
/// how a PLT stub compares with a trampoline); then update/cond-sites.
fn peers(ctx: &mut Ctx) {
    for f in &mut ctx.part.figures {
        if let Some(extra) = static_call_bench::peers::call_note(&f.subject, &f.scenario) {
            let note = f.note.get_or_insert_with(String::new);
            note.push_str("; ");
            note.push_str(extra);
        }
    }
    cond_sites(ctx);
}

/// update/cond-sites: one switch of a conditional key with N compiled
/// sites, none to [`static_call_bench::peers::tick`] and back, each switch
/// timed on its own: `update_cond` of every implementation against the
/// `static-keys` peer's `enable`/`disable` on as many sites, idle only
/// (the crate documents its switches as single-threaded: they are timed
/// only while this process has one thread). Every site is decoded and
/// called after the first switch and after the last.
fn cond_sites(ctx: &mut Ctx) {
    use static_call_bench::peers::{self, CondSites};
    let sc = scenario::UPDATE_COND_SITES;
    let names: Vec<&str> = peers::cond_sites(1).iter().map(|c| c.subject).collect();
    left_out(ctx, sc, names, Instrument::Timer);
    for &n in peers::cond_site_counts() {
        let mut base: Option<Vec<f64>> = None;
        for c in peers::cond_sites(n) {
            if !selection().selects(sc, c.subject) {
                continue;
            }
            let what = |e: String| format!("{} {sc} {n}: {e}", c.subject);
            let static_keys = matches!(c.key, peers::CondKey::StaticKeys(_));
            match peers::thread_count() {
                Ok(1) => {}
                Ok(t) if static_keys => {
                    ctx.part.missing(
                        sc,
                        Some(c.subject),
                        Metric::WallTime,
                        format!(
                            "not measured: the process had {t} threads, and static-keys documents its switches as single-threaded (measured idle only)"
                        ),
                    );
                    continue;
                }
                Ok(_) => {}
                Err(e) => fail(&what(e)),
            }
            let mut dumps = c
                .check(false, "update/cond-sites, before")
                .unwrap_or_else(|e| fail(&what(e)));
            let switch = |c: &CondSites, on: bool| -> f64 {
                let t = Instant::now();
                // SAFETY: this process has one thread (checked above; the
                // benchmark starts none here), as static-keys requires.
                unsafe { c.switch(on) }.unwrap_or_else(|e| fail(&what(e)));
                t.elapsed().as_nanos() as f64
            };
            let first = switch(&c, true);
            dumps.extend(
                c.check(true, "update/cond-sites, key on")
                    .unwrap_or_else(|e| fail(&what(e))),
            );
            let mut on = true;
            let v: Vec<f64> = (0..static_call_bench::latency_samples(n as u64))
                .map(|_| {
                    on = !on;
                    switch(&c, on)
                })
                .collect();
            if on {
                switch(&c, false);
            }
            c.check(false, "update/cond-sites, after")
                .unwrap_or_else(|e| fail(&what(e)));
            let threads = peers::thread_count().unwrap_or_else(|e| fail(&what(e)));
            if static_keys && threads != 1 {
                fail(&what(format!("{threads} threads during the switches")));
            }
            let how = if static_keys {
                "enable() and disable() alternately"
            } else {
                "update_cond(Some(tick)) and update_cond(None) alternately"
            };
            let extra = format!(
                "; {how}, {n} compiled site(s); idle: the process's only thread (static-keys documents its switches as single-threaded, so all are measured idle); every site decoded and called after the first switch and after the last"
            );
            let mut f = latency_figure((sc, c.subject, Some(n as u64)), first, v, &extra);
            if c.subject == "inline-patch" {
                base = Some(f.raw.clone());
            } else if static_keys && let Some(b) = base.as_deref() {
                let mut rng = rounds::Rng::new(seed());
                if let Some(interval) = rounds::bootstrap_ratio_of_medians(&f.raw, b, &mut rng) {
                    f.ratio = Some(Ratio {
                        reference: format!(
                            "inline-patch {sc} {n} (update_cond on the same number of sites)"
                        ),
                        value: f.value / median(b),
                        interval,
                        raw: Vec::new(),
                    });
                }
            }
            eprintln!(
                "{sc}: {} {n} sites: median {:.3} ms{}",
                c.subject,
                f.value / 1e6,
                f.ratio
                    .as_ref()
                    .map_or(String::new(), |r| format!(", {:.1}x inline-patch", r.value))
            );
            ctx.part.figures.push(f);
            ctx.part.sites.extend(dumps);
        }
    }
}

fn main() {
    let start = Instant::now();
    let mut part = Part::new(Instrument::Criterion);
    for (s, imp) in implementations() {
        (imp.init)().unwrap_or_else(|e| fail(&format!("{}: init: {e}", s.name)));
    }
    subjects::check_cond_loops_can_call().unwrap_or_else(|e| fail(&e));
    part.sites = prove::prove_all().unwrap_or_else(|e| fail(&e));
    for (s, imp) in implementations() {
        part.sites
            .extend(prove::dump_update(s, imp).unwrap_or_else(|e| fail(&e)));
    }
    eprintln!(
        "criterion benchmarks: {} sites and loops decoded and checked",
        part.sites.len()
    );
    let c = Criterion::default()
        .output_directory(&static_call_bench::target_dir().join("criterion"))
        .configure_from_args()
        .with_benchmark_filter(criterion::BenchmarkFilter::AcceptAll);
    let mut ctx = Ctx { c, part };
    calls(&mut ctx);
    cold_calls(&mut ctx);
    updates(&mut ctx);
    foreign(&mut ctx);
    modules(&mut ctx);
    shared_objects(&mut ctx);
    thread_axis(&mut ctx);
    callers(&mut ctx);
    peers(&mut ctx);
    ctx.c.final_summary();
    if !selection().is_all() {
        eprintln!(
            "criterion benchmarks: filter `{}`: {} figures marked not selected",
            selection().filters(),
            ctx.part
                .missing
                .iter()
                .filter(|m| m.reason.starts_with("not selected"))
                .count()
        );
    }
    ctx.part.seconds = start.elapsed().as_secs_f64();
    match write_and_assemble(&ctx.part) {
        Ok(p) => eprintln!(
            "criterion benchmarks: {:.1} s; bundle {}",
            ctx.part.seconds,
            p.display()
        ),
        Err(e) => fail(&e),
    }
}
