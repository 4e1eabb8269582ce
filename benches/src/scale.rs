//! Generated modules for the scaling scenarios (iced-x86 code placed
//! within `rel32` reach of the program, so inline-patch sites call their
//! targets directly), and the conformance suite's test shared object.

use static_call_conformance::genmod::{GenModule, GenSpec, Where, generate};
use static_call_core::{ModuleId, ModuleSpec, RawKey};

use crate::subjects::Implementation;

/// The conformance adapters (only their exported `ADD` keys are used
/// here: the test shared object binds to them).
pub mod adapters {
    macro_rules! adapters {
        ($(($m:ident, $krate:path, $name:literal))*) => {
            $(static_call_conformance::adapter!(pub mod $m = $krate, $name);)*
        };
    }
    static_call_implementations::implementations!(adapters);
}

/// The code of the thunk the implementation's sites call, from its
/// design's description (which the proofs check the registry's thunk
/// holds).
fn thunk_bytes(imp: &Implementation) -> Option<Vec<u8>> {
    let d = imp.registry.design();
    (imp.registry.thunk().is_some() && !d.thunk.is_empty()).then(|| d.thunk.to_vec())
}

/// Generates a module with `sites` sites on each of `keys`, near the
/// program's code.
///
/// # Errors
/// iced-x86 or `mmap` failed.
pub fn make(
    imp: &Implementation,
    keys: &[&'static RawKey],
    sites: usize,
) -> Result<GenModule, String> {
    generate(&GenSpec {
        keys: keys.to_vec(),
        sites_per_key: sites,
        init_sites_per_key: 0,
        placement: Where::Near(imp.call_lone as *const () as usize),
        thunk: thunk_bytes(imp),
        corrupt_site: None,
    })
}

/// Loads a generated module.
///
/// # Errors
/// As `load_module`.
pub fn load(imp: &Implementation, m: &GenModule, name: &str) -> Result<ModuleId, String> {
    // SAFETY: the module's code and table stay mapped until it is
    // unloaded (the caller keeps `m` alive); its sites call their homes.
    unsafe {
        imp.registry.load_module(
            ModuleSpec {
                name,
                sections: m.sections,
            },
            None,
        )
    }
    .map_err(|e| format!("{name}: {e}"))
}

/// Unloads a module.
///
/// # Errors
/// As `unload_module`.
pub fn unload(imp: &Implementation, id: ModuleId) -> Result<(), String> {
    // SAFETY: nothing calls the module's code while it is unloaded (the
    // benchmarks stop their callers first).
    unsafe { imp.registry.unload_module(id) }.map_err(|e| e.to_string())
}

/// Calls every `step`-th function of a loaded module and checks it reaches
/// the key's current target.
///
/// # Errors
/// A wrong result.
pub fn check_calls(
    m: &GenModule,
    target: extern "C" fn(u64) -> u64,
    step: usize,
) -> Result<(), String> {
    for f in m.funcs.iter().step_by(step.max(1)) {
        // SAFETY: the module is loaded and mapped; it has no init region.
        let got = unsafe { f.call(40) };
        if got != target(40) {
            return Err(format!(
                "generated site {:#x}: got {got}, expected {}",
                f.site,
                target(40)
            ));
        }
    }
    Ok(())
}

/// Builds the test shared object (a nested cargo build) and returns its
/// path, making sure this binary exports the keys it binds to.
///
/// # Errors
/// The build failed (for example: no cargo on this machine).
pub fn shared_object() -> Result<std::path::PathBuf, String> {
    use static_call_conformance::Adapter;
    // Keep the exported keys linked in.
    macro_rules! keys {
        ($(($m:ident, $krate:path, $name:literal))*) => {
            [$(adapters::$m::Impl::add().raw().addr()),*]
        };
    }
    std::hint::black_box(static_call_implementations::implementations!(keys));
    static_call_conformance::scenarios::build_shared_object()
}
