//! The call benchmarks for an implementation crate that is on no list of
//! this workspace (its own repository's, as `static_call_conformance::run`
//! is for the conformance catalogue): [`outside!`](crate::outside!) defines
//! a key and its call loop with that crate's macros, and [`measure`]
//! proves the loop's site the way every benchmark proves its own (the
//! form its design describes, the load inside the loop, the target), then
//! times the loop against the direct-call control.
//!
//! ```text
//! // tests/bench.rs of the implementation's crate
//! static_call_bench::outside!(mod mine = my_static_calls, "mine");
//! #[test]
//! fn call_cost() {
//!     let m = static_call_bench::outside::measure(&mine::subject(), 5_000).unwrap();
//!     eprintln!("{m}");
//! }
//! ```

use static_call_bundle::{SiteDump, control};
use static_call_core::{Registry, Result as LibResult, StaticCall};

use crate::prove::{KeyLoop, prove_key_loop};
use crate::subjects::{AddFn, LoopFn, SUBJECTS};

/// An implementation's key and loop, written by [`outside!`](crate::outside!)
/// in the implementation's own crate.
#[derive(Debug, Clone, Copy)]
pub struct Outside {
    /// Its name, for messages.
    pub name: &'static str,
    /// Its registry (its design says what a site holds).
    pub registry: &'static Registry,
    /// Its `init()`.
    pub init: fn() -> LibResult<()>,
    /// The key, targeting [`crate::targets::add1`].
    pub key: &'static StaticCall<AddFn>,
    /// `n` calls of the key's one site; returns `n`.
    pub hot1: LoopFn,
}

/// What [`measure`] found.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The implementation's name.
    pub name: &'static str,
    /// The loop's site, decoded and checked (and its trampoline, if any).
    pub site: Vec<SiteDump>,
    /// Calls per timed batch.
    pub calls: u64,
    /// The fastest of the batches, ns per call.
    pub ns_per_call: f64,
    /// The direct-call control's loop, timed the same way, ns per call.
    pub direct_ns_per_call: f64,
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let site = self
            .site
            .first()
            .map_or_else(String::new, |d| d.asm.join("; "));
        write!(
            f,
            "{}: call/hot-1arg {:.2} ns per call, direct {:.2} ns ({:.2}x), {} calls per batch; site `{site}`",
            self.name,
            self.ns_per_call,
            self.direct_ns_per_call,
            self.ns_per_call / self.direct_ns_per_call,
            self.calls
        )
    }
}

/// Batches timed per loop; the fastest counts.
const BATCHES: usize = 5;

/// Runs `init()`, proves the loop's site (as [`prove_key_loop`] proves
/// every implementation's: the form its design describes, a load of the
/// key inside the loop, the target `add1`), then times `calls` calls of it
/// and of the direct-call control, the fastest of a few batches each.
///
/// # Errors
/// `init()` failed, the proof failed (what was found, where, and what was
/// expected), or a loop returned a wrong value.
pub fn measure(o: &Outside, calls: u64) -> Result<Measured, String> {
    (o.init)().map_err(|e| format!("{}: init: {e}", o.name))?;
    let site = prove_key_loop(&KeyLoop {
        subject: o.name,
        scenario: static_call_bundle::scenario::CALL_HOT_1,
        registry: o.registry,
        key: o.key.raw(),
        key_name: "HOT1",
        want_target: Some(crate::targets::add1 as AddFn as usize),
        loop_fn: o.hot1,
        calls_per_unit: 1,
        copy: 0,
        copies: 1,
    })?;
    let direct = SUBJECTS
        .iter()
        .find(|s| s.name == control::DIRECT)
        .and_then(|s| s.loops.hot1)
        .ok_or("no direct-call control loop")?;
    Ok(Measured {
        name: o.name,
        site,
        calls,
        ns_per_call: time(o.name, o.hot1, calls)?,
        direct_ns_per_call: time(control::DIRECT, direct, calls)?,
    })
}

/// The fastest of [`BATCHES`] runs of `f(calls)`, ns per call; each run
/// must return `calls` (so a loop that did not run, or called another
/// target, fails instead of being timed).
fn time(name: &str, f: LoopFn, calls: u64) -> Result<f64, String> {
    let calls = calls.max(1);
    let mut best = f64::INFINITY;
    for _ in 0..BATCHES {
        let t = std::time::Instant::now();
        let got = f(std::hint::black_box(calls));
        let ns = t.elapsed().as_nanos() as f64;
        if got != calls {
            return Err(format!("{name}: the loop of {calls} calls returned {got}"));
        }
        best = best.min(ns / calls as f64);
    }
    Ok(best)
}

/// Defines, in an implementation crate's own test, the key and the call
/// loop [`measure`] proves and times: `HOT1` (targeting
/// [`crate::targets::add1`]) and `hot1`, written with that crate's macros,
/// and `subject()`, its [`Outside`].
///
/// ```text
/// static_call_bench::outside!(mod mine = my_static_calls, "mine");
/// ```
#[macro_export]
macro_rules! outside {
    ($vis:vis mod $m:ident = $krate:path, $name:literal) => {
        $vis mod $m {
            use $krate as sc;

            sc::define_static_call!(
                pub static HOT1: extern "C" fn(u64) -> u64 = $crate::targets::add1;
            );

            /// `n` calls of `HOT1`'s one site; returns `n`.
            #[inline(never)]
            pub fn hot1(n: u64) -> u64 {
                let mut x = ::std::hint::black_box(0u64);
                for _ in 0..n {
                    x = sc::static_call!(HOT1(x));
                }
                x
            }

            /// The key and loop, for [`measure`]($crate::outside::measure).
            pub fn subject() -> $crate::outside::Outside {
                $crate::outside::Outside {
                    name: $name,
                    registry: &sc::__private::REGISTRY,
                    init: sc::init,
                    key: &HOT1,
                    hot1,
                }
            }
        }
    };
}
