//! The peers' proofs: each loop decoded and its site checked against the
//! form the module's documentation describes.

use super::*;

/// Proves a peer's loop for `sc` (`addr..addr + size`, the loop function
/// `name`): see the module's documentation for what each must hold.
///
/// # Errors
/// The form found, where and what was expected.
pub fn prove(
    s: &Subject,
    sc: &CallScenario,
    addr: usize,
    size: usize,
    name: &str,
    phase: &str,
) -> Result<Vec<SiteDump>, String> {
    match (s.name, sc.id) {
        (peer::STATIC_KEYS, scenario::CALL_COND_NONE | scenario::CALL_COND_SOME) => {
            let none = sc.id == scenario::CALL_COND_NONE;
            let ((key, enabled), key_name, body) = if none {
                (
                    static_keys_peer::off(),
                    "OFF",
                    crate::targets::hook as HookFn as usize,
                )
            } else {
                (static_keys_peer::on(), "ON", tick as HookFn as usize)
            };
            if enabled == none {
                return Err(format!(
                    "{} {}: key {key_name} is {}, expected {}",
                    s.name,
                    sc.id,
                    if enabled { "on" } else { "off" },
                    if none { "off" } else { "on" }
                ));
            }
            let out = check_key_sites(
                (s.name, key_name, phase),
                key,
                enabled,
                (addr, size),
                1,
                body,
                true,
            )?;
            one_call(s, sc, addr, size, name)?;
            Ok(out)
        }
        (peer::PLT_CALL | peer::GOT_CALL, scenario::CALL_HOT_1 | scenario::CALL_HOT_1_IB_OFF) => {
            prove_shared_call(s, sc, addr, size, name, phase)
        }
        _ => Err(format!("no proof written for peer {} in {}", s.name, sc.id)),
    }
}

/// The loop function makes exactly one call.
fn one_call(
    s: &Subject,
    sc: &CallScenario,
    addr: usize,
    size: usize,
    name: &str,
) -> Result<Vec<Instruction>, String> {
    // SAFETY: the loop function's own bytes, per the symbol table.
    let insns = decode(&unsafe { read_code(addr, size) }, addr);
    let calls: Vec<&Instruction> = insns
        .iter()
        .filter(|i| i.mnemonic() == Mnemonic::Call)
        .collect();
    if calls.len() != 1 {
        return Err(format!(
            "{} {}: the loop `{name}` makes {} calls, expected 1 ({})",
            s.name,
            sc.id,
            calls.len(),
            calls
                .iter()
                .take(3)
                .map(|i| format_insn(i))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    Ok(insns)
}

/// The PLT and GOT peers' proof.
fn prove_shared_call(
    s: &Subject,
    sc: &CallScenario,
    addr: usize,
    size: usize,
    name: &str,
    phase: &str,
) -> Result<Vec<SiteDump>, String> {
    // One call first, so that a lazily bound PLT slot is resolved.
    crate::subjects::run_checked(sc, s.name, (sc.pick)(&s.loops).ok_or("no loop")?, 1);
    let (func, so_base) = shared_function()?;
    let insns = one_call(s, sc, addr, size, name)?;
    let k = insns
        .iter()
        .position(|i| i.mnemonic() == Mnemonic::Call)
        .expect("one call");
    let call = insns[k];
    let ctx = |what: String| format!("{} {}: the loop `{name}`: {what}", s.name, sc.id);
    if loop_around(&insns, k).is_none() {
        return Err(ctx(format!(
            "`{}` is not inside a loop",
            format_insn(&call)
        )));
    }
    let read_slot = |slot: usize| -> Result<usize, String> {
        match object_of(slot) {
            Some((base, _)) if base == so_base => Err(ctx(format!(
                "the slot {slot:#x} lies in the shared object, not in this program"
            ))),
            None => Err(ctx(format!("the slot {slot:#x} lies in no loaded object"))),
            // SAFETY: an aligned word of this program's GOT (a mapped,
            // readable relocation slot the dynamic linker filled).
            Some(_) => Ok(unsafe { std::ptr::read_volatile(slot as *const usize) }),
        }
    };
    let site = {
        let len = call.len();
        // SAFETY: the call's own bytes, inside the loop function.
        let b = unsafe { read_code(call.ip() as usize, len) };
        (call.ip() as usize, b)
    };
    if s.name == peer::GOT_CALL {
        if !(call.code() == Code::Call_rm64 && call.is_ip_rel_memory_operand()) {
            return Err(ctx(format!(
                "`{}` is not `call qword ptr [rip + slot]`",
                format_insn(&call)
            )));
        }
        let slot = call.ip_rel_memory_address() as usize;
        let held = read_slot(slot)?;
        if held != func {
            return Err(ctx(format!(
                "the GOT slot {slot:#x} holds {held:#x}, not sc_peer_add1 of libsc_peer.so ({func:#x})"
            )));
        }
        return Ok(vec![dump(
            s.name,
            "sc_peer_add1",
            phase,
            "loop",
            site.0,
            &site.1,
            &format!(
                "call qword ptr [rip + GOT slot {slot:#x}] (holds sc_peer_add1 of libsc_peer.so)"
            ),
        )]);
    }
    // plt-call: `call rel32` to a stub of this program.
    if call.code() != Code::Call_rel32_64 {
        return Err(ctx(format!(
            "`{}` is not `call rel32` (to a PLT stub)",
            format_insn(&call)
        )));
    }
    let stub = call.near_branch_target() as usize;
    if stub == func || object_of(stub).is_none_or(|(base, _)| base == so_base) {
        return Err(ctx(format!(
            "`{}` goes to {stub:#x}, not to a PLT stub of this program",
            format_insn(&call)
        )));
    }
    // SAFETY: the stub's bytes (16, one PLT entry) in this program's text.
    let sb = unsafe { read_code(stub, 16) };
    let si = decode(&sb, stub);
    let jmp = si
        .iter()
        .find(|i| i.code() != Code::Endbr64)
        .copied()
        .unwrap_or_default();
    if !(jmp.code() == Code::Jmp_rm64 && jmp.is_ip_rel_memory_operand()) {
        return Err(ctx(format!(
            "the stub {stub:#x} holds `{}`, expected `jmp qword ptr [rip + GOT]`",
            si.iter()
                .take(2)
                .map(format_insn)
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let slot = jmp.ip_rel_memory_address() as usize;
    let held = read_slot(slot)?;
    if held != func {
        return Err(ctx(format!(
            "the stub's GOT slot {slot:#x} holds {held:#x}, not sc_peer_add1 of libsc_peer.so ({func:#x})"
        )));
    }
    let stub_len = jmp.next_ip() as usize - stub;
    Ok(vec![
        dump(
            s.name,
            "sc_peer_add1",
            phase,
            "loop",
            site.0,
            &site.1,
            &format!("call {stub:#x} (the PLT stub of sc_peer_add1)"),
        ),
        dump(
            s.name,
            "sc_peer_add1",
            phase,
            "plt-stub",
            stub,
            &sb[..stub_len],
            &format!(
                "jmp qword ptr [rip + GOT slot {slot:#x}] (holds sc_peer_add1 of libsc_peer.so)"
            ),
        ),
    ])
}
