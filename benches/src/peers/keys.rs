//! The `static-keys` peer: the crate's jump table (`__static_keys`), the
//! check of a key's sites, and the subject's loops.

use super::*;

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
