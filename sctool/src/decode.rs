//! Decoding sites and trampolines with iced-x86: bytes into instructions
//! and text for `sctool`, the benchmarks' proofs and so the report's
//! "sites, decoded" section.

use iced_x86::{Code, Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter, OpKind};

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

/// What a 5-byte slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// `call rel32` to this address.
    Call(u64),
    /// `jmp rel32` to this address.
    Jmp(u64),
    /// The 5-byte NOP.
    Nop5,
    /// `ret` (followed by padding).
    Ret,
    /// Anything else, formatted with its bytes.
    Other(String),
}

/// Classifies the instruction at the start of `bytes` (at `ip`).
pub fn classify(bytes: &[u8], ip: u64) -> Slot {
    let mut d = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    let i = d.decode();
    match i.code() {
        _ if i.is_invalid() => {
            Slot::Other(format!("(bad) ({})", hex(&bytes[..bytes.len().min(5)])))
        }
        Code::Call_rel32_64 => Slot::Call(i.near_branch_target()),
        Code::Jmp_rel32_64 => Slot::Jmp(i.near_branch_target()),
        _ if i.mnemonic() == iced_x86::Mnemonic::Nop && i.len() == 5 => Slot::Nop5,
        Code::Retnq => Slot::Ret,
        _ => {
            let mut s = String::new();
            IntelFormatter::new().format(&i, &mut s);
            Slot::Other(format!("{s} ({})", hex(&bytes[..i.len().min(bytes.len())])))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_slot_forms() {
        assert_eq!(classify(&[0xe8, 0, 0, 0, 0], 0x1000), Slot::Call(0x1005));
        assert_eq!(
            classify(&[0xe9, 0xfb, 0xff, 0xff, 0xff], 0x10),
            Slot::Jmp(0x10)
        );
        assert_eq!(classify(&[0x0f, 0x1f, 0x44, 0, 0], 0), Slot::Nop5);
        assert_eq!(classify(&[0xc3, 0xcc, 0xcc, 0xcc, 0xcc], 0), Slot::Ret);
        assert!(matches!(classify(&[0x90; 5], 0), Slot::Other(_)));
        assert!(matches!(classify(&[], 0), Slot::Other(_)));
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
}
