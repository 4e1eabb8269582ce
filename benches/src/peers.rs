//! The peers: published mechanisms of other libraries, measured beside the
//! implementations in the same interleaved rounds and proved by decoding
//! like them ([`SubjectKind::Peer`]; names in [`static_call_bundle::peer`]).
//!
//! * **static-keys** (the `static-keys` crate, pinned at 0.8.2: Rust
//!   userspace jump labels, after the kernel's). A site is
//!   `if static_branch_unlikely!(KEY) { … }`: a 5-byte NOP that falls
//!   through while the key is off, a `jmp rel32` to the out-of-line block
//!   while it is on. In `call/cond-none` a key that is off, against
//!   `static_call_cond!` on a none key; in `call/cond-some` a key that is
//!   on (compiled on: the same `jmp rel32` a switched-on key holds), the
//!   branch taken and then a direct `call` of the target, against
//!   `static_call_cond!` with a target; in `update/cond-sites` switching a
//!   key with 1 to 2,000 compiled sites against `update_cond` on the same
//!   number of sites ([`cond_sites`]). The crate documents its switches as
//!   single-threaded, so they are measured idle only.
//!
//!   Where the sites are: the crate's own table, the `__static_keys`
//!   section (one entry per site: the site's address, the out-of-line
//!   block's, the key's), read after its `global_init()` has made the
//!   entries absolute ([`jump_entries`]; the layout is 0.8.2's, hence the
//!   pin, and the count is checked against the crate's
//!   `jump_entries_count()`). Each entry of a key must lie inside the
//!   function the benchmark runs, as many as it has sites, each holding
//!   the 5-byte NOP (off) or a `jmp rel32` to its block (on), the block's
//!   first call a direct `call` of the target, and, for the call loops, the
//!   site inside the loop.
//! * **plt-call** and **got-call**: a function in a shared object,
//!   `libsc_peer.so` (`benches/peer/sc_peer.c`, built by `build.rs` with the
//!   machine's C compiler and linked with an rpath), called as `call
//!   sc_peer_add1@PLT` and as `call qword ptr [rip +
//!   sc_peer_add1@GOTPCREL]`, each in `call/hot-1arg` against the direct
//!   call. The PLT proof decodes the site (`call rel32` to a stub of this
//!   program) *and* the stub (`jmp qword ptr [rip + GOT]`, after an
//!   `endbr64` where the linker puts one), and requires the GOT slot to
//!   hold the shared object's function; the GOT proof requires `call
//!   qword ptr [rip + slot]` with the slot in this program holding it. A
//!   trampoline is a PLT stub in all but name: the same `call stub` at
//!   the site, but the trampoline's `jmp rel32` is direct (an update
//!   rewrites it), where the stub's jump loads the GOT at every call.
//!
//! The calls are written in inline assembly, as the direct control's are,
//! so that the optimiser can neither hoist the GOT load out of the loop
//! (`mov r14, [GOT]` before it, `call r14` in it) nor choose the form.

use std::sync::atomic::{AtomicU64, Ordering};

use iced_x86::{Code, Instruction, Mnemonic};
use static_call_bundle::{SiteDump, SubjectKind, peer, scenario};

use crate::prove::{decode, dump, format_insn, loop_around, name_of, read_code};
use crate::subjects::{CallScenario, HookFn, Loops, Subject};

// ------------------------------------------------------------ the target

/// Calls of [`tick`].
pub static TICKS: AtomicU64 = AtomicU64::new(0);

/// The target of every set conditional call (`call/cond-some`,
/// `update/cond-sites`): counts its calls with a plain load and store (no
/// locked instruction, which would cost more than the call it counts; the
/// loops that call it run on one thread).
#[inline(never)]
pub extern "C" fn tick(_x: u64) {
    TICKS.store(
        TICKS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Calls of [`tick`] so far.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

// ----------------------------------------------------------- static-keys

/// One `static-keys` jump entry, absolute (after `global_init()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JumpEntry {
    /// The site: the 5-byte NOP or `jmp rel32`.
    pub code: usize,
    /// The out-of-line block a switched-on site jumps to.
    pub target: usize,
    /// The key (its low bit: the likely branch is the true one).
    pub key: usize,
}

/// The crate's entry layout (0.8.2): three words.
#[repr(C)]
struct RawEntry {
    code: usize,
    target: usize,
    key: usize,
}

// SAFETY: the linker defines these two symbols around the `__static_keys`
// section that the crate's sites fill (the crate declares them itself);
// they are only used for their addresses.
unsafe extern "C" {
    #[link_name = "__start___static_keys"]
    static JUMP_ENTRY_START: RawEntry;
    #[link_name = "__stop___static_keys"]
    static JUMP_ENTRY_STOP: RawEntry;
}

/// Every `static-keys` jump entry of the program (dummies left out), read
/// after the crate's `global_init()` (called here; it runs once) has made
/// them absolute.
///
/// # Errors
/// A section whose size is not a whole number of entries, or whose count
/// differs from the crate's `jump_entries_count()` (another layout than
/// 0.8.2's).
pub fn jump_entries() -> Result<Vec<JumpEntry>, String> {
    static_keys::global_init();
    let start = (&raw const JUMP_ENTRY_START) as usize;
    let stop = (&raw const JUMP_ENTRY_STOP) as usize;
    let size = std::mem::size_of::<RawEntry>();
    if stop < start || !(stop - start).is_multiple_of(size) {
        return Err(format!(
            "static-keys: the __static_keys section {start:#x}..{stop:#x} is not a whole number of {size}-byte entries"
        ));
    }
    let n = (stop - start) / size;
    if n != static_keys::jump_entries_count() {
        return Err(format!(
            "static-keys: {n} entries of {size} bytes in __static_keys, the crate counts {} (not the 0.8.2 layout)",
            static_keys::jump_entries_count()
        ));
    }
    Ok((0..n)
        .map(|i| {
            // SAFETY: entry `i` of the section, inside its bounds (checked
            // above); global_init() has finished writing it.
            let e = unsafe { std::ptr::read_volatile((start + i * size) as *const RawEntry) };
            JumpEntry {
                code: e.code,
                target: e.target,
                key: e.key,
            }
        })
        .filter(|e| e.code != 0)
        .collect())
}

/// The 5-byte NOP a switched-off site holds.
pub const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

/// Checks the sites of one `static-keys` key: exactly `count` entries,
/// each inside `func` (`[addr, addr + size)`), each holding the 5-byte NOP
/// (`enabled` false) or `jmp rel32` to its block (true), whose first call
/// is `call rel32` to `body`; with `in_loop`, each site inside a loop of
/// `func`. Returns a dump of the first site (and its block).
///
/// # Errors
/// What was found instead, and where.
pub fn check_key_sites(
    (subject, key_name, phase): (&str, &str, &str),
    key: usize,
    enabled: bool,
    (addr, size): (usize, usize),
    count: usize,
    body: usize,
    in_loop: bool,
) -> Result<Vec<SiteDump>, String> {
    let entries: Vec<JumpEntry> = jump_entries()?
        .into_iter()
        .filter(|e| e.key & !1 == key)
        .collect();
    if entries.len() != count {
        return Err(format!(
            "{subject} {key_name}: {} jump entries of the key in __static_keys, expected {count}",
            entries.len()
        ));
    }
    let inside = |a: usize| (addr..addr + size).contains(&a);
    // SAFETY: the function's own bytes, per the symbol table.
    let insns = decode(&unsafe { read_code(addr, size) }, addr);
    let mut out = Vec::new();
    for (k, e) in entries.iter().enumerate() {
        if !inside(e.code) || !inside(e.target) {
            return Err(format!(
                "{subject} {key_name}: site {:#x} (block {:#x}) lies outside `{}` {addr:#x}..{:#x}",
                e.code,
                e.target,
                name_of(addr),
                addr + size
            ));
        }
        if e.key & 1 != 0 {
            return Err(format!(
                "{subject} {key_name}: site {:#x} is a static_branch_likely! site, expected static_branch_unlikely!",
                e.code
            ));
        }
        // SAFETY: five bytes of the function, inside it (checked above).
        let bytes = unsafe { read_code(e.code, 5) };
        let i = decode(&bytes, e.code);
        let first = i.first().copied().unwrap_or_default();
        let (ok, form) = if enabled {
            (
                first.code() == Code::Jmp_rel32_64
                    && first.near_branch_target() as usize == e.target,
                format!(
                    "jmp rel32 to the out-of-line block {:#x} (key on)",
                    e.target
                ),
            )
        } else {
            (
                bytes == NOP5,
                "5-byte NOP, falling through (key off)".to_owned(),
            )
        };
        if !ok {
            return Err(format!(
                "{subject} {key_name}: site {:#x} holds `{}` ({}), expected {form}",
                e.code,
                format_insn(&first),
                crate::prove::hex(&bytes)
            ));
        }
        // The block: its first call is the direct call of the target.
        let at = insns.iter().position(|i| i.ip() as usize == e.target);
        let call = at.and_then(|at| {
            insns[at..]
                .iter()
                .take(8)
                .find(|i| i.mnemonic() == Mnemonic::Call)
        });
        let direct = call.is_some_and(|c| {
            c.code() == Code::Call_rel32_64 && c.near_branch_target() as usize == body
        });
        if !direct {
            return Err(format!(
                "{subject} {key_name}: the block {:#x} of site {:#x} does not begin with `call {}` (found {})",
                e.target,
                e.code,
                name_of(body),
                call.map_or("no call".into(), format_insn)
            ));
        }
        if in_loop {
            let site = insns
                .iter()
                .position(|i| i.ip() as usize == e.code)
                .ok_or_else(|| {
                    format!(
                        "{subject} {key_name}: no instruction of `{}` starts at the site {:#x}",
                        name_of(addr),
                        e.code
                    )
                })?;
            if loop_around(&insns, site).is_none() {
                return Err(format!(
                    "{subject} {key_name}: the site {:#x} is not inside a loop of `{}`",
                    e.code,
                    name_of(addr)
                ));
            }
        }
        if k == 0 {
            out.push(dump(
                subject, key_name, phase, "site", e.code, &bytes, &form,
            ));
            let c = call.copied().unwrap_or_default();
            let from = e.target;
            let to = c.next_ip() as usize;
            // SAFETY: the block's bytes up to its call, inside the function.
            let b = unsafe { read_code(from, to.saturating_sub(from).min(32)) };
            out.push(dump(
                subject,
                key_name,
                phase,
                "block",
                from,
                &b,
                &format!("the out-of-line block: call {}", name_of(body)),
            ));
        }
    }
    Ok(out)
}

/// Puts a function on a page of its own section, `sc_peer_keys`, aligned to
/// 4 KiB (an empty piece of assembly sets the alignment): a switch of a
/// `static-keys` key replaces each page that holds one of its sites with a
/// rewritten copy (`mremap`), so the crate's sites are kept off the pages
/// of the suite's own code.
macro_rules! keys_section {
    () => {
        ::core::arch::global_asm!(
            ".pushsection \"sc_peer_keys\",\"ax\",@progbits\n.p2align 12\n.popsection"
        );
    };
}

/// The `static-keys` subject's loops, in their own section.
pub mod static_keys_peer {
    use static_keys::{define_static_key_false, define_static_key_true, static_branch_unlikely};

    keys_section!();

    define_static_key_false!(OFF);
    define_static_key_true!(ON);

    /// `call hook` (the conditional target that must never be called).
    pub mod hook {
        static_call_core::__static_call_fn! {
            { "call {f}", f = sym crate::targets::hook, } (u64)
        }
    }
    /// `call tick`.
    pub mod tick {
        static_call_core::__static_call_fn! {
            { "call {f}", f = sym crate::peers::tick, } (u64)
        }
    }

    /// `n` branches on a key that is off (the site falls through); returns
    /// `n`.
    #[inline(never)]
    #[unsafe(link_section = "sc_peer_keys")]
    pub fn cond_none(n: u64) -> u64 {
        let mut c = ::std::hint::black_box(0u64);
        for i in 0..n {
            if static_branch_unlikely!(OFF) {
                hook::__call(i);
            }
            c += 1;
        }
        c
    }

    /// `n` branches on a key that is on (the site jumps to the block, which
    /// calls `tick` directly); returns `n`.
    #[inline(never)]
    #[unsafe(link_section = "sc_peer_keys")]
    pub fn cond_some(n: u64) -> u64 {
        let mut c = ::std::hint::black_box(0u64);
        for i in 0..n {
            if static_branch_unlikely!(ON) {
                tick::__call(i);
            }
            c += 1;
        }
        c
    }

    /// The key of [`cond_none`] (off).
    pub fn off() -> (usize, bool) {
        (&raw const OFF as usize, OFF.is_enabled())
    }

    /// The key of [`cond_some`] (on).
    pub fn on() -> (usize, bool) {
        (&raw const ON as usize, ON.is_enabled())
    }
}

// ---------------------------------------------------- the shared object

// SAFETY: `libsc_peer.so` (peer/sc_peer.c, linked by build.rs) defines
// `uint64_t sc_peer_add1(uint64_t x) { return x + 1; }`.
unsafe extern "C" {
    /// `x + 1`, in the shared object.
    pub fn sc_peer_add1(x: u64) -> u64;
}

/// `call sc_peer_add1@PLT`.
pub mod plt_call {
    /// The call.
    pub mod one {
        static_call_core::__static_call_fn! {
            { "call {f}@PLT", f = sym crate::peers::sc_peer_add1, } (u64) -> u64
        }
    }
    /// `n` calls through the PLT; returns `n`.
    #[inline(never)]
    pub fn hot1(n: u64) -> u64 {
        let mut x = ::std::hint::black_box(0u64);
        for _ in 0..n {
            x = one::__call(x);
        }
        x
    }
}

/// `call qword ptr [rip + sc_peer_add1@GOTPCREL]`.
pub mod got_call {
    /// The call.
    pub mod one {
        static_call_core::__static_call_fn! {
            { "call qword ptr [rip + {f}@GOTPCREL]", f = sym crate::peers::sc_peer_add1, } (u64) -> u64
        }
    }
    /// `n` calls through the GOT; returns `n`.
    #[inline(never)]
    pub fn hot1(n: u64) -> u64 {
        let mut x = ::std::hint::black_box(0u64);
        for _ in 0..n {
            x = one::__call(x);
        }
        x
    }
}

/// Where the dynamic linker says `addr` lies: the object's base and file.
fn object_of(addr: usize) -> Option<(usize, String)> {
    // SAFETY: a plain struct of pointers and integers; all-zero is valid.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables and writes `info`.
    if unsafe { libc::dladdr(addr as *const _, &mut info) } == 0 {
        return None;
    }
    let name = if info.dli_fname.is_null() {
        String::new()
    } else {
        // SAFETY: a NUL-terminated string owned by the loader.
        unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }
            .to_string_lossy()
            .into_owned()
    };
    Some((info.dli_fbase as usize, name))
}

/// The shared object's function, as the dynamic linker resolves it, and
/// the object's base.
///
/// # Errors
/// The symbol not found, or not in `libsc_peer.so`.
pub fn shared_function() -> Result<(usize, usize), String> {
    // SAFETY: a lookup by a NUL-terminated name in every loaded object.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"sc_peer_add1".as_ptr()) } as usize;
    if f == 0 {
        return Err("plt/got peers: dlsym(sc_peer_add1) found nothing".into());
    }
    match object_of(f) {
        Some((base, name)) if name.ends_with("libsc_peer.so") => Ok((f, base)),
        other => Err(format!(
            "plt/got peers: sc_peer_add1 at {f:#x} lies in {other:?}, not libsc_peer.so"
        )),
    }
}

// -------------------------------------------------------------- subjects

static STATIC_KEYS: Subject = Subject {
    name: peer::STATIC_KEYS,
    kind: SubjectKind::Peer,
    description: "the static-keys crate 0.8.2 (Rust userspace jump labels): `if static_branch_unlikely!(KEY)`, a 5-byte NOP falling through while the key is off, a `jmp rel32` to an out-of-line direct `call` of the target while it is on; a switch rewrites each site's page (a rewritten copy mremapped over the text), documented as single-threaded",
    loops: Loops {
        hot1: None,
        hot6: None,
        many: None,
        cond_none: Some(static_keys_peer::cond_none),
        cond_some: Some(static_keys_peer::cond_some),
    },
    imp: None,
};

static PLT_CALL: Subject = Subject {
    name: peer::PLT_CALL,
    kind: SubjectKind::Peer,
    description: "`call func@PLT` into a shared object (libsc_peer.so, x + 1 in C), whose stub is `jmp qword ptr [rip + GOT]`: a trampoline is a PLT stub in all but name, but a trampoline's `jmp rel32` is direct (an update rewrites it) where the stub's jump loads the GOT at every call",
    loops: Loops {
        hot1: Some(plt_call::hot1),
        hot6: None,
        many: None,
        cond_none: None,
        cond_some: None,
    },
    imp: None,
};

static GOT_CALL: Subject = Subject {
    name: peer::GOT_CALL,
    kind: SubjectKind::Peer,
    description: "`call qword ptr [rip + func@GOTPCREL]` into the same shared object: what rustc emits for a call into another library by default on x86-64 (no PLT), an indirect call through memory",
    loops: Loops {
        hot1: Some(got_call::hot1),
        hot6: None,
        many: None,
        cond_none: None,
        cond_some: None,
    },
    imp: None,
};

/// The peers, in display order.
pub static PEERS: [&Subject; 3] = [&STATIC_KEYS, &PLT_CALL, &GOT_CALL];

/// Proves a peer's loop for `sc` (`addr..addr + size`, the loop function
/// `name`): see the module's documentation for what each must hold.
///
/// # Errors
/// The form found, where and what was expected.
pub fn prove(
    s: &Subject,
    sc: &CallScenario,
    addr: usize,
    size: usize,
    name: &str,
    phase: &str,
) -> Result<Vec<SiteDump>, String> {
    match (s.name, sc.id) {
        (peer::STATIC_KEYS, scenario::CALL_COND_NONE | scenario::CALL_COND_SOME) => {
            let none = sc.id == scenario::CALL_COND_NONE;
            let ((key, enabled), key_name, body) = if none {
                (
                    static_keys_peer::off(),
                    "OFF",
                    crate::targets::hook as HookFn as usize,
                )
            } else {
                (static_keys_peer::on(), "ON", tick as HookFn as usize)
            };
            if enabled == none {
                return Err(format!(
                    "{} {}: key {key_name} is {}, expected {}",
                    s.name,
                    sc.id,
                    if enabled { "on" } else { "off" },
                    if none { "off" } else { "on" }
                ));
            }
            let out = check_key_sites(
                (s.name, key_name, phase),
                key,
                enabled,
                (addr, size),
                1,
                body,
                true,
            )?;
            one_call(s, sc, addr, size, name)?;
            Ok(out)
        }
        (peer::PLT_CALL | peer::GOT_CALL, scenario::CALL_HOT_1 | scenario::CALL_HOT_1_IB_OFF) => {
            prove_shared_call(s, sc, addr, size, name, phase)
        }
        _ => Err(format!("no proof written for peer {} in {}", s.name, sc.id)),
    }
}

/// The loop function makes exactly one call.
fn one_call(
    s: &Subject,
    sc: &CallScenario,
    addr: usize,
    size: usize,
    name: &str,
) -> Result<Vec<Instruction>, String> {
    // SAFETY: the loop function's own bytes, per the symbol table.
    let insns = decode(&unsafe { read_code(addr, size) }, addr);
    let calls: Vec<&Instruction> = insns
        .iter()
        .filter(|i| i.mnemonic() == Mnemonic::Call)
        .collect();
    if calls.len() != 1 {
        return Err(format!(
            "{} {}: the loop `{name}` makes {} calls, expected 1 ({})",
            s.name,
            sc.id,
            calls.len(),
            calls
                .iter()
                .take(3)
                .map(|i| format_insn(i))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    Ok(insns)
}

/// The PLT and GOT peers' proof.
fn prove_shared_call(
    s: &Subject,
    sc: &CallScenario,
    addr: usize,
    size: usize,
    name: &str,
    phase: &str,
) -> Result<Vec<SiteDump>, String> {
    // One call first, so that a lazily bound PLT slot is resolved.
    crate::subjects::run_checked(sc, s.name, (sc.pick)(&s.loops).ok_or("no loop")?, 1);
    let (func, so_base) = shared_function()?;
    let insns = one_call(s, sc, addr, size, name)?;
    let k = insns
        .iter()
        .position(|i| i.mnemonic() == Mnemonic::Call)
        .expect("one call");
    let call = insns[k];
    let ctx = |what: String| format!("{} {}: the loop `{name}`: {what}", s.name, sc.id);
    if loop_around(&insns, k).is_none() {
        return Err(ctx(format!(
            "`{}` is not inside a loop",
            format_insn(&call)
        )));
    }
    let read_slot = |slot: usize| -> Result<usize, String> {
        match object_of(slot) {
            Some((base, _)) if base == so_base => Err(ctx(format!(
                "the slot {slot:#x} lies in the shared object, not in this program"
            ))),
            None => Err(ctx(format!("the slot {slot:#x} lies in no loaded object"))),
            // SAFETY: an aligned word of this program's GOT (a mapped,
            // readable relocation slot the dynamic linker filled).
            Some(_) => Ok(unsafe { std::ptr::read_volatile(slot as *const usize) }),
        }
    };
    let site = {
        let len = call.len();
        // SAFETY: the call's own bytes, inside the loop function.
        let b = unsafe { read_code(call.ip() as usize, len) };
        (call.ip() as usize, b)
    };
    if s.name == peer::GOT_CALL {
        if !(call.code() == Code::Call_rm64 && call.is_ip_rel_memory_operand()) {
            return Err(ctx(format!(
                "`{}` is not `call qword ptr [rip + slot]`",
                format_insn(&call)
            )));
        }
        let slot = call.ip_rel_memory_address() as usize;
        let held = read_slot(slot)?;
        if held != func {
            return Err(ctx(format!(
                "the GOT slot {slot:#x} holds {held:#x}, not sc_peer_add1 of libsc_peer.so ({func:#x})"
            )));
        }
        return Ok(vec![dump(
            s.name,
            "sc_peer_add1",
            phase,
            "loop",
            site.0,
            &site.1,
            &format!(
                "call qword ptr [rip + GOT slot {slot:#x}] (holds sc_peer_add1 of libsc_peer.so)"
            ),
        )]);
    }
    // plt-call: `call rel32` to a stub of this program.
    if call.code() != Code::Call_rel32_64 {
        return Err(ctx(format!(
            "`{}` is not `call rel32` (to a PLT stub)",
            format_insn(&call)
        )));
    }
    let stub = call.near_branch_target() as usize;
    if stub == func || object_of(stub).is_none_or(|(base, _)| base == so_base) {
        return Err(ctx(format!(
            "`{}` goes to {stub:#x}, not to a PLT stub of this program",
            format_insn(&call)
        )));
    }
    // SAFETY: the stub's bytes (16, one PLT entry) in this program's text.
    let sb = unsafe { read_code(stub, 16) };
    let si = decode(&sb, stub);
    let jmp = si
        .iter()
        .find(|i| i.code() != Code::Endbr64)
        .copied()
        .unwrap_or_default();
    if !(jmp.code() == Code::Jmp_rm64 && jmp.is_ip_rel_memory_operand()) {
        return Err(ctx(format!(
            "the stub {stub:#x} holds `{}`, expected `jmp qword ptr [rip + GOT]`",
            si.iter()
                .take(2)
                .map(format_insn)
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let slot = jmp.ip_rel_memory_address() as usize;
    let held = read_slot(slot)?;
    if held != func {
        return Err(ctx(format!(
            "the stub's GOT slot {slot:#x} holds {held:#x}, not sc_peer_add1 of libsc_peer.so ({func:#x})"
        )));
    }
    let stub_len = jmp.next_ip() as usize - stub;
    Ok(vec![
        dump(
            s.name,
            "sc_peer_add1",
            phase,
            "loop",
            site.0,
            &site.1,
            &format!("call {stub:#x} (the PLT stub of sc_peer_add1)"),
        ),
        dump(
            s.name,
            "sc_peer_add1",
            phase,
            "plt-stub",
            stub,
            &sb[..stub_len],
            &format!(
                "jmp qword ptr [rip + GOT slot {slot:#x}] (holds sc_peer_add1 of libsc_peer.so)"
            ),
        ),
    ])
}

// ----------------------------------------------------- update/cond-sites

/// Site counts of `update/cond-sites` (the quick mode: 1 and 2,000).
pub fn cond_site_counts() -> &'static [usize] {
    if crate::quick() {
        &[1, 2_000]
    } else {
        &[1, 100, 2_000]
    }
}

macro_rules! rep10 {
    ($($s:tt)*) => { $($s)* $($s)* $($s)* $($s)* $($s)* $($s)* $($s)* $($s)* $($s)* $($s)* };
}
macro_rules! rep100 {
    ($($s:tt)*) => { rep10! { rep10! { $($s)* } } };
}
macro_rules! rep2000 {
    ($($s:tt)*) => { rep10! { rep10! { rep10! { $($s)* $($s)* } } } };
}

/// How a subject of `update/cond-sites` switches its key.
#[derive(Clone, Copy)]
pub enum CondKey {
    /// An implementation's conditional key: `update_cond`.
    Implementation {
        /// Its registry.
        registry: &'static static_call_core::Registry,
        /// The key.
        key: &'static static_call_core::StaticCall<HookFn>,
    },
    /// A `static-keys` key: `enable` / `disable`.
    StaticKeys(&'static static_keys::StaticFalseKey),
}

impl std::fmt::Debug for CondKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CondKey::Implementation { registry, key } => f
                .debug_struct("Implementation")
                .field("design", &registry.design().name)
                .field("key", &key.raw().addr())
                .finish(),
            CondKey::StaticKeys(k) => f
                .debug_tuple("StaticKeys")
                .field(&(*k as *const static_keys::StaticFalseKey))
                .finish(),
        }
    }
}

/// One subject's key of `update/cond-sites`, with its sites in one
/// function.
#[derive(Debug, Clone, Copy)]
pub struct CondSites {
    /// The subject's name.
    pub subject: &'static str,
    /// The key's name in the dumps.
    pub key_name: &'static str,
    /// How many compiled sites the key has.
    pub sites: usize,
    /// Runs every site once (each calls [`tick`] when the key is on);
    /// returns the number of sites.
    pub run: fn(u64) -> u64,
    /// The key.
    pub key: CondKey,
}

impl CondSites {
    /// Switches the key on (to [`tick`]) or off (none): the operation
    /// timed.
    ///
    /// # Errors
    /// The implementation's refusal.
    ///
    /// # Safety
    /// For a `static-keys` key, no other thread may run (the crate's
    /// `enable`/`disable` are documented as single-threaded): see
    /// [`thread_count`].
    pub unsafe fn switch(&self, on: bool) -> Result<(), String> {
        match self.key {
            CondKey::Implementation { key, .. } => key
                .update_cond(on.then_some(tick as HookFn))
                .map_err(|e| format!("{} {}: {e}", self.subject, self.key_name)),
            CondKey::StaticKeys(k) => {
                // SAFETY: the caller guarantees no other thread runs;
                // global_init() has run (`jump_entries`, before any switch).
                unsafe {
                    if on {
                        k.enable();
                    } else {
                        k.disable();
                    }
                }
                Ok(())
            }
        }
    }

    /// Decodes every site of the key (the form its state says), then runs
    /// them all and counts the target's calls: the number of sites when on,
    /// none when off. Returns the first site's dump.
    ///
    /// # Errors
    /// A site of the wrong form, count or place, or a wrong number of calls.
    pub fn check(&self, on: bool, phase: &str) -> Result<Vec<SiteDump>, String> {
        let f = crate::symbols::Symbols::get()?
            .containing(self.run as *const () as usize)
            .ok_or_else(|| format!("{}: no symbol for the sites' function", self.subject))?;
        let (addr, size) = (f.addr, f.size);
        let out = match self.key {
            CondKey::Implementation { registry, key } => {
                let raw = key.raw();
                let sites = registry.sites_of(raw);
                if sites.len() != self.sites {
                    return Err(format!(
                        "{} {}: {} recorded sites, expected {}",
                        self.subject,
                        self.key_name,
                        sites.len(),
                        self.sites
                    ));
                }
                let mut out = Vec::new();
                for (k, &(site, _)) in sites.iter().enumerate() {
                    if !(addr..addr + size).contains(&site) {
                        return Err(format!(
                            "{} {}: site {site:#x} lies outside `{}`",
                            self.subject, self.key_name, f.name
                        ));
                    }
                    // SAFETY: a recorded site of `raw` in this program.
                    let d = unsafe {
                        crate::prove::check_site(
                            self.subject,
                            self.key_name,
                            phase,
                            registry,
                            raw,
                            site,
                        )?
                    };
                    if k == 0 {
                        out = d;
                    }
                }
                out
            }
            CondKey::StaticKeys(k) => {
                if k.is_enabled() != on {
                    return Err(format!(
                        "{} {}: the key is {}, expected {}",
                        self.subject,
                        self.key_name,
                        if k.is_enabled() { "on" } else { "off" },
                        if on { "on" } else { "off" }
                    ));
                }
                check_key_sites(
                    (self.subject, self.key_name, phase),
                    k as *const _ as usize,
                    on,
                    (addr, size),
                    self.sites,
                    tick as HookFn as usize,
                    false,
                )?
            }
        };
        let before = ticks();
        let got = (self.run)(std::hint::black_box(7));
        let calls = ticks().wrapping_sub(before);
        let want = if on { self.sites as u64 } else { 0 };
        if got != self.sites as u64 || calls != want {
            return Err(format!(
                "{} {} ({} sites, key {}): running the sites returned {got} and called the target {calls} times, expected {} and {want}",
                self.subject,
                self.key_name,
                self.sites,
                if on { "on" } else { "off" },
                self.sites
            ));
        }
        Ok(out)
    }
}

/// The `static-keys` keys of `update/cond-sites` and their sites, in
/// their own section.
pub mod static_keys_sites {
    use static_keys::{StaticFalseKey, define_static_key_false, static_branch_unlikely};

    use super::static_keys_peer::tick;

    keys_section!();

    define_static_key_false!(K1);
    define_static_key_false!(K100);
    define_static_key_false!(K2000);

    /// The one site of `K1`.
    #[inline(never)]
    #[unsafe(link_section = "sc_peer_keys")]
    pub fn sites1(x: u64) -> u64 {
        let mut c = ::std::hint::black_box(0u64);
        if static_branch_unlikely!(K1) {
            tick::__call(x);
        }
        c += 1;
        c
    }

    /// The 100 sites of `K100`.
    #[inline(never)]
    #[unsafe(link_section = "sc_peer_keys")]
    pub fn sites100(x: u64) -> u64 {
        let mut c = ::std::hint::black_box(0u64);
        rep100! {
            if static_branch_unlikely!(K100) {
                tick::__call(x);
            }
            c += 1;
        }
        c
    }

    /// The 2,000 sites of `K2000`.
    #[inline(never)]
    #[unsafe(link_section = "sc_peer_keys")]
    pub fn sites2000(x: u64) -> u64 {
        let mut c = ::std::hint::black_box(0u64);
        rep2000! {
            if static_branch_unlikely!(K2000) {
                tick::__call(x);
            }
            c += 1;
        }
        c
    }

    /// The key with `n` sites, as a subject of `update/cond-sites`.
    pub fn key(n: usize) -> Option<super::CondSites> {
        let (key, run, key_name): (&'static StaticFalseKey, fn(u64) -> u64, &'static str) = match n
        {
            1 => (&K1, sites1, "K1"),
            100 => (&K100, sites100, "K100"),
            2_000 => (&K2000, sites2000, "K2000"),
            _ => return None,
        };
        Some(super::CondSites {
            subject: super::peer::STATIC_KEYS,
            key_name,
            sites: n,
            run,
            key: super::CondKey::StaticKeys(key),
        })
    }
}

/// Each implementation's conditional keys of `update/cond-sites`, a module
/// per implementation of the one list.
macro_rules! cond_sites_implementations {
    ($(($m:ident, $krate:path, $name:literal))*) => {
        $(
            #[doc = concat!("The ", $name, " keys of `update/cond-sites`.")]
            pub mod $m {
                use $krate as sc;

                sc::define_static_call!(pub static K1: extern "C" fn(u64) = None;);
                sc::define_static_call!(pub static K100: extern "C" fn(u64) = None;);
                sc::define_static_call!(pub static K2000: extern "C" fn(u64) = None;);

                /// The one site of `K1`.
                #[inline(never)]
                pub fn sites1(x: u64) -> u64 {
                    let mut c = ::std::hint::black_box(0u64);
                    sc::static_call_cond!(K1(x));
                    c += 1;
                    c
                }

                /// The 100 sites of `K100`.
                #[inline(never)]
                pub fn sites100(x: u64) -> u64 {
                    let mut c = ::std::hint::black_box(0u64);
                    rep100! {
                        sc::static_call_cond!(K100(x));
                        c += 1;
                    }
                    c
                }

                /// The 2,000 sites of `K2000`.
                #[inline(never)]
                pub fn sites2000(x: u64) -> u64 {
                    let mut c = ::std::hint::black_box(0u64);
                    rep2000! {
                        sc::static_call_cond!(K2000(x));
                        c += 1;
                    }
                    c
                }

                /// The key with `n` sites.
                pub fn key(n: usize) -> Option<super::CondSites> {
                    let (key, run, key_name): (&'static static_call_core::StaticCall<super::HookFn>, fn(u64) -> u64, &'static str) = match n {
                        1 => (&K1, sites1, "K1"),
                        100 => (&K100, sites100, "K100"),
                        2_000 => (&K2000, sites2000, "K2000"),
                        _ => return None,
                    };
                    Some(super::CondSites {
                        subject: $name,
                        key_name,
                        sites: n,
                        run,
                        key: super::CondKey::Implementation {
                            registry: &sc::__private::REGISTRY,
                            key,
                        },
                    })
                }
            }
        )*

        /// Every subject's key of `update/cond-sites` with `n` sites (one of
        /// 1, 100, 2,000): the implementations', in the one list's order,
        /// then static-keys'.
        pub fn cond_sites(n: usize) -> Vec<CondSites> {
            let mut v: Vec<CondSites> = [$($m::key(n)),*].into_iter().flatten().collect();
            v.extend(static_keys_sites::key(n));
            v
        }
    };
}

/// The implementations' keys of `update/cond-sites`.
pub mod cond_sites_keys {
    use super::{CondKey, CondSites, HookFn, static_keys_sites};
    static_call_implementations::implementations!(cond_sites_implementations);
}
pub use cond_sites_keys::cond_sites;

/// How many threads this process has now (`/proc/self/task`): a
/// `static-keys` switch is measured only while it is 1.
///
/// # Errors
/// The directory cannot be read.
pub fn thread_count() -> Result<usize, String> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .map_err(|e| format!("/proc/self/task: {e}"))
}

/// What a peer's call figure adds to its note: how its site was proved
/// and how it compares (the PLT stub with a trampoline). `None` for other
/// subjects.
pub fn call_note(subject: &str, scenario_id: &str) -> Option<&'static str> {
    Some(match (subject, scenario_id) {
        (peer::PLT_CALL, _) => {
            "plt-call: the site `call stub` and the PLT stub `jmp qword ptr [rip + GOT]` decoded, the GOT slot holding sc_peer_add1 of libsc_peer.so (x + 1 in C); a trampoline is a PLT stub in all but name: the same `call stub` at the site, but a trampoline's `jmp rel32` is direct and rewritten by an update, where the stub's jump is indirect, a load of the GOT at every call (compare with trampoline in this scenario)"
        }
        (peer::GOT_CALL, _) => {
            "got-call: `call qword ptr [rip + GOT slot]` decoded, the slot holding sc_peer_add1 of libsc_peer.so: what rustc emits for a call into another library by default (no PLT), written in assembly so that the load stays in the loop"
        }
        (peer::STATIC_KEYS, scenario::CALL_COND_NONE) => {
            "static-keys: the site found through the crate's jump table (__static_keys) and decoded inside the loop: a 5-byte NOP falling through (key off)"
        }
        (peer::STATIC_KEYS, _) => {
            "static-keys: the site found through the crate's jump table (__static_keys) and decoded inside the loop: `jmp rel32` to the out-of-line block, whose first call is a direct `call` of the target (key on: compiled on, the bytes a switched-on key holds)"
        }
        _ => return None,
    })
}
