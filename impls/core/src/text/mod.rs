//! The only code in the workspace that writes executable memory.
//!
//! Everything that changes an instruction — patching a site or a
//! trampoline, mapping generated code, releasing init text — goes through
//! this module. Its invariants:
//!
//! * **W^X in our own view.** Text is written through `/proc/self/mem`
//!   (`pwrite` at the instruction's address), which the kernel allows on
//!   read-only mappings without changing their protection. No mapping of the
//!   process is ever writable and executable. Fresh code is written while
//!   its mapping is `RW` and only then made `RX`. If `/proc/self/mem`
//!   cannot be opened, or cannot write a read-only executable page (probed
//!   once on a scratch page: kernels can forbid it), the engine falls back
//!   to a short `RWX` window with `mprotect` around each write (closed
//!   again before any call returns) and says so in [`EngineInfo`].
//! * **Cross-modification is safe while other threads run.** One batch is
//!   written with the breakpoint protocol: (1) an `int3` on the first byte of
//!   every slot, then *sync*; (2) the other four bytes, then *sync*; (3) the
//!   new first byte, then *sync*. *Sync* is
//!   `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE)`, which makes
//!   every core that runs one of our threads execute a serialising
//!   instruction before it returns to user mode (fallback: an `mprotect`
//!   TLB-shootdown on a scratch page, which interrupts the same cores). A
//!   thread that executes a slot while it starts with `int3` traps; the
//!   `SIGTRAP` handler (in `text/trap.rs`) emulates the slot's *new* instruction.
//!   So every execution sees either the whole old instruction, the `int3`
//!   (emulated as the new one), or the whole new instruction — never a torn
//!   one. The synchronisation is paid three times per batch, not per slot.
//! * **Few system calls per batch.** The slots of a batch of more than a
//!   few are sorted by address and grouped into runs (gaps shorter than a
//!   page, `text/runs.rs`); each phase writes each run with one `pwrite`,
//!   the bytes between the slots written back as copied right before,
//!   with the process's other threads parked from the copy to the write
//!   (`text/park.rs`), and cut around any `0xcc` that is neither a slot's
//!   nor the mapped file's own padding (`text/pristine.rs`; the safety
//!   argument and its limits are in `docs/DESIGN.md`, "The write path").
//! * **Under a tracer no breakpoint is written**: the other threads are
//!   parked for the whole batch and each slot is written whole.
//! * **The trap handler's table stays bounded**: an unloaded module's
//!   slots are forgotten after a parking round (the grace period).
//! * **One writer at a time.** A process-wide mutex serialises batches.
//! * **Valgrind sees the change.** After a batch, the engine issues
//!   `VALGRIND_DISCARD_TRANSLATIONS` for each written run (a no-op when not
//!   running under valgrind).
//! * **Failure leaves the old code.** If a system call fails part way, the
//!   trap handler is given the old instructions and every slot is written
//!   back to its old bytes with the same three phases, by any means left
//!   (the other write path, the other sync) before the error is returned. A
//!   slot that cannot be restored stays served by the trap handler (which
//!   emulates its old instruction) for the life of the process.

pub(crate) mod park;
mod pristine;
mod runs;
mod trap;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{Error, Place, Result};
use crate::insn::{Form, INT3, SLOT_LEN};
use runs::Phase;

pub use trap::TrapStats;

/// One slot to rewrite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotWrite {
    /// Address of the slot.
    pub addr: usize,
    /// Bytes the slot holds now (checked again under the engine lock).
    pub old: [u8; SLOT_LEN],
    /// Bytes it must hold afterwards.
    pub new: [u8; SLOT_LEN],
    /// The instruction the new bytes encode, emulated for a thread that
    /// hits the breakpoint meanwhile.
    pub form: Form,
    /// What the slot is (for error messages).
    pub place: Place,
    /// The key it belongs to (for error messages).
    pub key: usize,
}

/// How the engine writes and synchronises, chosen once on first use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineInfo {
    /// Writes go through `/proc/self/mem` (true) or an `mprotect` window.
    pub proc_mem: bool,
    /// Cores are synchronised with `membarrier` (true) or an `mprotect`
    /// TLB shootdown.
    pub membarrier: bool,
}

struct Engine {
    mem: Option<File>,
    /// `/proc/self/task`, to list the other threads for a parking round.
    task: Option<File>,
    /// `/proc/self/status`, for `TracerPid`.
    status: Option<File>,
    /// When `TracerPid` was last read, and what it said (the engine is
    /// used under its lock only).
    tracer_seen: std::cell::Cell<(Option<std::time::Instant>, i32)>,
    membarrier: bool,
    scratch: usize,
    /// The process that opened `mem`. After `fork` the descriptor still
    /// names the parent's memory, so a child must open its own.
    pid: libc::pid_t,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: our own scratch page (in a forked child: its copy).
        unsafe { libc::munmap(self.scratch as *mut _, page_size()) };
    }
}

static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);
static NAIVE: AtomicBool = AtomicBool::new(false);
static FORCE_FALLBACKS: AtomicBool = AtomicBool::new(false);

/// A system call the engine can be made to fail, for tests of its error
/// paths (as a seccomp filter installed after `init()` would).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `pwrite` to `/proc/self/mem` fails with `EPERM` after `after`
    /// successful calls, and every call after that.
    ProcMemWrite {
        /// Calls that still succeed.
        after: u64,
    },
    /// `membarrier` fails with `EPERM` after `after` successful calls, and
    /// every call after that.
    Membarrier {
        /// Calls that still succeed.
        after: u64,
    },
    /// Installing the `SIGTRAP` handler fails with `EPERM` (every try).
    Sigaction,
}

/// Injected-fault kind for `sigaction`.
const FAULT_SIGACTION: u64 = 3;
/// 0: none; 1: pwrite; 2: membarrier; 3: sigaction.
static FAULT_KIND: AtomicU64 = AtomicU64::new(0);
/// Calls left before the injected fault starts.
static FAULT_LEFT: AtomicU64 = AtomicU64::new(0);

/// Makes a system call of the engine fail from now on (`None`: stop). It
/// exists so the conformance suite can show that a failed update leaves
/// the code as it was; never use it otherwise.
#[doc(hidden)]
pub fn inject_fault_for_tests(f: Option<Fault>) {
    let (kind, after) = match f {
        None => (0, 0),
        Some(Fault::ProcMemWrite { after }) => (1, after),
        Some(Fault::Membarrier { after }) => (2, after),
        Some(Fault::Sigaction) => (FAULT_SIGACTION, 0),
    };
    FAULT_LEFT.store(after, Ordering::SeqCst);
    FAULT_KIND.store(kind, Ordering::SeqCst);
}

/// Whether the injected fault hits this call of `kind`.
fn injected(kind: u64) -> bool {
    if FAULT_KIND.load(Ordering::SeqCst) != kind {
        return false;
    }
    let left = FAULT_LEFT.load(Ordering::SeqCst);
    if left == 0 {
        // SAFETY: setting errno for the error constructor.
        unsafe { *libc::__errno_location() = libc::EPERM };
        return true;
    }
    FAULT_LEFT.store(left - 1, Ordering::SeqCst);
    false
}

/// How long a read of `TracerPid` stays fresh ([`Engine::tracer_cached`]).
const TRACER_FRESH: std::time::Duration = std::time::Duration::from_millis(10);

const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 5;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 6;

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

impl Engine {
    fn open() -> Result<Engine> {
        // Only the copy that serves the process's engine opens one
        // (`text/shared.rs`): every entry point that gets here was chosen
        // by `shared::engine()`.
        let fallbacks = FORCE_FALLBACKS.load(Ordering::SeqCst);
        let mem = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/proc/self/mem")
            .ok()
            .filter(|_| !fallbacks)
            .filter(proc_mem_writes_code);
        // SAFETY: registering for membarrier has no memory-safety
        // preconditions; failure only means we use the fallback.
        let membarrier = !fallbacks
            && unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
                    0,
                    0,
                )
            } == 0;
        // The breakpoints below need every thread to take SIGTRAP: the
        // library's definitions of the mask-setting libc functions keep it
        // out of every mask (`crate::signals`); this keeps them linked.
        debug_assert!(crate::signals::linked());
        std::hint::black_box(crate::signals::linked());
        park::install();
        trap::install()?;
        let scratch = map_page(libc::PROT_READ | libc::PROT_WRITE)
            .ok_or_else(|| Error::last_os("mmap(scratch page)", 0))?;
        let task = std::fs::File::open("/proc/self/task").ok();
        let status = std::fs::File::open("/proc/self/status").ok();
        Ok(Engine {
            mem,
            task,
            status,
            tracer_seen: std::cell::Cell::new((None, 0)),
            membarrier,
            scratch,
            // SAFETY: getpid has no preconditions.
            pid: unsafe { libc::getpid() },
        })
    }

    fn info(&self) -> EngineInfo {
        EngineInfo {
            proc_mem: self.mem.is_some(),
            membarrier: self.membarrier,
        }
    }

    /// Writes `bytes` at `addr` in executable memory, by the engine's
    /// chosen means.
    fn write(&self, addr: usize, bytes: &[u8]) -> Result<()> {
        COUNTERS.writes.fetch_add(1, Ordering::Relaxed);
        match &self.mem {
            Some(mem) => Self::write_proc_mem(mem, addr, bytes),
            None => Self::write_mprotect(addr, bytes),
        }
    }

    /// Writes through `/proc/self/mem` if the engine has it, else (or if
    /// that fails) through an `mprotect` window: every means there is,
    /// for putting old code back after a failure.
    fn write_any(&self, addr: usize, bytes: &[u8]) -> Result<()> {
        match &self.mem {
            Some(mem) => Self::write_proc_mem(mem, addr, bytes)
                .or_else(|_| Self::write_mprotect(addr, bytes)),
            None => Self::write_mprotect(addr, bytes),
        }
    }

    fn write_proc_mem(mem: &File, addr: usize, bytes: &[u8]) -> Result<()> {
        if injected(1) {
            return Err(Error::last_os("pwrite(/proc/self/mem)", addr));
        }
        // SAFETY: pwrite reads `bytes` (a valid slice) and writes the
        // target process's memory through the kernel; it never touches
        // our memory through a Rust reference.
        let n = unsafe {
            libc::pwrite(
                mem.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                addr as libc::off_t,
            )
        };
        if n != bytes.len() as isize {
            return Err(Error::last_os("pwrite(/proc/self/mem)", addr));
        }
        Ok(())
    }

    fn write_mprotect(addr: usize, bytes: &[u8]) -> Result<()> {
        let page = page_size();
        let start = addr & !(page - 1);
        let end = (addr + bytes.len()).div_ceil(page) * page;
        // SAFETY: the range is the pages holding `addr..addr+len`, which are
        // mapped text (the caller validated the slot). The RWX window is
        // closed again below before this function returns.
        unsafe {
            if libc::mprotect(
                start as *mut _,
                end - start,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            ) != 0
            {
                return Err(Error::last_os("mprotect(RWX)", addr));
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len());
            if libc::mprotect(
                start as *mut _,
                end - start,
                libc::PROT_READ | libc::PROT_EXEC,
            ) != 0
            {
                return Err(Error::last_os("mprotect(RX)", addr));
            }
        }
        Ok(())
    }

    /// Makes every core running one of our threads serialise.
    fn sync(&self) -> Result<()> {
        COUNTERS.syncs.fetch_add(1, Ordering::Relaxed);
        if self.membarrier {
            self.sync_membarrier()
        } else {
            self.sync_shootdown()
        }
    }

    /// [`Engine::sync`], falling back to a shootdown if `membarrier` fails.
    fn sync_any(&self) -> Result<()> {
        self.sync().or_else(|_| self.sync_shootdown())
    }

    fn sync_membarrier(&self) -> Result<()> {
        if injected(2) {
            return Err(Error::last_os("membarrier(SYNC_CORE)", 0));
        }
        // SAFETY: registered in `open`; the call has no memory effects.
        let r = unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
                0,
                0,
            )
        };
        if r != 0 {
            return Err(Error::last_os("membarrier(SYNC_CORE)", 0));
        }
        Ok(())
    }

    fn sync_shootdown(&self) -> Result<()> {
        let len = page_size();
        // SAFETY: `scratch` is our own anonymous page; changing its
        // protection forces a TLB shootdown IPI to every core running this
        // mm, and the return from that interrupt serialises the core.
        unsafe {
            if libc::mprotect(
                self.scratch as *mut _,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
            ) != 0
            {
                return Err(Error::last_os("mprotect(scratch)", self.scratch));
            }
            std::ptr::write_volatile(self.scratch as *mut u8, 1);
            if libc::mprotect(self.scratch as *mut _, len, libc::PROT_READ) != 0 {
                return Err(Error::last_os("mprotect(scratch)", self.scratch));
            }
        }
        Ok(())
    }

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

    /// [`Engine::tracer`], read again at most every [`TRACER_FRESH`]:
    /// formatting `/proc/self/status` costs the kernel 5 to 15 µs here, more
    /// than the rest of a one-site update, and a debugger attaches once,
    /// not between two updates of a loop. A debugger that attached less than
    /// [`TRACER_FRESH`] before an update can see one of its breakpoints, as
    /// one that attaches while a batch is in flight can (docs/DESIGN.md,
    /// "Under a debugger").
    fn tracer_cached(&self) -> i32 {
        let now = std::time::Instant::now();
        let (at, pid) = self.tracer_seen.get();
        if let Some(at) = at
            && now.duration_since(at) < TRACER_FRESH
        {
            return pid;
        }
        let pid = self.tracer();
        self.tracer_seen.set((Some(now), pid));
        pid
    }

    /// Whether a tracer (a debugger, `strace`) is attached to the process
    /// (`TracerPid` of `/proc/self/status`): its pid, or 0.
    fn tracer(&self) -> i32 {
        let Some(f) = &self.status else { return 0 };
        let mut buf = [0u8; 4096];
        // SAFETY: pread fills at most `buf.len()` bytes of `buf`.
        let n = unsafe { libc::pread(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let Ok(n) = usize::try_from(n) else { return 0 };
        let text = &buf[..n];
        const TAG: &[u8] = b"\nTracerPid:";
        let Some(i) = text.windows(TAG.len()).position(|w| w == TAG) else {
            return 0;
        };
        text[i + TAG.len()..]
            .iter()
            .skip_while(|c| c.is_ascii_whitespace())
            .take_while(|c| c.is_ascii_digit())
            .fold(0i32, |n, c| {
                n.wrapping_mul(10).wrapping_add(i32::from(c - b'0'))
            })
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
    fn serialised(&self, w: &[SlotWrite]) -> Result<()> {
        for (i, s) in w.iter().enumerate() {
            if let Err(e) = Self::store_whole(s.addr, &s.new) {
                // Put back the slots already replaced, the same way.
                for b in w[..i].iter().rev() {
                    let _ = Self::store_whole(b.addr, &b.old);
                }
                return Err(e);
            }
            valgrind::discard_translations(s.addr, SLOT_LEN);
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
            if libc::mprotect(
                lo as *mut _,
                hi - lo,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            ) != 0
            {
                return Err(Error::last_os("mprotect(RWX)", addr));
            }
            let mut word = std::ptr::read_unaligned(start as *const [u8; 8]);
            let off = addr - start;
            word[off..off + SLOT_LEN].copy_from_slice(bytes);
            std::ptr::write_unaligned(start as *mut u64, u64::from_ne_bytes(word));
            if libc::mprotect(lo as *mut _, hi - lo, libc::PROT_READ | libc::PROT_EXEC) != 0 {
                return Err(Error::last_os("mprotect(RX)", addr));
            }
        }
        Ok(())
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

/// Whether `pwrite` through `mem` can change a read-only executable page.
/// Kernels can forbid it (`proc_mem.force_override=never`, Linux 6.12+, or
/// sandboxes); the engine then uses its `mprotect` fallback.
fn proc_mem_writes_code(mem: &File) -> bool {
    let Some(probe) = map_page(libc::PROT_READ | libc::PROT_EXEC) else {
        return false;
    };
    let probe = probe as *mut libc::c_void;
    let byte = [INT3];
    // SAFETY: writes one byte of our own probe page, which nothing executes.
    let n = unsafe {
        libc::pwrite(
            mem.as_raw_fd(),
            byte.as_ptr().cast(),
            1,
            probe as libc::off_t,
        )
    };
    // SAFETY: reading the page we just mapped.
    let ok = n == 1 && unsafe { std::ptr::read_volatile(probe as *const u8) } == INT3;
    // SAFETY: our own mapping.
    unsafe { libc::munmap(probe, page_size()) };
    ok
}

/// A fresh anonymous private page with protection `prot`, wherever the
/// kernel puts it.
fn map_page(prot: libc::c_int) -> Option<usize> {
    // SAFETY: an anonymous mapping at a kernel-chosen address.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page_size(),
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as usize)
}

fn with_engine<T>(f: impl FnOnce(&Engine) -> Result<T>) -> Result<T> {
    let mut g = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    if g.as_ref().is_none_or(|e| e.pid != pid) {
        *g = None;
        *g = Some(Engine::open()?);
    }
    f(g.as_ref().expect("engine initialised above"))
}

/// Prepares the engine (opens `/proc/self/mem`, registers for membarrier,
/// installs the `SIGTRAP` handler) and says how it will work.
///
/// # Errors
/// A failed system call while setting up.
pub fn engine_info() -> Result<EngineInfo> {
    // The fork gate before the engine's lock, in the order every registry
    // operation takes them (gate, registry, engine): a `fork` then waits
    // for this call as for an update, and no child inherits the engine's
    // lock held by a thread it does not have. (Nested inside an operation,
    // the gate is already this thread's.)
    let _entered = crate::gate::enter_nested();
    match shared::engine()? {
        shared::Engine::Ours => engine_info_here(),
        shared::Engine::Theirs(t) => shared::info(t),
    }
}

/// [`engine_info`] of this copy's engine (the caller holds the gate).
pub(crate) fn engine_info_here() -> Result<EngineInfo> {
    with_engine(|e| Ok(e.info()))
}

/// Reads a slot of executable memory.
///
/// # Safety
/// `addr..addr + 5` must be mapped and readable for the duration of the call.
pub(crate) unsafe fn read_slot(addr: usize) -> [u8; SLOT_LEN] {
    // SAFETY: guaranteed by the caller; volatile because other threads may
    // rewrite it through /proc/self/mem behind the compiler's back.
    unsafe { std::ptr::read_volatile(addr as *const [u8; SLOT_LEN]) }
}

/// Writes one batch of slots with the breakpoint protocol.
///
/// Every slot must still hold its `old` bytes; otherwise nothing is written
/// and [`Error::UnexpectedBytes`] names the first that changed.
///
/// # Safety
/// * Every `addr..addr + 5` is a slot of live, mapped code that the caller
///   owns for patching (callers hold their registry lock, so no other
///   writer targets the same slot), and every `form` is the instruction
///   `new` encodes at that address.
/// * Any thread may be executing any of the slots: that is what the
///   protocol is for. Identical writes of one slot count once; writes
///   that overlap otherwise are refused with [`Error::UnexpectedBytes`]
///   before anything is written.
pub(crate) unsafe fn write_batch(batch: &[SlotWrite]) -> Result<()> {
    // A batch that changes nothing needs no engine (a design that writes
    // no code never asks for one).
    if batch.iter().all(|s| s.old == s.new) {
        return Ok(());
    }
    match shared::engine()? {
        // SAFETY: the caller's contract.
        shared::Engine::Ours => unsafe { write_batch_here(batch) },
        shared::Engine::Theirs(t) => shared::write_batch(t, batch),
    }
}

/// [`write_batch`] on this copy's engine.
///
/// # Safety
/// As for [`write_batch`].
pub(crate) unsafe fn write_batch_here(batch: &[SlotWrite]) -> Result<()> {
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
        let r = if NAIVE.load(Ordering::Relaxed) {
            e.naive(&batch)
        } else if vg {
            e.serialised(&batch)
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

/// Looks for a thread that blocks `SIGTRAP` now: an opt-in diagnostic,
/// never part of an update.
///
/// No thread can block `SIGTRAP` through libc while this library is linked
/// (see [`crate::signals`]); one that did so with a raw `rt_sigprocmask`
/// system call, by editing `uc_sigmask` in a signal handler's context, or
/// through a shared library the executable does not route to the library
/// would be killed by a breakpoint of the patching protocol. This lists the
/// threads in `/proc/self/task` and reads each one's full blocked mask
/// (`SigBlk` in its `status`; `stat` shows only signals 1 to 31). A thread
/// inside glibc's brief all-signals-blocked window (thread creation and
/// exit, which run no code of the program) is recognised by signal 32,
/// which programs cannot block, and passed over. The cost is about 12 µs
/// per thread, which is why updates do not call it.
///
/// # Errors
/// [`Error::TrapBlocked`] naming the first such thread;
/// [`Error::Syscall`] when `/proc/self/task` cannot be read.
pub fn check_sigtrap_masks() -> Result<()> {
    const SIGTRAP_BIT: u64 = 1 << (libc::SIGTRAP - 1);
    const GLIBC_INTERNAL: u64 = 1 << 31;
    let dir = std::fs::read_dir("/proc/self/task")
        .map_err(|_| Error::last_os("opendir(/proc/self/task)", 0))?;
    for entry in dir.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue; // exited meanwhile
        };
        let blocked = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .unwrap_or(0);
        if blocked & SIGTRAP_BIT != 0 && blocked & GLIBC_INTERNAL == 0 {
            let name = status
                .lines()
                .find_map(|l| l.strip_prefix("Name:"))
                .map(|n| n.trim().to_owned())
                .unwrap_or_default();
            return Err(Error::TrapBlocked { tid, name });
        }
    }
    Ok(())
}

/// Makes whole pages in `start..end` inaccessible (`PROT_NONE`).
///
/// Returns the page-aligned range actually released.
///
/// # Safety
/// No code or data in the released pages may be used afterwards.
pub(crate) unsafe fn release(start: usize, end: usize) -> Result<(usize, usize)> {
    match shared::engine()? {
        // SAFETY: the caller's contract.
        shared::Engine::Ours => unsafe { release_here(start, end) },
        shared::Engine::Theirs(t) => shared::release(t, start, end),
    }
}

/// [`release`] by this copy's engine.
///
/// # Safety
/// As for [`release`].
pub(crate) unsafe fn release_here(start: usize, end: usize) -> Result<(usize, usize)> {
    let (lo, hi) = whole_pages(start, end);
    if hi <= lo {
        return Ok((lo, lo));
    }
    // SAFETY: whole pages owned by the caller, who promises not to use them.
    if unsafe { libc::mprotect(lo as *mut _, hi - lo, libc::PROT_NONE) } != 0 {
        return Err(Error::last_os("mprotect(PROT_NONE)", lo));
    }
    valgrind::discard_translations(lo, hi - lo);
    Ok((lo, hi))
}

/// Writes `bytes` into code that no thread executes yet (a free slot of a
/// relay page, whose other slots may be live), through `/proc/self/mem`.
/// Returns `Ok(false)`, writing nothing, when the engine cannot write
/// that way: its `mprotect` window would make the page's live code
/// briefly non-executable, so the caller maps a fresh page instead.
///
/// No synchronisation is needed: no core has run these bytes, and the
/// batch that first points a jump at them synchronises every core before
/// any thread can reach them.
///
/// # Safety
/// `addr..addr + bytes.len()` lies in an executable mapping of ours that
/// no thread executes and nothing else writes.
pub(crate) unsafe fn write_fresh(addr: usize, bytes: &[u8]) -> Result<bool> {
    match shared::engine()? {
        // SAFETY: the caller's contract.
        shared::Engine::Ours => unsafe { write_fresh_here(addr, bytes) },
        shared::Engine::Theirs(t) => shared::write_fresh(t, addr, bytes),
    }
}

/// [`write_fresh`] by this copy's engine.
///
/// # Safety
/// As for [`write_fresh`].
pub(crate) unsafe fn write_fresh_here(addr: usize, bytes: &[u8]) -> Result<bool> {
    with_engine(|e| match &e.mem {
        Some(mem) => {
            Engine::write_proc_mem(mem, addr, bytes)?;
            valgrind::discard_translations(addr, bytes.len());
            Ok(true)
        }
        None => Ok(false),
    })
}

/// The whole pages inside `start..end`: what [`release`] makes
/// inaccessible (`(lo, lo)` when there is none).
pub(crate) fn whole_pages(start: usize, end: usize) -> (usize, usize) {
    let page = page_size();
    let lo = start.div_ceil(page) * page;
    let hi = end & !(page - 1);
    if hi <= lo { (lo, lo) } else { (lo, hi) }
}

/// Switches the process to a byte-at-a-time patcher with no protocol and no
/// core synchronisation. It exists only to prove that the torture test can
/// fail; never use it otherwise.
///
/// # Safety
/// Other threads executing a slot while it is written this way can run a
/// torn instruction and crash.
#[doc(hidden)]
pub unsafe fn use_naive_patcher_for_tests(on: bool) {
    NAIVE.store(on, Ordering::SeqCst);
}

/// Makes the engine use its fallbacks (an `mprotect` RWX window per write,
/// `mprotect` TLB shootdowns to synchronise cores), as on a kernel without
/// `/proc/self/mem` writes or `membarrier`. It exists so the conformance
/// suite can run those paths; takes effect at the next write.
#[doc(hidden)]
pub fn use_fallbacks_for_tests(on: bool) {
    let mut g = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    FORCE_FALLBACKS.store(on, Ordering::SeqCst);
    *g = None;
}

/// Forgets the slots at `addrs` in the trap handler's table of every slot
/// ever published (an unloaded module's sites), so that the table stays
/// as large as the slots that exist, however many modules come and go.
///
/// Safe once no thread can still be about to take a trap of ours there.
/// The unload batch that precedes this has removed every breakpoint; a
/// thread that hit one before has a `SIGTRAP` pending or in progress. A
/// completed parking round is the grace period: the park signal is
/// blocked in the `SIGTRAP` handler and a pending `SIGTRAP` is delivered
/// first, so a thread that parked has finished every trap it took. If a
/// thread does not park (it blocks the park signal), nothing is forgotten.
pub(crate) fn forget_slots(addrs: &[usize]) -> Result<()> {
    match shared::engine()? {
        shared::Engine::Ours => forget_slots_here(addrs),
        shared::Engine::Theirs(t) => shared::forget_slots(t, addrs),
    }
}

/// [`forget_slots`] by this copy's engine.
pub(crate) fn forget_slots_here(addrs: &[usize]) -> Result<()> {
    with_engine(|e| {
        let mut lists = park::Lists::new(e.task.as_ref());
        let parked = park::park(e.task.as_ref(), &mut lists, park::WAIT);
        let complete = parked.complete();
        parked.release();
        if complete {
            trap::forget(addrs);
        }
        Ok(())
    })
}

/// Forgets what the engine learnt about the mappings that hold code (an
/// image was added or removed, so an address range may now be mapped
/// anew).
pub(crate) fn mappings_changed() {
    match shared::engine() {
        Ok(shared::Engine::Theirs(t)) => shared::mappings_changed(t),
        // Ours, or none usable: this copy's engine is the only one it
        // writes with.
        _ => pristine::forget(),
    }
}

/// The size of the trap handler's table of known slots (every slot
/// address published and not forgotten): for tests of bounded memory.
#[doc(hidden)]
pub fn trap_table_len() -> usize {
    match shared::engine() {
        Ok(shared::Engine::Ours) => trap_table_len_here(),
        Ok(shared::Engine::Theirs(t)) => shared::trap_table_len(t),
        Err(_) => 0,
    }
}

/// [`trap_table_len`] of this copy's engine.
pub(crate) fn trap_table_len_here() -> usize {
    with_engine(|_| Ok(trap::known_len())).unwrap_or(0)
}

/// The engine's park signal (`SIGRTMAX - 1`, 63 with glibc): the engine
/// sends it to the process's other threads to stop them for a moment
/// while it writes code. Under a debugger, let it through without
/// stopping (`handle SIG63 nostop noprint pass` in gdb).
pub fn park_signal() -> i32 {
    park::signal()
}

/// (parking rounds with other threads, rounds in which a thread did not
/// park, nanoseconds spent waiting for threads to park) so far.
#[doc(hidden)]
pub fn park_stats() -> (u64, u64, u64) {
    match shared::engine() {
        Ok(shared::Engine::Theirs(t)) => shared::stats(t).1,
        _ => park::stats(),
    }
}

/// How many breakpoint traps the handler has served so far (the
/// process's engine, whichever copy serves it).
pub fn trap_stats() -> TrapStats {
    let s = engine_stats();
    TrapStats {
        emulated: s.traps_emulated,
        restarted: s.traps_restarted,
    }
}

struct Counters {
    batches: AtomicU64,
    slots: AtomicU64,
    writes: AtomicU64,
    syncs: AtomicU64,
}

static COUNTERS: Counters = Counters {
    batches: AtomicU64::new(0),
    slots: AtomicU64::new(0),
    writes: AtomicU64::new(0),
    syncs: AtomicU64::new(0),
};

/// What the patching engine has done in this process so far (all
/// implementations together: they share one engine).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Batches written (one per update, `init()` or module load/unload
    /// that changed code).
    pub batches: u64,
    /// Slots (sites and trampolines) those batches changed.
    pub slots: u64,
    /// Writes to code (`pwrite`s to `/proc/self/mem`, or `mprotect`
    /// windows): one per run of nearby slots and protocol phase.
    pub writes: u64,
    /// Core synchronisations (`membarrier`, or `mprotect` shootdowns).
    pub core_syncs: u64,
    /// Threads that met a breakpoint of a batch in flight and were sent on
    /// through the emulated new instruction.
    pub traps_emulated: u64,
    /// Threads that met a breakpoint just removed and were restarted.
    pub traps_restarted: u64,
}

/// The engine's counters (the process's engine, whichever copy of this
/// crate serves it; zeros when this copy cannot use it).
pub fn engine_stats() -> EngineStats {
    match shared::engine() {
        Ok(shared::Engine::Ours) => engine_stats_here(),
        Ok(shared::Engine::Theirs(t)) => shared::stats(t).0,
        Err(_) => EngineStats::default(),
    }
}

/// This copy's engine's counters.
pub(crate) fn engine_stats_here() -> EngineStats {
    let t = trap::stats();
    EngineStats {
        batches: COUNTERS.batches.load(Ordering::Relaxed),
        slots: COUNTERS.slots.load(Ordering::Relaxed),
        writes: COUNTERS.writes.load(Ordering::Relaxed),
        core_syncs: COUNTERS.syncs.load(Ordering::Relaxed),
        traps_emulated: t.emulated,
        traps_restarted: t.restarted,
    }
}

pub mod exec;
pub mod rendezvous;
pub(crate) mod shared;
pub mod valgrind;

pub use shared::ENGINE_VERSION;

/// Whether this copy of the crate serves the process's engine: it
/// published its engine table at the first copy's anchor, and every copy's
/// updates are written by it (`docs/DESIGN.md`, "One engine per
/// process"). False in a copy that uses another's, or that has not met
/// the engine yet.
pub fn serves_engine() -> bool {
    shared::serving()
}

/// This copy's own engine operations, which `shared`'s entry points serve
/// to the other copies.
pub(crate) mod local {
    pub(crate) use super::{
        engine_info_here as engine_info, engine_stats_here as engine_stats,
        forget_slots_here as forget_slots, release_here as release,
        trap_table_len_here as trap_table_len, write_batch_here as write_batch,
        write_fresh_here as write_fresh,
    };
}
