//! What differs between the three implementations, in one place.
//!
//! Shared code never asks *which* implementation it serves, only what that
//! implementation writes: a trampoline, call sites, and how a none target
//! and an unpatched site look.

/// Which of the three designs a registry implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Update rewrites the trampoline and every call site.
    InlinePatch,
    /// Update rewrites only the trampoline.
    Trampoline,
    /// Update stores a function pointer; sites call through a retpoline.
    Indirect,
}

/// What an unpatched call site of a key calls (its *home*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HomeRule {
    /// The key's trampoline, or a near stub that jumps through it.
    TrampolineOrStub,
    /// A retpoline thunk (the implementation's own, or a module's copy of
    /// its bytes).
    Thunk,
}

impl Flavor {
    /// Short name (`inline-patch`, `trampoline`, `indirect`).
    pub fn name(self) -> &'static str {
        match self {
            Flavor::InlinePatch => "inline-patch",
            Flavor::Trampoline => "trampoline",
            Flavor::Indirect => "indirect",
        }
    }

    /// Whether an update rewrites the key's trampoline (so the engine
    /// must be set up, and the trampoline checked and adopted).
    pub fn writes_trampoline(self) -> bool {
        match self {
            Flavor::InlinePatch | Flavor::Trampoline => true,
            Flavor::Indirect => false,
        }
    }

    /// Whether `init()`, updates and module loads rewrite call sites.
    pub fn patches_sites(self) -> bool {
        match self {
            Flavor::InlinePatch => true,
            Flavor::Trampoline | Flavor::Indirect => false,
        }
    }

    /// Whether the key stores a none target as the shared `ret` stub (its
    /// sites call through the pointer without a null check) rather than
    /// null.
    pub(crate) fn none_is_ret_stub(self) -> bool {
        match self {
            Flavor::Indirect => true,
            Flavor::InlinePatch | Flavor::Trampoline => false,
        }
    }

    /// What its unpatched sites call.
    pub(crate) fn home_rule(self) -> HomeRule {
        match self {
            Flavor::InlinePatch | Flavor::Trampoline => HomeRule::TrampolineOrStub,
            Flavor::Indirect => HomeRule::Thunk,
        }
    }
}
