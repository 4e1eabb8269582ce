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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use static_call_core::{Registry, SiteShape, StaticCall};

use crate::targets::{add1, add2};

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

macro_rules! thread_impl {
    ($(($m:ident, $krate:path, $name:literal))*) => {$(
        /// Keys of one implementation.
        pub mod $m {
            use $krate as sc;
            use super::AddFn;
            sc::define_static_call!(pub static T1: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B00: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B01: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B02: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B03: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B04: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B05: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B06: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B07: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B08: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B09: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B10: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B11: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B12: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B13: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B14: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B15: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B16: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B17: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B18: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B19: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B20: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B21: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B22: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B23: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B24: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B25: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B26: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B27: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B28: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B29: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B30: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B31: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B32: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B33: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B34: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B35: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B36: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B37: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B38: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B39: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B40: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B41: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B42: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B43: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B44: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B45: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B46: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B47: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B48: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B49: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B50: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B51: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B52: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B53: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B54: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B55: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B56: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B57: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B58: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B59: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B60: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B61: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B62: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B63: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B64: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B65: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B66: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B67: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B68: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B69: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B70: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B71: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B72: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B73: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B74: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B75: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B76: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B77: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B78: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B79: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B80: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B81: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B82: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B83: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B84: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B85: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B86: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B87: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B88: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B89: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B90: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B91: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B92: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B93: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B94: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B95: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B96: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B97: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B98: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B99: extern "C" fn(u64) -> u64 = crate::targets::add1;);

            /// The one site of `T1`.
            #[inline(never)]
            pub fn call_t1(x: u64) -> u64 {
                sc::static_call!(T1(x))
            }

            /// The one site of key `i`.
            #[inline(never)]
            pub fn call_key(i: usize, x: u64) -> u64 {
                match i {
                    0 => sc::static_call!(B00(x)),
                    1 => sc::static_call!(B01(x)),
                    2 => sc::static_call!(B02(x)),
                    3 => sc::static_call!(B03(x)),
                    4 => sc::static_call!(B04(x)),
                    5 => sc::static_call!(B05(x)),
                    6 => sc::static_call!(B06(x)),
                    7 => sc::static_call!(B07(x)),
                    8 => sc::static_call!(B08(x)),
                    9 => sc::static_call!(B09(x)),
                    10 => sc::static_call!(B10(x)),
                    11 => sc::static_call!(B11(x)),
                    12 => sc::static_call!(B12(x)),
                    13 => sc::static_call!(B13(x)),
                    14 => sc::static_call!(B14(x)),
                    15 => sc::static_call!(B15(x)),
                    16 => sc::static_call!(B16(x)),
                    17 => sc::static_call!(B17(x)),
                    18 => sc::static_call!(B18(x)),
                    19 => sc::static_call!(B19(x)),
                    20 => sc::static_call!(B20(x)),
                    21 => sc::static_call!(B21(x)),
                    22 => sc::static_call!(B22(x)),
                    23 => sc::static_call!(B23(x)),
                    24 => sc::static_call!(B24(x)),
                    25 => sc::static_call!(B25(x)),
                    26 => sc::static_call!(B26(x)),
                    27 => sc::static_call!(B27(x)),
                    28 => sc::static_call!(B28(x)),
                    29 => sc::static_call!(B29(x)),
                    30 => sc::static_call!(B30(x)),
                    31 => sc::static_call!(B31(x)),
                    32 => sc::static_call!(B32(x)),
                    33 => sc::static_call!(B33(x)),
                    34 => sc::static_call!(B34(x)),
                    35 => sc::static_call!(B35(x)),
                    36 => sc::static_call!(B36(x)),
                    37 => sc::static_call!(B37(x)),
                    38 => sc::static_call!(B38(x)),
                    39 => sc::static_call!(B39(x)),
                    40 => sc::static_call!(B40(x)),
                    41 => sc::static_call!(B41(x)),
                    42 => sc::static_call!(B42(x)),
                    43 => sc::static_call!(B43(x)),
                    44 => sc::static_call!(B44(x)),
                    45 => sc::static_call!(B45(x)),
                    46 => sc::static_call!(B46(x)),
                    47 => sc::static_call!(B47(x)),
                    48 => sc::static_call!(B48(x)),
                    49 => sc::static_call!(B49(x)),
                    50 => sc::static_call!(B50(x)),
                    51 => sc::static_call!(B51(x)),
                    52 => sc::static_call!(B52(x)),
                    53 => sc::static_call!(B53(x)),
                    54 => sc::static_call!(B54(x)),
                    55 => sc::static_call!(B55(x)),
                    56 => sc::static_call!(B56(x)),
                    57 => sc::static_call!(B57(x)),
                    58 => sc::static_call!(B58(x)),
                    59 => sc::static_call!(B59(x)),
                    60 => sc::static_call!(B60(x)),
                    61 => sc::static_call!(B61(x)),
                    62 => sc::static_call!(B62(x)),
                    63 => sc::static_call!(B63(x)),
                    64 => sc::static_call!(B64(x)),
                    65 => sc::static_call!(B65(x)),
                    66 => sc::static_call!(B66(x)),
                    67 => sc::static_call!(B67(x)),
                    68 => sc::static_call!(B68(x)),
                    69 => sc::static_call!(B69(x)),
                    70 => sc::static_call!(B70(x)),
                    71 => sc::static_call!(B71(x)),
                    72 => sc::static_call!(B72(x)),
                    73 => sc::static_call!(B73(x)),
                    74 => sc::static_call!(B74(x)),
                    75 => sc::static_call!(B75(x)),
                    76 => sc::static_call!(B76(x)),
                    77 => sc::static_call!(B77(x)),
                    78 => sc::static_call!(B78(x)),
                    79 => sc::static_call!(B79(x)),
                    80 => sc::static_call!(B80(x)),
                    81 => sc::static_call!(B81(x)),
                    82 => sc::static_call!(B82(x)),
                    83 => sc::static_call!(B83(x)),
                    84 => sc::static_call!(B84(x)),
                    85 => sc::static_call!(B85(x)),
                    86 => sc::static_call!(B86(x)),
                    87 => sc::static_call!(B87(x)),
                    88 => sc::static_call!(B88(x)),
                    89 => sc::static_call!(B89(x)),
                    90 => sc::static_call!(B90(x)),
                    91 => sc::static_call!(B91(x)),
                    92 => sc::static_call!(B92(x)),
                    93 => sc::static_call!(B93(x)),
                    94 => sc::static_call!(B94(x)),
                    95 => sc::static_call!(B95(x)),
                    96 => sc::static_call!(B96(x)),
                    97 => sc::static_call!(B97(x)),
                    98 => sc::static_call!(B98(x)),
                    _ => sc::static_call!(B99(x)),
                }
            }

            fn batch(
                keys: &[&'static sc::StaticCall<AddFn>],
                f: AddFn,
            ) -> static_call_core::Result<()> {
                sc::batch(|b| {
                    for k in keys {
                        b.update(k, f)?;
                    }
                    Ok(())
                })
            }

            /// The implementation.
            pub static IMPL: super::ThreadImpl = super::ThreadImpl {
                name: $name,
                init: sc::init,
                registry: &sc::__private::REGISTRY,
                thunk: None,
                t1: &T1,
                call_t1,
                keys: [&B00, &B01, &B02, &B03, &B04, &B05, &B06, &B07, &B08, &B09, &B10, &B11, &B12, &B13, &B14, &B15, &B16, &B17, &B18, &B19, &B20, &B21, &B22, &B23, &B24, &B25, &B26, &B27, &B28, &B29, &B30, &B31, &B32, &B33, &B34, &B35, &B36, &B37, &B38, &B39, &B40, &B41, &B42, &B43, &B44, &B45, &B46, &B47, &B48, &B49, &B50, &B51, &B52, &B53, &B54, &B55, &B56, &B57, &B58, &B59, &B60, &B61, &B62, &B63, &B64, &B65, &B66, &B67, &B68, &B69, &B70, &B71, &B72, &B73, &B74, &B75, &B76, &B77, &B78, &B79, &B80, &B81, &B82, &B83, &B84, &B85, &B86, &B87, &B88, &B89, &B90, &B91, &B92, &B93, &B94, &B95, &B96, &B97, &B98, &B99],
                call_key,
                batch,
            };

            /// The retpoline thunk, for the proof.
            pub fn thunk() -> Option<usize> {
                sc::__private::REGISTRY.thunk()
            }
        }
    )*};
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

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: zeroed is a valid cpu_set_t; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above, for this thread.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0
    {
        return vec![0];
    }
    // SAFETY: reading a filled set.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Pins the calling thread to `cpu`; false if the kernel refused.
pub fn pin(cpu: usize) -> bool {
    // SAFETY: a zeroed set with one CPU, applied to this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Lets the calling thread run on every CPU of `cpus` again.
pub fn unpin(cpus: &[usize]) {
    // SAFETY: a set of the allowed CPUs, applied to this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn thread_ctx_switches() -> u64 {
    // SAFETY: zeroed is a valid rusage; getrusage fills it.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above, for this thread.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut r) };
    (r.ru_nvcsw + r.ru_nivcsw) as u64
}

fn call_irqs() -> u64 {
    std::fs::read_to_string("/proc/interrupts")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.trim_start().starts_with("CAL:"))
                .map(|l| {
                    l.split_whitespace()
                        .skip(1)
                        .map_while(|w| w.parse::<u64>().ok())
                        .sum()
                })
        })
        .unwrap_or(0)
}

/// Breakpoint traps the engine has served so far (emulated and restarted).
pub fn traps() -> u64 {
    let s = static_call_core::text::engine_stats();
    s.traps_emulated + s.traps_restarted
}

/// Proves that `key`'s one site (found in `site_fn`) and its trampoline
/// hold what an update to `target` must have written for this
/// implementation, decoding the bytes with the workspace's decoder.
///
/// # Errors
/// What was found, where and what was expected.
pub fn prove_key(
    imp: &ThreadImpl,
    key: &'static StaticCall<AddFn>,
    target: AddFn,
) -> Result<(), String> {
    let sites = key.sites();
    let [site] = &sites[..] else {
        return Err(format!(
            "{}: the key has {} sites, expected 1",
            imp.name,
            sites.len()
        ));
    };
    let branch = |addr: usize| -> Result<(iced_x86::Mnemonic, u64), String> {
        // SAFETY: a registered site or trampoline: live code of this program.
        let bytes = unsafe { crate::prove::read_code(addr, 5) };
        let insn = crate::prove::decode(&bytes, addr);
        let i = insn
            .first()
            .ok_or_else(|| format!("{}: nothing decoded at {addr:#x}", imp.name))?;
        Ok((i.mnemonic(), i.near_branch_target()))
    };
    let t = target as *const () as u64;
    let (m, to) = branch(site.addr)?;
    let design = imp.registry.design();
    let ok = if design.patches_sites {
        m == iced_x86::Mnemonic::Call && to == t
    } else if design.trampoline {
        let tr = key.raw().trampoline().ok_or("no trampoline")?;
        let (tm, tto) = branch(tr)?;
        m == iced_x86::Mnemonic::Call
            && to == tr as u64
            && tm == iced_x86::Mnemonic::Jmp
            && tto == t
    } else {
        // Sites call through the key: it holds the target, and the site
        // is the design's (a thunk's call, or the load and `call rax`).
        let holds = key.query().map(|f| f as *const () as u64) == Some(t);
        let site_ok = match design.site {
            SiteShape::CallThunk => m == iced_x86::Mnemonic::Call && Some(to as usize) == imp.thunk,
            _ => {
                // SAFETY: a registered site: live code of this program.
                let (start, bytes) = unsafe { crate::prove::site_code(design, site.addr) };
                design.decode_site(site.addr, &bytes[site.addr - start..], false)
                    == Some(static_call_core::insn::Form::CallVia(key.raw().addr()))
            }
        };
        holds && site_ok
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{}: site {:#x} holds {m:?} {to:#x}, not what an update to {t:#x} writes here",
            imp.name, site.addr
        ))
    }
}

/// Times `updates` updates of the 1-site key `T1`, flipping its target.
fn time_updates(imp: &ThreadImpl, updates: usize) -> Result<Samples, String> {
    let (traps0, cs0, irq0) = (traps(), thread_ctx_switches(), call_irqs());
    let mut ns = Vec::with_capacity(updates);
    for i in 0..updates {
        let f = if i % 2 == 0 { add2 } else { add1 };
        let t = Instant::now();
        imp.t1
            .update(f)
            .map_err(|e| format!("{}: update: {e}", imp.name))?;
        ns.push(t.elapsed().as_nanos() as f64);
    }
    prove_key(imp, imp.t1, if updates % 2 == 1 { add2 } else { add1 })?;
    imp.t1.update(add1).map_err(|e| e.to_string())?;
    Ok(Samples {
        ns,
        traps: traps() - traps0,
        ctx_switches: thread_ctx_switches() - cs0,
        call_irqs: call_irqs() - irq0,
        note: String::new(),
    })
}

/// 1-site update latency with `parked` other threads in the process, each
/// blocked on a condition variable.
///
/// # Errors
/// A failed update, spawn or proof.
pub fn update_with_parked(
    imp: &ThreadImpl,
    parked: usize,
    updates: usize,
) -> Result<Samples, String> {
    (imp.init)().map_err(|e| e.to_string())?;
    prove_key(imp, imp.t1, add1)?;
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let handles = (0..parked)
        .map(|_| {
            let gate = gate.clone();
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let (m, cv) = &*gate;
                    let mut go = m.lock().unwrap_or_else(|e| e.into_inner());
                    while !*go {
                        go = cv.wait(go).unwrap_or_else(|e| e.into_inner());
                    }
                })
                .map_err(|e| format!("spawn: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let r = time_updates(imp, updates);
    {
        let (m, cv) = &*gate;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
    for h in handles {
        let _ = h.join();
    }
    r
}

/// 1-site update latency while `callers` threads call the key's one site
/// in a loop; the updater and each caller are pinned to CPUs of their own
/// while there are enough.
///
/// # Errors
/// A failed update or proof, or a wrong result of a call.
pub fn update_with_busy(
    imp: &ThreadImpl,
    callers: usize,
    updates: usize,
) -> Result<Samples, String> {
    (imp.init)().map_err(|e| e.to_string())?;
    prove_key(imp, imp.t1, add1)?;
    let cpus = allowed_cpus();
    let pinned = pin(cpus[0]);
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(std::sync::Barrier::new(callers + 1));
    let handles: Vec<_> = (0..callers)
        .map(|k| {
            let (stop, ready, cpus) = (stop.clone(), ready.clone(), cpus.clone());
            let call = imp.call_t1;
            std::thread::spawn(move || {
                pin(cpus[(k + 1) % cpus.len()]);
                ready.wait();
                let mut wrong = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let r = call(1);
                    wrong += u64::from(r != 2 && r != 3);
                }
                wrong
            })
        })
        .collect();
    ready.wait();
    let r = time_updates(imp, updates);
    stop.store(true, Ordering::Relaxed);
    let wrong: u64 = handles.into_iter().map(|h| h.join().unwrap_or(1)).sum();
    unpin(&cpus);
    let mut s = r?;
    if wrong != 0 {
        return Err(format!(
            "{}: {wrong} calls reached a wrong target",
            imp.name
        ));
    }
    s.note = if !pinned {
        "not pinned (sched_setaffinity refused)".into()
    } else if callers + 1 > cpus.len() {
        format!(
            "{} threads on {} CPUs: oversubscribed, the figure measures the scheduler too",
            callers + 1,
            cpus.len()
        )
    } else {
        format!("updater and {callers} caller(s) each on a CPU of its own")
    };
    Ok(s)
}

/// The 100 keys of the batch benchmark switched `rounds` times in one batch
/// each, and `rounds` times one key at a time: (batch, one by one), one
/// sample per switch of all 100 keys.
///
/// # Errors
/// A failed update or proof.
pub fn batch_vs_single(imp: &ThreadImpl, rounds: usize) -> Result<(Samples, Samples), String> {
    (imp.init)().map_err(|e| e.to_string())?;
    for (i, k) in imp.keys.iter().enumerate() {
        prove_key(imp, k, add1)?;
        if (imp.call_key)(i, 1) != 2 {
            return Err(format!("{}: key {i} does not call add1", imp.name));
        }
    }
    let run = |one_by_one: bool| -> Result<Samples, String> {
        let (traps0, cs0, irq0) = (traps(), thread_ctx_switches(), call_irqs());
        let mut ns = Vec::with_capacity(rounds);
        for r in 0..rounds {
            let f = if r % 2 == 0 { add2 } else { add1 };
            let t = Instant::now();
            if one_by_one {
                for k in imp.keys {
                    k.update(f).map_err(|e| e.to_string())?;
                }
            } else {
                (imp.batch)(&imp.keys, f).map_err(|e| e.to_string())?;
            }
            ns.push(t.elapsed().as_nanos() as f64);
        }
        let last = if rounds % 2 == 1 { add2 } else { add1 };
        for (i, k) in imp.keys.iter().enumerate() {
            prove_key(imp, k, last)?;
            if (imp.call_key)(i, 1) != last(1) {
                return Err(format!("{}: key {i} calls the wrong target", imp.name));
            }
        }
        (imp.batch)(&imp.keys, add1).map_err(|e| e.to_string())?;
        Ok(Samples {
            ns,
            traps: traps() - traps0,
            ctx_switches: thread_ctx_switches() - cs0,
            call_irqs: call_irqs() - irq0,
            note: String::new(),
        })
    };
    Ok((run(false)?, run(true)?))
}
