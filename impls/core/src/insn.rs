//! x86-64 instruction forms that this library reads and writes.
//!
//! Every patchable place (a call site or a trampoline) is a 5-byte slot.
//! The forms are:
//!
//! | form | bytes | used at |
//! |------|-------|---------|
//! | `call rel32` | `e8 xx xx xx xx` | call sites |
//! | `jmp rel32`  | `e9 xx xx xx xx` | trampolines |
//! | 5-byte NOP   | `0f 1f 44 00 00` | a conditional site whose target is none |
//! | `ret`        | `c3 cc cc cc cc` | a trampoline whose target is none |
//! | `xor eax, eax` (3 × `cs`) | `2e 2e 2e 31 c0` | a call site whose target is RET0 |
//!
//! Every form is one instruction that starts at the slot's first byte, so a
//! thread is only ever at the start of a slot or past it: a rewrite (first
//! byte to `int3`, then the tail, then the first byte) never leaves a
//! thread in the middle of bytes that change.
//!
//! RET0 is the kernel's `__static_call_return0`: a target that returns 0
//! costs no call at all. The site form is `xor eax, eax` (which zeroes all
//! of `rax`) padded to five bytes with segment prefixes that 64-bit mode
//! ignores, so one instruction still fills the slot. A trampoline on RET0
//! is a `jmp` to the shared RET0 function like any target: `xor eax, eax;
//! ret` in the slot would be two instructions, and a thread preempted after
//! the `xor` would run torn bytes when the next update rewrites the tail.
//!
//! A trampoline is the 5-byte slot followed by the signature `0f b9 cc`
//! (`ud1 ecx, esp`, which faults if ever executed) and a 32-bit offset to its
//! key, relative to that offset field (see [`TRAMPOLINE_LEN`]). Both are
//! checked before a trampoline is written, so a stray address is never
//! patched.

/// Length of every patchable slot.
pub const SLOT_LEN: usize = 5;
/// Opcode of `call rel32`.
pub const CALL: u8 = 0xe8;
/// Opcode of `jmp rel32`.
pub const JMP: u8 = 0xe9;
/// The one-byte breakpoint used by the patching protocol.
pub const INT3: u8 = 0xcc;
/// The 5-byte NOP (`nop dword ptr [rax+rax*1+0x0]`).
pub const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];
/// `ret` followed by four `int3` fillers.
pub const RET5: [u8; 5] = [0xc3, INT3, INT3, INT3, INT3];
/// `cs cs cs xor eax, eax`: one 5-byte instruction that returns 0 in place
/// of a call.
pub const XOR5: [u8; 5] = [0x2e, 0x2e, 0x2e, 0x31, 0xc0];
/// Signature bytes that follow the slot of every trampoline (`ud1 ecx, esp`).
pub const TRAMPOLINE_SIGNATURE: [u8; 3] = [0x0f, 0xb9, 0xcc];
/// Total trampoline length: slot, signature, and a 32-bit offset to the key
/// (relative to the start of the offset field).
pub const TRAMPOLINE_LEN: usize = SLOT_LEN + TRAMPOLINE_SIGNATURE.len() + 4;

/// What a 5-byte slot does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// `call target`.
    Call(usize),
    /// `jmp target`.
    Jmp(usize),
    /// The 5-byte NOP: fall through.
    Nop,
    /// `ret`.
    Ret,
    /// `xor eax, eax` (a call site whose target is RET0: falls through
    /// with `rax = 0`).
    Zero,
    /// A call through the function pointer stored at this address (the
    /// key, or a module's key slot): a site of a design that never patches
    /// its sites ([`crate::SiteShape::LoadCallRax`]). Longer than a slot,
    /// so [`Form::encode`] and [`Form::decode`] never make one;
    /// [`crate::Design::decode_site`] does.
    CallVia(usize),
}

impl Form {
    /// Encodes this form for the slot at `at`.
    ///
    /// Returns `None` when a call or jump cannot reach its target with a
    /// 32-bit displacement.
    pub fn encode(self, at: usize) -> Option<[u8; 5]> {
        match self {
            Form::Call(t) => rel32(at, t).map(|d| with_rel(CALL, d)),
            Form::Jmp(t) => rel32(at, t).map(|d| with_rel(JMP, d)),
            Form::Nop => Some(NOP5),
            Form::Ret => Some(RET5),
            Form::Zero => Some(XOR5),
            Form::CallVia(_) => None,
        }
    }

    /// Decodes the slot at `at` holding `bytes`, if it is one of our forms.
    pub fn decode(at: usize, bytes: [u8; 5]) -> Option<Form> {
        let disp = i32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let dest = (at as isize)
            .wrapping_add(SLOT_LEN as isize)
            .wrapping_add(disp as isize) as usize;
        match bytes[0] {
            CALL => Some(Form::Call(dest)),
            JMP => Some(Form::Jmp(dest)),
            _ if bytes == NOP5 => Some(Form::Nop),
            _ if bytes == RET5 => Some(Form::Ret),
            _ if bytes == XOR5 => Some(Form::Zero),
            _ => None,
        }
    }
}

/// Whether a call or jump at `at` can reach `target` with a rel32.
pub fn in_range(at: usize, target: usize) -> bool {
    rel32(at, target).is_some()
}

fn rel32(at: usize, target: usize) -> Option<i32> {
    let next = (at as i128) + SLOT_LEN as i128;
    i32::try_from(target as i128 - next).ok()
}

fn with_rel(op: u8, d: i32) -> [u8; 5] {
    let b = d.to_le_bytes();
    [op, b[0], b[1], b[2], b[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_round_trips() {
        let at = 0x5555_0000_1000;
        let bytes = Form::Call(0x5555_0000_0000).encode(at).unwrap();
        assert_eq!(bytes[0], CALL);
        assert_eq!(Form::decode(at, bytes), Some(Form::Call(0x5555_0000_0000)));
    }

    #[test]
    fn far_target_is_out_of_range() {
        assert!(
            Form::Call(0x7fff_0000_0000)
                .encode(0x5555_0000_0000)
                .is_none()
        );
        assert!(!in_range(0x5555_0000_0000, 0x7fff_0000_0000));
        assert!(in_range(0x1000, 0x1000 + 5 + i32::MAX as usize));
        assert!(!in_range(0x1000, 0x1000 + 5 + i32::MAX as usize + 1));
    }

    #[test]
    fn nop_and_ret_decode() {
        assert_eq!(Form::decode(0, NOP5), Some(Form::Nop));
        assert_eq!(Form::decode(0, RET5), Some(Form::Ret));
        assert_eq!(Form::decode(0, XOR5), Some(Form::Zero));
        // The two-instruction RET0 trampoline of old is no form any more.
        assert_eq!(Form::decode(0, [0x31, 0xc0, 0xc3, INT3, INT3]), None);
        assert_eq!(Form::decode(0, [0x90; 5]), None);
    }
}
