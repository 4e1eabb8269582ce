//! The summary as Markdown, for a terminal, a commit message or a note:
//! call cost as ratios to the direct call, the latencies, and every target
//! with its verdict (`--markdown`).

use std::fmt::Write as _;

use static_call_bundle::{BenchBundle, Instrument, Metric, Per, control, scenario};

use crate::Input;
use crate::model::{self, Measure};
use crate::summary::{self, Verdict};

/// The `q` quantile by nearest rank.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = (q * s.len() as f64).ceil().max(1.0) as usize;
    s.get(rank.min(s.len()).saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN)
}

fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.2} ns")
    }
}

/// The Markdown summary of one bundle.
pub fn markdown(input: &Input) -> String {
    let b = &input.bench;
    let mut s = String::new();
    let m = &b.machine;
    let _ = writeln!(
        s,
        "**{}** — {}, {} CPUs, {}, spectre_v2: {}; {}; commit {}, {} ({:?} run)\n",
        input.label,
        m.cpu_model,
        m.logical_cpus,
        m.kernel,
        m.spectre_v2,
        m.rustc,
        m.commit,
        m.date,
        b.run.mode
    );
    let calls = [
        scenario::CALL_HOT_1,
        scenario::CALL_HOT_6,
        scenario::CALL_MANY,
        scenario::CALL_COND_NONE,
    ];
    let _ = writeln!(
        s,
        "Call cost per call: wall time and instructions (callgrind, exact), × the direct call \
         (for cond-none: × `if let Some(f)` on an `Option<fn>`). Wall time: {}.\n",
        if b.version >= 2 {
            "the median of per-round values of interleaved rounds; the ratio is the median of the \
             per-round ratios, with its bootstrap 95% interval in brackets; `direct-aa` (the reference \
             loop compiled twice: the direct call's, or for cond-none the `Option<fn>` one) is the \
             noise floor"
        } else {
            "criterion's mean; the ratio is the quotient of the means (a version 1 bundle)"
        }
    );
    let _ = write!(s, "| subject |");
    for c in calls {
        let _ = write!(s, " {c} wall | {c} instr |");
    }
    let _ = write!(s, "\n|---|");
    for _ in calls {
        let _ = write!(s, "---|---|");
    }
    s.push('\n');
    for subj in &b.subjects {
        let _ = write!(s, "| {} |", subj.name);
        for c in calls {
            let base = if c == scenario::CALL_COND_NONE {
                control::OPTION_FN
            } else {
                control::DIRECT
            };
            for (measure, unit) in [(Measure::call_wall(c), "ns"), (Measure::call_instr(c), "")] {
                let value = |subject: &str| measure.get(b, subject, None).map(|f| f.value);
                let (v, d) = (value(&subj.name), value(base));
                let ratio = measure
                    .get(b, &subj.name, None)
                    .and_then(|f| f.ratio.as_ref());
                let cell = match (v, d) {
                    (Some(v), Some(_)) if ratio.is_some() => {
                        let r = ratio.expect("checked");
                        format!(
                            " {v:.3} {unit} ({:.3}× [{:.3}–{:.3}]) |",
                            r.value, r.interval.low, r.interval.high
                        )
                    }
                    (Some(v), Some(d)) if d > 0.0 => {
                        format!(
                            " {v:.3}{} ({:.3}×) |",
                            if unit.is_empty() {
                                String::new()
                            } else {
                                format!(" {unit}")
                            },
                            v / d
                        )
                    }
                    (Some(v), _) => format!(" {v:.3} |"),
                    (None, _) => " – |".to_owned(),
                };
                s.push_str(&cell);
            }
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "\n{}\n\n\
         | implementation | update 1 site | update 10,000 sites | update 1 site, 2 callers | update 10,000, 2 callers | 1-site update among 100k foreign / alone | module load 10,000 | module unload 10,000 | registry bytes per (key, module) |\n\
         |---|---|---|---|---|---|---|---|---|",
        if b.version >= 2 {
            "Latencies: updates as median / p99 / max of single updates, with the first (cold) \
             update after a slash; module loads and unloads criterion's mean. Registry memory: \
             the registry's own count per (key, module)."
        } else {
            "Latencies (criterion means) and registry memory."
        }
    );
    for subj in b
        .subjects
        .iter()
        .filter(|s| s.kind == static_call_bundle::SubjectKind::Implementation)
    {
        let n = &subj.name;
        let t = |sc: &'static str, per: Per, sites: u64| {
            Measure::wall(sc, per)
                .get(b, n, Some(sites))
                .map_or("–".to_owned(), |f| {
                    if f.raw.is_empty() {
                        time(f.value)
                    } else {
                        format!(
                            "{} / {} / {}{}",
                            time(f.value),
                            time(quantile(&f.raw, 0.99)),
                            time(quantile(&f.raw, 1.0)),
                            f.first
                                .map_or(String::new(), |x| format!("; first {}", time(x)))
                        )
                    }
                })
        };
        let foreign =
            summary::foreign_pair(b, n).map_or("–".to_owned(), |f| format!("{:.3}", f.ratio()));
        let mem = Measure::new(
            scenario::MEMORY,
            Metric::RegistryBytes,
            Per::KeyModule,
            Instrument::Registry,
        )
        .get(b, n, Some(10_000))
        .map_or("–".to_owned(), |f| format!("{:.0} B", f.value));
        let _ = writeln!(
            s,
            "| {n} | {} | {} | {} | {} | {foreign} | {} | {} | {mem} |",
            t(scenario::UPDATE_IDLE, Per::Update, 1),
            t(scenario::UPDATE_IDLE, Per::Update, 10_000),
            t(scenario::UPDATE_BUSY, Per::Update, 1),
            t(scenario::UPDATE_BUSY, Per::Update, 10_000),
            t(scenario::MODULE_LOAD, Per::Load, 10_000),
            t(scenario::MODULE_UNLOAD, Per::Unload, 10_000),
        );
    }
    ratios_table(&mut s, b);
    cond_sites_table(&mut s, b);
    let _ = writeln!(
        s,
        "\nTargets.\n\n| target | implementation | verdict |\n|---|---|---|"
    );
    let subjects = model::subjects(std::slice::from_ref(input));
    for (t, subject) in summary::target_rows(&subjects) {
        let v = match summary::evaluate(t, b, &subject) {
            Verdict::Met(x) => format!("met: {x}"),
            Verdict::Missed(x) => format!("**missed**: {x}"),
            Verdict::Inconclusive(x) => format!("inconclusive: {x}"),
            Verdict::Unknown(x) => format!("not measured: {x}"),
            Verdict::NotApplicable(x) => format!("not applicable: {x}"),
        };
        let _ = writeln!(s, "| {} | {subject} | {v} |", t.text);
    }
    if !b.missing.is_empty() {
        let _ = writeln!(s, "\nNot measured ({}):\n", b.missing.len());
        let mut seen = Vec::new();
        for miss in &b.missing {
            let line = format!(
                "- {} {} ({}): {}",
                miss.metric.name(),
                miss.scenario,
                miss.instrument.name(),
                miss.reason
            );
            if !seen.contains(&line) {
                seen.push(line);
            }
        }
        s.push_str(&seen.join("\n"));
        s.push('\n');
    }
    s
}

/// The call scenarios beyond the hot loops (conditional with a target,
/// cold sites, a trashed or polluted predictor): each subject's ratio to
/// the scenario's reference, with its interval; empty when the bundle has
/// none of them.
fn ratios_table(s: &mut String, b: &BenchBundle) {
    let mut cols: Vec<&'static str> = vec![scenario::CALL_COND_SOME];
    cols.extend(scenario::CALL_COLD.iter().map(|(_, c)| *c));
    cols.push(scenario::CALL_TRASHED);
    cols.extend(scenario::CALL_POLLUTED.iter().map(|(_, c)| *c));
    cols.retain(|c| b.figures.iter().any(|f| f.scenario == *c));
    if cols.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nCall cost, cold and crowded: the ratio to the reference (cond-some: `if let Some(f)` with Some; the others: the direct call), median of per-round ratios with its bootstrap 95% interval. The trashed and polluted figures are derived by subtraction (each call timed alone, less the no-call window).\n"
    );
    let _ = write!(s, "| subject |");
    for c in &cols {
        let _ = write!(s, " {c} |");
    }
    let _ = write!(s, "\n|---|");
    for _ in &cols {
        s.push_str("---|");
    }
    s.push('\n');
    for subj in &b.subjects {
        let cells: Vec<String> = cols
            .iter()
            .map(|c| match Measure::call_wall(c).get(b, &subj.name, None) {
                Some(f) => match &f.ratio {
                    Some(r) => format!(
                        "{:.3}× [{:.3}–{:.3}]",
                        r.value, r.interval.low, r.interval.high
                    ),
                    None => format!("{} (reference)", time(f.value)),
                },
                None => "–".to_owned(),
            })
            .collect();
        if cells.iter().all(|c| c == "–") {
            continue;
        }
        let _ = writeln!(s, "| {} | {} |", subj.name, cells.join(" | "));
    }
}

/// `update/cond-sites`: one switch of a conditional key with N compiled
/// sites, median per subject and site count; empty when the bundle has
/// none.
fn cond_sites_table(s: &mut String, b: &BenchBundle) {
    let m = Measure::wall(scenario::UPDATE_COND_SITES, Per::Update);
    let mut counts: Vec<u64> = b
        .figures
        .iter()
        .filter(|f| f.scenario == scenario::UPDATE_COND_SITES)
        .filter_map(|f| f.sites)
        .collect();
    counts.sort_unstable();
    counts.dedup();
    if counts.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n{}: one switch of a conditional key with N compiled sites, idle (median of single switches; static-keys: its ratio to inline-patch).\n",
        scenario::UPDATE_COND_SITES
    );
    let _ = write!(s, "| subject |");
    for n in &counts {
        let _ = write!(s, " {n} sites |");
    }
    let _ = write!(s, "\n|---|");
    for _ in &counts {
        s.push_str("---|");
    }
    s.push('\n');
    for subj in &b.subjects {
        let cells: Vec<String> = counts
            .iter()
            .map(|n| match m.get(b, &subj.name, Some(*n)) {
                Some(f) => match &f.ratio {
                    Some(r) => format!(
                        "{} ({:.1}× [{:.1}–{:.1}])",
                        time(f.value),
                        r.value,
                        r.interval.low,
                        r.interval.high
                    ),
                    None => time(f.value),
                },
                None => "–".to_owned(),
            })
            .collect();
        if cells.iter().all(|c| c == "–") {
            continue;
        }
        let _ = writeln!(s, "| {} | {} |", subj.name, cells.join(" | "));
    }
}
