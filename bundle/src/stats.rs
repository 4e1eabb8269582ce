//! The statistics the suite's figures are made and compared with: the
//! median, a nearest-rank quantile, and percentile-bootstrap 95% intervals
//! (of a median, and of the ratio of two medians), on a small
//! deterministic generator so that a seed reproduces every interval.
//!
//! The benchmarks make their figures with these, and the report judges
//! them with the same functions, so a figure and its comparison rest on
//! one definition.

use crate::Interval;

/// Bootstrap resamples.
pub const RESAMPLES: usize = 2_000;

/// The seed of the report's bootstrap intervals (a fixed one: the page is
/// the same for the same bundles).
pub const REPORT_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// A small deterministic generator (xorshift64*): the shuffles and the
/// bootstrap need no cryptographic quality, and a seed reproduces them.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Shuffles `v` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// The median (the mean of the two middle values for an even count);
/// NaN for no values.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The median of `v`, reordering it (a selection, not a sort: the
/// bootstrap takes thousands of medians); NaN for no values.
pub fn median_in_place(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let (left, mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let mid = *mid;
    if n % 2 == 1 {
        mid
    } else {
        let below = left.iter().copied().max_by(f64::total_cmp).unwrap_or(mid);
        (below + mid) / 2.0
    }
}

/// The `q` quantile by nearest rank (`q` in 0..=1; p99 is `0.99`); NaN
/// for no values.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = (q * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

/// A percentile-bootstrap 95% interval of the median of `v` ([`RESAMPLES`]
/// resamples; `v` must not be empty).
pub fn bootstrap_median(v: &[f64], rng: &mut Rng) -> Interval {
    let mut meds = Vec::with_capacity(RESAMPLES);
    let mut buf = vec![0.0; v.len()];
    for _ in 0..RESAMPLES {
        for b in buf.iter_mut() {
            *b = v[rng.below(v.len())];
        }
        meds.push(median_in_place(&mut buf));
    }
    Interval {
        low: quantile(&meds, 0.025),
        high: quantile(&meds, 0.975),
        level: 0.95,
    }
}

/// A percentile-bootstrap 95% interval of the median of `v` whose values
/// come in `clusters` interleaved clusters (`v[i]` belongs to cluster
/// `i % clusters`: the rounds that ran copy `i % clusters` of a loop). A
/// two-stage resample: clusters with replacement, then values within each
/// chosen cluster with replacement, so the interval carries the spread
/// between clusters (placements of the code), which resampling the values
/// alone would hide. `clusters` 1 is [`bootstrap_median`].
pub fn bootstrap_median_clustered(v: &[f64], clusters: usize, rng: &mut Rng) -> Interval {
    if clusters <= 1 || v.len() < clusters {
        return bootstrap_median(v, rng);
    }
    let groups: Vec<Vec<f64>> = (0..clusters)
        .map(|c| v.iter().skip(c).step_by(clusters).copied().collect())
        .collect();
    let mut meds = Vec::with_capacity(RESAMPLES);
    let mut buf = Vec::with_capacity(v.len());
    for _ in 0..RESAMPLES {
        buf.clear();
        for _ in 0..clusters {
            let g = &groups[rng.below(clusters)];
            for _ in 0..g.len() {
                buf.push(g[rng.below(g.len())]);
            }
        }
        meds.push(median_in_place(&mut buf));
    }
    Interval {
        low: quantile(&meds, 0.025),
        high: quantile(&meds, 0.975),
        level: 0.95,
    }
}

/// A percentile-bootstrap 95% interval of `median(a) / median(b)`,
/// resampling each sample on its own ([`RESAMPLES`] resamples); `None`
/// when either is empty.
pub fn bootstrap_ratio_of_medians(a: &[f64], b: &[f64], rng: &mut Rng) -> Option<Interval> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut r = Vec::with_capacity(RESAMPLES);
    let (mut ra, mut rb) = (vec![0.0; a.len()], vec![0.0; b.len()]);
    for _ in 0..RESAMPLES {
        for x in ra.iter_mut() {
            *x = a[rng.below(a.len())];
        }
        for x in rb.iter_mut() {
            *x = b[rng.below(b.len())];
        }
        r.push(median_in_place(&mut ra) / median_in_place(&mut rb));
    }
    Some(Interval {
        low: quantile(&r, 0.025),
        high: quantile(&r, 0.975),
        level: 0.95,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn clustered_bootstrap_carries_the_spread_between_clusters() {
        use super::*;
        // Two clusters 2% apart, each tight: the plain bootstrap's interval
        // is narrow around the middle, the clustered one spans both.
        let v: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 0.99 } else { 1.01 } + (i as f64) * 1e-5)
            .collect();
        let plain = bootstrap_median(&v, &mut Rng::new(7));
        let clustered = bootstrap_median_clustered(&v, 2, &mut Rng::new(7));
        assert!(plain.high - plain.low < 0.021, "{plain:?}");
        assert!(
            clustered.low < 0.991 && clustered.high > 1.009,
            "{clustered:?}"
        );
        assert_eq!(
            bootstrap_median_clustered(&v, 1, &mut Rng::new(7)),
            bootstrap_median(&v, &mut Rng::new(7))
        );
    }

    use super::*;

    #[test]
    fn statistics() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        for v in [
            &[3.0, 1.0, 2.0][..],
            &[4.0, 1.0, 2.0, 3.0],
            &[5.0],
            &[2.0, 2.0, 1.0, 9.0],
        ] {
            assert_eq!(median_in_place(&mut v.to_vec()), median(v), "{v:?}");
        }
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        let mut rng = Rng::new(7);
        let i = bootstrap_median(&v, &mut rng);
        assert!(
            i.low < 50.5 && 50.5 < i.high && i.high - i.low < 30.0,
            "{i:?}"
        );
        // A constant sample has a point interval.
        let i = bootstrap_median(&[2.0; 12], &mut rng);
        assert_eq!((i.low, i.high), (2.0, 2.0));
    }

    #[test]
    fn ratio_of_medians() {
        let mut rng = Rng::new(REPORT_SEED);
        let a: Vec<f64> = (0..40).map(|k| 2.0 + f64::from(k % 5) * 0.01).collect();
        let b: Vec<f64> = (0..40).map(|k| 1.0 + f64::from(k % 5) * 0.005).collect();
        let i = bootstrap_ratio_of_medians(&a, &b, &mut rng).unwrap();
        assert!(
            i.low <= 2.0 && 2.0 <= i.high && i.high - i.low < 0.05,
            "{i:?}"
        );
        assert!(bootstrap_ratio_of_medians(&[], &b, &mut rng).is_none());
        let i = bootstrap_ratio_of_medians(&[3.0; 5], &[1.5; 7], &mut rng).unwrap();
        assert_eq!((i.low, i.high), (2.0, 2.0));
    }

    #[test]
    fn shuffles_are_permutations() {
        let mut rng = Rng::new(1);
        let mut v: Vec<u32> = (0..10).collect();
        rng.shuffle(&mut v);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..10).collect::<Vec<_>>());
        assert_ne!(v, (0..10).collect::<Vec<_>>());
    }
}
