//! Independent decoding of site and trampoline bytes with iced-x86.

use iced_x86::{Code, Decoder, DecoderOptions, Mnemonic, Register};

/// What a 5-byte slot holds, as iced-x86 sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insn {
    /// `call rel32` to this address.
    Call(usize),
    /// `jmp rel32` to this address.
    Jmp(usize),
    /// A 5-byte NOP.
    Nop5,
    /// `ret`.
    Ret,
    /// A 5-byte `xor eax, eax` (prefixed): a call site on RET0.
    Xor5,
    /// `mov rax, [rip + p]; call rax`, or `mov rax, [rip + p]; mov rax,
    /// [rax]; call rax` (a module's site): a call through the pointer at
    /// `p` (the key) or through the pointer `p` holds (a key slot).
    CallVia(usize),
    /// Anything else, formatted.
    Other(String),
}

/// Reads `n` bytes of code at `addr`.
///
/// # Safety
/// `addr..addr+n` must be mapped and readable.
pub unsafe fn read_code(addr: usize, n: usize) -> Vec<u8> {
    (0..n)
        // SAFETY: the caller promises the range is readable.
        .map(|i| unsafe { std::ptr::read_volatile((addr + i) as *const u8) })
        .collect()
}

/// Decodes the instruction at `addr`.
///
/// # Safety
/// `addr..addr+16` must be mapped and readable.
pub unsafe fn insn_at(addr: usize) -> Insn {
    // SAFETY: forwarded.
    let bytes = unsafe { read_code(addr, 16) };
    let mut d = Decoder::with_ip(64, &bytes, addr as u64, DecoderOptions::NONE);
    let i = d.decode();
    match (i.mnemonic(), i.len()) {
        (Mnemonic::Call, 5) if i.code() == Code::Call_rel32_64 => {
            Insn::Call(i.near_branch_target() as usize)
        }
        (Mnemonic::Jmp, 5) if i.code() == Code::Jmp_rel32_64 => {
            Insn::Jmp(i.near_branch_target() as usize)
        }
        (Mnemonic::Nop, 5) => Insn::Nop5,
        (Mnemonic::Ret, 1) => Insn::Ret,
        (Mnemonic::Mov, 7)
            if i.op0_register() == Register::RAX
                && i.memory_base() == Register::RIP
                && i.memory_size() == iced_x86::MemorySize::UInt64 =>
        {
            let p = i.memory_displacement64() as usize;
            let mut next = d.decode();
            if next.mnemonic() == Mnemonic::Mov
                && next.op0_register() == Register::RAX
                && next.memory_base() == Register::RAX
                && next.memory_displacement64() == 0
            {
                next = d.decode();
            }
            if next.mnemonic() == Mnemonic::Call && next.op0_register() == Register::RAX {
                Insn::CallVia(p)
            } else {
                Insn::Other(format!("{i}; {next}"))
            }
        }
        (Mnemonic::Xor, n)
            if i.op0_register() == Register::EAX && i.op1_register() == Register::EAX =>
        {
            match n {
                5 => Insn::Xor5,
                _ => Insn::Other(format!("{i} ({:02x?})", &bytes[..n])),
            }
        }
        _ => Insn::Other(format!("{i} ({:02x?})", &bytes[..i.len().max(1)])),
    }
}
