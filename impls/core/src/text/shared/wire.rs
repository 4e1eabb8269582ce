//! The `#[repr(C)]` records that cross copies of the crate: slot writes,
//! errors, the engine's description and counters. A unit test round-trips
//! each.

use crate::error::{Error, Place};
use crate::insn::{Form, SLOT_LEN};
use crate::text::SlotWrite;

/// A slot write as it crosses copies ([`SlotWrite`]).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct CSlotWrite {
    pub(super) addr: usize,
    pub(super) key: usize,
    /// The target or pointer of `form` (0 when it has none).
    pub(super) target: usize,
    pub(super) old: [u8; SLOT_LEN],
    pub(super) new: [u8; SLOT_LEN],
    /// [`Form`]'s variant: see [`form_code`].
    pub(super) form: u8,
    /// 0: a call site; 1: a trampoline.
    pub(super) place: u8,
}

fn form_code(f: Form) -> (u8, usize) {
    match f {
        Form::Call(t) => (1, t),
        Form::Jmp(t) => (2, t),
        Form::Nop => (3, 0),
        Form::Ret => (4, 0),
        Form::Zero => (5, 0),
        Form::CallVia(p) => (6, p),
    }
}

fn form_of(code: u8, t: usize) -> Option<Form> {
    Some(match code {
        1 => Form::Call(t),
        2 => Form::Jmp(t),
        3 => Form::Nop,
        4 => Form::Ret,
        5 => Form::Zero,
        6 => Form::CallVia(t),
        _ => return None,
    })
}

impl CSlotWrite {
    pub(super) fn from(s: &SlotWrite) -> CSlotWrite {
        let (form, target) = form_code(s.form);
        CSlotWrite {
            addr: s.addr,
            key: s.key,
            target,
            old: s.old,
            new: s.new,
            form,
            place: match s.place {
                Place::Site => 0,
                Place::Trampoline => 1,
            },
        }
    }

    pub(super) fn to_slot(self) -> Option<SlotWrite> {
        Some(SlotWrite {
            addr: self.addr,
            old: self.old,
            new: self.new,
            form: form_of(self.form, self.target)?,
            place: match self.place {
                0 => Place::Site,
                1 => Place::Trampoline,
                _ => return None,
            },
            key: self.key,
        })
    }
}

/// Bytes of text an error carries across (what was expected, or the
/// message of an error no other kind describes).
const TEXT_LEN: usize = 256;

/// An engine error as it crosses copies.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct CError {
    /// 0: none; see the `K_*` constants.
    pub(super) kind: u32,
    /// 0: a call site; 1: a trampoline.
    pub(super) place: u8,
    pub(super) found_len: u8,
    pub(super) found: [u8; 16],
    pub(super) addr: usize,
    pub(super) key: usize,
    pub(super) errno: i32,
    pub(super) tid: i32,
    pub(super) tracer: i32,
    /// The failed operation's name (`Syscall::op`): a string of the
    /// serving copy, whose object is pinned for the life of the process.
    pub(super) op: *const u8,
    pub(super) op_len: usize,
    /// `TrapHandlerReplaced::found`.
    pub(super) handler: usize,
    pub(super) text_len: u32,
    pub(super) text: [u8; TEXT_LEN],
}

const K_UNEXPECTED: u32 = 1;
const K_SYSCALL: u32 = 2;
const K_HANDLER: u32 = 3;
const K_TRACED: u32 = 4;
const K_OTHER: u32 = 5;
pub(super) const K_BAD_INPUT: u32 = 6;

impl CError {
    pub(super) fn none() -> CError {
        CError {
            kind: 0,
            place: 0,
            found_len: 0,
            found: [0; 16],
            addr: 0,
            key: 0,
            errno: 0,
            tid: 0,
            tracer: 0,
            op: std::ptr::null(),
            op_len: 0,
            handler: 0,
            text_len: 0,
            text: [0; TEXT_LEN],
        }
    }

    fn set_text(&mut self, t: &str) {
        // Cut at a character boundary.
        let mut n = t.len().min(TEXT_LEN);
        while !t.is_char_boundary(n) {
            n -= 1;
        }
        self.text[..n].copy_from_slice(&t.as_bytes()[..n]);
        self.text_len = n as u32;
    }

    fn text(&self) -> String {
        let n = (self.text_len as usize).min(TEXT_LEN);
        String::from_utf8_lossy(&self.text[..n]).into_owned()
    }

    pub(super) fn from(e: &Error) -> CError {
        let mut c = CError::none();
        match e {
            Error::UnexpectedBytes {
                place,
                addr,
                key,
                found,
                expected,
            } => {
                c.kind = K_UNEXPECTED;
                c.place = u8::from(*place == Place::Trampoline);
                let n = found.len().min(c.found.len());
                c.found[..n].copy_from_slice(&found[..n]);
                c.found_len = n as u8;
                c.addr = *addr;
                c.key = *key;
                c.set_text(expected);
            }
            Error::Syscall { op, addr, errno } => {
                c.kind = K_SYSCALL;
                c.op = op.as_ptr();
                c.op_len = op.len();
                c.addr = *addr;
                c.errno = *errno;
            }
            Error::TrapHandlerReplaced { found } => {
                c.kind = K_HANDLER;
                c.handler = *found;
            }
            Error::Traced { tracer, tid } => {
                c.kind = K_TRACED;
                c.tracer = *tracer;
                c.tid = *tid;
            }
            e => {
                c.kind = K_OTHER;
                c.set_text(&e.to_string());
            }
        }
        c
    }

    pub(super) fn to_error(self) -> Error {
        match self.kind {
            K_UNEXPECTED => Error::UnexpectedBytes {
                place: if self.place == 1 {
                    Place::Trampoline
                } else {
                    Place::Site
                },
                addr: self.addr,
                key: self.key,
                found: self.found[..usize::from(self.found_len).min(16)].to_vec(),
                expected: self.text(),
            },
            K_SYSCALL => Error::Syscall {
                op: op_name(self.op, self.op_len),
                addr: self.addr,
                errno: self.errno,
            },
            K_HANDLER => Error::TrapHandlerReplaced {
                found: self.handler,
            },
            K_TRACED => Error::Traced {
                tracer: self.tracer,
                tid: self.tid,
            },
            K_BAD_INPUT => Error::EngineFailed {
                message: "a slot write that this copy could not read (an unknown form or place)"
                    .into(),
            },
            _ => Error::EngineFailed {
                message: self.text(),
            },
        }
    }
}

/// The serving copy's name of a failed operation, as a `&'static str`.
fn op_name(p: *const u8, len: usize) -> &'static str {
    if p.is_null() || len > 256 {
        return "the engine";
    }
    // SAFETY: a string literal of the serving copy, whose object is pinned
    // (`RTLD_NODELETE`) for the life of the process: never unmapped.
    let bytes = unsafe { std::slice::from_raw_parts(p, len) };
    std::str::from_utf8(bytes).unwrap_or("the engine")
}

/// [`EngineInfo`] across copies.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CInfo {
    pub(super) proc_mem: u8,
    pub(super) membarrier: u8,
}

/// [`EngineStats`] and the park counters across copies.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CStats {
    pub(super) batches: u64,
    pub(super) slots: u64,
    pub(super) writes: u64,
    pub(super) core_syncs: u64,
    pub(super) traps_emulated: u64,
    pub(super) traps_restarted: u64,
    pub(super) park_rounds: u64,
    pub(super) park_incomplete: u64,
    pub(super) park_waited_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_cross_unchanged() {
        let cases = [
            Error::UnexpectedBytes {
                place: Place::Trampoline,
                addr: 0x1000,
                key: 0x2000,
                found: vec![0xe9, 1, 2, 3, 4],
                expected: "the bytes validated before the batch".into(),
            },
            Error::Syscall {
                op: "pwrite(/proc/self/mem)",
                addr: 0x3000,
                errno: libc::EPERM,
            },
            Error::TrapHandlerReplaced { found: 1 },
            Error::Traced { tracer: 7, tid: 9 },
        ];
        for e in cases {
            assert_eq!(CError::from(&e).to_error(), e);
        }
        let other = Error::Reentrant { op: "update" };
        assert_eq!(
            CError::from(&other).to_error(),
            Error::EngineFailed {
                message: other.to_string()
            }
        );
    }

    #[test]
    fn slot_writes_cross_unchanged() {
        for form in [
            Form::Call(0x1234),
            Form::Jmp(0x5678),
            Form::Nop,
            Form::Ret,
            Form::Zero,
        ] {
            let s = SlotWrite {
                addr: 0x4000,
                old: [0xe8, 0, 0, 0, 0],
                new: [0x0f, 0x1f, 0x44, 0, 0],
                form,
                place: Place::Site,
                key: 0x5000,
            };
            let back = CSlotWrite::from(&s).to_slot().expect("decodes");
            assert_eq!(
                (
                    back.addr, back.old, back.new, back.form, back.place, back.key
                ),
                (s.addr, s.old, s.new, s.form, s.place, s.key)
            );
        }
    }
}
