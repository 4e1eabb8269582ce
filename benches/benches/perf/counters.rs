//! Hardware and software counters (perf-event) around the call loops,
//! updates and module loads.

use super::*;

/// A counter, opened for this process (user and kernel where allowed).
struct Counter {
    metric: Metric,
    counter: perf_event::Counter,
    kernel: bool,
}

fn open<E: Event + Clone>(metric: Metric, name: &str, ev: E) -> Result<Counter, String> {
    let with_kernel = Builder::new(ev.clone()).include_kernel().build();
    match with_kernel {
        Ok(counter) => Ok(Counter {
            metric,
            counter,
            kernel: true,
        }),
        Err(_) => Builder::new(ev)
            .build()
            .map(|counter| Counter {
                metric,
                counter,
                kernel: false,
            })
            .map_err(|e| format!("unavailable: perf_event_open({name}): {e}")),
    }
}

/// Counts `f` with every counter; returns the deltas.
fn count(counters: &mut [Counter], f: impl FnOnce()) -> Vec<u64> {
    for c in counters.iter_mut() {
        c.counter
            .reset()
            .unwrap_or_else(|e| fail(&format!("reset: {e}")));
        c.counter
            .enable()
            .unwrap_or_else(|e| fail(&format!("enable: {e}")));
    }
    f();
    let mut out = Vec::new();
    for c in counters.iter_mut() {
        c.counter
            .disable()
            .unwrap_or_else(|e| fail(&format!("disable: {e}")));
        out.push(
            c.counter
                .read()
                .unwrap_or_else(|e| fail(&format!("read: {e}"))),
        );
    }
    out
}

pub(super) fn hardware(part: &mut Part) {
    let mut counters = Vec::new();
    for (m, name, ev) in [
        (Metric::Cycles, "cycles", Hardware::CPU_CYCLES),
        (Metric::Instructions, "instructions", Hardware::INSTRUCTIONS),
        (
            Metric::BranchMisses,
            "branch-misses",
            Hardware::BRANCH_MISSES,
        ),
    ] {
        match open(m, name, ev) {
            Ok(c) => counters.push(c),
            Err(e) => {
                for sc in &CALL_SCENARIOS {
                    part.missing(sc.id, None, m, e.clone());
                }
            }
        }
    }
    if counters.is_empty() {
        return;
    }
    let n = if quick() { 200_000 } else { 2_000_000 };
    for s in SUBJECTS {
        for sc in &CALL_SCENARIOS {
            let Some(f) = (sc.pick)(&s.loops) else {
                continue;
            };
            let units = (n / sc.calls_per_unit).max(2);
            let a = count(&mut counters, || {
                subjects::run_checked(sc, s.name, f, units / 2);
            });
            let b = count(&mut counters, || {
                subjects::run_checked(sc, s.name, f, units);
            });
            let calls = (units - units / 2) * sc.calls_per_unit;
            for (i, c) in counters.iter().enumerate() {
                part.figures.push(Figure {
                    scenario: sc.id.into(),
                    subject: s.name.into(),
                    sites: None,
                    metric: c.metric,
                    per: Per::Call,
                    instrument: Instrument::PerfEvent,
                    value: b[i].saturating_sub(a[i]) as f64 / calls as f64,
                    interval: None,
                    samples: Some(2),
                    note: Some(format!(
                        "difference of two loop lengths over {calls} calls{}",
                        if c.kernel { "" } else { "; user space only" }
                    )),
                    statistic: Some(Statistic::Single),
                    raw: Vec::new(),
                    first: None,
                    ratio: None,
                    histogram: None,
                });
            }
        }
    }
}

fn software_figures(
    part: &mut Part,
    counters: &[Counter],
    deltas: &[u64],
    (sc, subject, sites, per, reps): (&str, &str, u64, Per, u64),
) {
    for (i, c) in counters.iter().enumerate() {
        part.figures.push(Figure {
            scenario: sc.into(),
            subject: subject.into(),
            sites: Some(sites),
            metric: c.metric,
            per,
            instrument: Instrument::PerfEvent,
            value: deltas[i] as f64 / reps as f64,
            interval: None,
            samples: Some(reps),
            note: Some(format!(
                "mean over {reps} operations{}",
                if c.kernel {
                    ", user and kernel"
                } else {
                    ", user space only (perf_event_paranoid)"
                }
            )),
            statistic: Some(Statistic::Mean),
            raw: Vec::new(),
            first: None,
            ratio: None,
            histogram: None,
        });
    }
}

pub(super) fn software(part: &mut Part) {
    let mut counters = Vec::new();
    for (m, name, ev) in [
        (Metric::TaskClock, "task-clock", Software::TASK_CLOCK),
        (
            Metric::ContextSwitches,
            "context-switches",
            Software::CONTEXT_SWITCHES,
        ),
        (Metric::PageFaults, "page-faults", Software::PAGE_FAULTS),
    ] {
        match open(m, name, ev) {
            Ok(c) => counters.push(c),
            Err(e) => {
                for sc in [scenario::UPDATE_IDLE, scenario::MODULE_LOAD] {
                    part.missing(sc, None, m, e.clone());
                }
            }
        }
    }
    if counters.is_empty() {
        return;
    }
    for (s, imp) in implementations() {
        for n in [1u64, 10_000] {
            let m = scale::make(imp, &[imp.scale.raw()], n as usize).unwrap_or_else(|e| fail(&e));
            let id = scale::load(imp, &m, "scale").unwrap_or_else(|e| fail(&e));
            let reps: u64 = match (n, quick()) {
                (1, false) => 2_000,
                (1, true) => 200,
                (_, false) => 40,
                (_, true) => 6,
            };
            let d = count(&mut counters, || updates(imp, reps));
            scale::check_calls(&m, add1, 1).unwrap_or_else(|e| fail(&e));
            scale::unload(imp, id).unwrap_or_else(|e| fail(&e));
            software_figures(
                part,
                &counters,
                &d,
                (scenario::UPDATE_IDLE, s.name, n, Per::Update, reps),
            );
        }
        for &n in &SITE_COUNTS {
            let m = scale::make(imp, &[imp.scale.raw()], n as usize).unwrap_or_else(|e| fail(&e));
            let reps: u64 = if quick() { 5 } else { 20 };
            let mut total = vec![0u64; counters.len()];
            for _ in 0..reps {
                let mut id = None;
                let d = count(&mut counters, || {
                    id = Some(scale::load(imp, &m, "scale").unwrap_or_else(|e| fail(&e)));
                });
                for (t, d) in total.iter_mut().zip(d) {
                    *t += d;
                }
                scale::unload(imp, id.expect("loaded above")).unwrap_or_else(|e| fail(&e));
            }
            software_figures(
                part,
                &counters,
                &total,
                (scenario::MODULE_LOAD, s.name, n, Per::Load, reps),
            );
        }
    }
}

/// `reps` updates of SCALE, flipping targets, ending on `add1`.
fn updates(imp: &Implementation, reps: u64) {
    for i in 0..reps {
        imp.scale
            .update(flip_target(i))
            .unwrap_or_else(|e| fail(&e.to_string()));
    }
    imp.scale
        .update(add1)
        .unwrap_or_else(|e| fail(&e.to_string()));
}
