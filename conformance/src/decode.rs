//! Independent decoding of site and trampoline bytes: the suite's one
//! decoder, `static-call-decode` (iced-x86), shared with the benchmarks'
//! proofs and `sctool`, and independent of the engine's own encoder.

pub use static_call_decode::{Slot as Insn, read_code, slot_at as insn_at};
