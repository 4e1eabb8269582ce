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

use static_call_bundle::{Figure, Instrument, Metric, Missing, Round, SiteDump, control, scenario};

use crate::gencode;
use crate::subjects::Selection;

mod crossover;
mod measure;
mod noisy;
mod placement;

pub use crossover::{CROSSOVER_SUBJECTS, crossover};
use measure::position;
use noisy::noisy;
use placement::cold;
pub use placement::{FAR_BLOCK_SHIFT, PLACEMENTS};

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
    // Whether `id` is selected; if not, every subject's figure of it is
    // marked "not selected".
    let selected = |id: &str, missing: &mut Vec<Missing>| {
        let yes = sel.selects_scenario(id);
        if !yes {
            missing.extend(sel.left_out(
                id,
                names.iter().copied(),
                Metric::WallTime,
                Instrument::Timer,
            ));
        }
        yes
    };
    for &(n, id) in cold_sites() {
        if !selected(id, &mut out.missing) {
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
        if !selected(id, &mut out.missing) {
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
