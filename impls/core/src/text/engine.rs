//! The engine of this copy: how it writes code and synchronises cores,
//! chosen once on first use (`/proc/self/mem` or an `mprotect` window;
//! `membarrier` or an `mprotect` shootdown), and the operations other
//! copies reach through the engine table (`text/shared.rs`).

use std::fs::File;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use rustix::io::Errno;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
use rustix::process::Pid;
use rustix::thread::MembarrierCommand;

use super::counters::COUNTERS;
use super::switches::{self, Hit};
use super::{EngineInfo, park, trap, valgrind, whole_pages};
use crate::error::{Error, Result};
use crate::insn::INT3;

/// This copy's engine, opened on first use (and again in a forked child).
pub(super) struct Engine {
    /// `/proc/self/mem`, when it can write read-only code (else writes go
    /// through an `mprotect` window).
    pub(super) mem: Option<File>,
    /// `/proc/self/task`, to list the other threads for a parking round.
    pub(super) task: Option<File>,
    /// `/proc/self/status`, for `TracerPid`.
    status: Option<File>,
    /// When `TracerPid` was last read, and what it said (the engine is
    /// used under its lock only).
    tracer_seen: std::cell::Cell<(Option<std::time::Instant>, i32)>,
    /// Registered for `membarrier(SYNC_CORE)` (else cores are
    /// synchronised by an `mprotect` shootdown on `scratch`).
    membarrier: bool,
    /// A private page of ours, for the shootdown.
    scratch: usize,
    /// The process that opened `mem`. After `fork` the descriptor still
    /// names the parent's memory, so a child must open its own.
    pid: Pid,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: our own scratch page (in a forked child: its copy).
        let _ = unsafe { rustix::mm::munmap(self.scratch as *mut _, page_size()) };
    }
}

pub(super) static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);

/// How long a read of `TracerPid` stays fresh ([`Engine::tracer_cached`]).
const TRACER_FRESH: std::time::Duration = std::time::Duration::from_millis(10);

/// The size of a page.
pub(crate) fn page_size() -> usize {
    // libc's, not `rustix::param::page_size`: rustix reads the auxiliary
    // vector and checks the vDSO's ELF header there, which valgrind leaves
    // unmapped (SIGSEGV in `valgrind_selftest`).
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

/// The protection of executable code that is not being written.
pub(super) const RX: MprotectFlags = MprotectFlags::READ.union(MprotectFlags::EXEC);
/// The protection of an `mprotect` window (the fallback's only).
pub(super) const RWX: MprotectFlags = RX.union(MprotectFlags::WRITE);

/// `mprotect` of the pages `start..start + len`.
///
/// # Safety
/// The pages are mapped, and nothing relies on a protection this call
/// takes away while it is in force.
pub(super) unsafe fn protect(
    start: usize,
    len: usize,
    flags: MprotectFlags,
) -> rustix::io::Result<()> {
    // SAFETY: the caller's contract.
    unsafe { rustix::mm::mprotect(start as *mut _, len, flags) }
}

impl Engine {
    pub(super) fn open() -> Result<Engine> {
        // Only the copy that serves the process's engine opens one
        // (`text/shared.rs`): every entry point that gets here was chosen
        // by `shared::engine()`.
        let fallbacks = switches::fallbacks_forced();
        let mem = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/proc/self/mem")
            .ok()
            .filter(|_| !fallbacks)
            .filter(proc_mem_writes_code);
        // Failure only means we use the fallback.
        let membarrier = !fallbacks
            && rustix::thread::membarrier(MembarrierCommand::RegisterPrivateExpeditedSyncCore)
                .is_ok();
        // The breakpoints below need every thread to take SIGTRAP: the
        // library's definitions of the mask-setting libc functions keep it
        // out of every mask (`crate::signals`); this keeps them linked.
        debug_assert!(crate::signals::linked());
        std::hint::black_box(crate::signals::linked());
        park::install();
        trap::install()?;
        let scratch = map_page(ProtFlags::READ | ProtFlags::WRITE)
            .map_err(|e| Error::os("mmap(scratch page)", 0, e))?;
        let task = std::fs::File::open("/proc/self/task").ok();
        let status = std::fs::File::open("/proc/self/status").ok();
        Ok(Engine {
            mem,
            task,
            status,
            tracer_seen: std::cell::Cell::new((None, 0)),
            membarrier,
            scratch,
            pid: rustix::process::getpid(),
        })
    }

    pub(super) fn info(&self) -> EngineInfo {
        EngineInfo {
            proc_mem: self.mem.is_some(),
            membarrier: self.membarrier,
        }
    }

    /// Writes `bytes` at `addr` in executable memory, by the engine's
    /// chosen means.
    pub(super) fn write(&self, addr: usize, bytes: &[u8]) -> Result<()> {
        COUNTERS.writes.fetch_add(1, Ordering::Relaxed);
        match &self.mem {
            Some(mem) => Self::write_proc_mem(mem, addr, bytes),
            None => Self::write_mprotect(addr, bytes),
        }
    }

    /// Writes through `/proc/self/mem` if the engine has it, else (or if
    /// that fails) through an `mprotect` window: every means there is,
    /// for putting old code back after a failure.
    pub(super) fn write_any(&self, addr: usize, bytes: &[u8]) -> Result<()> {
        match &self.mem {
            Some(mem) => Self::write_proc_mem(mem, addr, bytes)
                .or_else(|_| Self::write_mprotect(addr, bytes)),
            None => Self::write_mprotect(addr, bytes),
        }
    }

    pub(super) fn write_proc_mem(mem: &File, addr: usize, bytes: &[u8]) -> Result<()> {
        const OP: &str = "pwrite(/proc/self/mem)";
        if switches::injected(Hit::ProcMemWrite) {
            return Err(Error::os(OP, addr, Errno::PERM));
        }
        // The kernel writes the code; no Rust reference to it is used.
        match rustix::io::pwrite(mem, bytes, addr as u64) {
            Ok(n) if n == bytes.len() => Ok(()),
            // A short write: the rest of the range is not writable.
            Ok(_) => Err(Error::os(OP, addr, Errno::IO)),
            Err(e) => Err(Error::os(OP, addr, e)),
        }
    }

    pub(super) fn write_mprotect(addr: usize, bytes: &[u8]) -> Result<()> {
        let page = page_size();
        let start = addr & !(page - 1);
        let end = (addr + bytes.len()).div_ceil(page) * page;
        // SAFETY: the range is the pages holding `addr..addr+len`, which are
        // mapped text (the caller validated the slot). The RWX window is
        // closed again below before this function returns.
        unsafe {
            protect(start, end - start, RWX).map_err(|e| Error::os("mprotect(RWX)", addr, e))?;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len());
            protect(start, end - start, RX).map_err(|e| Error::os("mprotect(RX)", addr, e))
        }
    }

    /// Makes every core running one of our threads serialise.
    pub(super) fn sync(&self) -> Result<()> {
        COUNTERS.syncs.fetch_add(1, Ordering::Relaxed);
        if self.membarrier {
            self.sync_membarrier()
        } else {
            self.sync_shootdown()
        }
    }

    /// [`Engine::sync`], falling back to a shootdown if `membarrier` fails.
    pub(super) fn sync_any(&self) -> Result<()> {
        self.sync().or_else(|_| self.sync_shootdown())
    }

    pub(super) fn sync_membarrier(&self) -> Result<()> {
        const OP: &str = "membarrier(SYNC_CORE)";
        if switches::injected(Hit::Membarrier) {
            return Err(Error::os(OP, 0, Errno::PERM));
        }
        // Registered in `open`.
        rustix::thread::membarrier(MembarrierCommand::PrivateExpeditedSyncCore)
            .map_err(|e| Error::os(OP, 0, e))
    }

    pub(super) fn sync_shootdown(&self) -> Result<()> {
        let len = page_size();
        let failed = |e| Error::os("mprotect(scratch)", self.scratch, e);
        // SAFETY: `scratch` is our own anonymous page; changing its
        // protection forces a TLB shootdown IPI to every core running this
        // mm, and the return from that interrupt serialises the core.
        unsafe {
            protect(
                self.scratch,
                len,
                MprotectFlags::READ | MprotectFlags::WRITE,
            )
            .map_err(failed)?;
            std::ptr::write_volatile(self.scratch as *mut u8, 1);
            protect(self.scratch, len, MprotectFlags::READ).map_err(failed)
        }
    }

    /// [`Engine::tracer`], read again at most every [`TRACER_FRESH`]:
    /// formatting `/proc/self/status` costs the kernel 5 to 15 µs here, more
    /// than the rest of a one-site update, and a debugger attaches once,
    /// not between two updates of a loop. A debugger that attached less than
    /// [`TRACER_FRESH`] before an update can see one of its breakpoints, as
    /// one that attaches while a batch is in flight can (docs/DESIGN.md,
    /// "Under a debugger").
    pub(super) fn tracer_cached(&self) -> i32 {
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
        let Ok(n) = rustix::io::pread(f, &mut buf, 0) else {
            return 0;
        };
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
}

/// Whether `pwrite` through `mem` can change a read-only executable page.
/// Kernels can forbid it (`proc_mem.force_override=never`, Linux 6.12+, or
/// sandboxes); the engine then uses its `mprotect` fallback.
fn proc_mem_writes_code(mem: &File) -> bool {
    let Ok(probe) = map_page(ProtFlags::READ | ProtFlags::EXEC) else {
        return false;
    };
    // Writes one byte of our own probe page, which nothing executes.
    let wrote = rustix::io::pwrite(mem, &[INT3], probe as u64);
    // SAFETY: reading the page we just mapped.
    let ok = wrote == Ok(1) && unsafe { std::ptr::read_volatile(probe as *const u8) } == INT3;
    // SAFETY: our own mapping, which nothing else uses.
    let _ = unsafe { rustix::mm::munmap(probe as *mut _, page_size()) };
    ok
}

/// A fresh anonymous private page with protection `prot`, wherever the
/// kernel puts it.
fn map_page(prot: ProtFlags) -> rustix::io::Result<usize> {
    // SAFETY: an anonymous mapping at a kernel-chosen address.
    let p = unsafe {
        rustix::mm::mmap_anonymous(std::ptr::null_mut(), page_size(), prot, MapFlags::PRIVATE)
    }?;
    Ok(p as usize)
}

pub(super) fn with_engine<T>(f: impl FnOnce(&Engine) -> Result<T>) -> Result<T> {
    let mut g = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let pid = rustix::process::getpid();
    if g.as_ref().is_none_or(|e| e.pid != pid) {
        *g = None;
        *g = Some(Engine::open()?);
    }
    f(g.as_ref().expect("engine initialised above"))
}

/// [`engine_info`] of this copy's engine (the caller holds the gate).
pub(super) fn engine_info_here() -> Result<EngineInfo> {
    with_engine(|e| Ok(e.info()))
}

/// [`release`] by this copy's engine.
///
/// # Safety
/// As for [`release`].
pub(super) unsafe fn release_here(start: usize, end: usize) -> Result<(usize, usize)> {
    let (lo, hi) = whole_pages(start, end);
    if hi <= lo {
        return Ok((lo, lo));
    }
    // SAFETY: whole pages owned by the caller, who promises not to use them.
    unsafe { protect(lo, hi - lo, MprotectFlags::empty()) }
        .map_err(|e| Error::os("mprotect(PROT_NONE)", lo, e))?;
    valgrind::discard_translations(lo, hi - lo);
    Ok((lo, hi))
}

/// [`write_fresh`] by this copy's engine.
///
/// # Safety
/// As for [`write_fresh`].
pub(super) unsafe fn write_fresh_here(addr: usize, bytes: &[u8]) -> Result<bool> {
    with_engine(|e| match &e.mem {
        Some(mem) => {
            Engine::write_proc_mem(mem, addr, bytes)?;
            valgrind::discard_translations(addr, bytes.len());
            Ok(true)
        }
        None => Ok(false),
    })
}

/// [`forget_slots`] by this copy's engine.
pub(super) fn forget_slots_here(addrs: &[usize]) -> Result<()> {
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

/// [`trap_table_len`] of this copy's engine.
pub(super) fn trap_table_len_here() -> usize {
    with_engine(|_| Ok(trap::known_len())).unwrap_or(0)
}
