//! The peers: notes on their call figures, and a conditional key's switch
//! against the `static-keys` peer (`update/cond-sites`).

use std::time::Instant;

use static_call_bench::rounds::{self, median};
use static_call_bundle::{Instrument, Metric, Ratio, scenario};

use super::updates::latency_figure;
use super::{Ctx, fail, left_out, seed, selection};

/// The peers: their call figures' notes say how each site was proved (and
/// how a PLT stub compares with a trampoline); then update/cond-sites.
pub(super) fn peers(ctx: &mut Ctx) {
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
pub(super) fn cond_sites(ctx: &mut Ctx) {
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
