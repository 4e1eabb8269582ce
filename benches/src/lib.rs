//! Benchmarks of the static-call implementations, written once and run
//! over every implementation and control (the rebar habit).
//!
//! * [`subjects`]: every implementation of the one list
//!   (`static_call_implementations::implementations!`) and the controls (a
//!   direct call, a plain function pointer, a `dyn Trait` call, an
//!   `Option<fn>`, …), each with the same loop functions for the call-cost
//!   scenarios; and [`subjects::Selection`], what a filtered run measures.
//!   A new implementation needs no line here; a control is one line in
//!   [`subjects::CONTROLS`].
//! * [`peers`]: published mechanisms of other libraries measured beside
//!   them (the `static-keys` crate; a call into a shared object through
//!   the PLT and through the GOT), with their own proofs.
//! * [`prove`]: before anything is measured, every benchmark decodes its
//!   own sites with iced-x86 and checks the form its name claims; a
//!   mismatch stops the run instead of measuring the wrong thing.
//! * [`scale`]: generated modules for the update, module and memory
//!   scenarios (1 to 10,000 sites, 100,000 foreign sites).
//! * [`cold`] and [`gencode`]: cold calls, a trashed predictor and a
//!   polluted indirect predictor, over code generated at run time.
//! * [`mod@outside`]: the call-cost proof and a short timed call loop for an
//!   implementation crate on no list (its own repository's tests).
//! * [`parts`]: each benchmark binary writes its part of the results; the
//!   parts are assembled into one bundle, `target/results/bench.json`
//!   (schema: the `static-call-bundle` crate).
//!
//! The benchmark binaries are `benches/criterion/` (wall time),
//! `benches/callgrind.rs` (gungraun, formerly iai-callgrind: instruction
//! counts) and `benches/perf/main.rs` (perf-event counters and registry memory).
//! `STATIC_CALL_BENCH_QUICK=1` selects the quick mode.

pub mod callers;
pub mod cold;
pub mod gencode;
pub mod machine;
pub mod outside;
pub mod parts;
pub mod peers;
pub mod prove;
pub mod rounds;
pub mod scale;
pub mod subjects;
pub mod symbols;
pub mod targets;
pub mod threads;

/// Whether the quick mode was asked for (`STATIC_CALL_BENCH_QUICK=1`).
pub fn quick() -> bool {
    std::env::var("STATIC_CALL_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The bundle's run mode.
pub fn mode() -> static_call_bundle::Mode {
    if quick() {
        static_call_bundle::Mode::Quick
    } else {
        static_call_bundle::Mode::Full
    }
}

/// Site counts of the scaling scenarios.
pub const SITE_COUNTS: [u64; 5] = [1, 10, 100, 1_000, 10_000];

/// Foreign sites in the "1-site update among foreign sites" scenario.
pub const FOREIGN_SITES: u64 = 100_000;

/// Distinct sites in the many-sites scenario.
pub const MANY_SITES: u64 = 1_024;

/// Calls per loop in the hot scenarios of the instruction counts (the
/// per-call figure is the difference between two loop lengths).
pub const CALLGRIND_LOOP: u64 = 1_000;

pub use static_call_bundle::paths::{results_dir, target_dir, workspace_root};

/// Rounds of the interleaved call-cost measurement
/// (`STATIC_CALL_BENCH_ROUNDS` overrides; at least 10).
pub fn rounds() -> u32 {
    std::env::var("STATIC_CALL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick() { 12 } else { 40 })
        .max(10)
}

/// Target wall time of one subject's batch of calls in a round, ns.
pub fn batch_ns() -> u64 {
    if quick() { 2_000_000 } else { 5_000_000 }
}

/// Single-update samples per latency figure (after the first, cold one).
pub fn latency_samples(sites: u64) -> usize {
    match (quick(), sites >= 1_000) {
        (true, true) => 30,
        (true, false) => 100,
        (false, true) => 200,
        (false, false) => 1_000,
    }
}

/// The benchmark settings, as the bundle records them.
pub fn settings() -> String {
    format!(
        "{} mode; call cost: {} interleaved rounds in shuffled order, per subject and round the minimum of 3 batches of about {} ms together, 2000 bootstrap resamples; latency: {} / {} single-update samples (< / >= 1,000 sites) after one cold update; criterion (module load/unload, shared object): flat sampling, 10 samples, warm-up {} ms, measurement {} ms",
        if quick() { "quick" } else { "full" },
        rounds(),
        batch_ns() / 1_000_000,
        latency_samples(1),
        latency_samples(10_000),
        if quick() { 50 } else { 300 },
        if quick() { 300 } else { 1500 },
    )
}
