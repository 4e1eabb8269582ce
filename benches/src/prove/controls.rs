//! The controls' proofs: each control's loop holds the form its name
//! claims, and the A/A copy is a distinct function with the same bytes.

use super::*;

pub(super) fn prove_control(
    s: &Subject,
    sc: &CallScenario,
    copy: usize,
    addr: usize,
    size: usize,
    name: &str,
    phase: &str,
) -> Result<Vec<SiteDump>, String> {
    use static_call_bundle::control;
    // SAFETY: the loop function's own bytes, per the symbol table.
    let bytes = unsafe { read_code(addr, size) };
    let insns = decode(&bytes, addr);
    let calls: Vec<usize> = insns
        .iter()
        .enumerate()
        .filter(|(_, i)| i.mnemonic() == iced_x86::Mnemonic::Call)
        .map(|(k, _)| k)
        .collect();
    let six = sc.id == static_call_bundle::scenario::CALL_HOT_6;
    let body = if six {
        crate::targets::add6 as *const () as usize
    } else {
        crate::targets::add1 as *const () as usize
    };
    let slot = if six {
        crate::subjects::slots::SIX.as_ptr() as usize
    } else {
        crate::subjects::slots::ONE.as_ptr() as usize
    };
    let direct_to_body = |i: &Instruction| {
        i.code() == Code::Call_rel32_64 && {
            let t = i.near_branch_target() as usize;
            t == body || name_of(t) == name_of(body)
        }
    };
    let context = |what: String| {
        format!(
            "{} {}: the loop `{name}`: {what} (calls: {})",
            s.name,
            sc.id,
            calls
                .iter()
                .take(3)
                .map(|&k| format_insn(&insns[k]))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    if calls.len() as u64 != sc.calls_per_unit {
        return Err(context(format!(
            "makes {} calls, expected {}",
            calls.len(),
            sc.calls_per_unit
        )));
    }
    // The first instruction of the dump: the call, or the load before it.
    let mut first = calls[0];
    let aa_of_option_fn =
        s.name == control::DIRECT_AA && crate::subjects::reference(sc) == control::OPTION_FN;
    let form = match s.name {
        control::DIRECT | control::DIRECT_AA if !aa_of_option_fn => {
            if let Some(&k) = calls.iter().find(|&&k| !direct_to_body(&insns[k])) {
                return Err(context(format!(
                    "`{}` is not `call {}`",
                    format_insn(&insns[k]),
                    name_of(body)
                )));
            }
            if s.name == control::DIRECT_AA {
                aa_is_a_copy(sc, copy, addr, &insns).map_err(context)?;
            }
            format!("call {}", name_of(body))
        }
        control::CALL_MEM_INDIRECT => {
            for &k in &calls {
                let i = &insns[k];
                if !(i.code() == Code::Call_rm64
                    && i.is_ip_rel_memory_operand()
                    && i.ip_rel_memory_address() as usize == slot)
                {
                    return Err(context(format!(
                        "`{}` is not `call qword ptr [rip + {slot:#x}]`",
                        format_insn(i)
                    )));
                }
            }
            "call qword ptr [rip + slot] (indirect call through memory)".into()
        }
        control::LFENCE_INDIRECT => {
            for &k in &calls {
                let i = &insns[k];
                let fence = k
                    .checked_sub(1)
                    .is_some_and(|p| insns[p].mnemonic() == iced_x86::Mnemonic::Lfence);
                let load = k.checked_sub(2).map(|p| &insns[p]).is_some_and(|m| {
                    m.code() == Code::Mov_r64_rm64
                        && m.is_ip_rel_memory_operand()
                        && m.ip_rel_memory_address() as usize == slot
                        && i.op0_kind() == iced_x86::OpKind::Register
                        && m.op0_register() == i.op0_register()
                });
                if !(fence && load) {
                    return Err(context(format!(
                        "`{}` is not preceded by `mov reg, [rip + {slot:#x}]; lfence`",
                        format_insn(i)
                    )));
                }
            }
            first = calls[0] - 2;
            "mov rax, [rip + slot]; lfence; call rax (AMD-style lfence retpoline)".into()
        }
        control::FN_POINTER | control::DYN_TRAIT | control::OPTION_FN | control::DIRECT_AA => {
            for (n, &k) in calls.iter().enumerate() {
                let i = &insns[k];
                if i.code() != Code::Call_rm64 {
                    return Err(context(format!(
                        "`{}` is not an indirect call",
                        format_insn(i)
                    )));
                }
                let load = load_in_loop(&insns, k).map_err(context)?;
                if n == 0 {
                    first = load;
                }
            }
            if aa_of_option_fn {
                aa_is_a_copy(sc, copy, addr, &insns).map_err(context)?;
            }
            if s.name == control::FN_POINTER {
                "the pointer loaded from memory in the loop, then called (plain indirect call)"
                    .into()
            } else {
                "the target loaded from memory (vtable slot or pointer) in the loop, then called"
                    .into()
            }
        }
        other => return Err(format!("no proof written for control {other}")),
    };
    let (from, to) = (
        insns[first].ip() as usize,
        insns[calls[0]].next_ip() as usize,
    );
    let b = &bytes[from - addr..to - addr];
    Ok(vec![dump(s.name, name, phase, "loop", from, b, &form)])
}

/// The A/A loop must be a distinct function (not merged with the
/// scenario's reference loop: the direct call's, or the `Option<fn>` one's)
/// with the same instructions as that loop.
fn aa_is_a_copy(
    sc: &CallScenario,
    copy: usize,
    addr: usize,
    insns: &[Instruction],
) -> Result<(), String> {
    let reference = crate::subjects::reference(sc);
    let direct = crate::subjects::SUBJECTS
        .iter()
        .find(|s| s.name == reference)
        .and_then(|s| (sc.copies)(&s.loops).get(copy).copied())
        .ok_or_else(|| format!("no {reference} loop (copy {copy}) to compare with"))?;
    let d = Symbols::get()?
        .containing(direct as *const () as usize)
        .ok_or_else(|| format!("no symbol for the {reference} loop"))?;
    if d.addr == addr {
        return Err(format!(
            "the A/A loop is the {reference} loop itself (the two were merged)"
        ));
    }
    // SAFETY: the direct loop's own bytes, per the symbol table.
    let db = unsafe { read_code(d.addr, d.size) };
    let di = decode(&db, d.addr);
    let codes = |v: &[Instruction]| v.iter().map(|i| i.code()).collect::<Vec<_>>();
    if codes(&di) != codes(insns) {
        return Err(format!(
            "the A/A loop's {} instructions differ from the {reference} loop's {}",
            insns.len(),
            di.len()
        ));
    }
    Ok(())
}
