//! The suite's one decoder of site and trampoline bytes, with iced-x86.
//!
//! The engine encodes and decodes its own forms (`static_call_core::insn::Form`,
//! `Design::decode_site`): that is the code under test. Everything that
//! *checks* it — the conformance suite, the benchmarks' proofs before they
//! measure, and `sctool` on a file before it runs — reads the bytes with
//! this crate instead, a decoder that shares nothing with the engine, so a
//! mistake in the engine's encoder cannot hide behind the same mistake in
//! its checker.
//!
//! * [`classify`] (and [`slot_at`] on live code): what a site or a
//!   trampoline's slot holds, as a [`Slot`]: every form the engine writes
//!   (`call`, `jmp`, the 5-byte NOP, `ret`, the 5-byte `xor eax, eax` of a
//!   site on RET0) and the load-and-call of a design that calls through
//!   its key ([`Slot::CallVia`]);
//! * [`decode`], [`format_insn`], [`reference()`], [`hex`]: instructions and
//!   text, for `sctool`'s output and the benchmarks' site dumps;
//! * [`read_code`]: the bytes of live code of this process.

use iced_x86::{
    Code, Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter, MemorySize, Mnemonic,
    OpKind, Register,
};

/// What a site or a trampoline's slot holds, as iced-x86 sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// `call rel32` to this address.
    Call(usize),
    /// `jmp rel32` to this address.
    Jmp(usize),
    /// A 5-byte NOP.
    Nop5,
    /// `ret` (followed by padding).
    Ret,
    /// A 5-byte `xor eax, eax` (prefixed): a call site on RET0.
    Xor5,
    /// `mov rax, [rip + p]; call rax`, or `mov rax, [rip + p]; mov rax,
    /// [rax]; call rax` (a module's site): a call through the pointer at
    /// `p` (the key) or through the pointer `p` holds (a key slot).
    CallVia(usize),
    /// Anything else: the instruction in Intel syntax and its bytes.
    Other(String),
}

/// Reads `n` bytes of code at `addr` of this process.
///
/// # Safety
/// `addr..addr + n` must be mapped and readable.
pub unsafe fn read_code(addr: usize, n: usize) -> Vec<u8> {
    (0..n)
        // SAFETY: the caller promises the range is readable.
        .map(|i| unsafe { std::ptr::read_volatile((addr + i) as *const u8) })
        .collect()
}

/// Classifies the live code at `addr` ([`classify`] of its first 16
/// bytes).
///
/// # Safety
/// `addr..addr + 16` must be mapped and readable.
pub unsafe fn slot_at(addr: usize) -> Slot {
    // SAFETY: forwarded.
    let bytes = unsafe { read_code(addr, 16) };
    classify(&bytes, addr)
}

/// Classifies the instructions at the start of `bytes` (at `ip`): the
/// first one, or for a load of `rax` the load-and-call it starts.
pub fn classify(bytes: &[u8], ip: usize) -> Slot {
    let mut d = Decoder::with_ip(64, bytes, ip as u64, DecoderOptions::NONE);
    let i = d.decode();
    let other = |i: &Instruction| {
        let mut s = String::new();
        IntelFormatter::new().format(i, &mut s);
        let n = i.len().clamp(1, bytes.len().max(1)).min(bytes.len());
        Slot::Other(format!("{s} ({})", hex(&bytes[..n])))
    };
    if i.is_invalid() {
        return Slot::Other(format!("(bad) ({})", hex(&bytes[..bytes.len().min(5)])));
    }
    match (i.code(), i.mnemonic(), i.len()) {
        (Code::Call_rel32_64, _, _) => Slot::Call(i.near_branch_target() as usize),
        (Code::Jmp_rel32_64, _, _) => Slot::Jmp(i.near_branch_target() as usize),
        (_, Mnemonic::Nop, 5) => Slot::Nop5,
        (Code::Retnq, _, _) => Slot::Ret,
        (_, Mnemonic::Xor, 5)
            if i.op0_register() == Register::EAX && i.op1_register() == Register::EAX =>
        {
            Slot::Xor5
        }
        (Code::Mov_r64_rm64, _, 7)
            if i.op0_register() == Register::RAX
                && i.is_ip_rel_memory_operand()
                && i.memory_size() == MemorySize::UInt64 =>
        {
            let p = i.ip_rel_memory_address() as usize;
            let mut next = d.decode();
            if next.code() == Code::Mov_r64_rm64
                && next.op0_register() == Register::RAX
                && next.memory_base() == Register::RAX
                && next.memory_index() == Register::None
                && next.memory_displacement64() == 0
            {
                next = d.decode();
            }
            if next.code() == Code::Call_rm64
                && next.op0_kind() == OpKind::Register
                && next.op0_register() == Register::RAX
            {
                Slot::CallVia(p)
            } else {
                other(&i)
            }
        }
        _ => other(&i),
    }
}

/// Decodes `bytes` at `ip`, every instruction to the end.
pub fn decode(bytes: &[u8], ip: u64) -> Vec<Instruction> {
    let mut d = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    let mut out = Vec::new();
    while d.can_decode() {
        out.push(d.decode());
    }
    out
}

/// Lowercase hex pairs separated by spaces.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The address an instruction branches to or reads relative to `rip`.
pub fn reference(i: &Instruction) -> Option<u64> {
    match i.op0_kind() {
        OpKind::NearBranch64 => Some(i.near_branch_target()),
        _ if i.is_ip_rel_memory_operand() => Some(i.ip_rel_memory_address()),
        _ => None,
    }
}

/// One instruction in Intel syntax; where it branches to or reads an
/// address that `name` can name, followed by `    ; name`.
pub fn format_insn(i: &Instruction, name: impl Fn(u64) -> Option<String>) -> String {
    let mut f = IntelFormatter::new();
    let mut s = String::new();
    f.format(i, &mut s);
    if let Some(n) = reference(i).and_then(name) {
        s += "    ; ";
        s += &n;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_slot_form() {
        assert_eq!(classify(&[0xe8, 0, 0, 0, 0], 0x1000), Slot::Call(0x1005));
        assert_eq!(
            classify(&[0xe9, 0xfb, 0xff, 0xff, 0xff], 0x10),
            Slot::Jmp(0x10)
        );
        assert_eq!(classify(&[0x0f, 0x1f, 0x44, 0, 0], 0), Slot::Nop5);
        assert_eq!(classify(&[0xc3, 0xcc, 0xcc, 0xcc, 0xcc], 0), Slot::Ret);
        // RET0 at a site: `cs cs cs xor eax, eax`, one 5-byte instruction.
        assert_eq!(classify(&[0x2e, 0x2e, 0x2e, 0x31, 0xc0], 0), Slot::Xor5);
        // The two-byte `xor eax, eax` is no slot form.
        assert!(matches!(
            classify(&[0x31, 0xc0, 0xc3, 0xcc, 0xcc], 0),
            Slot::Other(s) if s.starts_with("xor eax,eax (31 c0)")
        ));
        assert!(matches!(classify(&[0x90; 5], 0), Slot::Other(_)));
        assert!(matches!(classify(&[], 0), Slot::Other(s) if s.starts_with("(bad)")));
    }

    #[test]
    fn classifies_calls_through_a_pointer() {
        // mov rax, [rip + 0x10]; call rax, at 0x1000: the pointer at 0x1017.
        let load = [0x48, 0x8b, 0x05, 0x10, 0, 0, 0];
        let call = [0xff, 0xd0];
        assert_eq!(
            classify(&[&load[..], &call[..]].concat(), 0x1000),
            Slot::CallVia(0x1017)
        );
        // Through a key slot: mov rax, [rax] between.
        assert_eq!(
            classify(
                &[&load[..], &[0x48, 0x8b, 0x00][..], &call[..]].concat(),
                0x1000
            ),
            Slot::CallVia(0x1017)
        );
        // A load not followed by `call rax`.
        assert!(matches!(
            classify(&[&load[..], &[0xff, 0xd1][..]].concat(), 0x1000),
            Slot::Other(_)
        ));
    }

    #[test]
    fn formats_with_names() {
        let i = &decode(&[0xe8, 0, 0, 0, 0], 0x1000)[0];
        assert_eq!(
            format_insn(i, |a| Some(format!("f{a:x}"))),
            "call 0000000000001005h    ; f1005"
        );
        assert_eq!(hex(&[0xe8, 0x01]), "e8 01");
    }

    #[test]
    fn reads_live_code() {
        let code = [
            0xe8u8, 0, 0, 0, 0, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
        ];
        let at = code.as_ptr() as usize;
        // SAFETY: 16 readable bytes.
        assert_eq!(unsafe { slot_at(at) }, Slot::Call(at + 5));
    }
}
