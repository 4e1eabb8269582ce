//! Update latency: single updates timed one by one against the key's site
//! count (idle and with busy callers), and a 1-site update among 100,000
//! foreign sites.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use static_call_bench::rounds::{self, bootstrap_median, median, quantile};
use static_call_bench::subjects::{self, implementations};
use static_call_bench::targets::{add1, flip_target};
use static_call_bench::{FOREIGN_SITES, SITE_COUNTS, prove, quick, scale};
use static_call_bundle::{Figure, Instrument, Metric, Per, Statistic, scenario};

use super::{Ctx, fail, implementation_names, left_out, seed, selection};

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
pub(super) fn latency_figure(
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

pub(super) fn slow_group<'a>(
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

pub(super) fn updates(ctx: &mut Ctx) {
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
pub(super) fn foreign(ctx: &mut Ctx) {
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
