//! Fresh executable mappings: written while `RW`, then made `RX`.

use crate::error::{Error, Result};

use rustix::io::Errno;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

use super::engine::protect;
use super::{page_size, valgrind};

/// Where to put a new mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Wherever the kernel likes.
    Anywhere,
    /// Exactly at this page-aligned address, or fail (`MAP_FIXED_NOREPLACE`).
    At(usize),
    /// Within `±2 GiB - len` of this address, so `rel32` calls and jumps
    /// between the two reach.
    Near(usize),
}

/// An executable mapping of code that this process made. Unmapped on drop.
#[derive(Debug)]
pub struct ExecMemory {
    addr: usize,
    len: usize,
}

impl ExecMemory {
    /// Maps `code` (padded to whole pages with `int3`) at `placement`,
    /// readable and executable, never writable and executable at once.
    ///
    /// # Errors
    /// [`Error::Syscall`] when no mapping could be made, or
    /// [`Error::OutOfRange`] when no free place near the address was found.
    pub fn new(placement: Placement, code: &[u8]) -> Result<ExecMemory> {
        let page = page_size();
        let len = code.len().max(1).div_ceil(page) * page;
        let addr = match placement {
            Placement::Anywhere => map(0, len, false)?,
            Placement::At(a) => map(a, len, true)?,
            Placement::Near(near) => map_near(near, len)?,
        };
        let m = ExecMemory { addr, len };
        m.seal(code)?;
        Ok(m)
    }

    /// Maps up to `len` bytes of code within `rel32` reach of `near`,
    /// built by `build` from the address the code will have (so that it
    /// can encode `rel32` calls and `rip`-relative loads): generated code,
    /// such as a JIT's call sites. Readable and executable, never writable
    /// and executable at once.
    ///
    /// # Errors
    /// [`Error::NoRoomNear`] when `len` bytes cannot lie within `rel32`
    /// reach of `near` at all (more than 2 GiB less two pages; `build` is
    /// not called), [`Error::OutOfRange`] when no free place near `near`
    /// was found or `build` returned more than `len` bytes,
    /// [`Error::Syscall`] when no mapping could be made. Nothing stays
    /// mapped on error.
    pub fn near_with(
        near: usize,
        len: usize,
        build: impl FnOnce(usize) -> Vec<u8>,
    ) -> Result<ExecMemory> {
        let page = page_size();
        let len = match len.max(1).div_ceil(page).checked_mul(page) {
            Some(pages) if pages <= max_near_len() => pages,
            _ => return Err(Error::NoRoomNear { near, len }),
        };
        let addr = map_near(near, len).map_err(|e| match e {
            Error::NoRoomNear { .. } => Error::OutOfRange { from: near, to: 0 },
            e => e,
        })?;
        let m = ExecMemory { addr, len };
        let code = build(addr);
        if code.len() > len {
            return Err(Error::OutOfRange {
                from: addr,
                to: addr + code.len(),
            });
        }
        m.seal(&code)?;
        Ok(m)
    }

    /// Fills the fresh (still writable, never executed) mapping with `code`
    /// padded with `int3`, then makes it read-only code.
    fn seal(&self, code: &[u8]) -> Result<()> {
        debug_assert!(code.len() <= self.len);
        // SAFETY: `addr..addr+len` is a fresh private RW mapping we own
        // that nothing executes yet.
        unsafe {
            std::ptr::write_bytes(self.addr as *mut u8, crate::insn::INT3, self.len);
            std::ptr::copy_nonoverlapping(code.as_ptr(), self.addr as *mut u8, code.len());
        }
        // SAFETY: our own mapping; from now on it is read-only code.
        unsafe {
            protect(
                self.addr,
                self.len,
                MprotectFlags::READ | MprotectFlags::EXEC,
            )
        }
        .map_err(|e| Error::os("mprotect(RX)", self.addr, e))?;
        valgrind::discard_translations(self.addr, self.len);
        Ok(())
    }

    /// First byte of the mapping.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// Length in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a mapping has at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Makes the mapping inaccessible but keeps the address range reserved,
    /// so that any later access faults. Used to prove that nothing touches
    /// released code.
    ///
    /// # Errors
    /// [`Error::Syscall`] if `mprotect` fails.
    ///
    /// # Safety
    /// No thread may execute or read this code afterwards.
    pub unsafe fn make_inaccessible(&self) -> Result<()> {
        // SAFETY: our own mapping; the caller promises nobody uses it.
        unsafe { protect(self.addr, self.len, MprotectFlags::empty()) }
            .map_err(|e| Error::os("mprotect(PROT_NONE)", self.addr, e))?;
        valgrind::discard_translations(self.addr, self.len);
        Ok(())
    }
}

impl Drop for ExecMemory {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once. Dropping it while code in
        // it still runs is the owner's bug, as with any unmapped code.
        let _ = unsafe { rustix::mm::munmap(self.addr as *mut _, self.len) };
        valgrind::discard_translations(self.addr, self.len);
    }
}

fn map(hint: usize, len: usize, exact: bool) -> Result<usize> {
    let flags = if exact {
        MapFlags::PRIVATE | MapFlags::FIXED_NOREPLACE
    } else {
        MapFlags::PRIVATE
    };
    // SAFETY: anonymous mapping; MAP_FIXED_NOREPLACE never replaces an
    // existing mapping.
    let p = unsafe {
        rustix::mm::mmap_anonymous(
            hint as *mut _,
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            flags,
        )
    }
    .map_err(|e| Error::os("mmap", hint, e))?;
    if exact && p as usize != hint {
        // Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and treat it as a hint.
        // SAFETY: the mapping we just made.
        let _ = unsafe { rustix::mm::munmap(p, len) };
        return Err(Error::os("mmap(MAP_FIXED_NOREPLACE)", hint, Errno::EXIST));
    }
    Ok(p as usize)
}

/// Maps `len` bytes within `rel32` reach of `near`, in the free gap
/// closest to it (from `/proc/self/maps`; where that cannot be read, at
/// page-aligned candidates at growing distances). A gap can be taken by
/// another thread between the read and the `mmap`: then it looks again.
fn map_near(near: usize, len: usize) -> Result<usize> {
    let page = page_size();
    if len > max_near_len() {
        return Err(Error::NoRoomNear { near, len });
    }
    let reach = (1usize << 31) - 2 * page - len;
    let lo = near.saturating_sub(reach).max(0x10000).div_ceil(page) * page;
    let hi = near.saturating_add(reach).min((1usize << 47) - len) & !(page - 1);
    for _ in 0..8 {
        let Ok(maps) = crate::maps::mappings() else {
            return map_near_blind(near, len);
        };
        let best = crate::maps::free_near(&maps, near, len, (lo, hi + len), page);
        let Some(cand) = best else { break };
        if let Ok(a) = map(cand, len, true) {
            return Ok(a);
        }
    }
    map_near_blind(near, len)
}

/// The most bytes [`map_near`] can place within `rel32` reach of an
/// address: 2 GiB less two pages (the reach it computes stays positive).
fn max_near_len() -> usize {
    (1usize << 31) - 2 * page_size()
}

/// [`map_near`] without a map of the address space: page-aligned
/// candidates at growing distances below and above.
fn map_near_blind(near: usize, len: usize) -> Result<usize> {
    let page = page_size();
    let base = near & !(page - 1);
    let mut step = 1usize << 20;
    while step < (1usize << 31) - len - page {
        for cand in [base.checked_sub(step), base.checked_add(step)]
            .into_iter()
            .flatten()
        {
            if cand < 0x10000 || cand >= (1usize << 47) - len {
                continue;
            }
            if let Ok(a) = map(cand, len, true) {
                return Ok(a);
            }
        }
        step = (step + step / 2) & !(page - 1);
    }
    Err(Error::NoRoomNear { near, len })
}
