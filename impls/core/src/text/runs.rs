//! Coalescing a batch into *runs*: slots sorted by address, grouped while
//! the gap between one slot's end and the next slot's start is shorter
//! than a page, each run held as one buffer of the bytes its range holds
//! now (read once, under the engine lock).
//!
//! A phase of the breakpoint protocol then writes each run with one system
//! call: the buffer with that phase's bytes put in at the slots, and every
//! other byte exactly as it was read. Why a rewrite of unchanged bytes is
//! safe while other threads execute them is argued in `docs/DESIGN.md`
//! ("The write path"); the two facts this module provides are:
//!
//! * every byte of a run lies on a page that holds a slot of the batch (a
//!   gap shorter than a page cannot contain a whole page), so the run is
//!   mapped code of an image whose sites the caller owns for patching;
//! * the buffer is read under the engine lock, and nothing but the engine
//!   (under that lock) writes such code, so the bytes written back are the
//!   bytes that are there.
//!
//! Only this module's caller (`text/mod.rs`) writes executable memory;
//! here buffers are only read from code and edited in memory.

use std::ops::Range;

use super::SlotWrite;
use crate::error::{Error, Result};
use crate::insn::{INT3, SLOT_LEN};

/// A run of slots and the current bytes of its range.
#[derive(Debug)]
pub(super) struct Run {
    /// Address of the run's first byte (its first slot).
    pub start: usize,
    /// The run's slots: indices into the sorted batch.
    pub slots: Range<usize>,
    /// The bytes of `start..start + bytes.len()`, as read (then edited by
    /// the phases).
    pub bytes: Vec<u8>,
}

/// The longest gap (bytes between one slot's end and the next slot's
/// start) that a run bridges, for pages of `page` bytes: one byte less than
/// a page, so no page lies wholly inside a gap.
pub(super) fn max_gap(page: usize) -> usize {
    page - 1
}

/// Sorts a batch by address and drops exact duplicates (a table that lists
/// one site twice yields two identical writes).
///
/// # Errors
/// [`Error::UnexpectedBytes`] for two writes that overlap and differ:
/// nothing can satisfy both.
pub(super) fn sort_batch(batch: &mut Vec<SlotWrite>) -> Result<()> {
    // A stable sort, which finds the runs already sorted: the registry
    // lists a trampoline, then each image's sites of the key in address
    // order, so this is close to O(n).
    batch.sort_by_key(|s| s.addr);
    batch.dedup_by(|b, a| a.addr == b.addr && a.old == b.old && a.new == b.new);
    if let Some(w) = batch.windows(2).find(|w| w[1].addr < w[0].addr + SLOT_LEN) {
        return Err(Error::UnexpectedBytes {
            place: w[1].place,
            addr: w[1].addr,
            key: w[1].key,
            found: w[1].old.to_vec(),
            expected: format!(
                "a slot that no other slot of the batch overlaps (one at {:#x} does)",
                w[0].addr
            ),
        });
    }
    Ok(())
}

/// Splits a sorted, non-overlapping batch into runs whose gaps are at most
/// `gap` bytes, reads each run's bytes, and checks that every slot still
/// holds its `old` bytes.
///
/// # Errors
/// [`Error::UnexpectedBytes`] for the first slot (by address) that does
/// not hold its `old` bytes; nothing has been written then.
///
/// # Safety
/// Every slot of `batch` is mapped code (see [`super::write_batch`]), and
/// `gap` is less than the page size, so every byte of a run is on a page
/// that holds a slot. The caller holds the engine lock.
pub(super) unsafe fn plan(batch: &[SlotWrite], gap: usize) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < batch.len() {
        let start = batch[i].addr;
        let mut j = i + 1;
        while j < batch.len() && batch[j].addr - (batch[j - 1].addr + SLOT_LEN) <= gap {
            j += 1;
        }
        let len = batch[j - 1].addr + SLOT_LEN - start;
        let mut bytes = vec![0u8; len];
        // SAFETY: `start..start + len` is the run's range: mapped code (the
        // caller's contract). Plain copy: nothing else writes it while the
        // engine lock is held (see the module comment).
        unsafe { std::ptr::copy_nonoverlapping(start as *const u8, bytes.as_mut_ptr(), len) };
        for s in &batch[i..j] {
            let at = s.addr - start;
            if bytes[at..at + SLOT_LEN] != s.old {
                return Err(Error::UnexpectedBytes {
                    place: s.place,
                    addr: s.addr,
                    key: s.key,
                    found: bytes[at..at + SLOT_LEN].to_vec(),
                    expected: "the bytes validated before the batch".into(),
                });
            }
        }
        runs.push(Run {
            start,
            slots: i..j,
            bytes,
        });
        i = j;
    }
    Ok(runs)
}

/// Which bytes of its slots a phase of the protocol writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// An `int3` on every slot's first byte.
    Breakpoints,
    /// The new bytes 1 to 4 of every slot.
    Tails,
    /// The new first byte of every slot.
    Heads,
}

impl Run {
    /// Puts `phase`'s bytes into the buffer and returns the part of the
    /// run that must be written (offset into the buffer and length; empty
    /// when the phase changes nothing in this run). Bytes of the returned
    /// range that the phase does not set are the ones already there.
    pub fn apply(&mut self, batch: &[SlotWrite], phase: Phase) -> Range<usize> {
        let (mut lo, mut hi) = (usize::MAX, 0);
        for s in &batch[self.slots.clone()] {
            let at = s.addr - self.start;
            match phase {
                Phase::Breakpoints => {
                    self.bytes[at] = INT3;
                    (lo, hi) = (lo.min(at), hi.max(at + 1));
                }
                Phase::Tails => {
                    if s.new[1..] != s.old[1..] {
                        self.bytes[at + 1..at + SLOT_LEN].copy_from_slice(&s.new[1..]);
                        (lo, hi) = (lo.min(at + 1), hi.max(at + SLOT_LEN));
                    }
                }
                Phase::Heads => {
                    self.bytes[at] = s.new[0];
                    (lo, hi) = (lo.min(at), hi.max(at + 1));
                }
            }
        }
        if lo >= hi { 0..0 } else { lo..hi }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Place;
    use crate::insn::Form;

    fn w(addr: usize, old: [u8; 5], new: [u8; 5]) -> SlotWrite {
        SlotWrite {
            addr,
            old,
            new,
            form: Form::Nop,
            place: Place::Site,
            key: 0,
        }
    }

    #[test]
    fn sorts_dedups_and_refuses_overlaps() {
        let a = [0xe8, 1, 2, 3, 4];
        let b = [0xe8, 5, 6, 7, 8];
        let mut v = vec![w(20, a, b), w(10, a, b), w(20, a, b)];
        sort_batch(&mut v).unwrap();
        assert_eq!(v.iter().map(|s| s.addr).collect::<Vec<_>>(), [10, 20]);
        let mut v = vec![w(10, a, b), w(12, a, b)];
        assert!(matches!(
            sort_batch(&mut v),
            Err(Error::UnexpectedBytes { addr: 12, .. })
        ));
        let mut v = vec![w(10, a, b), w(10, a, a)];
        assert!(sort_batch(&mut v).is_err());
    }

    #[test]
    fn runs_phases_and_validation() {
        // Three slots in a buffer of our own (readable memory stands in
        // for code: `plan` only reads).
        let mut mem = vec![0x90u8; 64];
        let base = mem.as_mut_ptr() as usize;
        let old = [0xe8, 1, 2, 3, 4];
        let new = [0xe8, 9, 9, 9, 9];
        for at in [0, 10, 50] {
            mem[at..at + 5].copy_from_slice(&old);
        }
        let batch = [
            w(base, old, new),
            w(base + 10, old, [0x0f, 0x1f, 0x44, 0, 0]),
            w(base + 50, old, [0xe9, 1, 2, 3, 4]),
        ];
        // SAFETY: the slots lie in `mem`, which is live.
        let mut runs = unsafe { plan(&batch, 8) }.unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].start, runs[0].slots.clone()), (base, 0..2));
        assert_eq!(runs[0].bytes.len(), 15);
        assert_eq!(runs[0].apply(&batch, Phase::Breakpoints), 0..11);
        assert_eq!(
            runs[0].bytes[..11],
            [INT3, 1, 2, 3, 4, 0x90, 0x90, 0x90, 0x90, 0x90, INT3]
        );
        assert_eq!(runs[0].apply(&batch, Phase::Tails), 1..15);
        assert_eq!(runs[0].apply(&batch, Phase::Heads), 0..11);
        assert_eq!(runs[0].bytes[..5], new);
        assert_eq!(runs[0].bytes[10..], [0x0f, 0x1f, 0x44, 0, 0]);
        // Only the head changes at the last slot: no tail write.
        assert_eq!(runs[1].apply(&batch, Phase::Breakpoints), 0..1);
        assert_eq!(runs[1].apply(&batch, Phase::Tails), 0..0);
        // One gap wide enough joins everything.
        // SAFETY: as above.
        assert_eq!(unsafe { plan(&batch, 35) }.unwrap().len(), 1);
        // A slot that changed is refused.
        mem[51] = 0;
        // SAFETY: as above.
        let e = unsafe { plan(&batch, 8) }.unwrap_err();
        assert!(matches!(e, Error::UnexpectedBytes { addr, .. } if addr == base + 50));
    }
}
