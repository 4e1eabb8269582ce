//! Calls the warm loops do not show: cold sites, a trashed predictor and a
//! polluted indirect predictor (issue 22, items 2 and 3).
//!
//! * **Cold calls** (`call/cold-16384-sites`, `call/cold-65536-sites`):
//!   per subject a chain of 16,384 or 65,536 stubs ([`gencode::chain`]),
//!   one per 64-byte line (1 or 4 MiB of code, the same for every
//!   subject), visited in a shuffled order (the same permutation for every
//!   subject): every call is the first in a long while at its site, so the
//!   branch target buffer, the L1i and the op cache miss. Per call: the
//!   pass's time / N. Every subject's chain is generated [`PLACEMENTS`]
//!   times afresh and the rounds take the placements in turn (intervals:
//!   the two-stage bootstrap, placements then rounds), each chain wholly
//!   inside a 16 MiB block of addresses other than its target's
//!   ([`FAR_BLOCK_SHIFT`]: where a chain lies against its target decided
//!   the ratios when left to chance).
//! * **Trashed predictor** (`call/trashed-predictor`): a loop that makes
//!   [`TRASH_JUMPS`] indirect jumps to random targets ([`gencode::trash`],
//!   shared by every subject) before each call of the subject's one site.
//! * **Polluted indirect predictor** (`call/polluted-<P>`): the site's
//!   target never changes, but between two calls `P` other indirect jumps,
//!   each with its own changing target ([`gencode::polluters`], shared),
//!   compete for the predictor's entries.
//!
//! Every scenario is measured as the warm ones are ([`crate::rounds`](mod@crate::rounds)):
//! interleaved rounds in a shuffled order, each subject's round the
//! minimum of three batches, the figure the median of the rounds and the
//! ratio to `direct` the median of the per-round ratios, with bootstrap
//! intervals; `direct-aa` (a second generated copy of the direct form) is
//! the noise floor. In the trashed and polluted scenarios each call is
//! timed alone, between two time-stamp-counter reads each after an
//! `lfence` (the noise runs outside that window), and a baseline loop with
//! no call (`lea rax, [rdi + 1]` where the site is) runs in the same
//! rounds: a figure is **derived by subtraction**, per round (window with
//! the call) − (window without it); its ratio to `direct` is the per-round
//! ratio of those differences. (Timing the whole iteration instead left
//! the call's few nanoseconds inside microseconds of polluters: intervals
//! of ±300 ns at P = 4,096.) The **crossover** ([`crossover`]) is derived from
//! the polluted figures and written into their notes.

use static_call_bundle::{
    Figure, Instrument, Interval, Metric, Missing, Per, Ratio, Round, SiteDump, Statistic, control,
    scenario,
};

use crate::gencode::{self, BASELINE, GenSubject, SiteKind};
use crate::rounds::{BATCHES_PER_ROUND, Rng, bootstrap_median_clustered, cpu, median, steal_ticks};
use crate::subjects::Selection;

/// Indirect jumps of the trash between two calls.
pub const TRASH_JUMPS: u32 = 32;

/// Chain lengths of the cold scenario (quick mode: the first).
pub fn cold_sites() -> &'static [(u64, &'static str)] {
    if crate::quick() {
        &scenario::CALL_COLD[..1]
    } else {
        &scenario::CALL_COLD
    }
}

/// The polluters' counts (quick mode: 0, 256 and 4,096).
pub fn pollution() -> Vec<(u64, &'static str)> {
    scenario::CALL_POLLUTED
        .iter()
        .copied()
        .filter(|(p, _)| !crate::quick() || matches!(p, 0 | 256 | 4096))
        .collect()
}

/// Every scenario of this module, as the bundle names them.
pub fn scenario_ids() -> Vec<&'static str> {
    scenario::CALL_COLD
        .iter()
        .map(|c| c.1)
        .chain([scenario::CALL_TRASHED])
        .chain(scenario::CALL_POLLUTED.iter().map(|c| c.1))
        .collect()
}

/// What [`run`] measured.
#[derive(Debug, Default)]
pub struct Output {
    /// The figures.
    pub figures: Vec<Figure>,
    /// The rounds.
    pub rounds: Vec<Round>,
    /// What was not selected.
    pub missing: Vec<Missing>,
    /// Each subject's first generated site of each scenario, decoded.
    pub sites: Vec<SiteDump>,
}

/// One subject's batch: runs `units` units, checking the result, and
/// returns the nanoseconds it measured (the whole batch, or the timed
/// windows of a loop).
type Batch<'a> = Box<dyn Fn(u64) -> Result<f64, String> + 'a>;

/// Per subject its per-round values, the rounds, and the units per batch.
type Interleaved = (Vec<Vec<f64>>, Vec<Round>, u64);

/// Interleaved rounds over `runners` (name, batch): per subject and round
/// the minimum of [`BATCHES_PER_ROUND`] batches, in measured ns per call;
/// `units` calibrated on `runners[reference]` so that its batches of a
/// round take about `batch_ns` of wall time.
fn interleaved(
    id: &str,
    runners: &[(&'static str, Batch<'_>)],
    reference: usize,
    calls_per_unit: u64,
    (rounds, batch_ns, seed): (u32, u64, u64),
) -> Result<Interleaved, String> {
    let time = |f: &Batch<'_>, units: u64| f(units);
    let mut units = 1u64;
    loop {
        let t = std::time::Instant::now();
        time(&runners[reference].1, units)?;
        let ns = t.elapsed().as_nanos() as u64;
        if ns >= batch_ns / 4 || units > 1 << 40 {
            units = (units as u128 * batch_ns as u128
                / (ns.max(1) as u128 * u128::from(BATCHES_PER_ROUND)))
            .max(1) as u64;
            break;
        }
        units *= 4;
    }
    for (_, f) in runners {
        f(units / 4 + 1)?;
    }
    let mut rng = Rng::new(seed);
    let mut per = vec![Vec::new(); runners.len()];
    let mut out = Vec::new();
    for r in 0..rounds {
        let mut order: Vec<usize> = (0..runners.len()).collect();
        rng.shuffle(&mut order);
        let steal0 = steal_ticks();
        let mut cpus = Vec::new();
        for &k in &order {
            let c0 = cpu();
            let mut best = f64::INFINITY;
            for _ in 0..BATCHES_PER_ROUND {
                best = best.min(time(&runners[k].1, units)?);
            }
            for c in [c0, cpu()] {
                if !cpus.contains(&c) {
                    cpus.push(c);
                }
            }
            per[k].push(best / (units * calls_per_unit) as f64);
        }
        out.push(Round {
            scenario: id.into(),
            index: r,
            order: order.iter().map(|&k| runners[k].0.to_owned()).collect(),
            cpus,
            steal_ticks: match (steal0, steal_ticks()) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                _ => None,
            },
        });
    }
    Ok((per, out, units))
}

/// A per-call figure from per-round values and per-round ratios.
fn figure(
    id: &str,
    subject: &str,
    raw: Vec<f64>,
    ratio: Option<Vec<f64>>,
    note: String,
    clusters: usize,
    rng: &mut Rng,
) -> Figure {
    let ratio = ratio.map(|r| Ratio {
        reference: control::DIRECT.into(),
        value: median(&r),
        interval: bootstrap_median_clustered(&r, clusters, rng),
        raw: r,
    });
    Figure {
        scenario: id.into(),
        subject: subject.into(),
        sites: None,
        metric: Metric::WallTime,
        per: Per::Call,
        instrument: Instrument::Timer,
        value: median(&raw),
        interval: Some(bootstrap_median_clustered(&raw, clusters, rng)),
        samples: Some(raw.len() as u64),
        note: Some(note),
        statistic: Some(Statistic::Median),
        raw,
        first: None,
        ratio,
        histogram: None,
    }
}

fn per_round(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect()
}

fn position(subs: &[GenSubject], name: &str) -> Result<usize, String> {
    subs.iter()
        .position(|s| s.name == name)
        .ok_or_else(|| format!("no {name} among the generated subjects"))
}

/// Time-stamp counter ticks per nanosecond, measured against the clock
/// over 20 ms.
fn ticks_per_ns() -> f64 {
    // SAFETY: `rdtsc` has no preconditions on x86-64.
    let tsc = || unsafe { core::arch::x86_64::_rdtsc() };
    let (t0, c0) = (std::time::Instant::now(), tsc());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (t1, c1) = (std::time::Instant::now(), tsc());
    c1.wrapping_sub(c0) as f64 / (t1 - t0).as_nanos().max(1) as f64
}

const LAYOUT_SEED: u64 = 0x00c0_1dca_11ed;

/// Measures the selected scenarios of this module.
///
/// # Errors
/// A proof that fails, a wrong result, or code that could not be
/// generated or registered: the benchmark must not measure on.
pub fn run(sel: &Selection, seed: u64) -> Result<Output, String> {
    let mut out = Output::default();
    let subs = gencode::subjects();
    let names: Vec<&str> = subs.iter().map(|s| s.name).collect();
    let settings = (crate::rounds(), crate::batch_ns(), seed);
    let direct = position(&subs, control::DIRECT)?;
    for &(n, id) in cold_sites() {
        if !sel.selects_scenario(id) {
            out.missing.extend(sel.left_out(
                id,
                names.iter().copied(),
                Metric::WallTime,
                Instrument::Timer,
            ));
            continue;
        }
        cold(&mut out, &subs, direct, (n as usize, id), settings)?;
    }
    for (n, id) in scenario::CALL_COLD {
        if !cold_sites().iter().any(|c| c.0 == n) && sel.selects_scenario(id) {
            out.missing.push(quick_only(id));
        }
    }
    let mut loops = vec![(None, scenario::CALL_TRASHED)];
    loops.extend(
        pollution()
            .into_iter()
            .map(|(p, id)| (Some(p as usize), id)),
    );
    for (p, id) in loops {
        if !sel.selects_scenario(id) {
            out.missing.extend(sel.left_out(
                id,
                names.iter().copied(),
                Metric::WallTime,
                Instrument::Timer,
            ));
            continue;
        }
        noisy(&mut out, &subs, direct, (p, id), settings)?;
    }
    for (p, id) in scenario::CALL_POLLUTED {
        if !pollution().iter().any(|c| c.0 == p) && sel.selects_scenario(id) {
            out.missing.push(quick_only(id));
        }
    }
    crossover(&mut out.figures);
    Ok(out)
}

fn quick_only(id: &str) -> Missing {
    Missing {
        scenario: id.into(),
        subject: None,
        metric: Metric::WallTime,
        instrument: Instrument::Timer,
        reason: "not measured in the quick mode (the full run has it)".into(),
    }
}

/// The generated subjects, and the ones that have no generated form.
fn subjects_note() -> String {
    format!(
        "subjects generated at run time: every implementation (its design's unpatched site on its SCALE key, registered as a module's site), direct and direct-aa (call rel32), call-mem-indirect, lfence-indirect; {}, {} and {} are compiled by rustc and have no generated form",
        control::FN_POINTER,
        control::DYN_TRAIT,
        control::OPTION_FN
    )
}

/// Placements of every subject's chain in a cold scenario: the rounds
/// take them in turn (round `r` runs placement `r % PLACEMENTS`), so every
/// ratio is taken over this many placements and its interval is the
/// two-stage bootstrap over them.
pub const PLACEMENTS: usize = 4;

/// A cold call costs more when its target lies in another
/// `1 << FAR_BLOCK_SHIFT`-byte (16 MiB) aligned block of addresses than
/// its site (on this machine's AMD EPYC: about 7.5 ns a call within the
/// block, 13.7 ns across it, the same `call rel32` chain). Every chain is
/// placed wholly inside such a block other than its target's, so that
/// every subject pays the same: the placement no longer decides a ratio.
pub const FAR_BLOCK_SHIFT: u32 = 24;

/// Blocks either side of the target's that a chain may be placed in.
const FAR_BLOCKS: usize = 4;

/// Maps `s`'s chain of `order` wholly inside one 16 MiB block
/// ([`FAR_BLOCK_SHIFT`]) other than `add1`'s, at a random page of a random
/// one of the [`FAR_BLOCKS`] blocks either side; returns the chain and its
/// block's distance from the target's (in blocks, signed).
fn place_far(
    s: &GenSubject,
    order: &[usize],
    rng: &mut Rng,
) -> Result<(gencode::Chain, isize), String> {
    const PAGE: usize = 4096;
    let home = (crate::targets::add1 as *const () as usize) >> FAR_BLOCK_SHIFT;
    let block = 1usize << FAR_BLOCK_SHIFT;
    let len = gencode::chain_len(order.len()).div_ceil(PAGE) * PAGE;
    if len > block {
        return Err(format!(
            "{}: a chain of {} stubs ({len} bytes) does not fit in a block of {block} bytes",
            s.name,
            order.len()
        ));
    }
    let mut seen = Vec::new();
    for _ in 0..32 {
        let off = 1 + rng.below(FAR_BLOCKS);
        let b = if rng.below(2) == 0 {
            home.checked_sub(off)
        } else {
            home.checked_add(off)
        };
        let Some(b) = b.filter(|&b| b > 0) else {
            continue;
        };
        let near = (b << FAR_BLOCK_SHIFT) + rng.below((block - len) / PAGE + 1) * PAGE;
        let c = gencode::chain_near(s, order, near)?;
        let (first, last) = (c.code.addr(), c.code.addr() + c.code.len() - 1);
        if first >> FAR_BLOCK_SHIFT == b && last >> FAR_BLOCK_SHIFT == b {
            return Ok((c, b as isize - home as isize));
        }
        seen.push(format!("{first:#x}"));
    }
    Err(format!(
        "{}: no chain of {} stubs could be placed wholly inside a 16 MiB block other than its target's (placed at {})",
        s.name,
        order.len(),
        seen.join(", ")
    ))
}

fn cold(
    out: &mut Output,
    subs: &[GenSubject],
    direct: usize,
    (n, id): (usize, &str),
    (rounds, batch_ns, seed): (u32, u64, u64),
) -> Result<(), String> {
    let per_placement = rounds.div_ceil(PLACEMENTS as u32);
    let mut rng = Rng::new(seed ^ LAYOUT_SEED ^ n as u64);
    // per[g][k][r]: placement g, subject k, round r of that placement.
    let mut per = Vec::new();
    let mut all_rounds = Vec::new();
    let mut units = Vec::new();
    let mut blocks = vec![Vec::new(); subs.len()];
    for g in 0..PLACEMENTS {
        // A fresh permutation and fresh places, the subjects' chains
        // generated in a shuffled order; the previous placement's chains
        // are unmapped first.
        let mut order: Vec<usize> = (0..n).collect();
        Rng::new(LAYOUT_SEED ^ n as u64 ^ ((g as u64) << 32)).shuffle(&mut order);
        let mut making: Vec<usize> = (0..subs.len()).collect();
        rng.shuffle(&mut making);
        let mut chains: Vec<Option<gencode::Chain>> = (0..subs.len()).map(|_| None).collect();
        for &k in &making {
            let s = &subs[k];
            let (c, b) = place_far(s, &order, &mut rng)?;
            let dumps = gencode::prove_chain(s, &c, &format!("benchmark {id}"))?;
            if g == 0 {
                out.sites.extend(dumps);
            }
            blocks[k].push(b);
            chains[k] = Some(c);
        }
        let chains: Vec<gencode::Chain> = chains.into_iter().flatten().collect();
        let runners: Vec<(&'static str, Batch<'_>)> = subs
            .iter()
            .zip(&chains)
            .map(|(s, c)| {
                let name = s.name;
                let f: Batch<'_> = Box::new(move |units| {
                    let t = std::time::Instant::now();
                    let mut x = 0u64;
                    for _ in 0..units {
                        x = c.run(x);
                    }
                    if x != units * c.n as u64 {
                        return Err(format!(
                            "{name} {id}: {units} passes of {} calls returned {x}, expected {}",
                            c.n,
                            units * c.n as u64
                        ));
                    }
                    Ok(t.elapsed().as_nanos() as f64)
                });
                (name, f)
            })
            .collect();
        let (p, mut r, u) = interleaved(
            id,
            &runners,
            direct,
            n as u64,
            (per_placement, batch_ns, seed ^ g as u64),
        )?;
        // Round `i` of placement `g` is round `i * PLACEMENTS + g` of the
        // scenario: the placements interleave as the bootstrap expects.
        for round in &mut r {
            round.index = round.index * PLACEMENTS as u32 + g as u32;
        }
        per.push(p);
        all_rounds.extend(r);
        units.push(u);
    }
    all_rounds.sort_by_key(|r| r.index);
    // Subject k's values in the scenario's round order: value i from
    // placement i % PLACEMENTS.
    let values = |k: usize| -> Vec<f64> {
        (0..per_placement as usize)
            .flat_map(|r| per.iter().map(move |p| p[k][r]))
            .collect()
    };
    eprintln!(
        "call rounds: {id} ({} rounds over {PLACEMENTS} placements)",
        all_rounds.len()
    );
    let mut rng = Rng::new(seed ^ 0x5eed);
    let direct_values = values(direct);
    for (k, s) in subs.iter().enumerate() {
        let raw = values(k);
        let ratio = (k != direct).then(|| per_round(&raw, &direct_values, |a, b| a / b));
        let by_placement: Vec<String> = per
            .iter()
            .zip(&blocks[k])
            .map(|(p, b)| format!("{:.2} ns (block {b:+})", median(&p[k])))
            .collect();
        let note = format!(
            "a chain of {n} stubs, one per 64-byte line ({} KiB of code), each the subject's site then `mov rdi, rax; jmp <next>`, visited in a shuffled order (the same for every subject), so each call is the first at its site in {n} calls: time of a pass / {n}; {PLACEMENTS} placements of every subject's chain, each generated afresh (a new permutation, the subjects' chains made in a shuffled order) wholly inside a 16 MiB-aligned block of addresses other than the target's (a cold call across such blocks costs more than one within a block on this AMD EPYC: every subject pays the same), rounds taking the placements in turn; per placement (median, block from the target's): {}; median of {} interleaved rounds (shuffled order), a round's value the minimum of {BATCHES_PER_ROUND} batches of {} calls; ratio: median of the per-round ratios to direct, two-stage bootstrap 95% interval (placements, then rounds within each); {}",
            n * gencode::STUB / 1024,
            by_placement.join(", "),
            raw.len(),
            units
                .iter()
                .map(|u| (u * n as u64).to_string())
                .collect::<Vec<_>>()
                .join("/"),
            subjects_note()
        );
        out.figures
            .push(figure(id, s.name, raw, ratio, note, PLACEMENTS, &mut rng));
    }
    out.rounds.extend(all_rounds);
    Ok(())
}

/// The trashed (`p` None) or polluted (`Some(p)`) scenario.
fn noisy(
    out: &mut Output,
    subs: &[GenSubject],
    direct: usize,
    (p, id): (Option<usize>, &str),
    settings: (u32, u64, u64),
) -> Result<(), String> {
    let noise = match p {
        None => gencode::trash(TRASH_JUMPS, LAYOUT_SEED)?,
        Some(p) => gencode::polluters(p, LAYOUT_SEED ^ p as u64)?,
    };
    let baseline = GenSubject {
        name: BASELINE,
        site: SiteKind::NoCall,
    };
    let all: Vec<GenSubject> = subs.iter().copied().chain([baseline]).collect();
    let per_ns = ticks_per_ns();
    let mut loops = Vec::new();
    for s in &all {
        let l = gencode::looped(s, &noise)?;
        let d = gencode::prove_loop(s, &l, &noise, &format!("benchmark {id}"))?;
        if s.name != BASELINE {
            out.sites.extend(d);
        }
        loops.push(l);
    }
    let runners: Vec<(&'static str, Batch<'_>)> = all
        .iter()
        .zip(&loops)
        .map(|(s, l)| {
            let name = s.name;
            let f: Batch<'_> = Box::new(move |units| {
                let (x, ticks) = l.run(0, units);
                if x != units {
                    return Err(format!(
                        "{name} {id}: a loop of {units} returned {x}, expected {units}"
                    ));
                }
                Ok(ticks as f64 / per_ns)
            });
            (name, f)
        })
        .collect();
    let (per, rounds, units) = interleaved(id, &runners, direct, 1, settings)?;
    eprintln!("call rounds: {id} ({} rounds)", rounds.len());
    let base = &per[all.len() - 1];
    let what = match p {
        None => format!(
            "before each call, {TRASH_JUMPS} indirect jumps, each to a random one of {} pads (each pad its own jump site; a random sequence of 65,536 targets walked on from call to call), the same code and sequence for every subject",
            gencode::TRASH_PADS
        ),
        Some(p) => format!(
            "before each call of the one site (target always add1), {p} other indirect jumps (each its own site; each one's target changes from call to call in its own pattern of period {}), the same code and tables for every subject",
            gencode::POLLUTER_PHASES
        ),
    };
    let noise_alone = median(base);
    let direct_diff = per_round(&per[direct], base, |a, b| a - b);
    let mut rng = Rng::new(settings.2 ^ 0x5eed);
    for (k, s) in subs.iter().enumerate() {
        let diff = per_round(&per[k], base, |a, b| a - b);
        let ratio = (k != direct).then(|| per_round(&diff, &direct_diff, |a, b| a / b));
        let totals = median(&per_round(&per[k], &per[direct], |a, b| a / b));
        let note = format!(
            "derived by subtraction: each call timed alone, between two reads of the time-stamp counter each after an `lfence` (the call's latency with the pipeline drained before it), less the same window around `lea rax, [rdi + 1]` instead of the call (the baseline loop, measured in the same round); {what}, outside the timed window; the baseline window costs {noise_alone:.2} ns, the subject's {:.2} ns (medians of the rounds); ratio: median of the per-round ratios of the differences to direct's, bootstrap 95% interval (the windows' ratio to direct's window: {totals:.4}x); median of {} interleaved rounds (shuffled order), a round's value the minimum of {BATCHES_PER_ROUND} batches of {units} iterations (the counter at {per_ns:.3} ticks/ns); {}",
            median(&per[k]),
            diff.len(),
            subjects_note()
        );
        out.figures
            .push(figure(id, s.name, diff, ratio, note, 1, &mut rng));
    }
    out.rounds.extend(rounds);
    Ok(())
}

/// The subjects whose crossover is derived.
pub const CROSSOVER_SUBJECTS: [&str; 2] = ["plain-indirect", control::CALL_MEM_INDIRECT];

/// How far an interval reaches from 1 (the A/A noise floor).
fn floor_of(i: &Interval) -> f64 {
    (1.0 - i.low).max(i.high - 1.0).max(0.0)
}

/// The crossover, derived from the polluted figures: for `plain-indirect`
/// and `call-mem-indirect`, the smallest `P` whose ratio to direct leaves
/// the A/A noise floor of the same `P` (its interval, widened by how far
/// `direct-aa`'s interval reaches from 1, lies wholly above 1). Written
/// into the note of each of their polluted figures (and returned).
pub fn crossover(figures: &mut [Figure]) -> Vec<(String, Option<u64>, String)> {
    let mut found = Vec::new();
    for who in CROSSOVER_SUBJECTS {
        let mut steps = Vec::new();
        let mut first = None;
        for (p, id) in scenario::CALL_POLLUTED {
            let get = |s: &str| {
                figures
                    .iter()
                    .find(|f| f.scenario == id && f.subject == s)
                    .and_then(|f| f.ratio.as_ref())
            };
            let (Some(r), Some(aa)) = (get(who), get(control::DIRECT_AA)) else {
                continue;
            };
            let floor = floor_of(&aa.interval);
            let low = r.interval.low - floor;
            let out = low > 1.0;
            if out && first.is_none() {
                first = Some(p);
            }
            steps.push(format!(
                "P={p}: {:.3}x [{:.3}-{:.3}], A/A floor ±{floor:.3}: {}",
                r.value,
                r.interval.low,
                r.interval.high,
                if out { "above" } else { "within" }
            ));
        }
        if steps.is_empty() {
            continue;
        }
        let stays = steps
            .iter()
            .skip_while(|t| t.ends_with("within"))
            .all(|t| t.ends_with("above"));
        let text = format!(
            "crossover (derived from this run's call/polluted-* figures): {}; the smallest P whose ratio to direct, its interval widened by the A/A noise floor of the same P, lies wholly above 1 ({})",
            match first {
                None => "none among the P measured".to_owned(),
                Some(p) if stays => format!("P = {p}, and above at every larger P measured"),
                Some(p) => format!("P = {p}, but not above at every larger P measured"),
            },
            steps.join("; ")
        );
        for f in figures.iter_mut().filter(|f| {
            f.subject == who && scenario::CALL_POLLUTED.iter().any(|c| c.1 == f.scenario)
        }) {
            if let Some(n) = &mut f.note {
                n.push_str("; ");
                n.push_str(&text);
            }
        }
        eprintln!("{who}: {text}");
        found.push((who.to_owned(), first, text));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(id: &str, subject: &str, low: f64, high: f64) -> Figure {
        let mut f = figure(
            id,
            subject,
            vec![1.0; 3],
            None,
            String::new(),
            1,
            &mut Rng::new(1),
        );
        f.ratio = Some(Ratio {
            reference: control::DIRECT.into(),
            value: (low + high) / 2.0,
            interval: Interval {
                low,
                high,
                level: 0.95,
            },
            raw: Vec::new(),
        });
        f
    }

    #[test]
    fn a_cold_chain_lies_wholly_in_a_block_other_than_its_target() {
        let direct = GenSubject {
            name: control::DIRECT,
            site: SiteKind::Direct,
        };
        let home = (crate::targets::add1 as *const () as usize) >> FAR_BLOCK_SHIFT;
        let order: Vec<usize> = (0..4096).rev().collect();
        let mut rng = Rng::new(3);
        for _ in 0..4 {
            let (c, off) = place_far(&direct, &order, &mut rng).expect("placed");
            let first = c.code.addr() >> FAR_BLOCK_SHIFT;
            let last = (c.code.addr() + c.code.len() - 1) >> FAR_BLOCK_SHIFT;
            assert_eq!(first, last, "the chain straddles two blocks");
            assert_ne!(first, home, "the chain lies in its target's block");
            assert_eq!(first as isize - home as isize, off, "the block reported");
            gencode::prove_chain(&direct, &c, "test").expect("proved");
            assert_eq!(c.run(5), 5 + 4096);
        }
    }

    #[test]
    fn the_crossover_is_the_first_p_above_the_widened_floor() {
        let mut figures = Vec::new();
        // (P, plain-indirect's interval): the A/A reaches 0.01 from 1, so
        // an interval must start above 1.01 to leave the noise floor.
        let plain = [
            (0.995, 1.005),
            (1.005, 1.02),
            (1.02, 1.03),
            (1.05, 1.07),
            (1.011, 1.2),
            (1.3, 1.4),
        ];
        for ((_, id), (lo, hi)) in scenario::CALL_POLLUTED.iter().zip(plain) {
            figures.push(fig(id, control::DIRECT_AA, 0.99, 1.01));
            figures.push(fig(id, "plain-indirect", lo, hi));
        }
        let found = crossover(&mut figures);
        assert_eq!(found.len(), 1, "call-mem-indirect has no figures here");
        assert_eq!(found[0].1, Some(64));
        assert!(found[0].2.contains("P = 64, and above at every larger P"));
        let noted = figures
            .iter()
            .filter(|f| f.note.as_deref().is_some_and(|n| n.contains("crossover")))
            .count();
        assert_eq!(
            noted, 6,
            "every polluted figure of plain-indirect gets the note"
        );
        // Back within the floor at a larger P: said so.
        figures.retain(|f| f.scenario != "call/polluted-1024");
        figures.push(fig("call/polluted-1024", control::DIRECT_AA, 0.9, 1.1));
        figures.push(fig("call/polluted-1024", "plain-indirect", 1.05, 1.07));
        let found = crossover(&mut figures);
        assert!(
            found[0]
                .2
                .contains("P = 64, but not above at every larger P"),
            "{}",
            found[0].2
        );
    }
}
