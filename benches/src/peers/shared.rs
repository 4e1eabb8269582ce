//! The plt-call and got-call peers: a function of `libsc_peer.so` called
//! through the PLT and through the GOT, and where the dynamic linker
//! resolves it.

// SAFETY: `libsc_peer.so` (peer/sc_peer.c, linked by build.rs) defines
// `uint64_t sc_peer_add1(uint64_t x) { return x + 1; }`.
unsafe extern "C" {
    /// `x + 1`, in the shared object.
    pub fn sc_peer_add1(x: u64) -> u64;
}

/// `call sc_peer_add1@PLT`.
pub mod plt_call {
    /// The call.
    pub mod one {
        static_call_core::__static_call_fn! {
            { "call {f}@PLT", f = sym crate::peers::sc_peer_add1, } (u64) -> u64
        }
    }
    /// `n` calls through the PLT; returns `n`.
    #[inline(never)]
    pub fn hot1(n: u64) -> u64 {
        let mut x = ::std::hint::black_box(0u64);
        for _ in 0..n {
            x = one::__call(x);
        }
        x
    }
}

/// `call qword ptr [rip + sc_peer_add1@GOTPCREL]`.
pub mod got_call {
    /// The call.
    pub mod one {
        static_call_core::__static_call_fn! {
            { "call qword ptr [rip + {f}@GOTPCREL]", f = sym crate::peers::sc_peer_add1, } (u64) -> u64
        }
    }
    /// `n` calls through the GOT; returns `n`.
    #[inline(never)]
    pub fn hot1(n: u64) -> u64 {
        let mut x = ::std::hint::black_box(0u64);
        for _ in 0..n {
            x = one::__call(x);
        }
        x
    }
}

/// Where the dynamic linker says `addr` lies: the object's base and file.
pub(super) fn object_of(addr: usize) -> Option<(usize, String)> {
    // SAFETY: a plain struct of pointers and integers; all-zero is valid.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables and writes `info`.
    if unsafe { libc::dladdr(addr as *const _, &mut info) } == 0 {
        return None;
    }
    let name = if info.dli_fname.is_null() {
        String::new()
    } else {
        // SAFETY: a NUL-terminated string owned by the loader.
        unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }
            .to_string_lossy()
            .into_owned()
    };
    Some((info.dli_fbase as usize, name))
}

/// The shared object's function, as the dynamic linker resolves it, and
/// the object's base.
///
/// # Errors
/// The symbol not found, or not in `libsc_peer.so`.
pub fn shared_function() -> Result<(usize, usize), String> {
    // SAFETY: a lookup by a NUL-terminated name in every loaded object.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"sc_peer_add1".as_ptr()) } as usize;
    if f == 0 {
        return Err("plt/got peers: dlsym(sc_peer_add1) found nothing".into());
    }
    match object_of(f) {
        Some((base, name)) if name.ends_with("libsc_peer.so") => Ok((f, base)),
        other => Err(format!(
            "plt/got peers: sc_peer_add1 at {f:#x} lies in {other:?}, not libsc_peer.so"
        )),
    }
}
