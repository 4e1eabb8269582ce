//! Valgrind client requests, issued with the fixed "magic" instruction
//! sequence (a no-op when the program runs natively).

use super::SlotWrite;
use super::engine::{RWX, RX, page_size, protect};
use crate::error::{Error, Result};
use crate::insn::SLOT_LEN;

const DISCARD_TRANSLATIONS: u64 = 0x1002;
const RUNNING_ON_VALGRIND: u64 = 0x1001;

fn request(args: &[u64; 6], default: u64) -> u64 {
    let result: u64;
    // SAFETY: the four rotations of rdi add up to 128 bits (a no-op) and
    // `xchg rbx, rbx` is a no-op natively; under valgrind the sequence is
    // recognised and the request read from the array `rax` points to. The
    // array is live for the duration of the asm block.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") default => result,
            inout("rdi") 0u64 => _,
            options(nostack)
        );
    }
    result
}

/// Tells valgrind to drop its translations of `addr..addr + len`.
pub(crate) fn discard_translations(addr: usize, len: usize) {
    request(&[DISCARD_TRANSLATIONS, addr as u64, len as u64, 0, 0, 0], 0);
}

/// Whether the program runs under valgrind.
pub fn running_on_valgrind() -> bool {
    request(&[RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0], 0) != 0
}

/// Under valgrind, lets the program's other threads run. Valgrind runs
/// one thread at a time and, with its default scheduler, hands the CPU
/// over only at a blocking system call or after a long time slice, which
/// the same thread often wins again: a thread updating keys in a loop kept
/// the threads calling them from running at all. Each update ends with
/// this (natively it is one client request, a few instructions). A
/// `sched_yield` is not enough (the yielding thread won the CPU back
/// after about half of the updates); a sleep of a microsecond (in
/// practice the kernel's timer slack, some 50 µs) lets a waiting thread
/// take its slice every time.
pub fn let_others_run() {
    if running_on_valgrind() {
        std::thread::sleep(std::time::Duration::from_micros(1));
    }
}

/// The protocol under valgrind, which runs one thread of the program
/// at a time and switches threads only between instructions: each slot
/// is replaced by one 8-byte store (the slot and its neighbouring,
/// unchanged bytes), so no other thread can see a torn slot, and no
/// breakpoint, trap or core synchronisation is needed. (The breakpoint
/// protocol can take minutes there: valgrind's unfair scheduler lets a
/// calling thread trap on the same breakpoint millions of times while
/// the updater waits in a system call.) The store is made through a
/// brief `mprotect` window, under valgrind only; valgrind is told to
/// drop its translations of the slot right after.
pub(super) fn serialised(w: &[SlotWrite]) -> Result<()> {
    for (i, s) in w.iter().enumerate() {
        if let Err(e) = store_whole(s.addr, &s.new) {
            // Put back the slots already replaced, the same way.
            for b in w[..i].iter().rev() {
                let _ = store_whole(b.addr, &b.old);
            }
            return Err(e);
        }
        discard_translations(s.addr, SLOT_LEN);
    }
    Ok(())
}

/// Replaces the 5 bytes at `addr` with one unaligned 8-byte store of
/// the window that holds them, inside an `mprotect` RWX window.
fn store_whole(addr: usize, bytes: &[u8; SLOT_LEN]) -> Result<()> {
    let page = page_size();
    // An 8-byte window around the slot that does not run past the end
    // of the slot's last page.
    let start = if addr % page <= page - 8 {
        addr
    } else {
        addr + SLOT_LEN - 8
    };
    let lo = start & !(page - 1);
    let hi = (start + 8).div_ceil(page) * page;
    // SAFETY: the pages hold the slot's live code (the caller validated
    // it); the RWX window is closed again before returning. The window
    // `start..start + 8` lies in those pages; its bytes other than the
    // slot are written back unchanged, and under valgrind no other
    // thread runs between the load and the store of the same word
    // (a single instruction).
    unsafe {
        protect(lo, hi - lo, RWX).map_err(|e| Error::os("mprotect(RWX)", addr, e))?;
        let mut word = std::ptr::read_unaligned(start as *const [u8; 8]);
        let off = addr - start;
        word[off..off + SLOT_LEN].copy_from_slice(bytes);
        std::ptr::write_unaligned(start as *mut u64, u64::from_ne_bytes(word));
        protect(lo, hi - lo, RX).map_err(|e| Error::os("mprotect(RX)", addr, e))
    }
}
