//! Finding every copy of the engine in the process: the first building
//! block of "one engine per process" (`docs/DESIGN.md`, "One engine per
//! process"; the sharing itself is not built yet).
//!
//! Each copy of this crate that a process links (the program, and every
//! `cdylib` that links the crates itself) emits an ELF note in a `PT_NOTE`
//! segment: name `static-call`, type `0x53430001`, and as descriptor the
//! link-time offset from the descriptor to that copy's `ANCHOR`. A
//! PC-relative difference inside one object needs no dynamic relocation
//! and no exported symbol, so the copies find each other with
//! `dl_iterate_phdr` even when the executable exports nothing and a
//! plugin was opened `RTLD_LOCAL`.

use std::sync::atomic::AtomicPtr;

/// This copy's anchor. The anchor of the first copy in
/// `dl_iterate_phdr` order (the program's, when it links the crates) is
/// where the process's engine is to be published.
pub(crate) static ANCHOR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

/// The note's type: `SC` and a layout version.
const NOTE_TYPE: u32 = 0x5343_0001;
/// The note's name, with its terminating NUL (12 bytes: no padding).
const NOTE_NAME: &[u8; 12] = b"static-call\0";

core::arch::global_asm!(
    ".pushsection .note.static_call.engine,\"a\",@note",
    ".balign 4",
    ".long 12",
    ".long 8",
    ".long {ty}",
    ".asciz \"static-call\"",
    ".quad {anchor} - .",
    ".popsection",
    ty = const NOTE_TYPE,
    anchor = sym ANCHOR,
);

/// The anchors of every copy of the engine the process has loaded, in
/// `dl_iterate_phdr` order (the program first, then shared objects in load
/// order).
pub fn engine_copies() -> Vec<usize> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the vector passed below; `info` is valid for
        // the call (the loader's contract).
        let (out, info) = unsafe { (&mut *data.cast::<Vec<usize>>(), &*info) };
        for i in 0..usize::from(info.dlpi_phnum) {
            // SAFETY: `dlpi_phdr` holds `dlpi_phnum` program headers.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type != libc::PT_NOTE {
                continue;
            }
            let start = (info.dlpi_addr as usize).wrapping_add(ph.p_vaddr as usize);
            let end = start + ph.p_memsz as usize;
            let mut at = start;
            while at + 12 <= end {
                // SAFETY: inside the loaded, readable note segment.
                let word =
                    |o: usize| unsafe { std::ptr::read_unaligned((at + o) as *const u32) as usize };
                let (namesz, descsz, ty) = (word(0), word(4), word(8));
                let name = at + 12;
                let desc = name + namesz.div_ceil(4) * 4;
                let next = desc + descsz.div_ceil(4) * 4;
                if next > end {
                    break;
                }
                let ours = ty as u32 == NOTE_TYPE && namesz == NOTE_NAME.len() && descsz == 8;
                // SAFETY: `name..name + 12` lies inside the note: `next`,
                // past it, is within the segment.
                if ours && unsafe { std::slice::from_raw_parts(name as *const u8, 12) } == NOTE_NAME
                {
                    // SAFETY: the 8-byte descriptor lies inside the note.
                    let off = unsafe { std::ptr::read_unaligned(desc as *const i64) };
                    out.push((desc as i64).wrapping_add(off) as usize);
                }
                at = next;
            }
        }
        0
    }
    let mut out: Vec<usize> = Vec::new();
    // SAFETY: the callback only reads the headers it is given and pushes
    // to `out`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut out as *mut Vec<usize>).cast()) };
    out
}

/// This copy's anchor's address.
pub fn own_anchor() -> usize {
    &ANCHOR as *const AtomicPtr<u8> as usize
}

/// `Err` with the path of the object that holds the first copy of the
/// engine when that copy is not this one. Until engines are shared, only
/// the first copy in `dl_iterate_phdr` order (the program's, when it
/// links the crates) may run an engine: a later copy (a plugin with keys
/// of its own) refuses to, rather than install a second `SIGTRAP` handler
/// over the first one's.
///
/// Once this copy was found first it stays first (objects loaded later
/// come later in the order), so the answer is kept: a forked child does
/// not walk the loader's list again.
pub(crate) fn check_first() -> Result<(), crate::Error> {
    static FIRST: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if FIRST.load(std::sync::atomic::Ordering::Acquire) {
        return Ok(());
    }
    let copies = engine_copies();
    match copies.first() {
        Some(&first) if first != own_anchor() => {
            // SAFETY: dladdr only reads the loader's tables; `info` is
            // written by it.
            let object = unsafe {
                let mut info: libc::Dl_info = std::mem::zeroed();
                if libc::dladdr(first as *const libc::c_void, &mut info) != 0
                    && !info.dli_fname.is_null()
                {
                    std::ffi::CStr::from_ptr(info.dli_fname)
                        .to_string_lossy()
                        .into_owned()
                } else {
                    format!("anchor {first:#x}")
                }
            };
            Err(crate::Error::EngineElsewhere { object })
        }
        _ => {
            FIRST.store(true, std::sync::atomic::Ordering::Release);
            Ok(())
        }
    }
}
