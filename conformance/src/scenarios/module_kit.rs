//! Generated modules for the scenarios: built over an implementation's
//! keys ([`make`]), registered and checked against the design
//! ([`load`]), unregistered ([`unload`]).

use static_call_core::{ModuleId, ModuleSpec, RawKey, Stats};

use crate::Adapter;
use crate::decode::Insn;
use crate::genmod::{GenModule, GenSpec, Where, generate};
use crate::scenarios::{expect_at, lib};

pub(crate) fn program_code<A: Adapter>() -> usize {
    A::call_add as *const () as usize
}

/// The code of the thunk the implementation's sites call, for a design
/// whose sites call one: its description's bytes ([`Design::thunk`]),
/// which intake compares with the registry's own thunk when a module's
/// site calls the copy.
///
/// [`Design::thunk`]: static_call_core::Design::thunk
pub(crate) fn thunk_bytes<A: Adapter>() -> Option<Vec<u8>> {
    let d = A::design();
    (A::registry().thunk().is_some() && !d.thunk.is_empty()).then(|| d.thunk.to_vec())
}

/// Generates a module over `keys`.
pub(crate) fn make<A: Adapter>(
    keys: &[&'static RawKey],
    sites: usize,
    init_sites: usize,
    far: bool,
    corrupt: Option<usize>,
) -> Result<GenModule, String> {
    let near = program_code::<A>();
    generate(&GenSpec {
        keys: keys.to_vec(),
        sites_per_key: sites,
        init_sites_per_key: init_sites,
        placement: if far {
            Where::FarFrom(near)
        } else {
            Where::Near(near)
        },
        thunk: thunk_bytes::<A>(),
        corrupt_site: corrupt,
    })
}

pub(crate) fn spec<'a>(m: &GenModule, name: &'a str) -> ModuleSpec<'a> {
    ModuleSpec {
        name,
        sections: m.sections,
    }
}

/// Loads a generated module without an init function.
pub(crate) fn load<A: Adapter>(m: &GenModule, name: &str) -> Result<ModuleId, String> {
    // SAFETY: the module's memory outlives its registration in every
    // scenario (unload comes before drop).
    lib(
        unsafe { A::load_module(spec(m, name), None) },
        "load_module",
    )
}

pub(crate) fn unload<A: Adapter>(id: ModuleId) -> Result<(), String> {
    // SAFETY: the module is still mapped.
    lib(unsafe { A::registry().unload_module(id) }, "unload_module")
}

/// Checks every (non-init, or all if `with_init`) function of key `k`
/// returns `want` for 2, and its site holds the design's form for `target`.
pub(crate) fn check_module<A: Adapter>(
    m: &GenModule,
    k: usize,
    target: usize,
    want: u64,
    with_init: bool,
) -> Result<(), String> {
    let patched = A::caps().patches_sites && A::registry().is_initialized();
    for f in m
        .funcs
        .iter()
        .filter(|f| f.key == k && (with_init || !f.init))
    {
        // SAFETY: mapped; init functions only when the caller says so.
        let r = unsafe { f.call(2) };
        ensure!(
            r == want,
            "module function at {:#x} gave {r}, expected {want}",
            f.addr
        );
        let form = if patched && static_call_core::insn::in_range(f.site, target) {
            Insn::Call(target)
        } else {
            crate::scenarios::home_insn::<A>(m.homes[k])
        };
        expect_at(f.site, &form, "module site")?;
    }
    Ok(())
}

/// "N sites: d direct, f fallback, s via stub, i indirect".
pub(crate) fn describe_sites(ms: &static_call_core::ModuleStats) -> String {
    format!(
        "{} sites: {} direct, {} fallback, {} via stub, {} indirect",
        ms.sites, ms.direct, ms.fallback, ms.via_trampoline, ms.indirect
    )
}

pub(crate) fn baseline<A: Adapter>() -> Stats {
    A::stats()
}
