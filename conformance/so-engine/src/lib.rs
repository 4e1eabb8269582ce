//! A plugin with a key of its own: it links its own copy of the engine
//! (its update path is compiled in). The conformance scenario
//! `engine_copies` opens it and checks that the program's copy of the
//! engine and this one find each other; it does not update the plugin's
//! key (two engines in one process are not shared yet: see
//! `docs/DESIGN.md`, "One engine per process").

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
/// 0 on success. Not called by the suite yet (it would start a second
/// engine in the process).
#[unsafe(no_mangle)]
pub extern "C" fn static_call_test_engine_update(which: u64) -> i32 {
    let f = if which % 2 == 1 { plus2 } else { plus1 };
    match OWN.update(f) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}
