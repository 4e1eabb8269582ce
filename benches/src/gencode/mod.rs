//! Code generated at run time for the cold, trashed and polluted call
//! scenarios ([`crate::cold`]): the same shape for every subject, each
//! subject's own call site in it, every site decoded and checked before
//! anything is measured.
//!
//! A subject here is an implementation of the one list (its site on its
//! `SCALE` key, in the form its design says an unpatched site holds,
//! [`static_call_core::Design::unpatched_code`], registered as a module's
//! site so that the engine treats it as it treats any other: inline-patch
//! patches it to `call target` at load) or a control whose form is one
//! instruction sequence: `direct` and its A/A copy `direct-aa` (`call
//! rel32`), `call-mem-indirect` (`call qword ptr [rip + slot]`) and
//! `lfence-indirect` (`mov rax, [rip + slot]; lfence; call rax`). The
//! controls that rustc compiles (`fn-pointer`, `dyn-trait`, `option-fn`)
//! have no generated form: a generated function pointer call would be
//! `plain-indirect`'s `mov rax, [mem]; call rax` again.
//!
//! Two shapes:
//!
//! * a **chain** ([`chain`]): `n` stubs, one per 64-byte line, each the
//!   subject's site followed by `mov rdi, rax; jmp <next stub>`, visited
//!   in a shuffled order (the same permutation for every subject): `n`
//!   distinct call sites, each called once per pass, and no branch of the
//!   driver's between them (a chain of direct jumps; the last returns);
//! * a **loop** ([`looped`]): `n` times `call <noise>` (code shared by
//!   every subject: the trash or the polluters, [`trash`], [`polluters`])
//!   then the subject's one site; the baseline subject
//!   ([`SiteKind::NoCall`]) has `lea rax, [rdi + 1]` where the site is,
//!   so the noise's own cost can be taken out.
//!
//! The generated code lies within `rel32` reach of the program (its
//! targets, keys and trampolines); implementations' sites are registered
//! through a site table in the program's data ([`SiteTable`]), so entries
//! reach both. Only `static_call_core::text` writes executable memory
//! ([`ExecMemory`]); this module hands it bytes.

use std::sync::Mutex;

use iced_x86::{Code, Instruction, Mnemonic, Register};
use static_call_bundle::{SiteDump, control};
use static_call_core::site::SiteTable;
use static_call_core::text::exec::ExecMemory;
use static_call_core::{ImageSections, ModuleId, ModuleSpec, RawKey, Registry, SiteShape};

use crate::prove::{decode, format_insn, hex, read_code};
use crate::subjects::{Implementation, implementations, slots};

/// What a generated site holds.
#[derive(Debug, Clone, Copy)]
pub enum SiteKind {
    /// An implementation's site on its `SCALE` key (target `add1`), in its
    /// design's unpatched form, registered as a module's site.
    Implementation(&'static Implementation),
    /// `call rel32` to `add1`.
    Direct,
    /// `call qword ptr [rip + slot]`, the slot holding `add1`.
    CallMem,
    /// `mov rax, [rip + slot]; lfence; call rax`.
    Lfence,
    /// No call: `lea rax, [rdi + 1]` (what the call computes), the
    /// baseline that measures the noise alone.
    NoCall,
    /// A 5-byte NOP where the site should be: a broken subject, for the
    /// tests that show the proof rejects it.
    Broken,
}

/// A subject of the generated scenarios.
#[derive(Debug, Clone, Copy)]
pub struct GenSubject {
    /// Its name (a name of [`crate::subjects::SUBJECTS`], or
    /// [`BASELINE`]).
    pub name: &'static str,
    /// What its sites hold.
    pub site: SiteKind,
}

/// The name the baseline (no call) goes by in the rounds' order.
pub const BASELINE: &str = "(baseline: no call)";

/// The subjects with a generated form, in display order: the
/// implementations, then `direct`, `direct-aa`, `call-mem-indirect`,
/// `lfence-indirect`.
pub fn subjects() -> Vec<GenSubject> {
    implementations()
        .map(|(s, imp)| GenSubject {
            name: s.name,
            site: SiteKind::Implementation(imp),
        })
        .chain([
            GenSubject {
                name: control::DIRECT,
                site: SiteKind::Direct,
            },
            GenSubject {
                name: control::DIRECT_AA,
                site: SiteKind::Direct,
            },
            GenSubject {
                name: control::CALL_MEM_INDIRECT,
                site: SiteKind::CallMem,
            },
            GenSubject {
                name: control::LFENCE_INDIRECT,
                site: SiteKind::Lfence,
            },
        ])
        .collect()
}

mod proofs;
mod shapes;

pub use proofs::{prove_chain, prove_loop};
use shapes::{CHAIN_EXIT, CHAIN_STUBS};
pub use shapes::{
    Chain, Looped, Noise, POLLUTER_PHASES, STUB, TRASH_PADS, chain, chain_len, chain_near, looped,
    polluters, trash,
};
// ------------------------------------------------------------ encoding

fn rel32(next_ip: usize, to: usize, what: &str) -> Result<[u8; 4], String> {
    i32::try_from(to as i128 - next_ip as i128)
        .map(i32::to_le_bytes)
        .map_err(|_| format!("{what}: {to:#x} is beyond rel32 reach of {next_ip:#x}"))
}

/// `e8 rel32` / `e9 rel32` at `at` to `to`.
fn branch(op: u8, at: usize, to: usize, what: &str) -> Result<Vec<u8>, String> {
    let mut b = vec![op];
    b.extend_from_slice(&rel32(at + 5, to, what)?);
    Ok(b)
}

const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];
const LEA_RAX_RDI_1: [u8; 4] = [0x48, 0x8d, 0x47, 0x01];
const MOV_RDI_RAX: [u8; 3] = [0x48, 0x89, 0xc7];
/// Longest site a subject has (a thunk design's load and call; the
/// lfence form).
pub const MAX_SITE: usize = 12;

fn add1_addr() -> usize {
    crate::targets::add1 as *const () as usize
}

fn slot_addr() -> usize {
    slots::ONE.as_ptr() as usize
}

/// A site's bytes at `at`, and the label and key its module entry records
/// (implementations only).
struct Site {
    bytes: Vec<u8>,
    entry: Option<(usize, &'static RawKey)>,
}

fn site_code(kind: SiteKind, at: usize) -> Result<Site, String> {
    let plain = |bytes| Ok(Site { bytes, entry: None });
    match kind {
        SiteKind::Implementation(imp) => {
            let key = imp.scale.raw();
            let design = imp.registry.design();
            let home = match design.site {
                SiteShape::CallTrampoline => key
                    .trampoline()
                    .ok_or_else(|| format!("{}: key SCALE has no trampoline", design.name))?,
                SiteShape::CallThunk => imp
                    .registry
                    .thunk()
                    .ok_or_else(|| format!("{}: the registry has no thunk", design.name))?,
                SiteShape::LoadCallRax => 0,
            };
            let (bytes, label) = design.unpatched_code(at, key.addr(), home).ok_or_else(|| {
                format!(
                    "{}: a site at {at:#x} cannot reach key {:#x} or home {home:#x} with rel32",
                    design.name,
                    key.addr()
                )
            })?;
            Ok(Site {
                bytes,
                entry: Some((at + label, key)),
            })
        }
        SiteKind::Direct => plain(branch(0xe8, at, add1_addr(), "call add1")?),
        SiteKind::CallMem => {
            let mut b = vec![0xff, 0x15];
            b.extend_from_slice(&rel32(at + 6, slot_addr(), "call [rip + slot]")?);
            plain(b)
        }
        SiteKind::Lfence => {
            let mut b = vec![0x48, 0x8b, 0x05];
            b.extend_from_slice(&rel32(at + 7, slot_addr(), "mov rax, [rip + slot]")?);
            b.extend_from_slice(&[0x0f, 0xae, 0xe8, 0xff, 0xd0]);
            plain(b)
        }
        SiteKind::NoCall => plain(LEA_RAX_RDI_1.to_vec()),
        SiteKind::Broken => plain(NOP5.to_vec()),
    }
}

// ------------------------------------------------------- the site table

/// Entries of the site table the generated modules share (4 MiB of the
/// program's zero-initialised data: room for 8 implementations' chains of
/// 65,536 sites at once).
const POOL: usize = 1 << 19;
static TABLE: SiteTable<POOL> = SiteTable::new();
/// The ranges of [`TABLE`] in use: (first entry, entries).
static TAKEN: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

fn take_entries(n: usize) -> Result<usize, String> {
    let mut t = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    t.sort_unstable();
    let mut at = 0;
    for &(s, len) in t.iter() {
        if s - at >= n {
            break;
        }
        at = s + len;
    }
    if at + n > POOL {
        return Err(format!(
            "the generated modules' site table is full: {n} more entries do not fit in {POOL} ({} taken)",
            t.iter().map(|r| r.1).sum::<usize>()
        ));
    }
    t.push((at, n));
    Ok(at)
}

fn give_back_entries(start: usize) {
    let mut t = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    t.retain(|r| r.0 != start);
}

// ------------------------------------------------------ generated code

/// Generated code, and the module that registers its sites when it has
/// any. Dropping it unloads the module, then unmaps the code (or, if the
/// module cannot be unloaded, keeps both: the registry may still read
/// them).
#[derive(Debug)]
pub struct Generated {
    code: Option<ExecMemory>,
    module: Option<(&'static Registry, ModuleId, usize)>,
    /// The registered sites (labels).
    pub sites: Vec<usize>,
}

impl Generated {
    /// First byte of the code.
    pub fn addr(&self) -> usize {
        self.code.as_ref().map_or(0, ExecMemory::addr)
    }
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.code.as_ref().map_or(0, ExecMemory::len)
    }
    /// Whether it holds no code (never, once made).
    pub fn is_empty(&self) -> bool {
        self.code.is_none()
    }
}

impl Drop for Generated {
    fn drop(&mut self) {
        if let Some((registry, id, start)) = self.module.take() {
            // SAFETY: nothing runs this module's code any more (its
            // owner is being dropped, on the thread that ran it).
            match unsafe { registry.unload_module(id) } {
                Ok(()) => give_back_entries(start),
                Err(e) => {
                    eprintln!(
                        "generated module {id:?}: unload failed ({e}); its code stays mapped"
                    );
                    std::mem::forget(self.code.take());
                }
            }
        }
    }
}

/// Maps code built by `build` (given the address it will have) within
/// `rel32` reach of the program, then registers the sites it reports
/// with `registry` (all of one implementation) as a module named `name`.
///
/// # Errors
/// The builder's error, no room near the program, a full site table, or
/// the registry's refusal; nothing stays mapped or registered.
pub fn generate(
    name: &str,
    len: usize,
    registry: Option<&'static Registry>,
    build: impl FnOnce(usize) -> Result<(Vec<u8>, Vec<(usize, &'static RawKey)>), String>,
) -> Result<Generated, String> {
    generate_near(name, len, add1_addr(), registry, build)
}

/// [`generate`], the code mapped as close to `near` as the address space
/// allows (at `near` itself when its pages are free) rather than to the
/// program; the builder's `rel32` reach to the program is still checked.
///
/// # Errors
/// As [`generate`].
pub fn generate_near(
    name: &str,
    len: usize,
    near: usize,
    registry: Option<&'static Registry>,
    build: impl FnOnce(usize) -> Result<(Vec<u8>, Vec<(usize, &'static RawKey)>), String>,
) -> Result<Generated, String> {
    let mut built = Err(String::from("not built"));
    let code = ExecMemory::near_with(near, len, |addr| match build(addr) {
        Ok((bytes, sites)) => {
            built = Ok(sites);
            bytes
        }
        Err(e) => {
            built = Err(e);
            Vec::new()
        }
    })
    .map_err(|e| format!("{name}: mapping {len} bytes of code near the program: {e}"))?;
    let entries = built.map_err(|e| format!("{name}: {e}"))?;
    let mut g = Generated {
        code: Some(code),
        module: None,
        sites: entries.iter().map(|e| e.0).collect(),
    };
    if entries.is_empty() {
        return Ok(g);
    }
    let registry = registry.ok_or_else(|| format!("{name}: sites but no registry"))?;
    let start = take_entries(entries.len())?;
    for (i, &(site, key)) in entries.iter().enumerate() {
        // SAFETY: entries `start..start + len` are ours (`take_entries`)
        // and not registered yet; no other thread writes them.
        if !unsafe { TABLE.set(start + i, site, key.addr()) } {
            give_back_entries(start);
            return Err(format!(
                "{name}: site {site:#x} or key {:#x} is beyond 32-bit reach of the site table",
                key.addr()
            ));
        }
    }
    let table = TABLE.range().0 + start * 8;
    let spec = ModuleSpec {
        name,
        sections: ImageSections {
            sites: (table, table + entries.len() * 8),
            init: (0, 0),
        },
    };
    // SAFETY: the table entries and the code they name stay as they are
    // and mapped until `Generated::drop` has unloaded the module (it keeps
    // both when the unload fails); only the registry writes those
    // entries meanwhile; the module has no init region.
    match unsafe { registry.load_module(spec, None) } {
        Ok(id) => {
            g.module = Some((registry, id, start));
            Ok(g)
        }
        Err(e) => {
            give_back_entries(start);
            Err(format!("{name}: load_module: {e}"))
        }
    }
}

fn registry_of(kind: SiteKind) -> Option<&'static Registry> {
    match kind {
        SiteKind::Implementation(imp) => Some(imp.registry),
        _ => None,
    }
}
