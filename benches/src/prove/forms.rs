//! What an implementation's site must hold: the form its design expects
//! for a key, the thunk's description, where a site starts, its bytes, and
//! the check of one site against its key ([`check_site`]).

use super::*;

/// The form a site of `key` must hold in a design, and how the proof
/// names it: what [`Design::decode_site`] must return for it.
fn expected_form(
    registry: &Registry,
    key_name: &str,
    key: &RawKey,
) -> Result<(Form, String), String> {
    let design = registry.design();
    let target = key.target_addr();
    Ok(match design.site {
        // A design that patches its sites: `call target`, or the NOP for
        // none.
        _ if design.patches_sites => match target {
            Some(t) => (Form::Call(t), format!("call {}", name_of(t))),
            None => (Form::Nop, "5-byte NOP (target none)".into()),
        },
        SiteShape::CallTrampoline => {
            let tramp = key.trampoline().ok_or_else(|| {
                format!("{key_name}: a trampoline design's key without a trampoline")
            })?;
            (Form::Call(tramp), format!("call {}", name_of(tramp)))
        }
        SiteShape::CallThunk => {
            let thunk = registry
                .thunk()
                .ok_or_else(|| format!("{key_name}: a thunk design's registry without a thunk"))?;
            thunk_holds_its_description(design, thunk)?;
            (
                Form::Call(thunk),
                format!("mov rax, [{key_name}]; call {}", name_of(thunk)),
            )
        }
        SiteShape::LoadCallRax => (
            Form::CallVia(key.addr()),
            format!("mov rax, [{key_name}]; call rax (plain indirect call, no retpoline)"),
        ),
    })
}

/// The registry's thunk at `thunk` holds the code its design describes
/// ([`Design::thunk`]), which `sctool` and generated modules go by.
///
/// # Errors
/// The bytes found and those described.
pub fn thunk_holds_its_description(design: &Design, thunk: usize) -> Result<(), String> {
    // SAFETY: the registry's thunk, live code of this program, at least as
    // long as its description says.
    let got = unsafe { read_code(thunk, design.thunk.len()) };
    if design.thunk.is_empty() || got != design.thunk {
        return Err(format!(
            "{}: the thunk at {thunk:#x} ({}) holds {}, its description says {}",
            design.name,
            name_of(thunk),
            hex(&got),
            hex(design.thunk)
        ));
    }
    Ok(())
}

/// Where the bytes of a site of `design` start, from its label: 7 bytes
/// before it for a [`SiteShape::CallThunk`] site (its load of the key),
/// else at it.
pub fn site_start(design: &Design, site: usize) -> usize {
    match design.site {
        SiteShape::CallThunk => site - 7,
        _ => site,
    }
}

/// The code of a site of `design` in the main program: where it starts
/// ([`site_start`]) and its bytes, up to the end of its slot
/// ([`Design::site_len`]).
///
/// # Safety
/// `site` is a live site of a key of `design` in this program.
pub unsafe fn site_code(design: &Design, site: usize) -> (usize, Vec<u8>) {
    let start = site_start(design, site);
    let len = site - start + design.site_len(false);
    // SAFETY: the site's bytes, live code as the caller promises.
    (start, unsafe { read_code(start, len) })
}

/// Checks one site of `key` against its registry's design (decoded with
/// [`Design::decode_site`]) and returns what it saw (the generated
/// scenarios' sites too: [`crate::gencode`]).
///
/// # Errors
/// The form found, where and what was expected.
///
/// # Safety
/// `site` is a live call site of `key` in this program.
pub unsafe fn check_site(
    subject: &str,
    key_name: &str,
    phase: &str,
    registry: &Registry,
    key: &RawKey,
    site: usize,
) -> Result<Vec<SiteDump>, String> {
    let design = registry.design();
    // SAFETY: a live site of this program (and, for a thunk design, its
    // load of the key before it).
    let (start, bytes) = unsafe { site_code(design, site) };
    let insns = decode(&bytes, start);
    let shown = || insns.iter().map(format_insn).collect::<Vec<_>>().join("; ");
    let target = key.target_addr();
    let (want, form) = expected_form(registry, key_name, key)?;
    let got = design.decode_site(site, &bytes[site - start..], false);
    if got != Some(want) {
        return Err(format!(
            "{subject} {key_name}: site {site:#x} holds `{}` ({got:x?} as {} decodes it, hex), expected `{form}` ({want:x?})",
            shown(),
            design.name,
        ));
    }
    if design.site == SiteShape::CallThunk {
        // The thunk's site loads the key itself into `rax` right before.
        let m = &insns[0];
        let load_ok = m.code() == Code::Mov_r64_rm64
            && m.is_ip_rel_memory_operand()
            && m.ip_rel_memory_address() as usize == key.addr()
            && m.op0_register() == iced_x86::Register::RAX
            && m.next_ip() as usize == site;
        if !load_ok {
            return Err(format!(
                "{subject} {key_name}: site {site:#x} holds `{}`, expected `mov rax, [rip+{:#x}]` before the call (`{form}`)",
                shown(),
                key.addr()
            ));
        }
    }
    let mut out = vec![dump(subject, key_name, phase, "site", start, &bytes, &form)];
    if let Some(tramp) = key.trampoline() {
        // SAFETY: the trampoline is live code of this program.
        let tb = unsafe { read_code(tramp, 5) };
        let ti = decode(&tb, tramp);
        let (ok, tform) = match target {
            Some(t) => (
                ti[0].code() == Code::Jmp_rel32_64 && ti[0].near_branch_target() as usize == t,
                format!("jmp {}", name_of(t)),
            ),
            None => (
                ti[0].mnemonic() == iced_x86::Mnemonic::Ret,
                "ret (target none)".into(),
            ),
        };
        if !ok {
            return Err(format!(
                "{subject} {key_name}: trampoline {tramp:#x} holds `{}`, expected `{tform}`",
                format_insn(&ti[0])
            ));
        }
        out.push(dump(
            subject,
            key_name,
            phase,
            "trampoline",
            tramp,
            &tb,
            &tform,
        ));
    }
    Ok(out)
}
