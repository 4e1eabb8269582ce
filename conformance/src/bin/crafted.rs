//! A program whose site tables hold one deliberately bad entry per
//! implementation: the entry names a real key but points at a 5-byte NOP
//! instead of a call. `crafted IMPL` runs that implementation's `init()`,
//! which must refuse the table with an error naming the site, the key and
//! the bytes found, and must write nothing. Used by the conformance
//! scenario `corrupt_site`.

use static_call_conformance::decode::read_code;
use static_call_conformance::runner::{Outcome, print_outcome};
use static_call_conformance::targets::add2;
use static_call_core::{Error, Place, Registry, StaticCall};

macro_rules! crafted {
    ($(($m:ident, $krate:path, $name:literal))*) => {
        $(mod $m {
            use $krate as sc;
            sc::define_static_call!(pub static K: extern "C" fn(u64) -> u64 = static_call_conformance::targets::add1;);

            #[inline(never)]
            pub fn good(x: u64) -> u64 {
                sc::static_call!(K(x))
            }

            /// Returns the address of the crafted "site": a NOP that a
            /// table entry claims is a call of `K`.
            #[inline(never)]
            pub fn crafted_site() -> usize {
                let site: usize;
                // SAFETY: jumps over a 5-byte NOP and records a site-table
                // entry for it; touches nothing else.
                unsafe {
                    core::arch::asm!(
                        "lea {s}, [rip + 2f]",
                        "jmp 4f",
                        "2:",
                        ".byte 0x0f, 0x1f, 0x44, 0x00, 0x00",
                        sc::__site_entry!(),
                        "4:",
                        s = out(reg) site,
                        key = sym K,
                    );
                }
                site
            }

            pub fn registry() -> &'static static_call_core::Registry {
                &sc::__private::REGISTRY
            }

            pub fn init() -> static_call_core::Result<()> {
                sc::init()
            }
        })*

        fn main() {
            let which = std::env::args().nth(1).unwrap_or_default();
            let r = match which.as_str() {
                $($name => check(
                    $m::registry(),
                    &$m::K,
                    $m::init,
                    $m::crafted_site(),
                    $m::good,
                ),)*
                other => Err(format!("unknown implementation {other:?}")),
            };
            print_outcome(&r.unwrap_or_else(Outcome::Fail));
        }
    };
}

static_call_implementations::implementations!(crafted);

type AddFn = extern "C" fn(u64) -> u64;

fn check(
    registry: &'static Registry,
    key: &'static StaticCall<AddFn>,
    init: fn() -> static_call_core::Result<()>,
    site: usize,
    good: fn(u64) -> u64,
) -> Result<Outcome, String> {
    let places: Vec<usize> = registry
        .main_table()
        .iter()
        .map(|e| e.0)
        .chain(key.raw().trampoline())
        .collect();
    let snapshot = || -> Vec<Vec<u8>> {
        places
            .iter()
            // SAFETY: sites and trampolines are live code of this binary.
            .map(|&a| unsafe { read_code(a, 5) })
            .collect()
    };
    let before = snapshot();
    let r = init();
    let after = snapshot();
    if before != after {
        return Err("init() wrote code although it failed".into());
    }
    if registry.is_initialized() {
        return Err("init() failed but left the registry initialised".into());
    }
    let msg = match r {
        Err(
            ref e @ Error::UnexpectedBytes {
                place: Place::Site,
                addr,
                key: k,
                ref found,
                ..
            },
        ) if addr == site
            && k == key.raw().addr()
            && found.starts_with(&[0x0f, 0x1f, 0x44, 0x00, 0x00]) =>
        {
            e.to_string()
        }
        Err(e) => return Err(format!("wrong error: {e}")),
        Ok(()) => return Err("init() accepted a corrupt site".into()),
    };
    if good(2) != 3 {
        return Err("the good site is broken".into());
    }
    key.update(add2)
        .map_err(|e| format!("update after the failed init: {e}"))?;
    if good(2) != 4 {
        return Err("update after the failed init not seen".into());
    }
    Ok(Outcome::Pass(format!(
        "refused: {msg}; {} other places unchanged",
        places.len() - 1
    )))
}
