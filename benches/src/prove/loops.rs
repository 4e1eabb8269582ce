//! Loop analysis over decoded instructions: the loop around a site, and
//! whether a called register is loaded from memory inside it.

use super::*;

/// The innermost loop of `insns` that contains the instruction at index
/// `at`: the span `[start, end]` of indices from a backward branch's target
/// to the branch.
pub fn loop_around(insns: &[Instruction], at: usize) -> Option<(usize, usize)> {
    let ip = insns[at].ip();
    let mut best: Option<(usize, usize)> = None;
    for (j, b) in insns.iter().enumerate() {
        let is_branch = b.op_count() == 1
            && b.op0_kind() == iced_x86::OpKind::NearBranch64
            && b.mnemonic() != iced_x86::Mnemonic::Call;
        if !is_branch || b.near_branch_target() == 0 {
            continue;
        }
        let t = b.near_branch_target();
        if t <= ip && ip < b.ip() {
            let Some(start) = insns.iter().position(|i| i.ip() == t) else {
                continue;
            };
            if best.is_none_or(|(s, e)| e - s > j - start) {
                best = Some((start, j));
            }
        }
    }
    best
}

/// The 64-bit register a 64- or 32-bit general register is part of.
fn full(r: iced_x86::Register) -> iced_x86::Register {
    use iced_x86::Register as R;
    const PAIRS: [(R, R); 16] = [
        (R::RAX, R::EAX),
        (R::RCX, R::ECX),
        (R::RDX, R::EDX),
        (R::RBX, R::EBX),
        (R::RSP, R::ESP),
        (R::RBP, R::EBP),
        (R::RSI, R::ESI),
        (R::RDI, R::EDI),
        (R::R8, R::R8D),
        (R::R9, R::R9D),
        (R::R10, R::R10D),
        (R::R11, R::R11D),
        (R::R12, R::R12D),
        (R::R13, R::R13D),
        (R::R14, R::R14D),
        (R::R15, R::R15D),
    ];
    PAIRS
        .iter()
        .find(|(q, d)| *q == r || *d == r)
        .map_or(r, |(q, _)| *q)
}

/// Registers a call clobbers (the C ABI's caller-saved registers).
fn caller_saved(r: iced_x86::Register) -> bool {
    use iced_x86::Register as R;
    matches!(
        r,
        R::RAX | R::RCX | R::RDX | R::RSI | R::RDI | R::R8 | R::R9 | R::R10 | R::R11
    )
}

/// Whether `i` writes register `r` (its first operand, for the instructions
/// a compiler puts between a load and a call; compares and tests only read).
fn writes(i: &Instruction, r: iced_x86::Register) -> bool {
    use iced_x86::Mnemonic as M;
    i.op_count() > 0
        && i.op0_kind() == iced_x86::OpKind::Register
        && full(i.op0_register()) == r
        && !matches!(i.mnemonic(), M::Cmp | M::Test | M::Bt | M::Push)
}

/// The load that makes the indirect call at index `at` indirect: the call
/// itself when it is `call qword ptr [mem]`, else the `mov reg, [mem]` that
/// last wrote the called register, which must lie inside the loop around
/// the call (after its head, with no call in between that clobbers it).
/// Stack slots do not count: a spilled copy of a pointer loaded once
/// before the loop is the pointer hoisted out of the loop.
///
/// Returns the index of the load.
///
/// # Errors
/// What the loop does instead.
pub(super) fn load_in_loop(insns: &[Instruction], at: usize) -> Result<usize, String> {
    use iced_x86::Register as R;
    let call = &insns[at];
    let (start, _) = loop_around(insns, at)
        .ok_or_else(|| format!("`{}` is not inside a loop", format_insn(call)))?;
    let from_memory = |i: &Instruction, op: u32| {
        i.op_kind(op) == iced_x86::OpKind::Memory && !matches!(i.memory_base(), R::RSP | R::RBP)
    };
    if call.op0_kind() == iced_x86::OpKind::Memory {
        return if from_memory(call, 0) {
            Ok(at)
        } else {
            Err(format!(
                "`{}` calls through a stack slot, not the pointer's memory",
                format_insn(call)
            ))
        };
    }
    let mut reg = full(call.op0_register());
    for j in (start..at).rev() {
        let i = &insns[j];
        if i.mnemonic() == iced_x86::Mnemonic::Call && caller_saved(reg) {
            return Err(format!(
                "`{}` calls {reg:?}, which the call at {:#x} clobbers before it is loaded",
                format_insn(call),
                i.ip()
            ));
        }
        if !writes(i, reg) {
            continue;
        }
        if i.mnemonic() == iced_x86::Mnemonic::Mov && i.op_count() == 2 {
            if from_memory(i, 1) {
                return Ok(j);
            }
            if i.op1_kind() == iced_x86::OpKind::Register {
                // A register copy: follow the source.
                reg = full(i.op1_register());
                continue;
            }
        }
        return Err(format!(
            "`{}` calls a register last written by `{}` at {:#x}, not by a load from memory",
            format_insn(call),
            format_insn(i),
            i.ip()
        ));
    }
    Err(format!(
        "`{}` at {:#x} calls a register that is not loaded inside the loop (the load was hoisted out of it: the call is not an indirect call through memory at every call)",
        format_insn(call),
        call.ip()
    ))
}
