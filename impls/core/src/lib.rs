//! Shared machinery for the three static-call implementations of this
//! workspace (`static-call-inline-patch`, `static-call-trampoline`,
//! `static-call-indirect`): keys, site tables, the registry, and the
//! patching engine. Use one of those crates; this one has no user-facing
//! entry point of its own.
//!
//! See `docs/DESIGN.md` at the repository root for the layout of a site
//! and what happens, step by step, during an update.
#![warn(missing_docs)]

mod error;
mod gate;
mod implementation;
pub mod insn;
mod key;
mod macros;
pub mod maps;
mod module;
mod registry;
pub mod signals;
pub mod site;
pub mod text;

pub use error::{Error, Place, Result};
#[doc(hidden)]
pub use implementation::__str_eq;
pub use key::{
    Arg, CallOnly, REGISTRY_OFFSET, RawKey, Ret, ReturnsZero, Signature, StaticCall,
    TRAMPOLINE_OFFSET,
};
pub use module::{DESCRIPTOR_VERSION, ModuleDescriptor, SharedObject};
pub use registry::{
    Batch, CALL_RAX, Design, Group, ImageSections, InitPolicy, LOAD_RAX, LOAD_RAX_RAX, ModuleId,
    ModuleSpec, ModuleStats, NoneTarget, Registry, STUB_LEN, SiteInfo, SiteShape, Stats, near_stub,
    ret_stub, ret0_stub,
};
pub use text::valgrind::running_on_valgrind;

#[doc(hidden)]
pub fn __require_unit_return<F: Signature<Ret = ()>>() {}
