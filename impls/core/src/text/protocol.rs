//! The breakpoint protocol over a batch, and its variants: under a
//! tracer (no breakpoint), the naive patcher of the tests, and the
//! roll-back that puts the old bytes back after a failure.

use std::sync::atomic::Ordering;

use super::counters::COUNTERS;
use super::engine::{Engine, page_size, with_engine};
use super::runs::{self, Phase};
use super::{SlotWrite, park, pristine, read_slot, switches, trap, valgrind};
use crate::error::{Error, Result};
use crate::insn::{Form, INT3, SLOT_LEN};

/// [`write_batch`] on this copy's engine.
///
/// # Safety
/// As for [`write_batch`].
pub(super) unsafe fn write_batch_here(batch: &[SlotWrite]) -> Result<()> {
    let mut batch: Vec<SlotWrite> = batch.iter().copied().filter(|s| s.old != s.new).collect();
    if batch.is_empty() {
        return Ok(());
    }
    runs::sort_batch(&mut batch)?;
    COUNTERS.batches.fetch_add(1, Ordering::Relaxed);
    COUNTERS
        .slots
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    with_engine(|e| {
        // Who else runs, for a batch large enough to coalesce across gaps:
        // a process with no other thread needs no parking round. A small
        // batch bridges no gap and asks nothing (no thread is listed: the
        // cost of an update does not grow with the number of threads).
        let mut lists = if batch.len() > runs::SMALL_BATCH {
            park::Lists::new(e.task.as_ref())
        } else {
            park::Lists::none()
        };
        let gap = runs::gap_for(batch.len(), lists.alone(), page_size());
        // SAFETY: the caller guarantees every slot is mapped code.
        let mut runs = unsafe { runs::plan(&batch, gap)? };
        // SAFETY: as above; no thread is parked yet.
        unsafe { pristine::find(&batch, &mut runs) };
        trap::check_installed()?;
        // No thread is asked whether it blocks SIGTRAP: none can through
        // libc (`crate::signals`), whatever the number of threads.
        let vg = valgrind::running_on_valgrind();
        let tracer = if vg { 0 } else { e.tracer_cached() };
        let r = if switches::naive() {
            e.naive(&batch)
        } else if vg {
            valgrind::serialised(&batch)
        } else if tracer != 0 {
            e.traced(tracer, &batch)
        } else {
            let published = trap::publish(batch.iter().map(|s| (s.addr, s.form)));
            // SAFETY: the runs were planned over `batch` under this lock.
            match unsafe { e.protocol(&batch, &runs, &mut lists) } {
                Ok(()) => {
                    drop(published);
                    Ok(())
                }
                Err(err) => {
                    e.roll_back(&batch, published);
                    Err(err)
                }
            }
        };
        for r in &runs {
            valgrind::discard_translations(r.start, r.len);
        }
        r
    })
}

impl Engine {
    /// The breakpoint protocol over a sorted batch, one write per run and
    /// phase (see `text/runs.rs` and `docs/DESIGN.md`).
    ///
    /// # Safety
    /// `runs` come from `runs::plan` over `w`, under the engine lock held
    /// by the caller.
    unsafe fn protocol(
        &self,
        w: &[SlotWrite],
        runs: &[runs::Run],
        lists: &mut park::Lists,
    ) -> Result<()> {
        // Reserved up front: nothing is allocated while threads are parked.
        let mut buf = Vec::with_capacity(runs::MAX_RUN);
        // Runs that bridge no gap write only the batch's own bytes: no
        // round is needed for them.
        let gaps = runs.iter().any(|r| r.len > r.slots.len() * SLOT_LEN);
        for phase in [Phase::Breakpoints, Phase::Tails, Phase::Heads] {
            // The other threads are parked from the copy of each run to
            // its write, so a write another thread makes to the gap bytes
            // lands wholly before the copy or wholly after the write.
            let parked = if gaps {
                park::park(self.task.as_ref(), lists, park::WAIT)
            } else {
                park::Parked::none()
            };
            // A thread that did not park (it blocks the park signal with a
            // raw system call, or got no CPU within the round's wait) could
            // write between a copy and its write: then only the batch's own
            // bytes are written, slot by slot.
            let whole_runs = parked.complete();
            let r = runs.iter().try_for_each(|r| {
                // SAFETY: as this function's contract.
                match unsafe { r.phase_bytes(w, phase, &mut buf) } {
                    Some(at) if whole_runs => r.pieces(w, at, &buf, |a, b| self.write(a, b)),
                    Some(_) => w[r.slots.clone()].iter().try_for_each(|s| match phase {
                        Phase::Breakpoints => self.write(s.addr, &[INT3]),
                        Phase::Tails if s.new[1..] != s.old[1..] => {
                            self.write(s.addr + 1, &s.new[1..])
                        }
                        Phase::Tails => Ok(()),
                        Phase::Heads => self.write(s.addr, &s.new[..1]),
                    }),
                    None => Ok(()),
                }
            });
            parked.release();
            r?;
            self.sync()?;
        }
        Ok(())
    }

    /// The batch under a tracer: no breakpoint (a debugger would take it
    /// for its own, and resume the thread inside the instruction). Every
    /// other thread is parked for the whole batch, each slot is written
    /// whole with one `pwrite` of its own bytes only (the debugger writes
    /// its breakpoints while the process is stopped, possibly between a
    /// copy and a write of ours, so no byte that is not a slot's is
    /// written), the cores are synchronised, and the threads go on.
    ///
    /// # Errors
    /// [`Error::Traced`] when a thread did not park (nothing written); a
    /// failed write puts the slots already written back and returns it.
    fn traced(&self, tracer: i32, w: &[SlotWrite]) -> Result<()> {
        let mut lists = park::Lists::new(self.task.as_ref());
        let parked = park::park(self.task.as_ref(), &mut lists, park::WAIT_TRACED);
        if let Some(tid) = parked.missing {
            parked.release();
            return Err(Error::Traced { tracer, tid });
        }
        let mut r = Ok(());
        for (i, s) in w.iter().enumerate() {
            if let Err(e) = self.write(s.addr, &s.new) {
                for b in w[..i].iter().rev() {
                    let _ = self.write_any(b.addr, &b.old);
                }
                r = Err(e);
                break;
            }
        }
        let synced = self.sync_any();
        parked.release();
        r.and(synced)
    }

    /// Puts the old bytes back after the protocol failed part way, not
    /// relying on the system call that just failed.
    ///
    /// The slots may hold their old bytes, an `int3` before old or new
    /// tail bytes, or their new bytes. First the trap handler is given the
    /// *old* instruction of every slot (a thread that meets an `int3` now
    /// goes where the code will go back to). Then every slot that is not
    /// back gets the same three phases towards its old bytes, each write
    /// by any means left (`/proc/self/mem`, else an `mprotect` window) and
    /// each sync likewise (`membarrier`, else a shootdown). A slot that
    /// cannot be restored stays published for the life of the process, so
    /// the handler keeps emulating its old instruction instead of leaving
    /// an `int3` nobody serves.
    fn roll_back(&self, batch: &[SlotWrite], mut published: trap::Token) {
        let old_forms: Vec<(usize, Form)> = batch
            .iter()
            .map(|s| (s.addr, Form::decode(s.addr, s.old).unwrap_or(s.form)))
            .collect();
        published.republish(old_forms.iter().copied());
        let mut lost = vec![false; batch.len()];
        // SAFETY: the slots are mapped code the caller owns.
        let now = |s: &SlotWrite| unsafe { read_slot(s.addr) };
        for (i, s) in batch.iter().enumerate() {
            let cur = now(s);
            if cur != s.old && cur[0] != INT3 && self.write_any(s.addr, &[INT3]).is_err() {
                lost[i] = true;
            }
        }
        let _ = self.sync_any();
        for (i, s) in batch.iter().enumerate() {
            if !lost[i]
                && now(s)[1..] != s.old[1..]
                && self.write_any(s.addr + 1, &s.old[1..]).is_err()
            {
                lost[i] = true;
            }
        }
        let _ = self.sync_any();
        for (i, s) in batch.iter().enumerate() {
            if !lost[i] && now(s) != s.old && self.write_any(s.addr, &s.old[..1]).is_err() {
                lost[i] = true;
            }
        }
        let synced = self.sync_any().is_ok();
        let keep: Vec<(usize, Form)> = batch
            .iter()
            .zip(&old_forms)
            .zip(&lost)
            .filter(|((s, _), lost)| **lost || !synced || now(s) != s.old)
            .map(|((_, f), _)| *f)
            .collect();
        if !keep.is_empty() {
            trap::keep_forever(keep);
        }
        drop(published);
    }

    fn naive(&self, w: &[SlotWrite]) -> Result<()> {
        for s in w {
            for i in (0..SLOT_LEN).rev() {
                if s.new[i] != s.old[i] {
                    self.write(s.addr + i, &s.new[i..=i])?;
                }
            }
        }
        Ok(())
    }
}
