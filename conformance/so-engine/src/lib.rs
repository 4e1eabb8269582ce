//! A plugin with a key of its own: it links its own copy of the engine
//! (its update path is compiled in). The conformance scenario
//! `engine_copies` opens it and checks that the program's copy of the
//! engine and this one find each other; `engine_refused` checks that
//! updating the plugin's key is refused with a typed error while the
//! program's copy runs the engine (engines are not shared between copies
//! yet: `docs/DESIGN.md`, "One engine per process").

use static_call_inline_patch::{define_static_call, static_call};

extern "C" fn plus1(x: u64) -> u64 {
    x + 1
}

extern "C" fn plus2(x: u64) -> u64 {
    x + 2
}

define_static_call!(
    static OWN: extern "C" fn(u64) -> u64 = plus1;
);

/// This copy's engine anchor (where `dl_iterate_phdr` should find it).
#[unsafe(no_mangle)]
pub extern "C" fn static_call_test_engine_anchor() -> usize {
    static_call_core::text::rendezvous::own_anchor()
}

/// Calls the plugin's own key.
#[unsafe(no_mangle)]
pub extern "C" fn static_call_test_engine_call(x: u64) -> u64 {
    static_call!(OWN(x))
}

/// Points the plugin's own key at `plus2` (`which` odd) or `plus1`:
/// 0 on success, else 1 with the error's text in `msg` (up to `len`
/// bytes, NUL-terminated).
///
/// # Safety
/// `msg` is valid for `len` bytes of writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn static_call_test_engine_update(
    which: u64,
    msg: *mut u8,
    len: usize,
) -> i32 {
    let f = if which % 2 == 1 { plus2 } else { plus1 };
    match OWN.update(f) {
        Ok(()) => 0,
        Err(e) => {
            let t = e.to_string();
            let n = t.len().min(len.saturating_sub(1));
            // SAFETY: the caller's buffer holds `len` bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(t.as_ptr(), msg, n);
                *msg.add(n) = 0;
            }
            1
        }
    }
}
