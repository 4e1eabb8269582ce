//! The thread axis of update latency, measured (never asserted): a 1-site
//! update with 0, 10, 100 and 1,000 parked threads in the process and with
//! 1, 2 and 4 busy callers of the key; a batch of 100 keys against the same
//! 100 updates one by one. Every function returns per-update samples in
//! nanoseconds, independent of criterion, so that the bundle and the report
//! can take them as they are; `examples/thread_axis.rs` prints the table.
//!
//! Before anything is timed, each function proves by decoding its key's one
//! site (and trampoline) with the workspace's decoder that an update
//! rewrites what the implementation's name says: inline-patch's site
//! `call target`, the trampoline's site `call trampoline` and its slot
//! `jmp target`, indirect's site `call` the retpoline thunk.
//!
//! Busy callers are pinned, one per CPU after the updater's (which is
//! pinned to the first allowed CPU); when callers and updater outnumber the
//! allowed CPUs the sample says so, since the figure then measures the
//! scheduler as much as the engine. Each sample set carries the counts
//! that explain where busy-caller time goes: breakpoint traps the engine
//! served (`engine_stats()`), the updater's context switches
//! (`getrusage(RUSAGE_THREAD)`), and function-call interrupts on the
//! machine (`CAL` in `/proc/interrupts`: what `membarrier` sends to every
//! CPU running a thread of the process; machine-wide, so other load adds
//! to it).

use static_call_core::{Registry, StaticCall};

mod keys;
mod measure;
mod proof;
mod system;

use keys::thread_impl;
pub use measure::{batch_vs_single, update_with_busy, update_with_parked};
pub use proof::prove_key;
pub use system::{allowed_cpus, pin, traps, unpin};

/// The signature of every key here.
pub type AddFn = extern "C" fn(u64) -> u64;

/// Keys of one implementation for the thread axis.
#[derive(Debug, Clone, Copy)]
pub struct ThreadImpl {
    /// The implementation's name.
    pub name: &'static str,
    /// Its `init()`.
    pub init: fn() -> static_call_core::Result<()>,
    /// Its registry (and through it, its design: what it writes).
    pub registry: &'static Registry,
    /// Its retpoline thunk (indirect).
    pub thunk: Option<usize>,
    /// A key with one call site, in [`ThreadImpl::call_t1`].
    pub t1: &'static StaticCall<AddFn>,
    /// The one site of [`ThreadImpl::t1`].
    pub call_t1: fn(u64) -> u64,
    /// 100 keys with one site each.
    pub keys: [&'static StaticCall<AddFn>; 100],
    /// Calls key `i` of [`ThreadImpl::keys`] through its one site.
    pub call_key: fn(usize, u64) -> u64,
    /// Points every key of the slice at `f`, in one batch.
    pub batch: fn(&[&'static StaticCall<AddFn>], AddFn) -> static_call_core::Result<()>,
}

static_call_implementations::implementations!(thread_impl);

/// The three implementations, with their flavours and thunks.
pub fn thread_impls() -> Vec<ThreadImpl> {
    macro_rules! list {
        ($(($m:ident, $krate:path, $name:literal))*) => {
            vec![$(ThreadImpl { thunk: $m::thunk(), ..$m::IMPL }),*]
        };
    }
    static_call_implementations::implementations!(list)
}

/// Samples of one configuration.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// Nanoseconds per operation.
    pub ns: Vec<f64>,
    /// Breakpoint traps the engine served during the run.
    pub traps: u64,
    /// Context switches of the updating thread during the run.
    pub ctx_switches: u64,
    /// Function-call interrupts on the machine during the run.
    pub call_irqs: u64,
    /// A note (CPUs oversubscribed, …).
    pub note: String,
}

impl Samples {
    /// The `q` quantile (0..=1) in ns, by nearest rank.
    pub fn quantile(&self, q: f64) -> f64 {
        let mut v = self.ns.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * q).round() as usize]
    }
    /// The median in ns.
    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }
    /// The 99th percentile in ns.
    pub fn p99(&self) -> f64 {
        self.quantile(0.99)
    }
    /// The largest sample in ns.
    pub fn max(&self) -> f64 {
        self.ns.iter().copied().fold(f64::NAN, f64::max)
    }
}
