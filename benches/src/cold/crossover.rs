//! The crossover, derived from the polluted figures.

use static_call_bundle::{Figure, Interval, control, scenario};

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
    use static_call_bundle::{Figure, Interval, Ratio, control, scenario};

    use super::crossover;
    use crate::cold::measure::figure;
    use crate::rounds::Rng;

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
