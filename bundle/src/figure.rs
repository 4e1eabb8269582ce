//! One measured number ([`Figure`]) and what it carries: its statistic,
//! interval, histogram and ratio; and a figure that could not be taken
//! ([`Missing`]).

use serde::{Deserialize, Serialize};

use crate::{Instrument, Metric, Per};

/// A confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Confidence level (0.95 for criterion's default).
    pub level: f64,
}

/// One measured number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    /// One of [`crate::scenario::ALL`].
    pub scenario: String,
    /// A name from [`crate::BenchBundle::subjects`].
    pub subject: String,
    /// Sites of the key or module, for the scaling scenarios (for
    /// [`crate::scenario::UPDATE_FOREIGN`]: the foreign sites present).
    #[serde(default)]
    pub sites: Option<u64>,
    /// What it measures.
    pub metric: Metric,
    /// What it is counted per.
    pub per: Per,
    /// What took it.
    pub instrument: Instrument,
    /// The value, in [`Metric::unit`] per [`Per`], as [`Figure::statistic`]
    /// says: the median of per-round values (call cost) or of single
    /// updates (latency); criterion's point estimate of the mean time per
    /// iteration (module loads; every wall time of a version 1 bundle);
    /// callgrind's exact count per call (the difference of two loop
    /// lengths); perf-event's mean per operation; bytes.
    pub value: f64,
    /// Its confidence interval, when the instrument gives one.
    #[serde(default)]
    pub interval: Option<Interval>,
    /// How many samples (or repetitions) it rests on.
    #[serde(default)]
    pub samples: Option<u64>,
    /// How it was taken, when that needs saying.
    #[serde(default)]
    pub note: Option<String>,
    /// Which statistic [`Figure::value`] is (version 2; `None` in version 1
    /// bundles, whose wall times are criterion's means).
    #[serde(default)]
    pub statistic: Option<Statistic>,
    /// The values the statistic was computed from, in the figure's unit:
    /// the per-round values of a call-cost figure, the single-update
    /// samples of a latency figure (version 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub raw: Vec<f64>,
    /// For a latency: the first (cold) operation, measured on its own and
    /// not among [`Figure::raw`].
    #[serde(default)]
    pub first: Option<f64>,
    /// For a call-cost figure: its ratio to the direct call, the median of
    /// the per-round ratios with a bootstrap interval.
    #[serde(default)]
    pub ratio: Option<Ratio>,
    /// The distribution of the values, bucketed, for figures over too
    /// many operations to keep each one (a caller's calls); the value and
    /// any quantile can be recomputed from it to a bucket's width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Histogram>,
}

/// Values bucketed by range, the empty buckets left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// The non-empty buckets, in increasing order.
    pub buckets: Vec<Bucket>,
    /// The largest value.
    pub max: f64,
}

/// One bucket of a [`Histogram`]: `count` values in `low..high`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Lower edge (included).
    pub low: f64,
    /// Upper edge (excluded).
    pub high: f64,
    /// How many values.
    pub count: u64,
}

impl Histogram {
    /// How many values in all.
    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b.count).sum()
    }

    /// The `q` quantile (0..=1) as the upper edge of the bucket that holds
    /// it (at most [`Histogram::max`]); NaN when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let n = self.total();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for b in &self.buckets {
            seen += b.count;
            if seen >= rank {
                return b.high.min(self.max);
            }
        }
        self.max
    }
}

/// Which statistic a figure's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// The median of [`Figure::raw`]; its interval a bootstrap 95%
    /// interval of the median.
    Median,
    /// A mean (criterion's, with its bootstrap interval; perf-event's mean
    /// over operations).
    Mean,
    /// The 99th percentile of [`Figure::raw`] (nearest rank).
    P99,
    /// The largest of [`Figure::raw`].
    Max,
    /// The first (cold) operation alone.
    First,
    /// An exact count (callgrind; two runs give the same number).
    Exact,
    /// One measurement (a byte count read once).
    Single,
    /// Computed by a formula from other numbers, not measured; the
    /// figure's note gives the formula.
    Formula,
}

impl Statistic {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Statistic::Median => "median",
            Statistic::Mean => "mean",
            Statistic::P99 => "p99",
            Statistic::Max => "max",
            Statistic::First => "first (cold)",
            Statistic::Exact => "exact count",
            Statistic::Single => "single measurement",
            Statistic::Formula => "formula",
        }
    }
}

/// A figure's ratio to a reference subject, round by round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ratio {
    /// The reference subject (`direct`).
    pub reference: String,
    /// The median of the per-round ratios.
    pub value: f64,
    /// Bootstrap 95% interval of that median (resampling rounds).
    pub interval: Interval,
    /// The per-round ratios.
    pub raw: Vec<f64>,
}

/// A figure that could not be taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Missing {
    /// Its scenario, or `*` for all of them.
    pub scenario: String,
    /// Its subject, when the reason is specific to one.
    #[serde(default)]
    pub subject: Option<String>,
    /// The metric that is missing.
    pub metric: Metric,
    /// The instrument that could not take it.
    pub instrument: Instrument,
    /// Why, as the failing call said it (`unavailable: …`).
    pub reason: String,
}
