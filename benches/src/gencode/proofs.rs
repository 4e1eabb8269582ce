//! The proofs of generated code: every site of a chain or a loop decoded
//! and checked against its subject's form before anything is measured.

use super::*;

// ------------------------------------------------------------- proofs

/// What the proof of one generated site saw: where the site's bytes end,
/// and its dump for the bundle.
struct SiteSeen {
    end: usize,
    dumps: Vec<SiteDump>,
}

fn control_dump(subject: &str, phase: &str, at: usize, bytes: &[u8], form: &str) -> SiteDump {
    SiteDump {
        subject: subject.into(),
        key: "(generated)".into(),
        phase: phase.into(),
        place: "site".into(),
        addr: at as u64,
        bytes: hex(bytes),
        asm: decode(bytes, at).iter().map(format_insn).collect(),
        form: form.into(),
    }
}

/// Decodes the site at `at` and checks it holds the form `s` claims.
///
/// # Safety
/// `at..at + MAX_SITE` is mapped code (a generated site).
unsafe fn check_generated_site(
    s: &GenSubject,
    at: usize,
    phase: &str,
    dump: bool,
) -> Result<SiteSeen, String> {
    // SAFETY: mapped code, as the caller promises.
    let bytes = unsafe { read_code(at, MAX_SITE) };
    let insns = decode(&bytes, at);
    let shown = |k: usize| {
        insns
            .iter()
            .take(k)
            .map(format_insn)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let bad = |k: usize, want: &str| {
        Err(format!(
            "{} {phase}: the site at {at:#x} holds `{}`, expected `{want}`",
            s.name,
            shown(k)
        ))
    };
    let first = insns.first().copied().unwrap_or_default();
    let ip_rel_to = |i: &Instruction, a: usize| {
        i.is_ip_rel_memory_operand() && i.ip_rel_memory_address() as usize == a
    };
    let (end, form) = match s.site {
        SiteKind::Implementation(imp) => {
            let key = imp.scale.raw();
            let design = imp.registry.design();
            let label = at
                + if design.site == SiteShape::CallThunk {
                    7
                } else {
                    0
                };
            // SAFETY: a registered site of `key` (the module is loaded).
            let dumps = unsafe {
                crate::prove::check_site(s.name, "SCALE", phase, imp.registry, key, label)?
            };
            if key.target_addr() != Some(add1_addr()) {
                return Err(format!(
                    "{} {phase}: key SCALE targets {:x?}, expected add1",
                    s.name,
                    key.target_addr()
                ));
            }
            let end = label + design.site_len(false);
            return Ok(SiteSeen {
                end,
                dumps: if dump { dumps } else { Vec::new() },
            });
        }
        SiteKind::Direct => {
            if !(first.code() == Code::Call_rel32_64
                && first.near_branch_target() as usize == add1_addr())
            {
                return bad(1, "call add1");
            }
            (first.next_ip() as usize, "call add1 (direct call rel32)")
        }
        SiteKind::CallMem => {
            if !(first.code() == Code::Call_rm64 && ip_rel_to(&first, slot_addr())) {
                return bad(1, "call qword ptr [rip + slot]");
            }
            (
                first.next_ip() as usize,
                "call qword ptr [rip + slot] (indirect call through memory)",
            )
        }
        SiteKind::Lfence => {
            let ok = insns.len() >= 3
                && first.code() == Code::Mov_r64_rm64
                && first.op0_register() == Register::RAX
                && ip_rel_to(&first, slot_addr())
                && insns[1].mnemonic() == Mnemonic::Lfence
                && insns[2].code() == Code::Call_rm64
                && insns[2].op0_register() == Register::RAX;
            if !ok {
                return bad(3, "mov rax, [rip + slot]; lfence; call rax");
            }
            (
                insns[2].next_ip() as usize,
                "mov rax, [rip + slot]; lfence; call rax (AMD-style lfence retpoline)",
            )
        }
        SiteKind::NoCall => {
            if !(first.code() == Code::Lea_r64_m && first.op0_register() == Register::RAX) {
                return bad(1, "lea rax, [rdi + 1] (no call)");
            }
            (first.next_ip() as usize, "lea rax, [rdi + 1] (no call)")
        }
        SiteKind::Broken => return bad(1, "a call (this subject is broken on purpose)"),
    };
    let dumps = if dump {
        vec![control_dump(s.name, phase, at, &bytes[..end - at], form)]
    } else {
        Vec::new()
    };
    Ok(SiteSeen { end, dumps })
}

/// Decodes one instruction at `at`.
///
/// # Safety
/// `at..at + 15` is mapped code.
unsafe fn insn_at(at: usize) -> Instruction {
    // SAFETY: as the caller promises.
    decode(&unsafe { read_code(at, 15) }, at)
        .first()
        .copied()
        .unwrap_or_default()
}

/// The registered sites of an implementation's `SCALE` key inside `code`:
/// they must be exactly `want`.
fn check_registered(
    s: &GenSubject,
    code: &Generated,
    want: usize,
    phase: &str,
) -> Result<(), String> {
    let SiteKind::Implementation(imp) = s.site else {
        return Ok(());
    };
    let inside = imp
        .registry
        .sites_of(imp.scale.raw())
        .iter()
        .filter(|(a, _)| (code.addr()..code.addr() + code.len()).contains(a))
        .count();
    if inside != want || code.sites.len() != want {
        return Err(format!(
            "{} {phase}: the registry knows {inside} sites of SCALE in the generated code ({} generated), expected {want}",
            s.name,
            code.sites.len()
        ));
    }
    Ok(())
}

/// Proves a chain: from its entry, `n` distinct stubs, each holding the
/// site `s` claims followed by `mov rdi, rax; jmp <next>`, the last
/// jumping to the exit (`mov rax, rdi; add rsp, 8; ret`); for an
/// implementation, the registry knows exactly those `n` sites. Returns the
/// first stub's site, decoded.
///
/// # Errors
/// What was found instead, and where.
pub fn prove_chain(s: &GenSubject, c: &Chain, phase: &str) -> Result<Vec<SiteDump>, String> {
    let base = c.code.addr();
    let err = |what: String| Err(format!("{} {phase}: {what}", s.name));
    // SAFETY: the chain's own code (every address decoded below is checked
    // to lie inside it first).
    let first = unsafe { insn_at(base + 4) };
    if first.code() != Code::Jmp_rel32_64 {
        return err(format!("the entry jumps with `{}`", format_insn(&first)));
    }
    let mut at = first.near_branch_target() as usize;
    let mut seen = vec![false; c.n];
    let mut dumps = Vec::new();
    for i in 0..c.n {
        let off = at.wrapping_sub(base + CHAIN_STUBS);
        if at < base + CHAIN_STUBS || !off.is_multiple_of(STUB) || off / STUB >= c.n {
            return err(format!(
                "call {i} of the chain goes to {at:#x}, which is no stub"
            ));
        }
        if std::mem::replace(&mut seen[off / STUB], true) {
            return err(format!("stub {at:#x} is visited twice"));
        }
        // SAFETY: a stub of the chain's code.
        let site = unsafe { check_generated_site(s, at, phase, i == 0)? };
        dumps.extend(site.dumps);
        // SAFETY: the stub's tail, inside the stub.
        let (mov, jmp) = unsafe { (insn_at(site.end), insn_at(site.end + 3)) };
        let mov_ok = matches!(mov.code(), Code::Mov_rm64_r64 | Code::Mov_r64_rm64)
            && mov.op0_register() == Register::RDI
            && mov.op1_register() == Register::RAX;
        if !mov_ok || jmp.code() != Code::Jmp_rel32_64 {
            return err(format!(
                "stub {at:#x} ends `{}; {}`, expected `mov rdi, rax; jmp <next>`",
                format_insn(&mov),
                format_insn(&jmp)
            ));
        }
        at = jmp.near_branch_target() as usize;
    }
    if at != base + CHAIN_EXIT {
        return err(format!(
            "after {} stubs the chain goes to {at:#x}, not its exit",
            c.n
        ));
    }
    // SAFETY: the chain's exit block.
    let exit = decode(&unsafe { read_code(at, 8) }, at);
    let codes: Vec<Code> = exit.iter().map(Instruction::code).collect();
    if codes.len() < 3 || codes[2] != Code::Retnq {
        return err(format!(
            "the exit holds `{}`",
            exit.iter().map(format_insn).collect::<Vec<_>>().join("; ")
        ));
    }
    check_registered(s, &c.code, c.n, phase)?;
    Ok(dumps)
}

/// Proves a loop: its head is `call <noise>`, then no call or branch up
/// to `mov rdi, r14` right before the site, the site `s` claims, then
/// `mov r14, rax` and no call or branch up to `dec r13; jnz <head>`; and
/// the noise makes `noise.sites` indirect jumps and no call. Returns the
/// site, decoded.
///
/// # Errors
/// What was found instead, and where.
pub fn prove_loop(
    s: &GenSubject,
    l: &Looped,
    noise: &Noise,
    phase: &str,
) -> Result<Vec<SiteDump>, String> {
    let err = |what: String| Err(format!("{} {phase}: {what}", s.name));
    let flow = |i: &Instruction| {
        matches!(i.mnemonic(), Mnemonic::Call | Mnemonic::Jmp | Mnemonic::Ret)
            || (i.op_count() > 0 && i.op0_kind() == iced_x86::OpKind::NearBranch64)
    };
    let list = |v: &[Instruction]| v.iter().map(format_insn).collect::<Vec<_>>().join("; ");
    // SAFETY: the loop's own code, from its head to its site.
    let before = decode(&unsafe { read_code(l.head, l.site - l.head) }, l.head);
    let (Some(call), Some(mov)) = (before.first(), before.last()) else {
        return err("no code before the site".into());
    };
    let ok = call.code() == Code::Call_rel32_64
        && call.near_branch_target() as usize == noise.code.addr()
        && !before[1..].iter().any(flow)
        && mov.next_ip() as usize == l.site
        && mov.op0_register() == Register::RDI
        && mov.op1_register() == Register::R14;
    if !ok {
        return err(format!(
            "the loop's head holds `{}`, expected `call <noise>; ...; mov rdi, r14` before the site",
            list(&before)
        ));
    }
    // SAFETY: the loop's site.
    let site = unsafe { check_generated_site(s, l.site, phase, true)? };
    // SAFETY: the loop's tail (inside its page).
    let tail = decode(&unsafe { read_code(site.end, 48) }, site.end);
    let jnz = tail.iter().position(flow);
    let ok = tail
        .first()
        .is_some_and(|m| m.op0_register() == Register::R14 && m.op1_register() == Register::RAX)
        && jnz.is_some_and(|k| {
            k >= 1
                && tail[k].code() == Code::Jne_rel32_64
                && tail[k].near_branch_target() as usize == l.head
                && tail[k - 1].mnemonic() == Mnemonic::Dec
        });
    if !ok {
        return err(format!(
            "after the site: `{}`, expected `mov r14, rax; ...; dec r13; jnz <head>`",
            list(&tail[..jnz.map_or(tail.len(), |k| k + 1).min(tail.len())])
        ));
    }
    // SAFETY: the noise's own code.
    let ni = decode(
        &unsafe { read_code(noise.code.addr(), noise.code.len()) },
        noise.code.addr(),
    );
    let jumps = ni
        .iter()
        .filter(|i| i.code() == Code::Jmp_rm64 && i.op0_kind() == iced_x86::OpKind::Memory)
        .count();
    let calls = ni.iter().filter(|i| i.mnemonic() == Mnemonic::Call).count();
    if jumps != noise.sites || calls != 0 {
        return err(format!(
            "the noise holds {jumps} indirect jumps and {calls} calls, expected {} and none",
            noise.sites
        ));
    }
    check_registered(
        s,
        &l.code,
        usize::from(matches!(s.site, SiteKind::Implementation(_))),
        phase,
    )?;
    Ok(site.dumps)
}
