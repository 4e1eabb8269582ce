//! The engine of this copy: how it writes code and synchronises cores,
//! chosen once on first use (`/proc/self/mem` or an `mprotect` window;
//! `membarrier` or an `mprotect` shootdown), and the operations other
//! copies reach through the engine table (`text/shared.rs`).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use super::counters::COUNTERS;
use super::switches::{self, Hit};
use super::{EngineInfo, park, trap, valgrind, whole_pages};
use crate::error::{Error, Result};
use crate::insn::INT3;

pub(super) struct Engine {
    pub(super) mem: Option<File>,
    /// `/proc/self/task`, to list the other threads for a parking round.
    pub(super) task: Option<File>,
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

pub(super) static ENGINE: Mutex<Option<Engine>> = Mutex::new(None);

/// How long a read of `TracerPid` stays fresh ([`Engine::tracer_cached`]).
const TRACER_FRESH: std::time::Duration = std::time::Duration::from_millis(10);

const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 5;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 6;

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
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
        if switches::injected(Hit::ProcMemWrite) {
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

    pub(super) fn write_mprotect(addr: usize, bytes: &[u8]) -> Result<()> {
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
        if switches::injected(Hit::Membarrier) {
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

    pub(super) fn sync_shootdown(&self) -> Result<()> {
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

pub(super) fn with_engine<T>(f: impl FnOnce(&Engine) -> Result<T>) -> Result<T> {
    let mut g = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
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
    if unsafe { libc::mprotect(lo as *mut _, hi - lo, libc::PROT_NONE) } != 0 {
        return Err(Error::last_os("mprotect(PROT_NONE)", lo));
    }
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
