//! The open description of a design: what its call sites and keys hold,
//! as data every shared part asks (intake, `sites()`, `site_code`,
//! `unpatched_target`, the conformance suite, the benchmarks' site proofs
//! and `sctool`). No shared code names a design; an implementation crate
//! outside this workspace describes its own with a [`Design`] value.

use crate::insn::{Form, SLOT_LEN};

/// How a design's call sites look before anything patches them (and, for
/// designs that never patch sites, always).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SiteShape {
    /// The site (its label) is a 5-byte `call rel32` to the key's
    /// trampoline; a module's site calls a near stub ([`crate::near_stub`])
    /// that jumps through the key's trampoline field.
    CallTrampoline,
    /// `mov rax, qword ptr [rip + key]` (a module: through its key slot,
    /// then `mov rax, [rax]`) before the label; the site is a 5-byte
    /// `call rel32` to the design's thunk (the registry's
    /// [`crate::Registry::thunk`]) or a copy of its bytes.
    CallThunk,
    /// The label is at `mov rax, qword ptr [rip + key]`, followed by
    /// `call rax` (9 bytes); a module's site is `mov rax, qword ptr [rip +
    /// key slot]; mov rax, qword ptr [rax]; call rax` (12 bytes). The call
    /// goes through the key's function pointer: nothing is ever patched.
    LoadCallRax,
}

/// How a key stores a none target (a conditional key set to none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoneTarget {
    /// A null pointer (the trampoline or site shows it: `ret`, NOP).
    Null,
    /// The shared `ret` stub ([`crate::ret_stub`]): sites call through the
    /// pointer without a null check.
    RetStub,
}

/// What one implementation writes, and where: everything shared code and
/// tools need to know about a design.
///
/// ```
/// use static_call_core::{Design, NoneTarget, SiteShape};
/// // A design whose sites load the key and `call rax` (the worked example
/// // of docs/IMPLEMENTING.md).
/// pub static PLAIN: Design = Design {
///     name: "plain-indirect",
///     sites_section: "static_call_sites_plain",
///     init_section: "static_call_init_plain",
///     registry_symbol: "static_call_plain_indirect::__private::REGISTRY",
///     site: SiteShape::LoadCallRax,
///     trampoline: false,
///     patches_sites: false,
///     none: NoneTarget::RetStub,
///     thunk: &[],
/// };
/// assert!(!PLAIN.writes_code());
/// assert_eq!(PLAIN.site_len(false), 9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Design {
    /// Short name, as in the conformance matrix (`inline-patch`, …).
    pub name: &'static str,
    /// The site-table section its macros emit (`static_call_sites_<x>`).
    pub sites_section: &'static str,
    /// Its init-text section (`static_call_init_<x>`).
    pub init_section: &'static str,
    /// The demangled path of its registry static
    /// (`<crate>::__private::REGISTRY`), how `sctool` recognises its keys.
    pub registry_symbol: &'static str,
    /// What its call sites hold unpatched.
    pub site: SiteShape,
    /// Each key has a trampoline (`jmp rel32` or `ret`, the `ud1`
    /// signature and a back-reference) that updates rewrite.
    pub trampoline: bool,
    /// `init()`, updates and module loads rewrite call sites: `call
    /// target`, the 5-byte NOP for none, `xor eax, eax` for RET0, and the
    /// unpatched call (the *home*) for a target out of `rel32` reach.
    pub patches_sites: bool,
    /// How a none target is stored in the key.
    pub none: NoneTarget,
    /// For a [`SiteShape::CallThunk`] design, the code of the thunk its
    /// sites call (the registry's [`crate::Registry::thunk`]), whole and
    /// position-independent: a module's site may call a copy of it. Tools
    /// recognise a site's call target by these bytes (`sctool`) and
    /// generated modules copy them; the benchmarks' proofs check that the
    /// registry's thunk holds them. Empty for the other shapes.
    pub thunk: &'static [u8],
}

impl Design {
    /// `static-call-inline-patch`: sites and trampoline are rewritten.
    pub const INLINE_PATCH: Design = Design {
        name: "inline-patch",
        sites_section: "static_call_sites_inline",
        init_section: "static_call_init_inline",
        registry_symbol: "static_call_inline_patch::__private::REGISTRY",
        site: SiteShape::CallTrampoline,
        trampoline: true,
        patches_sites: true,
        none: NoneTarget::Null,
        thunk: &[],
    };
    /// `static-call-trampoline`: only the trampoline is rewritten.
    pub const TRAMPOLINE: Design = Design {
        name: "trampoline",
        sites_section: "static_call_sites_tramp",
        init_section: "static_call_init_tramp",
        registry_symbol: "static_call_trampoline::__private::REGISTRY",
        site: SiteShape::CallTrampoline,
        trampoline: true,
        patches_sites: false,
        none: NoneTarget::Null,
        thunk: &[],
    };
    /// `static-call-indirect`: one atomic store; sites call a retpoline.
    pub const INDIRECT: Design = Design {
        name: "indirect",
        sites_section: "static_call_sites_indirect",
        init_section: "static_call_init_indirect",
        registry_symbol: "static_call_indirect::__private::REGISTRY",
        site: SiteShape::CallThunk,
        trampoline: false,
        patches_sites: false,
        none: NoneTarget::RetStub,
        thunk: &RETPOLINE_RAX,
    };

    /// Whether an update rewrites code at all (so the patching engine, the
    /// breakpoint protocol and its faults apply).
    pub const fn writes_code(&self) -> bool {
        self.trampoline || self.patches_sites
    }

    /// Whether a none target is stored as the shared `ret` stub.
    pub const fn none_is_ret_stub(&self) -> bool {
        matches!(self.none, NoneTarget::RetStub)
    }

    /// Whether the site's bytes end in a `call rel32` whose target is the
    /// site's *home* (the trampoline, a near stub or a thunk).
    pub const fn calls_home(&self) -> bool {
        matches!(self.site, SiteShape::CallTrampoline | SiteShape::CallThunk)
    }

    /// Bytes from a site's label that belong to the site (its slot): what
    /// intake checks is executable and `sites()` decodes. `keyref`: a
    /// module's site, which reaches its key through a key slot.
    pub const fn site_len(&self, keyref: bool) -> usize {
        match (self.site, keyref) {
            (SiteShape::CallTrampoline | SiteShape::CallThunk, _) => SLOT_LEN,
            (SiteShape::LoadCallRax, false) => LOAD_CALL_LEN,
            (SiteShape::LoadCallRax, true) => LOAD_LOAD_CALL_LEN,
        }
    }

    /// The bytes of an unpatched site at `at` whose call lands on `home`
    /// (for [`SiteShape::CallTrampoline`] and [`SiteShape::CallThunk`]) or
    /// that loads the key at `key` (for [`SiteShape::LoadCallRax`]), and
    /// the offset of the label in them. `None` when out of `rel32` reach.
    pub fn unpatched_code(&self, at: usize, key: usize, home: usize) -> Option<(Vec<u8>, usize)> {
        match self.site {
            SiteShape::CallTrampoline => Some((Form::Call(home).encode(at)?.to_vec(), 0)),
            SiteShape::CallThunk => {
                let mut b = load_rax(at, key)?.to_vec();
                b.extend_from_slice(&Form::Call(home).encode(at + 7)?);
                Some((b, 7))
            }
            SiteShape::LoadCallRax => {
                let mut b = load_rax(at, key)?.to_vec();
                b.extend_from_slice(&CALL_RAX);
                Some((b, 0))
            }
        }
    }

    /// Decodes the site at `at` from its bytes (at least
    /// [`Design::site_len`] of them; `keyref`: a module's site, which
    /// reaches its key through a key slot): [`Form::Call`] for a design whose
    /// sites call a home or a patched target, [`Form::CallVia`] with the
    /// address of the pointer it calls through (the key, or for a module's
    /// site its key slot) for [`SiteShape::LoadCallRax`]. `None` when the
    /// bytes are no form of this design.
    pub fn decode_site(&self, at: usize, bytes: &[u8], keyref: bool) -> Option<Form> {
        match self.site {
            SiteShape::CallTrampoline | SiteShape::CallThunk => {
                Form::decode(at, bytes.get(..SLOT_LEN)?.try_into().ok()?)
            }
            SiteShape::LoadCallRax => {
                let b = bytes.get(..LOAD_CALL_LEN)?;
                if b[..3] != LOAD_RAX {
                    return None;
                }
                let d = i32::from_le_bytes(b[3..7].try_into().ok()?);
                let slot = (at + 7).wrapping_add_signed(d as isize);
                // `call rax` right after the load (of the key), or for a
                // module's site after a second load through its key slot.
                let ok = if keyref {
                    bytes.get(7..10) == Some(&LOAD_RAX_RAX[..])
                        && bytes.get(10..12) == Some(&CALL_RAX[..])
                } else {
                    b[7..9] == CALL_RAX
                };
                ok.then_some(Form::CallVia(slot))
            }
        }
    }
}

/// The retpoline thunk for `rax` that the indirect design's sites call
/// (`static_call_indirect::retpoline_rax`): `call 1f; 2: pause; lfence;
/// jmp 2b; 1: mov [rsp], rax; ret`. The `call` pushes a return address
/// into a capture loop that speculation falls into; the real return
/// address is then overwritten with the target and `ret` jumps there.
const RETPOLINE_RAX: [u8; 17] = [
    0xe8, 0x07, 0x00, 0x00, 0x00, // call 1f
    0xf3, 0x90, // 2: pause
    0x0f, 0xae, 0xe8, // lfence
    0xeb, 0xf9, // jmp 2b
    0x48, 0x89, 0x04, 0x24, // 1: mov [rsp], rax
    0xc3, // ret
];

/// `mov rax, qword ptr [rip + disp32]` (then the disp32).
pub const LOAD_RAX: [u8; 3] = [0x48, 0x8b, 0x05];
/// `mov rax, qword ptr [rax]`.
pub const LOAD_RAX_RAX: [u8; 3] = [0x48, 0x8b, 0x00];
/// `call rax`.
pub const CALL_RAX: [u8; 2] = [0xff, 0xd0];
/// `mov rax, [rip + key]; call rax`.
const LOAD_CALL_LEN: usize = 9;
/// `mov rax, [rip + slot]; mov rax, [rax]; call rax`.
const LOAD_LOAD_CALL_LEN: usize = 12;

/// `mov rax, qword ptr [rip + addr]` at `at`.
fn load_rax(at: usize, addr: usize) -> Option<[u8; 7]> {
    let d = i32::try_from(addr as i128 - (at as i128 + 7)).ok()?;
    let mut b = [0u8; 7];
    b[..3].copy_from_slice(&LOAD_RAX);
    b[3..].copy_from_slice(&d.to_le_bytes());
    Some(b)
}
