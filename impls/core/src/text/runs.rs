//! Coalescing a batch into *runs*: slots sorted by address, grouped while
//! the gap between one slot's end and the next slot's start is shorter
//! than a page and the run stays within [`MAX_RUN`] bytes.
//!
//! A phase of the breakpoint protocol then writes each run with one system
//! call: the run's bytes as they are now (copied from the code, under the
//! engine lock, into one reused buffer), with that phase's bytes put in at
//! the slots; every other byte is written back exactly as it was read. Why a rewrite of unchanged bytes is
//! safe while other threads execute them is argued in `docs/DESIGN.md`
//! ("The write path"); the two facts this module provides are:
//!
//! * every byte of a run lies on a page that holds a slot of the batch (a
//!   gap shorter than a page cannot contain a whole page), so the run is
//!   mapped code of an image whose sites the caller owns for patching;
//! * the buffer is read under the engine lock, right before it is
//!   written, while the caller keeps the process's other threads parked,
//!   so a byte another thread writes is either in the copy or written
//!   after it; and [`Run::pieces`] leaves out every `0xcc` that is not a
//!   slot's or the mapped file's own padding (`text/pristine.rs`), so a
//!   breakpoint another process removes is never revived.
//!
//! Batches of at most [`SMALL_BATCH`] slots bridge no gap at all in a
//! process with other threads.
//!
//! Only this module's caller (`text/protocol.rs`) writes executable memory;
//! here buffers are only read from code and edited in memory.

use std::ops::Range;

use super::SlotWrite;
use crate::error::{Error, Result};
use crate::insn::{INT3, SLOT_LEN};

/// A run of slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Run {
    /// Address of the run's first byte (its first slot).
    pub start: usize,
    /// Length of the run, to the end of its last slot.
    pub len: usize,
    /// The run's slots: indices into the sorted batch.
    pub slots: Range<usize>,
    /// Addresses (sorted) of the `0xcc` bytes outside the slots that are
    /// the mapped file's own (padding: `text/pristine.rs`), which may be
    /// written back as they are; empty until found.
    pub padding: Vec<usize>,
}

/// Walks addresses in increasing order and says which `0xcc` is foreign:
/// neither a byte of one of the slots nor a known padding byte. Both lists
/// are sorted, so a whole buffer costs one pass over each.
struct Owners<'a> {
    slots: &'a [SlotWrite],
    k: usize,
    padding: &'a [usize],
    j: usize,
}

impl<'a> Owners<'a> {
    fn new(slots: &'a [SlotWrite], padding: &'a [usize]) -> Owners<'a> {
        Owners {
            slots,
            k: 0,
            padding,
            j: 0,
        }
    }

    /// Whether a `0xcc` at `a` is foreign (`a` never decreases between
    /// calls).
    fn foreign(&mut self, a: usize) -> bool {
        while self.k < self.slots.len() && self.slots[self.k].addr + SLOT_LEN <= a {
            self.k += 1;
        }
        if self.k < self.slots.len() && self.slots[self.k].addr <= a {
            return false;
        }
        while self.j < self.padding.len() && self.padding[self.j] < a {
            self.j += 1;
        }
        !(self.j < self.padding.len() && self.padding[self.j] == a)
    }
}

/// The longest run: bounds the buffer a phase copies a run into (the cost
/// of a longer run is its bytes, not another system call, once runs are
/// this long).
pub(super) const MAX_RUN: usize = 64 * 1024;

/// The longest gap (bytes between one slot's end and the next slot's
/// start) that a run bridges, for pages of `page` bytes: one byte less than
/// a page, so no page lies wholly inside a gap.
pub(super) fn max_gap(page: usize) -> usize {
    page - 1
}

/// In a process with other threads, batches of at most this many slots
/// are not coalesced across gaps: each slot is written on its own (3
/// `pwrite`s per slot, about 10 µs), which writes no byte that is not the
/// batch's and so needs no parking round (which waits until every other
/// thread has run: milliseconds on a machine with more runnable threads
/// than cores). A process with no other thread needs no round anyway.
pub(super) const SMALL_BATCH: usize = 8;

/// The gap runs may bridge for a batch of `n` slots (`alone`: the process
/// has no other thread): none for a small batch among threads, else
/// [`max_gap`].
pub(super) fn gap_for(n: usize, alone: bool, page: usize) -> usize {
    if n <= SMALL_BATCH && !alone {
        0
    } else {
        max_gap(page)
    }
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
/// `gap` bytes and whose length is at most [`MAX_RUN`] (or one slot), and
/// checks that every slot still holds its `old` bytes.
///
/// # Errors
/// [`Error::UnexpectedBytes`] for the first slot (by address) that does
/// not hold its `old` bytes; nothing has been written then.
///
/// # Safety
/// Every slot of `batch` is mapped code (see [`super::write_batch`]). For
/// the runs to be written, `gap` must be less than the page size: then
/// every byte of a run is on a page that holds one of its slots.
pub(super) unsafe fn plan(batch: &[SlotWrite], gap: usize) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < batch.len() {
        let start = batch[i].addr;
        let mut j = i + 1;
        while j < batch.len()
            && batch[j].addr - (batch[j - 1].addr + SLOT_LEN) <= gap
            && batch[j].addr + SLOT_LEN - start <= MAX_RUN
        {
            j += 1;
        }
        for s in &batch[i..j] {
            // SAFETY: the caller's contract: the slot is mapped code.
            let now = unsafe { super::read_slot(s.addr) };
            if now != s.old {
                return Err(Error::UnexpectedBytes {
                    place: s.place,
                    addr: s.addr,
                    key: s.key,
                    found: now.to_vec(),
                    expected: "the bytes validated before the batch".into(),
                });
            }
        }
        runs.push(Run {
            start,
            len: batch[j - 1].addr + SLOT_LEN - start,
            slots: i..j,
            padding: Vec::new(),
        });
        i = j;
    }
    Ok(runs)
}

/// Calls `hit` with the offset of every `0xcc` of `buf` (code for address
/// `at`) that is foreign (see [`Owners`]) until it returns `true`. Finds
/// the `0xcc` bytes 16 at a time with SSE2 (every x86-64 core has it) and
/// walks them together with the slots and padding: the cost is the
/// buffer's length over 16 plus one step per `0xcc`, not a pass over every
/// slot.
fn each_foreign_int3(
    slots: &[SlotWrite],
    padding: &[usize],
    at: usize,
    buf: &[u8],
    mut hit: impl FnMut(usize) -> bool,
) {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    let mut owners = Owners::new(slots, padding);
    let chunks = buf.chunks_exact(16);
    let tail = buf.len() - chunks.remainder().len();
    for (i, c) in chunks.enumerate() {
        // SAFETY: SSE2 is part of the x86-64 baseline; the load reads the
        // 16 bytes of this chunk of `buf` (unaligned).
        let mut m = unsafe {
            let v = _mm_loadu_si128(c.as_ptr().cast());
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(INT3 as i8))) as u32
        };
        while m != 0 {
            let q = i * 16 + m.trailing_zeros() as usize;
            if owners.foreign(at + q) && hit(q) {
                return;
            }
            m &= m - 1;
        }
    }
    for (q, &b) in buf.iter().enumerate().skip(tail) {
        if b == INT3 && owners.foreign(at + q) && hit(q) {
            return;
        }
    }
}

/// Whether `buf` (code for address `at`) holds a foreign `0xcc`.
fn has_foreign_int3(slots: &[SlotWrite], padding: &[usize], at: usize, buf: &[u8]) -> bool {
    let mut found = false;
    each_foreign_int3(slots, padding, at, buf, |_| {
        found = true;
        true
    });
    found
}

/// The addresses of every `0xcc` of `buf` (code for address `at`) outside
/// every slot of `slots` (sorted).
pub(super) fn foreign_int3s(slots: &[SlotWrite], at: usize, buf: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    each_foreign_int3(slots, &[], at, buf, |q| {
        v.push(at + q);
        false
    });
    v
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
    /// The part of the run that `phase` must write (offsets from `start`;
    /// empty when the phase changes nothing in this run).
    fn span(&self, batch: &[SlotWrite], phase: Phase) -> Range<usize> {
        let (mut lo, mut hi) = (usize::MAX, 0);
        for s in &batch[self.slots.clone()] {
            let at = s.addr - self.start;
            let (a, b) = match phase {
                Phase::Breakpoints | Phase::Heads => (at, at + 1),
                Phase::Tails if s.new[1..] != s.old[1..] => (at + 1, at + SLOT_LEN),
                Phase::Tails => continue,
            };
            (lo, hi) = (lo.min(a), hi.max(b));
        }
        if lo >= hi { 0..0 } else { lo..hi }
    }

    /// The bytes `phase` writes to this run: its span as the code holds
    /// it now (copied into `buf`) with the phase's bytes put in at the
    /// slots. Returns the address to write them at, or `None` when the
    /// phase changes nothing here.
    ///
    /// # Safety
    /// The run comes from [`plan`] over `batch` (its range is on pages
    /// that hold its slots: mapped code); the caller holds the engine
    /// lock, so the bytes read are the ones there until it writes them.
    pub unsafe fn phase_bytes(
        &self,
        batch: &[SlotWrite],
        phase: Phase,
        buf: &mut Vec<u8>,
    ) -> Option<usize> {
        let span = self.span(batch, phase);
        if span.is_empty() {
            return None;
        }
        let at = self.start + span.start;
        buf.clear();
        buf.reserve(span.len());
        // SAFETY: inside the run (the caller's contract). A plain copy:
        // nothing else writes these bytes while the engine lock is held.
        unsafe {
            std::ptr::copy_nonoverlapping(at as *const u8, buf.as_mut_ptr(), span.len());
            buf.set_len(span.len());
        }
        // Offsets into `buf` are offsets into the run less `span.start`,
        // which is at or before every byte the phase sets.
        for s in &batch[self.slots.clone()] {
            let o = s.addr - self.start;
            match phase {
                Phase::Breakpoints => buf[o - span.start] = INT3,
                Phase::Tails if s.new[1..] != s.old[1..] => {
                    buf[o + 1 - span.start..o + SLOT_LEN - span.start].copy_from_slice(&s.new[1..])
                }
                Phase::Tails => {}
                Phase::Heads => buf[o - span.start] = s.new[0],
            }
        }
        Some(at)
    }

    /// Calls `write(address, bytes)` for each piece of `buf` (the bytes
    /// [`Run::phase_bytes`] put there for address `at`), cutting it around
    /// every *foreign* `int3`: a `0xcc` byte that is not a byte of one of
    /// the batch's slots. Such a byte is never written back: it can be a
    /// breakpoint another writer (a debugger, a uprobe) owns and is about
    /// to remove, and writing it back would revive it (see
    /// `docs/DESIGN.md`, "The write path").
    ///
    /// # Errors
    /// The first error `write` returns.
    pub fn pieces(
        &self,
        batch: &[SlotWrite],
        at: usize,
        buf: &[u8],
        mut write: impl FnMut(usize, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let slots = &batch[self.slots.clone()];
        // The common case first: every `0xcc` of the buffer is a slot's or
        // the file's own padding, so it is written in one piece.
        if !has_foreign_int3(slots, &self.padding, at, buf) {
            return write(at, buf);
        }
        // Cut the buffer at every foreign `0xcc`. First count the pieces:
        // where foreign `0xcc`s are many (padding the file could not
        // vouch for), writing each slot's bytes on its own takes fewer
        // calls, and writes no foreign byte either.
        let cut = |emit: &mut dyn FnMut(usize, usize) -> Result<()>| -> Result<()> {
            let mut from = 0usize;
            let mut err = Ok(());
            each_foreign_int3(slots, &self.padding, at, buf, |q| {
                if q > from {
                    err = emit(from, q);
                }
                from = q + 1;
                err.is_err()
            });
            err?;
            if buf.len() > from {
                emit(from, buf.len())?;
            }
            Ok(())
        };
        let mut n = 0usize;
        cut(&mut |_, _| {
            n += 1;
            Ok(())
        })?;
        if n <= slots.len() {
            return cut(&mut |lo, hi| write(at + lo, &buf[lo..hi]));
        }
        for s in slots {
            let lo = s.addr.saturating_sub(at).min(buf.len());
            let hi = (s.addr + SLOT_LEN).saturating_sub(at).min(buf.len());
            if hi > lo {
                write(at + lo, &buf[lo..hi])?;
            }
        }
        Ok(())
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
        // for code; the phases' bytes are computed, not written, here).
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
        let runs = unsafe { plan(&batch, 8) }.unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(
            (runs[0].start, runs[0].len, runs[0].slots.clone()),
            (base, 15, 0..2)
        );
        let mut buf = Vec::new();
        // SAFETY: runs of `batch`, in live memory.
        let mut phase = |r: &Run, p: Phase| unsafe {
            r.phase_bytes(&batch, p, &mut buf)
                .map(|a| (a - base, buf.clone()))
        };
        let (at, b) = phase(&runs[0], Phase::Breakpoints).unwrap();
        assert_eq!(
            (at, &b[..]),
            (
                0,
                &[INT3, 1, 2, 3, 4, 0x90, 0x90, 0x90, 0x90, 0x90, INT3][..]
            )
        );
        let (at, b) = phase(&runs[0], Phase::Tails).unwrap();
        assert_eq!(at, 1);
        assert_eq!(b[..4], new[1..]);
        assert_eq!(b[4..9], [0x90; 5]);
        assert_eq!(b[10..], [0x1f, 0x44, 0, 0]);
        let (at, b) = phase(&runs[0], Phase::Heads).unwrap();
        assert_eq!((at, b.len(), b[0], b[10]), (0, 11, 0xe8, 0x0f));
        // Only the head changes at the last slot: no tail write.
        assert_eq!(phase(&runs[1], Phase::Breakpoints), Some((50, vec![INT3])));
        assert_eq!(phase(&runs[1], Phase::Tails), None);
        // One gap wide enough joins everything.
        // SAFETY: as above.
        assert_eq!(unsafe { plan(&batch, 35) }.unwrap().len(), 1);
        // A slot that changed is refused.
        mem[51] = 0;
        // SAFETY: as above.
        let e = unsafe { plan(&batch, 8) }.unwrap_err();
        assert!(matches!(e, Error::UnexpectedBytes { addr, .. } if addr == base + 50));
    }

    #[test]
    fn tails_span_starts_at_the_first_changed_tail() {
        let mut mem = vec![0x90u8; 32];
        let base = mem.as_mut_ptr() as usize;
        let old = [0xe8, 1, 2, 3, 4];
        for at in [0, 12] {
            mem[at..at + 5].copy_from_slice(&old);
        }
        // The first slot changes only its head, the second its tail too.
        let batch = [
            w(base, old, [0xe9, 1, 2, 3, 4]),
            w(base + 12, old, [0xe8, 7, 7, 7, 7]),
        ];
        // SAFETY: the slots lie in `mem`, which is live.
        let runs = unsafe { plan(&batch, 4095) }.unwrap();
        assert_eq!(runs.len(), 1);
        let mut buf = Vec::new();
        // SAFETY: a run of `batch`, in live memory.
        let at = unsafe { runs[0].phase_bytes(&batch, Phase::Tails, &mut buf) };
        assert_eq!((at, &buf[..]), (Some(base + 13), &[7u8, 7, 7, 7][..]));
        // SAFETY: as above.
        let at = unsafe { runs[0].phase_bytes(&batch, Phase::Heads, &mut buf) };
        assert_eq!(at, Some(base));
        assert_eq!((buf.len(), buf[0], buf[1], buf[12]), (13, 0xe9, 1, 0xe8));
    }

    #[test]
    fn finds_foreign_int3() {
        let mut b = vec![0x90u8; 67];
        let slots = [
            w(100 + 7, [0; 5], [0; 5]),
            w(100 + 30, [0; 5], [0; 5]),
            w(100 + 60, [0; 5], [0; 5]),
        ];
        for i in [7, 9, 11, 30, 34, 60, 64] {
            b[i] = INT3; // inside the slots
        }
        assert!(!has_foreign_int3(&slots, &[], 100, &b));
        for i in [0, 15, 16, 29, 35, 66] {
            let mut c = b.clone();
            c[i] = INT3;
            assert!(has_foreign_int3(&slots, &[], 100, &c), "at {i}");
            // Known padding at that address is not foreign.
            assert!(!has_foreign_int3(&slots, &[100 + i], 100, &c), "at {i}");
            assert!(has_foreign_int3(&slots, &[100 + i + 1], 100, &c), "at {i}");
        }
        assert_eq!(
            foreign_int3s(&slots, 100, &{
                let mut c = b.clone();
                c[1] = INT3;
                c[40] = INT3;
                c
            }),
            [101, 140]
        );
    }

    #[test]
    fn pieces_skip_foreign_int3_only() {
        let mut mem = vec![0x90u8; 40];
        let base = mem.as_mut_ptr() as usize;
        let old = [0xe8, 1, 2, 3, 4];
        for at in [0, 20] {
            mem[at..at + 5].copy_from_slice(&old);
        }
        mem[8] = INT3; // a debugger's breakpoint between the slots
        let batch = [
            w(base, old, [0xe8, 9, 9, 9, 9]),
            w(base + 20, old, [0xe8, 9, 9, 9, 9]),
        ];
        // SAFETY: the slots lie in `mem`, which is live.
        let runs = unsafe { plan(&batch, 4095) }.unwrap();
        let mut buf = Vec::new();
        // SAFETY: a run of `batch`, in live memory.
        let at = unsafe { runs[0].phase_bytes(&batch, Phase::Breakpoints, &mut buf) }.unwrap();
        let mut got = Vec::new();
        runs[0]
            .pieces(&batch, at, &buf, |a, b| {
                got.push((a - base, b.to_vec()));
                Ok(())
            })
            .unwrap();
        // The slots' own int3s are written; the foreign one at 8 is left
        // out.
        assert_eq!(
            got,
            [
                (0, vec![INT3, 1, 2, 3, 4, 0x90, 0x90, 0x90]),
                (9, vec![0x90; 11].into_iter().chain([INT3]).collect()),
            ]
        );
        // The same byte known as the file's padding is written back whole.
        let mut run = runs[0].clone();
        run.padding = vec![base + 8];
        let mut got = Vec::new();
        run.pieces(&batch, at, &buf, |a, b| {
            got.push((a - base, b.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, [(0, 21)]);
    }

    #[test]
    fn pieces_fall_back_to_slots_among_padding() {
        // Two slots with int3 padding all around them: writing the slots
        // alone takes fewer calls than the pieces between the int3s.
        let mut mem = vec![INT3; 40];
        let base = mem.as_mut_ptr() as usize;
        let old = [0xe8, 1, 2, 3, 4];
        for at in [4, 20] {
            mem[at..at + 5].copy_from_slice(&old);
        }
        for at in [10, 12, 14] {
            mem[at] = 0x90;
        }
        let batch = [
            w(base + 4, old, [0xe8, 9, 9, 9, 9]),
            w(base + 20, old, [0xe8, 9, 9, 9, 9]),
        ];
        // SAFETY: the slots lie in `mem`, which is live.
        let runs = unsafe { plan(&batch, 4095) }.unwrap();
        let mut buf = Vec::new();
        // SAFETY: a run of `batch`, in live memory.
        let at = unsafe { runs[0].phase_bytes(&batch, Phase::Tails, &mut buf) }.unwrap();
        let mut got = Vec::new();
        runs[0]
            .pieces(&batch, at, &buf, |a, b| {
                got.push((a - base, b.to_vec()));
                Ok(())
            })
            .unwrap();
        assert_eq!(
            got,
            [(5, vec![9, 9, 9, 9]), (20, vec![0xe8, 9, 9, 9, 9])],
            "{got:?}"
        );
    }

    #[test]
    fn runs_stop_at_max_run() {
        let mut mem = vec![0x90u8; MAX_RUN + 64];
        let base = mem.as_mut_ptr() as usize;
        let old = [0xe8, 1, 2, 3, 4];
        let mut batch = Vec::new();
        for at in (0..MAX_RUN + 32).step_by(16) {
            mem[at..at + 5].copy_from_slice(&old);
            batch.push(w(base + at, old, [0xe8, 0, 0, 0, 0]));
        }
        // SAFETY: the slots lie in `mem`, which is live.
        let runs = unsafe { plan(&batch, 4095) }.unwrap();
        assert_eq!(runs.len(), 2);
        assert!(runs.iter().all(|r| r.len <= MAX_RUN));
        assert_eq!(runs[1].slots.end, batch.len());
    }
}
