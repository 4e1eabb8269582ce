//! Finding every copy of the engine in the process, the meeting point of
//! "one engine per process" (`docs/DESIGN.md`, "One engine per process";
//! `text/shared.rs` publishes and uses the engine's table at the first
//! copy's anchor).
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
/// where the process's engine table is published (`text/shared.rs`).
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

/// One copy of the engine the process has loaded: its anchor, and the
/// name the loader knows its object by (empty for the program itself).
#[derive(Debug, Clone)]
pub(crate) struct Copy {
    /// The copy's anchor.
    pub anchor: usize,
    /// `dlpi_name` of its object: the path it was opened by, or empty for
    /// the executable.
    pub name: std::ffi::CString,
}

/// Every copy, in `dl_iterate_phdr` order (the program first, then shared
/// objects in load order).
pub(crate) fn copies() -> Vec<Copy> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the vector passed below; `info` is valid for
        // the call (the loader's contract).
        let (out, info) = unsafe { (&mut *data.cast::<Vec<Copy>>(), &*info) };
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
                    let object = if info.dlpi_name.is_null() {
                        std::ffi::CString::default()
                    } else {
                        // SAFETY: the loader's NUL-terminated name of the
                        // object, valid for the call.
                        unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }.to_owned()
                    };
                    out.push(Copy {
                        anchor: (desc as i64).wrapping_add(off) as usize,
                        name: object,
                    });
                }
                at = next;
            }
        }
        0
    }
    let mut out: Vec<Copy> = Vec::new();
    // Raw libc: neither rustix nor libloading lists the loaded objects.
    // SAFETY: the callback only reads the headers it is given and pushes
    // to `out`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut out as *mut Vec<Copy>).cast()) };
    out
}

/// The anchors of every copy of the engine the process has loaded, in
/// `dl_iterate_phdr` order (the program first, then shared objects in load
/// order).
pub fn engine_copies() -> Vec<usize> {
    copies().into_iter().map(|c| c.anchor).collect()
}

/// This copy's anchor's address.
pub fn own_anchor() -> usize {
    &ANCHOR as *const AtomicPtr<u8> as usize
}
