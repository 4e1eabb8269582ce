//! Keys: the typed handle of one static call.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

use crate::error::Result;
use crate::registry::Registry;

/// The untyped part of a key. Its first field is the current target, which
/// the indirect implementation's call sites load directly; its second the
/// trampoline, which near stubs jump through.
///
/// Every field but `registry` is valid for any bit pattern, so memory whose
/// `registry` word equals a live registry's address *is* a valid key: that
/// is what the registry checks before it trusts a site-table entry. What
/// the registry knows about a key (its sites) lives in the registry, behind
/// its lock, not here.
#[repr(C, align(8))]
#[derive(Debug)]
pub struct RawKey {
    pub(crate) func: AtomicPtr<u8>,
    pub(crate) tramp: *const u8,
    pub(crate) registry: &'static Registry,
    /// 1 once `func` was aligned with the trampoline's initial jump (see
    /// `Registry::adopt`); written under the registry lock.
    pub(crate) adopted: AtomicU8,
}

/// Byte offset of [`RawKey`]'s `registry` field (what the registry, and
/// `sctool` in a built file, compare to decide that memory is a key).
pub const REGISTRY_OFFSET: usize = std::mem::offset_of!(RawKey, registry);
/// Byte offset of [`RawKey`]'s trampoline pointer (what near stubs jump
/// through).
pub const TRAMPOLINE_OFFSET: usize = std::mem::offset_of!(RawKey, tramp);

// SAFETY: `func` and `adopted` are atomic; `tramp` and `registry` are
// immutable.
unsafe impl Sync for RawKey {}
// SAFETY: as above; a key is a `static` and never moves between owners.
unsafe impl Send for RawKey {}

impl RawKey {
    /// Address of the key (what site-table entries point to).
    pub fn addr(&self) -> usize {
        self as *const RawKey as usize
    }

    /// The registry of the implementation this key belongs to (whose
    /// [`Registry::design`] describes its sites).
    pub fn registry(&self) -> &'static Registry {
        self.registry
    }

    /// Address of the key's trampoline, if its implementation has one.
    pub fn trampoline(&self) -> Option<usize> {
        (!self.tramp.is_null()).then_some(self.tramp as usize)
    }

    /// The raw current target (null for none).
    pub fn target_addr(&self) -> Option<usize> {
        self.registry
            .decode_target(self.func.load(Ordering::Acquire))
    }
}

/// A static call: a key with a typed signature `F` (an `extern "C" fn`
/// pointer type) and a current target.
///
/// Define one with the `define_static_call!` macro of an implementation
/// crate; call it with `static_call!`.
#[repr(transparent)]
#[derive(Debug)]
pub struct StaticCall<F> {
    raw: RawKey,
    _sig: PhantomData<F>,
}

impl<F: Signature> StaticCall<F> {
    #[doc(hidden)]
    /// # Safety
    /// `tramp` must be this key's trampoline (null for the indirect
    /// implementation) whose slot currently jumps to `func` (or returns, for
    /// a null `func`), and `registry` the registry of the implementation
    /// that emitted the key's sites.
    pub const unsafe fn __new(
        registry: &'static Registry,
        tramp: *const u8,
        func: *const u8,
    ) -> Self {
        StaticCall {
            raw: RawKey {
                func: AtomicPtr::new(func as *mut u8),
                tramp,
                registry,
                adopted: AtomicU8::new(0),
            },
            _sig: PhantomData,
        }
    }

    /// Points the key at `f`.
    ///
    /// Before `init()` only the trampoline is rewritten (call sites still
    /// call it and so reach `f`); afterwards the implementation rewrites
    /// whatever its design says (every site, or the trampoline). Safe while
    /// other threads call the key: each call reaches either the old or the
    /// new target.
    ///
    /// # Errors
    /// A site or trampoline that does not hold what the library wrote there
    /// ([`crate::Error::UnexpectedBytes`]), a target with no in-range path,
    /// or a failed system call. Nothing is changed when an error is returned.
    pub fn update(&'static self, f: F) -> Result<()> {
        self.raw.registry.update(&self.raw, f.addr())
    }

    /// Every call site of this key the registry knows (after `init()`, or
    /// in loaded modules): address, module, init flags and the form its
    /// slot holds now. Before `init()` the program's own sites are not
    /// registered yet.
    pub fn sites(&self) -> Vec<crate::SiteInfo> {
        self.raw.registry.key_sites(&self.raw)
    }

    /// The current target, or `None` for a conditional key set to none.
    pub fn query(&self) -> Option<F> {
        // SAFETY: the registry only ever stores targets of type F for this
        // key (update takes an F).
        self.raw
            .target_addr()
            .map(|a| unsafe { F::from_addr(a as *const u8) })
    }
}

impl<F> StaticCall<F> {
    /// The untyped key.
    pub fn raw(&self) -> &RawKey {
        &self.raw
    }

    /// The untyped key, for as long as the key lives.
    pub(crate) fn raw_static(&'static self) -> &'static RawKey {
        &self.raw
    }
}

impl<F: Signature> StaticCall<F>
where
    F::Ret: ReturnsZero,
{
    /// Points the key at RET0, the shared "return 0" target (the kernel's
    /// `__static_call_return0`): every call returns 0 (`false`, a null
    /// pointer) at the cost of one `xor eax, eax` where the implementation
    /// patches sites, without calling anything. [`StaticCall::query`] then
    /// returns that shared function, and [`StaticCall::is_ret0`] says so.
    ///
    /// # Errors
    /// As for [`StaticCall::update`].
    pub fn update_ret0(&'static self) -> Result<()> {
        self.raw
            .registry
            .update(&self.raw, crate::registry::ret0_stub as *const u8)
    }
}

impl<F> StaticCall<F> {
    /// Whether the key's target is RET0 (see `update_ret0`).
    pub fn is_ret0(&self) -> bool {
        // The canonical RET0 function, which every copy of the crate
        // stores (`text/shared.rs`): a program key set to RET0 reads so in
        // a plugin with a copy of its own.
        self.raw.func.load(Ordering::Acquire) as usize == crate::text::shared::ret0_known()
    }
}

/// A return type RET0 can produce: zero in `rax` is a valid value of it
/// (integers, `bool`, raw pointers).
///
/// # Safety
/// An all-zero `rax` must be a valid `Self` as the C ABI returns it.
pub unsafe trait ReturnsZero {}
macro_rules! returns_zero {
    ($($t:ty),*) => {$(
        // SAFETY: zero is a valid value of this type.
        unsafe impl ReturnsZero for $t {}
    )*};
}
returns_zero!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, bool);
// SAFETY: a null pointer is a valid raw pointer.
unsafe impl<T: ?Sized> ReturnsZero for *const T {}
// SAFETY: a null pointer is a valid raw pointer.
unsafe impl<T: ?Sized> ReturnsZero for *mut T {}

impl<F: Signature<Ret = ()>> StaticCall<F> {
    /// Points a key whose function returns nothing at `f`, or at nothing:
    /// with `None` every call does nothing (a NOP at inline-patched sites, a
    /// `ret` in the trampoline).
    ///
    /// # Errors
    /// As for [`StaticCall::update`].
    pub fn update_cond(&'static self, f: Option<F>) -> Result<()> {
        self.raw
            .registry
            .update(&self.raw, f.map_or(std::ptr::null(), |f| f.addr()))
    }
}

/// A key seen from a module: it can be called (with `static_call!`) and
/// queried, but not updated, so the rule "update keys from the program,
/// not from a module" is kept by the type system (the kernel's
/// `EXPORT_STATIC_CALL_TRAMP`). `declare_static_call!` declares the
/// program's key with this type; it is the same memory as the program's
/// [`StaticCall`].
#[repr(transparent)]
#[derive(Debug)]
pub struct CallOnly<F> {
    key: StaticCall<F>,
}

impl<F: Signature> CallOnly<F> {
    /// The current target, or `None` for a conditional key set to none.
    pub fn query(&self) -> Option<F> {
        self.key.query()
    }
}

impl<F> CallOnly<F> {
    /// The untyped key.
    pub fn raw(&self) -> &RawKey {
        self.key.raw()
    }
}

/// A function-pointer type usable as a key's signature:
/// `extern "C" fn(A0, …, An) -> R` with up to six arguments.
///
/// # Safety
/// `addr`/`from_addr` must convert between the pointer and its address.
pub unsafe trait Signature: Copy + 'static {
    /// The return type.
    type Ret;
    /// The function's address.
    fn addr(self) -> *const u8;
    /// The function at `p`.
    ///
    /// # Safety
    /// `p` must be a function of exactly this signature.
    unsafe fn from_addr(p: *const u8) -> Self;
}

/// The `Signature` impls, generated by `build.rs`: every arity up to six,
/// each argument a value or a reference of its own (higher-ranked)
/// lifetime.
// `extern "C" fn(A0)` and `for<'a> extern "C" fn(&'a T)` are different
// types, but coherence warns that they may one day be treated as
// overlapping (rust-lang/rust#56105, the `coherence_leak_check` lint);
// wasm-bindgen and others rely on the same distinction.
#[allow(coherence_leak_check)]
mod signatures {
    use super::Signature;
    include!(concat!(env!("OUT_DIR"), "/signatures.rs"));
}

/// An argument type a static call can pass: one that the C calling
/// convention passes in a single general-purpose register.
///
/// # Safety
/// `into_reg` must produce the register value the C ABI uses for `self`.
pub unsafe trait Arg {
    /// The register value.
    fn into_reg(self) -> u64;
}

/// A return type a static call can return: `()` or one that the C calling
/// convention returns in `rax`.
///
/// # Safety
/// `from_reg` must read the value the C ABI leaves in `rax`.
pub unsafe trait Ret {
    /// The value from `rax`.
    ///
    /// # Safety
    /// `rax` must have been set by a function returning `Self`.
    unsafe fn from_reg(rax: u64) -> Self;
}

macro_rules! int_abi {
    ($($t:ty),*) => {$(
        // SAFETY: integers travel in one GPR; the callee reads only the low
        // bits of narrower types.
        unsafe impl Arg for $t {
            fn into_reg(self) -> u64 {
                self as u64
            }
        }
        // SAFETY: the low bits of rax hold the returned integer.
        unsafe impl Ret for $t {
            unsafe fn from_reg(rax: u64) -> Self {
                rax as $t
            }
        }
    )*};
}
int_abi!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

// SAFETY: bool is passed as 0/1 in the low byte.
unsafe impl Arg for bool {
    fn into_reg(self) -> u64 {
        self as u64
    }
}
// SAFETY: bool is returned as 0/1 in al.
unsafe impl Ret for bool {
    unsafe fn from_reg(rax: u64) -> Self {
        rax as u8 != 0
    }
}
// SAFETY: nothing is returned.
unsafe impl Ret for () {
    unsafe fn from_reg(_: u64) -> Self {}
}
// SAFETY: pointers travel in one GPR.
unsafe impl<T> Arg for *const T {
    fn into_reg(self) -> u64 {
        self as usize as u64
    }
}
// SAFETY: pointers travel in one GPR.
unsafe impl<T> Arg for *mut T {
    fn into_reg(self) -> u64 {
        self as usize as u64
    }
}
// SAFETY: references are passed as pointers; the callee's signature
// carries the same reference type.
unsafe impl<T> Arg for &T {
    fn into_reg(self) -> u64 {
        self as *const T as usize as u64
    }
}
// SAFETY: as for `&T`.
unsafe impl<T> Arg for &mut T {
    fn into_reg(self) -> u64 {
        self as *mut T as usize as u64
    }
}
// SAFETY: pointers are returned in rax.
unsafe impl<T> Ret for *const T {
    unsafe fn from_reg(rax: u64) -> Self {
        rax as usize as *const T
    }
}
// SAFETY: pointers are returned in rax.
unsafe impl<T> Ret for *mut T {
    unsafe fn from_reg(rax: u64) -> Self {
        rax as usize as *mut T
    }
}
