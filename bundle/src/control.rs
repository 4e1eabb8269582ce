//! The names of the controls (subjects that are not implementations).

/// A direct call to an `#[inline(never)] extern "C" fn`: the physical
/// limit of a static call.
pub const DIRECT: &str = "direct";
/// A call through a plain function pointer (no retpoline).
pub const FN_POINTER: &str = "fn-pointer";
/// A `dyn Trait` method call.
pub const DYN_TRAIT: &str = "dyn-trait";
/// `if let Some(f) = opt { f(x) }` on an `Option<fn>`.
pub const OPTION_FN: &str = "option-fn";
/// The A/A control: a second, separately compiled copy of the direct
/// call's loops. Its ratio to [`DIRECT`] is the run's noise floor.
pub const DIRECT_AA: &str = "direct-aa";
/// An indirect call through memory, `call qword ptr [rip + slot]`:
/// what a kernel with Enhanced IBRS (and no retpoline) may emit. (Not
/// the implementation `plain-indirect`, whose sites load the key into
/// `rax` and `call rax`.)
pub const CALL_MEM_INDIRECT: &str = "call-mem-indirect";
/// `mov rax, [rip + slot]; lfence; call rax`: the AMD-style
/// (`retpoline,lfence`) indirect call.
pub const LFENCE_INDIRECT: &str = "lfence-indirect";
