//! The names of the peers: published mechanisms of other libraries
//! measured beside the implementations in the same rounds
//! ([`crate::SubjectKind::Peer`]).

/// The `static-keys` crate (Rust userspace jump labels, after the
/// kernel's): `static_branch_unlikely!` sites, 5-byte NOP or `jmp rel32`,
/// rewritten page by page when a key is switched. Measured in
/// `call/cond-none` (key off), `call/cond-some` (key on, then a direct
/// call of the target) and `update/cond-sites` (switching a key, idle
/// only: the crate documents its updates as single-threaded).
pub const STATIC_KEYS: &str = "static-keys";
/// A call of a function in a shared object through the PLT: `call
/// func@PLT`, whose stub is `jmp qword ptr [rip + GOT]`. A trampoline is
/// a PLT stub in all but name: the same `call stub` at the site, but the
/// stub's jump is indirect (through the GOT) where a trampoline's is a
/// direct `jmp rel32` that an update rewrites.
pub const PLT_CALL: &str = "plt-call";
/// A call of a function in a shared object through its GOT entry, `call
/// qword ptr [rip + func@GOTPCREL]`: what rustc emits for a call into
/// another library by default on x86-64 (no PLT).
pub const GOT_CALL: &str = "got-call";
