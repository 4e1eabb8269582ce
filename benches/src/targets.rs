//! The target functions every subject calls: the same bodies everywhere.
//!
//! Each is `#[inline(never)]` (an opaque barrier: the optimiser cannot fold
//! the call into the loop) and `extern "C"`, as static-call targets are.

use std::sync::atomic::{AtomicU64, Ordering};

/// `x + 1`: the body of every 1-argument call.
#[inline(never)]
pub extern "C" fn add1(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// `x + 2`: the second target updates flip to.
#[inline(never)]
pub extern "C" fn add2(x: u64) -> u64 {
    x.wrapping_add(2)
}

/// `x + 3`: the third target, so that a series of updates can rotate
/// through three and a stale result is told from a fresh one
/// (`callers.rs`).
#[inline(never)]
pub extern "C" fn add3(x: u64) -> u64 {
    x.wrapping_add(3)
}

/// The target of the `i`-th update of a series that flips between the two
/// (`add2`, `add1`, `add2`, …), so that every update changes the target.
pub fn flip_target(i: u64) -> extern "C" fn(u64) -> u64 {
    if i.is_multiple_of(2) { add2 } else { add1 }
}

/// The 6-argument target: [`add6_body`].
#[inline(never)]
pub extern "C" fn add6(a: u64, b: u32, c: u16, d: u8, e: bool, f: *const u8) -> u64 {
    add6_body(a, b, c, d, e, f)
}

/// The 6-argument body: the sum of its arguments plus one (inlined into
/// each 6-argument target, so that every subject runs the same body).
#[inline(always)]
pub fn add6_body(a: u64, b: u32, c: u16, d: u8, e: bool, f: *const u8) -> u64 {
    a.wrapping_add(u64::from(b))
        .wrapping_add(u64::from(c))
        .wrapping_add(u64::from(d))
        .wrapping_add(u64::from(e))
        .wrapping_add(f as u64)
        .wrapping_add(1)
}

/// What one call of [`add6`] adds in the hot loop (`b = 1, c = 2, d = 3,
/// e = true, f = 4 as pointer`, plus one).
pub const ADD6_STEP: u64 = 1 + 2 + 3 + 1 + 4 + 1;

/// Calls of [`hook`]: a conditional call with a none target must leave it
/// unchanged.
pub static HOOK_CALLS: AtomicU64 = AtomicU64::new(0);

/// The conditional target (never called while the key is none).
#[inline(never)]
pub extern "C" fn hook(_x: u64) {
    HOOK_CALLS.fetch_add(1, Ordering::Relaxed);
}
