//! Module load and unload, and the test shared object's open and close, with
//! criterion (its mean).

use std::time::{Duration, Instant};

use criterion::BenchmarkId;
use static_call_bench::subjects::implementations;
use static_call_bench::targets::add1;
use static_call_bench::{SITE_COUNTS, scale};
use static_call_bundle::{Instrument, Metric, Per, scenario};

use super::updates::slow_group;
use super::{Ctx, dir_name, fail, forget, implementation_names, left_out, record, selection};

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

pub(super) fn modules(ctx: &mut Ctx) {
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

pub(super) fn shared_objects(ctx: &mut Ctx) {
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
