//! The proof of a key's one site (and trampoline), decoded before anything
//! is timed.

use static_call_core::{SiteShape, StaticCall};

use super::{AddFn, ThreadImpl};

/// Proves that `key`'s one site (found in `site_fn`) and its trampoline
/// hold what an update to `target` must have written for this
/// implementation, decoding the bytes with the workspace's decoder.
///
/// # Errors
/// What was found, where and what was expected.
pub fn prove_key(
    imp: &ThreadImpl,
    key: &'static StaticCall<AddFn>,
    target: AddFn,
) -> Result<(), String> {
    let sites = key.sites();
    let [site] = &sites[..] else {
        return Err(format!(
            "{}: the key has {} sites, expected 1",
            imp.name,
            sites.len()
        ));
    };
    let branch = |addr: usize| -> Result<(iced_x86::Mnemonic, u64), String> {
        // SAFETY: a registered site or trampoline: live code of this program.
        let bytes = unsafe { crate::prove::read_code(addr, 5) };
        let insn = crate::prove::decode(&bytes, addr);
        let i = insn
            .first()
            .ok_or_else(|| format!("{}: nothing decoded at {addr:#x}", imp.name))?;
        Ok((i.mnemonic(), i.near_branch_target()))
    };
    let t = target as *const () as u64;
    let (m, to) = branch(site.addr)?;
    let design = imp.registry.design();
    let ok = if design.patches_sites {
        m == iced_x86::Mnemonic::Call && to == t
    } else if design.trampoline {
        let tr = key.raw().trampoline().ok_or("no trampoline")?;
        let (tm, tto) = branch(tr)?;
        m == iced_x86::Mnemonic::Call
            && to == tr as u64
            && tm == iced_x86::Mnemonic::Jmp
            && tto == t
    } else {
        // Sites call through the key: it holds the target, and the site
        // is the design's (a thunk's call, or the load and `call rax`).
        let holds = key.query().map(|f| f as *const () as u64) == Some(t);
        let site_ok = match design.site {
            SiteShape::CallThunk => m == iced_x86::Mnemonic::Call && Some(to as usize) == imp.thunk,
            _ => {
                // SAFETY: a registered site: live code of this program.
                let (start, bytes) = unsafe { crate::prove::site_code(design, site.addr) };
                design.decode_site(site.addr, &bytes[site.addr - start..], false)
                    == Some(static_call_core::insn::Form::CallVia(key.raw().addr()))
            }
        };
        holds && site_ok
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{}: site {:#x} holds {m:?} {to:#x}, not what an update to {t:#x} writes here",
            imp.name, site.addr
        ))
    }
}
