//! The callers' side of an update: what a thread that calls a key pays
//! while another thread updates it.
//!
//! One caller thread (pinned to a CPU of its own where the machine has
//! two) calls the one site of the thread axis's 1-site key in a loop and
//! times every call with the time-stamp counter; the updater (pinned to
//! the first CPU) rotates the key through three targets, not at all, 1,000
//! times a second, or as fast as it can. Per run: the distribution of the
//! per-call latency (a log-linear histogram: every call counted, 16
//! buckets per power of two), the calls made, the breakpoint traps the
//! engine served, and the calls that saw a *stale* target.
//!
//! Staleness is what a return-after-sync design must never show: a call
//! that starts after an update has returned must reach that update's
//! target or a later one. The updater publishes the number of completed
//! updates `g` after each returns; the caller reads `g` before a call and
//! again after it (`g2`). With three targets in rotation, the targets of
//! updates `g ..= g2 + 1` are the only ones the call may return when that
//! span names at most two of them; anything else is stale (or wrong). A
//! call during which two or more updates completed cannot be judged and
//! is counted apart.
//!
//! The timer's own cost (two `rdtsc`) is in every figure, the same with
//! and without updates: compare with [`scenario::CALLERS_IDLE`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use static_call_bundle::{Bucket, Figure, Histogram, Instrument, Metric, Per, Statistic, scenario};

use crate::targets::{add1, add2, add3};
use crate::threads::{AddFn, ThreadImpl, allowed_cpus, pin, prove_key, traps, unpin};

/// How the updater runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updates {
    /// No update: the baseline.
    None,
    /// This many updates a second, paced by the clock.
    PerSecond(u32),
    /// Back to back.
    FlatOut,
}

impl Updates {
    /// The bundle scenario of this mode.
    pub fn scenario(self) -> &'static str {
        match self {
            Updates::None => scenario::CALLERS_IDLE,
            Updates::PerSecond(_) => scenario::CALLERS_1KHZ,
            Updates::FlatOut => scenario::CALLERS_FLAT_OUT,
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct CallerRun {
    /// Per-call latency, ns (every call of the caller).
    pub histogram: Histogram,
    /// Calls made.
    pub calls: u64,
    /// Seconds the caller ran.
    pub secs: f64,
    /// Updates completed.
    pub updates: u64,
    /// Breakpoint traps the engine served.
    pub traps: u64,
    /// Calls that returned a target older than one whose update had
    /// returned before the call started, or no target of the rotation.
    pub stale: u64,
    /// Calls during which two or more updates completed (not judged).
    pub unjudged: u64,
    /// How the threads were placed.
    pub note: String,
}

impl CallerRun {
    /// Calls per second.
    pub fn throughput(&self) -> f64 {
        self.calls as f64 / self.secs
    }

    /// The figures of this run of `subject` in `mode`: the per-call
    /// latency (its median the value, the histogram of every call kept),
    /// the caller's throughput ([`Metric::Calls`] per [`Per::Second`]),
    /// and, where the key was updated, the updates achieved per second and
    /// the breakpoints met per update ([`Metric::Breakpoints`] per
    /// [`Per::Update`]). `idle` is the throughput of the same loop with no
    /// updates, when it ran first: the latency figure's note quotes the
    /// ratio to it (a reader computes it from the two throughput figures).
    pub fn figures(&self, mode: Updates, subject: &str, idle: Option<f64>) -> Vec<Figure> {
        let h = &self.histogram;
        let tput = self.throughput();
        let per_update = |n: u64| {
            if self.updates == 0 {
                "no update".to_owned()
            } else {
                format!("{:.2} per update", n as f64 / self.updates as f64)
            }
        };
        let note = format!(
            "one caller's every call timed with the time-stamp counter (two rdtsc: the timer's own cost is in every figure); median (the value) {:.1} ns, p99 {:.1} ns, p99.9 {:.1} ns, p99.99 {:.1} ns, max {:.1} ns over {} calls in {:.2} s; {} updates ({}); {} calls met a breakpoint ({}); throughput {:.1} M calls/s{}; 0 stale calls (a call that started after an update returned always reached that update's target or a later one; {} calls spanned two updates or more and were not judged); {}",
            h.quantile(0.5),
            h.quantile(0.99),
            h.quantile(0.999),
            h.quantile(0.9999),
            h.max,
            self.calls,
            self.secs,
            self.updates,
            match mode {
                Updates::None => "none".to_owned(),
                Updates::PerSecond(hz) => format!("paced at {hz}/s"),
                Updates::FlatOut => format!("flat out: {:.0}/s", self.updates as f64 / self.secs),
            },
            self.traps,
            per_update(self.traps),
            tput / 1e6,
            match idle {
                Some(b) if mode != Updates::None =>
                    format!(" ({:.3}x the loop with no updates)", tput / b),
                _ => String::new(),
            },
            self.unjudged,
            self.note
        );
        let figure = |metric, per, instrument, value, samples, note: String, statistic| Figure {
            scenario: mode.scenario().into(),
            subject: subject.into(),
            sites: Some(1),
            metric,
            per,
            instrument,
            value,
            interval: None,
            samples: Some(samples),
            note: Some(note),
            statistic: Some(statistic),
            raw: Vec::new(),
            first: None,
            ratio: None,
            histogram: None,
        };
        let mut v = vec![
            Figure {
                histogram: Some(self.histogram.clone()),
                ..figure(
                    Metric::WallTime,
                    Per::Call,
                    Instrument::Timer,
                    h.quantile(0.5),
                    self.calls,
                    note,
                    Statistic::Median,
                )
            },
            figure(
                Metric::Calls,
                Per::Second,
                Instrument::Timer,
                tput,
                self.calls,
                format!(
                    "the caller's calls over the seconds it ran: {} calls in {:.3} s (timer included)",
                    self.calls, self.secs
                ),
                Statistic::Mean,
            ),
        ];
        if self.updates > 0 {
            v.push(figure(
                Metric::Updates,
                Per::Second,
                Instrument::Timer,
                self.updates as f64 / self.secs,
                self.updates,
                format!(
                    "updates completed over the seconds the caller ran: {} in {:.3} s",
                    self.updates, self.secs
                ),
                Statistic::Mean,
            ));
            v.push(figure(
                Metric::Breakpoints,
                Per::Update,
                Instrument::Registry,
                self.traps as f64 / self.updates as f64,
                self.updates,
                format!(
                    "breakpoint traps the engine served (engine_stats) over updates completed: {} over {}",
                    self.traps, self.updates
                ),
                Statistic::Mean,
            ));
        }
        v
    }
}

/// The target of update `g` of the rotation (update 0 is the key's start,
/// `add1`).
fn target(g: u64) -> AddFn {
    match g % 3 {
        0 => add1,
        1 => add2,
        _ => add3,
    }
}

/// The time-stamp counter.
fn tsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86-64 (user mode may read
    // it unless the kernel forbids it, which Linux does not by default).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Time-stamp counter ticks per nanosecond, measured against the clock
/// over 20 ms.
fn ticks_per_ns() -> f64 {
    let (t0, c0) = (Instant::now(), tsc());
    std::thread::sleep(Duration::from_millis(20));
    let (t1, c1) = (Instant::now(), tsc());
    (c1 - c0) as f64 / (t1 - t0).as_nanos() as f64
}

/// Buckets per power of two.
const SUB: u64 = 16;

/// The bucket of `v` ticks: exact below `SUB`, then `SUB` per power of two.
fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let p = 63 - u64::from(v.leading_zeros()); // v in [2^p, 2^(p+1))
    let shift = p - SUB.trailing_zeros() as u64;
    let sub = (v >> shift) - SUB; // 0..SUB
    (SUB + (p - SUB.trailing_zeros() as u64) * SUB + sub) as usize
}

/// The range of bucket `i` in ticks.
fn bucket_range(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, i + 1);
    }
    let k = (i - SUB) / SUB; // power above SUB
    let sub = (i - SUB) % SUB;
    let shift = k;
    ((SUB + sub) << shift, (SUB + sub + 1) << shift)
}

/// Runs one caller against `mode` for `secs` seconds.
///
/// # Errors
/// A failed update or proof, or a call that reached no target of the
/// rotation.
pub fn run(imp: &ThreadImpl, mode: Updates, secs: f64) -> Result<CallerRun, String> {
    (imp.init)().map_err(|e| e.to_string())?;
    imp.t1.update(add1).map_err(|e| e.to_string())?;
    prove_key(imp, imp.t1, add1)?;
    let per_ns = ticks_per_ns();
    let cpus = allowed_cpus();
    let pinned = pin(cpus[0]);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(std::sync::Barrier::new(2));
    let call = imp.call_t1;
    let caller = {
        let (done, stop, ready, cpus) = (done.clone(), stop.clone(), ready.clone(), cpus.clone());
        std::thread::spawn(move || {
            pin(cpus[1 % cpus.len()]);
            let mut counts = vec![0u64; 64 * SUB as usize];
            let last = counts.len() - 1;
            let (mut calls, mut stale, mut unjudged, mut max) = (0u64, 0u64, 0u64, 0u64);
            ready.wait();
            let start = Instant::now();
            let mut x = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let g = done.load(Ordering::Acquire);
                let t0 = tsc();
                let r = call(x);
                let t1 = tsc();
                let g2 = done.load(Ordering::Acquire);
                let d = t1.saturating_sub(t0);
                counts[bucket_of(d).min(last)] += 1;
                max = max.max(d);
                calls += 1;
                if g2 + 1 - g >= 2 {
                    // Updates g..=g2+1 name all three targets: any
                    // result of the rotation is possible.
                    unjudged += 1;
                    if ![add1(x), add2(x), add3(x)].contains(&r) {
                        stale += 1;
                    }
                } else if r != target(g)(x) && r != target(g + 1)(x) {
                    stale += 1;
                }
                x = x.wrapping_add(1);
            }
            (
                counts,
                calls,
                stale,
                unjudged,
                max,
                start.elapsed().as_secs_f64(),
            )
        })
    };
    ready.wait();
    let traps0 = traps();
    let t = Instant::now();
    let until = t + Duration::from_secs_f64(secs);
    let mut g = 0u64;
    let mut err = None;
    while Instant::now() < until {
        match mode {
            Updates::None => std::thread::sleep(Duration::from_millis(1)),
            Updates::PerSecond(hz) => {
                let next = t + Duration::from_secs_f64((g + 1) as f64 / f64::from(hz));
                if let Some(w) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(w);
                }
            }
            Updates::FlatOut => {}
        }
        if mode != Updates::None {
            if let Err(e) = imp.t1.update(target(g + 1)) {
                err = Some(format!("{}: update: {e}", imp.name));
                break;
            }
            g += 1;
            done.store(g, Ordering::Release);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (counts, calls, stale, unjudged, max, caller_secs) = caller
        .join()
        .map_err(|_| "the caller panicked".to_string())?;
    let traps = traps() - traps0;
    unpin(&cpus);
    if let Some(e) = err {
        return Err(e);
    }
    prove_key(imp, imp.t1, target(g))?;
    imp.t1.update(add1).map_err(|e| e.to_string())?;
    let ns = |ticks: u64| ticks as f64 / per_ns;
    let buckets = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, &count)| {
            let (lo, hi) = bucket_range(i);
            Bucket {
                low: ns(lo),
                high: ns(hi),
                count,
            }
        })
        .collect();
    let note = if !pinned {
        "not pinned (sched_setaffinity refused)".to_owned()
    } else if cpus.len() < 2 {
        "one CPU: the caller and the updater take turns on it".to_owned()
    } else {
        format!(
            "updater on CPU {}, caller on CPU {}",
            cpus[0],
            cpus[1 % cpus.len()]
        )
    };
    Ok(CallerRun {
        histogram: Histogram {
            buckets,
            max: ns(max),
        },
        calls,
        secs: caller_secs,
        updates: g,
        traps,
        stale,
        unjudged,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_once() {
        for v in (0..5000u64).chain([1 << 20, (1 << 20) + 12345, u64::from(u32::MAX)]) {
            let i = bucket_of(v);
            let (lo, hi) = bucket_range(i);
            assert!(lo <= v && v < hi, "{v} in bucket {i} = {lo}..{hi}");
        }
        assert_eq!(bucket_range(bucket_of(16)), (16, 17));
        assert_eq!(bucket_range(bucket_of(100)), (100, 104));
    }

    fn run_of(updates: u64, traps: u64) -> CallerRun {
        CallerRun {
            histogram: Histogram {
                buckets: vec![Bucket {
                    low: 10.0,
                    high: 11.0,
                    count: 4_000,
                }],
                max: 10.5,
            },
            calls: 4_000,
            secs: 2.0,
            updates,
            traps,
            stale: 0,
            unjudged: 0,
            note: String::new(),
        }
    }

    fn value(v: &[Figure], metric: Metric, per: Per) -> Option<f64> {
        let mut it = v.iter().filter(|f| f.metric == metric && f.per == per);
        let f = it.next()?;
        assert!(it.next().is_none(), "{metric:?} per {per:?} twice");
        assert_eq!(f.scenario, scenario::CALLERS_FLAT_OUT);
        assert_eq!(f.subject, "inline-patch");
        Some(f.value)
    }

    /// The throughput, updates per second and breakpoints per update are
    /// figures of their own, not only words in the latency's note.
    #[test]
    fn counts_are_figures() {
        let r = run_of(500, 250);
        let v = r.figures(Updates::FlatOut, "inline-patch", Some(4_000.0));
        assert_eq!(value(&v, Metric::Calls, Per::Second), Some(2_000.0));
        assert_eq!(value(&v, Metric::Updates, Per::Second), Some(250.0));
        assert_eq!(value(&v, Metric::Breakpoints, Per::Update), Some(0.5));
        let lat = v.iter().find(|f| f.metric == Metric::WallTime).unwrap();
        assert!(lat.histogram.is_some());
        assert!(
            lat.note
                .as_deref()
                .unwrap()
                .contains("(0.500x the loop with no updates)")
        );
        // With no update there is no rate of updates and nothing per update.
        let v = run_of(0, 0).figures(Updates::FlatOut, "inline-patch", None);
        assert_eq!(value(&v, Metric::Calls, Per::Second), Some(2_000.0));
        assert_eq!(value(&v, Metric::Updates, Per::Second), None);
        assert_eq!(value(&v, Metric::Breakpoints, Per::Update), None);
    }
}
