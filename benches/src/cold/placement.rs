//! The cold scenario: every subject's chain placed [`PLACEMENTS`] times,
//! each time wholly inside a 16 MiB block other than its target's
//! ([`FAR_BLOCK_SHIFT`]), and timed pass by pass.

use crate::gencode::{self, GenSubject};
use crate::rounds::{BATCHES_PER_ROUND, Rng, median};

use super::measure::{Batch, figure, interleaved, per_round};
use super::{LAYOUT_SEED, Output, subjects_note};

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

pub(super) fn cold(
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

#[cfg(test)]
mod tests {
    use static_call_bundle::control;

    use super::{FAR_BLOCK_SHIFT, place_far};
    use crate::gencode::{self, GenSubject, SiteKind};
    use crate::rounds::Rng;

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
}
