//! Generated target functions placed so that a `rel32` to one and a
//! `rel32` to the other differ in all four bytes, from any slot.
//!
//! If `b - a = D` and every byte of `D` is in `1..=254`, then for any
//! displacement `r`, `r` and `r + D` differ in every byte (adding a byte in
//! `1..=254` plus a carry of 0 or 1 never leaves a byte unchanged). So one
//! pair serves every site and trampoline at once.

use static_call_core::text::exec::{ExecMemory, Placement};

/// The distance between the two targets.
pub const DISTANCE: usize = 0x2121_2121;

/// Two mapped functions, `x + 1` at `a` and `x + 2` at `b = a + DISTANCE`.
#[derive(Debug)]
pub struct FlipTargets {
    _ma: ExecMemory,
    _mb: ExecMemory,
    /// Address of `x + 1`.
    pub a: usize,
    /// Address of `x + 2`.
    pub b: usize,
}

/// `lea rax, [rdi + n]; ret`
fn add_n(n: u8) -> [u8; 5] {
    [0x48, 0x8d, 0x47, n, 0xc3]
}

/// Maps the pair within `rel32` range of `near` (an address in the code
/// that will call them).
///
/// # Errors
/// No free pair of places was found.
pub fn flip_targets(near: usize) -> Result<FlipTargets, String> {
    let page = 4096usize;
    let off_b = DISTANCE & (page - 1);
    for k in 0..64usize {
        let a = ((near & !(page - 1)).wrapping_sub(0x3000_0000)).wrapping_add(k * 0x40_0000);
        let b = a + DISTANCE;
        let ma = match ExecMemory::new(Placement::At(a), &add_n(1)) {
            Ok(m) => m,
            Err(_) => continue,
        };
        let mut code = vec![0xcc; off_b];
        code.extend_from_slice(&add_n(2));
        let mb = match ExecMemory::new(Placement::At(b - off_b), &code) {
            Ok(m) => m,
            Err(_) => continue,
        };
        return Ok(FlipTargets {
            _ma: ma,
            _mb: mb,
            a,
            b,
        });
    }
    Err(format!("no free place for the flip targets near {near:#x}"))
}

/// Whether the `rel32` of a 5-byte slot at `slot` to `a` and to `b`
/// differ in all four bytes.
pub fn all_bytes_differ(slot: usize, a: usize, b: usize) -> bool {
    let ra = (a as i64 - (slot as i64 + 5)) as i32;
    let rb = (b as i64 - (slot as i64 + 5)) as i32;
    ra.to_le_bytes()
        .iter()
        .zip(rb.to_le_bytes())
        .all(|(x, y)| *x != y)
}
