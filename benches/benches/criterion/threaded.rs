//! The thread axis of update latency (parked and busy threads, a batch of keys
//! against updates one by one) and the callers' side of an update.

use static_call_bench::quick;
use static_call_bench::rounds::{self, median};
use static_call_bench::subjects::implementations;
use static_call_bench::threads::{self, Samples};
use static_call_bundle::{Figure, Instrument, Ratio, scenario};

use super::updates::latency_figure;
use super::{Ctx, fail, implementation_names, left_out, seed, selection};

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
pub(super) fn thread_axis(ctx: &mut Ctx) {
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

/// callers/no-updates, callers/updates-1khz, callers/updates-flat-out: one
/// caller's per-call latency while the key is not updated, updated 1,000
/// times a second and updated flat out (`static_call_bench::callers`).
pub(super) fn callers(ctx: &mut Ctx) {
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
