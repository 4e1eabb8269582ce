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

// ------------------------------------------------------------- chains

/// Bytes per stub of a chain (a cache line each).
pub const STUB: usize = 64;

/// A chain of `n` stubs ([`chain`]): `extern "C" fn(x) -> x + n`.
#[derive(Debug)]
pub struct Chain {
    /// The code (and module).
    pub code: Generated,
    /// The entry.
    pub entry: usize,
    /// The stubs.
    pub n: usize,
}

impl Chain {
    /// One pass: `n` calls, returns `x + n`.
    pub fn run(&self, x: u64) -> u64 {
        // SAFETY: the entry of a chain generated as an `extern "C"
        // fn(u64) -> u64` (checked by `prove_chain` before any
        // measurement), mapped while `self` lives.
        let f: extern "C" fn(u64) -> u64 = unsafe { std::mem::transmute(self.entry) };
        f(x)
    }
}

/// Offsets in a chain's code: the entry, the exit, the first stub.
const CHAIN_EXIT: usize = 64;
const CHAIN_STUBS: usize = 128;

/// Generates a chain of `order.len()` stubs of `s`'s site: stub `order[i]`
/// is the `i`-th visited. `order` must be a permutation of `0..n`.
///
/// # Errors
/// As [`generate`].
pub fn chain(s: &GenSubject, order: &[usize]) -> Result<Chain, String> {
    chain_near(s, order, add1_addr())
}

/// Bytes of code a chain of `n` stubs takes ([`chain`]), before rounding
/// to pages.
pub fn chain_len(n: usize) -> usize {
    CHAIN_STUBS + n * STUB
}

/// [`chain`], mapped as close to `near` as the address space allows
/// ([`generate_near`]).
///
/// # Errors
/// As [`generate`].
pub fn chain_near(s: &GenSubject, order: &[usize], near: usize) -> Result<Chain, String> {
    let n = order.len();
    let len = chain_len(n);
    let stub = |base: usize, j: usize| base + CHAIN_STUBS + j * STUB;
    let code = generate_near(
        &format!("{} chain of {n}", s.name),
        len,
        near,
        registry_of(s.site),
        |base| {
            let mut b = vec![0xcc_u8; len];
            let mut entries = Vec::new();
            let mut put =
                |off: usize, bytes: &[u8]| b[off..off + bytes.len()].copy_from_slice(bytes);
            let first = stub(base, *order.first().ok_or("an empty chain")?);
            put(0, &[0x48, 0x83, 0xec, 0x08]); // sub rsp, 8
            put(4, &branch(0xe9, base + 4, first, "jmp first stub")?);
            put(
                CHAIN_EXIT,
                &[0x48, 0x89, 0xf8, 0x48, 0x83, 0xc4, 0x08, 0xc3],
            ); // mov rax, rdi; add rsp, 8; ret
            for (i, &j) in order.iter().enumerate() {
                let at = stub(base, j);
                let next = order
                    .get(i + 1)
                    .map_or(base + CHAIN_EXIT, |&k| stub(base, k));
                let site = site_code(s.site, at)?;
                let off = at - base;
                put(off, &site.bytes);
                let tail = off + site.bytes.len();
                put(tail, &MOV_RDI_RAX);
                put(
                    tail + 3,
                    &branch(0xe9, base + tail + 3, next, "jmp next stub")?,
                );
                entries.extend(site.entry);
            }
            Ok((b, entries))
        },
    )?;
    Ok(Chain {
        entry: code.addr(),
        code,
        n,
    })
}

// -------------------------------------------------------------- loops

/// A loop ([`looped`]): `extern "C" fn(x, n, ticks: *mut u64) -> x + n`,
/// each of the `n` iterations calling the noise, then the subject's one
/// site between two fenced reads of the time-stamp counter, whose
/// differences it adds up into `*ticks`.
#[derive(Debug)]
pub struct Looped {
    /// The code (and module).
    pub code: Generated,
    /// Where the site lies.
    pub site: usize,
    /// The loop's head (`call noise`).
    pub head: usize,
}

impl Looped {
    /// `n` iterations from `x`: returns `x + n` and the time-stamp-counter
    /// ticks spent in the timed windows around the site.
    pub fn run(&self, x: u64, n: u64) -> (u64, u64) {
        // SAFETY: generated as an `extern "C" fn(u64, u64, *mut u64) ->
        // u64` (checked by `prove_loop` before any measurement), mapped
        // while `self` lives; it writes `*ticks` once and otherwise only
        // the noise's state, which its [`Noise`] keeps alive.
        let f: extern "C" fn(u64, u64, *mut u64) -> u64 =
            unsafe { std::mem::transmute(self.code.addr()) };
        let mut ticks = 0u64;
        let r = f(x, n, &mut ticks);
        (r, ticks)
    }
}

const LOOP_HEAD: usize = 64;
/// `lfence; rdtsc; shl rdx, 32; or rax, rdx`: the time-stamp counter in
/// `rax`, read after every earlier instruction has completed.
const READ_TSC: [u8; 12] = [
    0x0f, 0xae, 0xe8, 0x0f, 0x31, 0x48, 0xc1, 0xe2, 0x20, 0x48, 0x09, 0xd0,
];

/// Generates `s`'s loop around `noise`: saves `rbx`, `rbp`, `r12`–`r15`
/// and `rdx` (the ticks' address); `r13` = n, `r14` = x, `r15` = the
/// noise's state, `r12` = its cursor (state word 0), `rbp` = 0; then `n`
/// times: `call noise`; read the counter (fenced), `lfence`, keep it in
/// `rbx`; `mov rdi, r14; <site>; mov r14, rax`; read the counter again
/// (fenced) and add the difference to `rbp`. Then stores the cursor back,
/// `rbp` into the ticks, and returns `r14`.
///
/// # Errors
/// As [`generate`].
pub fn looped(s: &GenSubject, noise: &Noise) -> Result<Looped, String> {
    let len = 4096;
    let state = noise.state.as_ptr() as u64;
    let noise_at = noise.code.addr();
    let mut site_at = 0;
    let code = generate(
        &format!("{} loop", s.name),
        len,
        registry_of(s.site),
        |base| {
            let mut b = vec![0xcc_u8; len];
            let mut p = Vec::new();
            // push rbx, rbp, r12-r15, rdx (7 pushes: the stack is 16-byte
            // aligned for the calls)
            p.extend_from_slice(&[
                0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57, 0x52,
            ]);
            p.extend_from_slice(&[0x49, 0x89, 0xf5, 0x49, 0x89, 0xfe]); // mov r13, rsi; mov r14, rdi
            p.extend_from_slice(&[0x49, 0xbf]); // mov r15, imm64
            p.extend_from_slice(&state.to_le_bytes());
            p.extend_from_slice(&[0x4d, 0x8b, 0x27, 0x31, 0xed]); // mov r12, [r15]; xor ebp, ebp
            let j = p.len();
            p.extend_from_slice(&branch(0xe9, base + j, base + LOOP_HEAD, "jmp head")?);
            b[..p.len()].copy_from_slice(&p);
            let head = base + LOOP_HEAD;
            let mut l = branch(0xe8, head, noise_at, "call noise")?;
            l.extend_from_slice(&READ_TSC);
            l.extend_from_slice(&[0x0f, 0xae, 0xe8, 0x48, 0x89, 0xc3]); // lfence; mov rbx, rax
            l.extend_from_slice(&[0x4c, 0x89, 0xf7]); // mov rdi, r14
            site_at = head + l.len();
            let site = site_code(s.site, site_at)?;
            l.extend_from_slice(&site.bytes);
            l.extend_from_slice(&[0x49, 0x89, 0xc6]); // mov r14, rax
            l.extend_from_slice(&READ_TSC);
            l.extend_from_slice(&[0x48, 0x29, 0xd8, 0x48, 0x01, 0xc5]); // sub rax, rbx; add rbp, rax
            l.extend_from_slice(&[0x49, 0xff, 0xcd]); // dec r13
            let jnz_at = head + l.len();
            l.extend_from_slice(&[0x0f, 0x85]);
            l.extend_from_slice(&rel32(jnz_at + 6, head, "jnz head")?);
            l.extend_from_slice(&[0x4d, 0x89, 0x27, 0x5a, 0x48, 0x89, 0x2a]); // mov [r15], r12; pop rdx; mov [rdx], rbp
            l.extend_from_slice(&[0x4c, 0x89, 0xf0]); // mov rax, r14
            l.extend_from_slice(&[
                0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3,
            ]); // pops; ret
            b[LOOP_HEAD..LOOP_HEAD + l.len()].copy_from_slice(&l);
            Ok((b, site.entry.into_iter().collect()))
        },
    )?;
    Ok(Looped {
        head: code.addr() + LOOP_HEAD,
        site: site_at,
        code,
    })
}

/// The code every subject's loop calls between two calls of its site,
/// and the data it reads: state word 0 is the cursor (the loop keeps it
/// in `r12`), the rest the noise's own table.
#[derive(Debug)]
pub struct Noise {
    /// The code (`ret` at its end).
    pub code: Generated,
    /// The state the loops point `r15` at.
    pub state: Vec<u64>,
    /// Indirect jumps per call.
    pub jumps: usize,
    /// Indirect jump sites in the code.
    pub sites: usize,
}

/// Trash pads (each its own indirect jump) and the length of the random
/// sequence of their addresses (a power of two).
pub const TRASH_PADS: usize = 256;
const TRASH_SEQUENCE: usize = 1 << 16;
const TRASH_PAD: usize = 32;

/// The trash: `jumps` indirect jumps per call, each to a random one of
/// [`TRASH_PADS`] pads (a random sequence of 65,536 pad addresses, walked
/// on from call to call), each pad with its own `jmp`: `mov ecx, jumps;
/// jmp [r15 + 8 + r12*8]`; pad: `inc r12; and r12, 65535; dec ecx; jz out;
/// jmp [r15 + 8 + r12*8]`; out: `ret`.
///
/// # Errors
/// As [`generate`].
pub fn trash(jumps: u32, seed: u64) -> Result<Noise, String> {
    let pads0 = 64;
    let out = pads0 + TRASH_PADS * TRASH_PAD;
    let len = out + 64;
    let jmp_seq = [0x43, 0xff, 0x64, 0xe7, 0x08]; // jmp [r15 + r12*8 + 8]
    let mut pads = Vec::new();
    let code = generate("trash", len, None, |base| {
        let mut b = vec![0xcc_u8; len];
        b[..5].copy_from_slice(&[0xb9, 0, 0, 0, 0]);
        b[1..5].copy_from_slice(&jumps.to_le_bytes()); // mov ecx, jumps
        b[5..10].copy_from_slice(&jmp_seq);
        for m in 0..TRASH_PADS {
            let at = pads0 + m * TRASH_PAD;
            let mut p = vec![0x49, 0xff, 0xc4, 0x49, 0x81, 0xe4]; // inc r12; and r12, imm32
            p.extend_from_slice(&((TRASH_SEQUENCE - 1) as u32).to_le_bytes());
            p.extend_from_slice(&[0xff, 0xc9, 0x0f, 0x84]); // dec ecx; jz out
            p.extend_from_slice(&rel32(base + at + p.len() + 4, base + out, "jz out")?);
            p.extend_from_slice(&jmp_seq);
            b[at..at + p.len()].copy_from_slice(&p);
            pads.push(base + at);
        }
        b[out] = 0xc3;
        Ok((b, Vec::new()))
    })?;
    let mut rng = crate::rounds::Rng::new(seed);
    let mut state = vec![0u64];
    state.extend((0..TRASH_SEQUENCE).map(|_| pads[rng.below(pads.len())] as u64));
    Ok(Noise {
        code,
        state,
        jumps: jumps as usize,
        sites: TRASH_PADS + 1,
    })
}

/// Tables of the polluters' targets, taken in turn (period 4).
pub const POLLUTER_PHASES: usize = 4;
const POLLUTER_BLOCK: usize = 16;

/// `p` polluters: `mov rbx, [r15 + 8 + r12*8]; inc r12; and r12, 3`
/// (this call's table of targets, one of [`POLLUTER_PHASES`] in turn),
/// then `p` indirect jumps, each its own site: `jmp [rbx]`, then in block
/// `k` (16 bytes each) `nop; jmp [rbx + 8k]`, the last block `nop; ret`.
/// Jump `k` goes to block `k + 1`, at its `nop` or one byte further, as
/// the phase's table says: each polluter's target changes from call to
/// call in its own random pattern of period 4 (never constant).
///
/// # Errors
/// As [`generate`].
pub fn polluters(p: usize, seed: u64) -> Result<Noise, String> {
    let blocks0 = 64;
    let len = blocks0 + (p + 1) * POLLUTER_BLOCK;
    let mut block = Vec::new();
    let code = generate(&format!("{p} polluters"), len, None, |base| {
        let mut b = vec![0xcc_u8; len];
        let head = [
            0x4b, 0x8b, 0x5c, 0xe7, 0x08, 0x49, 0xff, 0xc4, 0x49, 0x83, 0xe4,
        ];
        b[..head.len()].copy_from_slice(&head);
        b[head.len()] = (POLLUTER_PHASES - 1) as u8;
        let j = head.len() + 1;
        if p == 0 {
            b[j] = 0xc3;
        } else {
            b[j..j + 2].copy_from_slice(&[0xff, 0x23]); // jmp [rbx]
        }
        for k in 1..=p {
            let at = blocks0 + (k - 1) * POLLUTER_BLOCK;
            block.push(base + at);
            b[at] = 0x90;
            if k == p {
                b[at + 1] = 0xc3;
            } else {
                let disp = u32::try_from(8 * k).map_err(|_| "too many polluters")?;
                b[at + 1..at + 3].copy_from_slice(&[0xff, 0xa3]); // jmp [rbx + disp32]
                b[at + 3..at + 7].copy_from_slice(&disp.to_le_bytes());
            }
        }
        Ok((b, Vec::new()))
    })?;
    let mut rng = crate::rounds::Rng::new(seed);
    // Per polluter, a pattern of 4 bits that is neither 0000 nor 1111.
    let patterns: Vec<usize> = (0..p).map(|_| 1 + rng.below(14)).collect();
    let mut tables: Vec<u64> = Vec::with_capacity(POLLUTER_PHASES * p);
    for t in 0..POLLUTER_PHASES {
        for (k, &pat) in patterns.iter().enumerate() {
            tables.push((block[k] + ((pat >> t) & 1)) as u64);
        }
    }
    let mut state = vec![0u64; 1 + POLLUTER_PHASES];
    let mut noise = Noise {
        code,
        state: Vec::new(),
        jumps: p,
        sites: p,
    };
    // The tables live after the header in the same vector, so that the
    // header's pointers stay valid as long as the state does.
    state.extend_from_slice(&tables);
    let data = state.as_ptr() as usize;
    for t in 0..POLLUTER_PHASES {
        state[1 + t] = (data + 8 * (1 + POLLUTER_PHASES + t * p)) as u64;
    }
    noise.state = state;
    Ok(noise)
}

// ------------------------------------------------------------- proofs

/// What the proof of one generated site saw: where the site's bytes end,
/// and its dump for the bundle.
struct SiteSeen {
    end: usize,
    dumps: Vec<SiteDump>,
}

fn control_dump(subject: &str, phase: &str, at: usize, bytes: &[u8], form: &str) -> SiteDump {
    SiteDump {
        subject: subject.into(),
        key: "(generated)".into(),
        phase: phase.into(),
        place: "site".into(),
        addr: at as u64,
        bytes: hex(bytes),
        asm: decode(bytes, at).iter().map(format_insn).collect(),
        form: form.into(),
    }
}

/// Decodes the site at `at` and checks it holds the form `s` claims.
///
/// # Safety
/// `at..at + MAX_SITE` is mapped code (a generated site).
unsafe fn check_generated_site(
    s: &GenSubject,
    at: usize,
    phase: &str,
    dump: bool,
) -> Result<SiteSeen, String> {
    // SAFETY: mapped code, as the caller promises.
    let bytes = unsafe { read_code(at, MAX_SITE) };
    let insns = decode(&bytes, at);
    let shown = |k: usize| {
        insns
            .iter()
            .take(k)
            .map(format_insn)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let bad = |k: usize, want: &str| {
        Err(format!(
            "{} {phase}: the site at {at:#x} holds `{}`, expected `{want}`",
            s.name,
            shown(k)
        ))
    };
    let first = insns.first().copied().unwrap_or_default();
    let ip_rel_to = |i: &Instruction, a: usize| {
        i.is_ip_rel_memory_operand() && i.ip_rel_memory_address() as usize == a
    };
    let (end, form) = match s.site {
        SiteKind::Implementation(imp) => {
            let key = imp.scale.raw();
            let design = imp.registry.design();
            let label = at
                + if design.site == SiteShape::CallThunk {
                    7
                } else {
                    0
                };
            // SAFETY: a registered site of `key` (the module is loaded).
            let dumps = unsafe {
                crate::prove::check_site(s.name, "SCALE", phase, imp.registry, key, label)?
            };
            if key.target_addr() != Some(add1_addr()) {
                return Err(format!(
                    "{} {phase}: key SCALE targets {:x?}, expected add1",
                    s.name,
                    key.target_addr()
                ));
            }
            let end = label + design.site_len(false);
            return Ok(SiteSeen {
                end,
                dumps: if dump { dumps } else { Vec::new() },
            });
        }
        SiteKind::Direct => {
            if !(first.code() == Code::Call_rel32_64
                && first.near_branch_target() as usize == add1_addr())
            {
                return bad(1, "call add1");
            }
            (first.next_ip() as usize, "call add1 (direct call rel32)")
        }
        SiteKind::CallMem => {
            if !(first.code() == Code::Call_rm64 && ip_rel_to(&first, slot_addr())) {
                return bad(1, "call qword ptr [rip + slot]");
            }
            (
                first.next_ip() as usize,
                "call qword ptr [rip + slot] (indirect call through memory)",
            )
        }
        SiteKind::Lfence => {
            let ok = insns.len() >= 3
                && first.code() == Code::Mov_r64_rm64
                && first.op0_register() == Register::RAX
                && ip_rel_to(&first, slot_addr())
                && insns[1].mnemonic() == Mnemonic::Lfence
                && insns[2].code() == Code::Call_rm64
                && insns[2].op0_register() == Register::RAX;
            if !ok {
                return bad(3, "mov rax, [rip + slot]; lfence; call rax");
            }
            (
                insns[2].next_ip() as usize,
                "mov rax, [rip + slot]; lfence; call rax (AMD-style lfence retpoline)",
            )
        }
        SiteKind::NoCall => {
            if !(first.code() == Code::Lea_r64_m && first.op0_register() == Register::RAX) {
                return bad(1, "lea rax, [rdi + 1] (no call)");
            }
            (first.next_ip() as usize, "lea rax, [rdi + 1] (no call)")
        }
        SiteKind::Broken => return bad(1, "a call (this subject is broken on purpose)"),
    };
    let dumps = if dump {
        vec![control_dump(s.name, phase, at, &bytes[..end - at], form)]
    } else {
        Vec::new()
    };
    Ok(SiteSeen { end, dumps })
}

/// Decodes one instruction at `at`.
///
/// # Safety
/// `at..at + 15` is mapped code.
unsafe fn insn_at(at: usize) -> Instruction {
    // SAFETY: as the caller promises.
    decode(&unsafe { read_code(at, 15) }, at)
        .first()
        .copied()
        .unwrap_or_default()
}

/// The registered sites of an implementation's `SCALE` key inside `code`:
/// they must be exactly `want`.
fn check_registered(
    s: &GenSubject,
    code: &Generated,
    want: usize,
    phase: &str,
) -> Result<(), String> {
    let SiteKind::Implementation(imp) = s.site else {
        return Ok(());
    };
    let inside = imp
        .registry
        .sites_of(imp.scale.raw())
        .iter()
        .filter(|(a, _)| (code.addr()..code.addr() + code.len()).contains(a))
        .count();
    if inside != want || code.sites.len() != want {
        return Err(format!(
            "{} {phase}: the registry knows {inside} sites of SCALE in the generated code ({} generated), expected {want}",
            s.name,
            code.sites.len()
        ));
    }
    Ok(())
}

/// Proves a chain: from its entry, `n` distinct stubs, each holding the
/// site `s` claims followed by `mov rdi, rax; jmp <next>`, the last
/// jumping to the exit (`mov rax, rdi; add rsp, 8; ret`); for an
/// implementation, the registry knows exactly those `n` sites. Returns the
/// first stub's site, decoded.
///
/// # Errors
/// What was found instead, and where.
pub fn prove_chain(s: &GenSubject, c: &Chain, phase: &str) -> Result<Vec<SiteDump>, String> {
    let base = c.code.addr();
    let err = |what: String| Err(format!("{} {phase}: {what}", s.name));
    // SAFETY: the chain's own code (every address decoded below is checked
    // to lie inside it first).
    let first = unsafe { insn_at(base + 4) };
    if first.code() != Code::Jmp_rel32_64 {
        return err(format!("the entry jumps with `{}`", format_insn(&first)));
    }
    let mut at = first.near_branch_target() as usize;
    let mut seen = vec![false; c.n];
    let mut dumps = Vec::new();
    for i in 0..c.n {
        let off = at.wrapping_sub(base + CHAIN_STUBS);
        if at < base + CHAIN_STUBS || !off.is_multiple_of(STUB) || off / STUB >= c.n {
            return err(format!(
                "call {i} of the chain goes to {at:#x}, which is no stub"
            ));
        }
        if std::mem::replace(&mut seen[off / STUB], true) {
            return err(format!("stub {at:#x} is visited twice"));
        }
        // SAFETY: a stub of the chain's code.
        let site = unsafe { check_generated_site(s, at, phase, i == 0)? };
        dumps.extend(site.dumps);
        // SAFETY: the stub's tail, inside the stub.
        let (mov, jmp) = unsafe { (insn_at(site.end), insn_at(site.end + 3)) };
        let mov_ok = matches!(mov.code(), Code::Mov_rm64_r64 | Code::Mov_r64_rm64)
            && mov.op0_register() == Register::RDI
            && mov.op1_register() == Register::RAX;
        if !mov_ok || jmp.code() != Code::Jmp_rel32_64 {
            return err(format!(
                "stub {at:#x} ends `{}; {}`, expected `mov rdi, rax; jmp <next>`",
                format_insn(&mov),
                format_insn(&jmp)
            ));
        }
        at = jmp.near_branch_target() as usize;
    }
    if at != base + CHAIN_EXIT {
        return err(format!(
            "after {} stubs the chain goes to {at:#x}, not its exit",
            c.n
        ));
    }
    // SAFETY: the chain's exit block.
    let exit = decode(&unsafe { read_code(at, 8) }, at);
    let codes: Vec<Code> = exit.iter().map(Instruction::code).collect();
    if codes.len() < 3 || codes[2] != Code::Retnq {
        return err(format!(
            "the exit holds `{}`",
            exit.iter().map(format_insn).collect::<Vec<_>>().join("; ")
        ));
    }
    check_registered(s, &c.code, c.n, phase)?;
    Ok(dumps)
}

/// Proves a loop: its head is `call <noise>`, then no call or branch up
/// to `mov rdi, r14` right before the site, the site `s` claims, then
/// `mov r14, rax` and no call or branch up to `dec r13; jnz <head>`; and
/// the noise makes `noise.sites` indirect jumps and no call. Returns the
/// site, decoded.
///
/// # Errors
/// What was found instead, and where.
pub fn prove_loop(
    s: &GenSubject,
    l: &Looped,
    noise: &Noise,
    phase: &str,
) -> Result<Vec<SiteDump>, String> {
    let err = |what: String| Err(format!("{} {phase}: {what}", s.name));
    let flow = |i: &Instruction| {
        matches!(i.mnemonic(), Mnemonic::Call | Mnemonic::Jmp | Mnemonic::Ret)
            || (i.op_count() > 0 && i.op0_kind() == iced_x86::OpKind::NearBranch64)
    };
    let list = |v: &[Instruction]| v.iter().map(format_insn).collect::<Vec<_>>().join("; ");
    // SAFETY: the loop's own code, from its head to its site.
    let before = decode(&unsafe { read_code(l.head, l.site - l.head) }, l.head);
    let (Some(call), Some(mov)) = (before.first(), before.last()) else {
        return err("no code before the site".into());
    };
    let ok = call.code() == Code::Call_rel32_64
        && call.near_branch_target() as usize == noise.code.addr()
        && !before[1..].iter().any(flow)
        && mov.next_ip() as usize == l.site
        && mov.op0_register() == Register::RDI
        && mov.op1_register() == Register::R14;
    if !ok {
        return err(format!(
            "the loop's head holds `{}`, expected `call <noise>; ...; mov rdi, r14` before the site",
            list(&before)
        ));
    }
    // SAFETY: the loop's site.
    let site = unsafe { check_generated_site(s, l.site, phase, true)? };
    // SAFETY: the loop's tail (inside its page).
    let tail = decode(&unsafe { read_code(site.end, 48) }, site.end);
    let jnz = tail.iter().position(flow);
    let ok = tail
        .first()
        .is_some_and(|m| m.op0_register() == Register::R14 && m.op1_register() == Register::RAX)
        && jnz.is_some_and(|k| {
            k >= 1
                && tail[k].code() == Code::Jne_rel32_64
                && tail[k].near_branch_target() as usize == l.head
                && tail[k - 1].mnemonic() == Mnemonic::Dec
        });
    if !ok {
        return err(format!(
            "after the site: `{}`, expected `mov r14, rax; ...; dec r13; jnz <head>`",
            list(&tail[..jnz.map_or(tail.len(), |k| k + 1).min(tail.len())])
        ));
    }
    // SAFETY: the noise's own code.
    let ni = decode(
        &unsafe { read_code(noise.code.addr(), noise.code.len()) },
        noise.code.addr(),
    );
    let jumps = ni
        .iter()
        .filter(|i| i.code() == Code::Jmp_rm64 && i.op0_kind() == iced_x86::OpKind::Memory)
        .count();
    let calls = ni.iter().filter(|i| i.mnemonic() == Mnemonic::Call).count();
    if jumps != noise.sites || calls != 0 {
        return err(format!(
            "the noise holds {jumps} indirect jumps and {calls} calls, expected {} and none",
            noise.sites
        ));
    }
    check_registered(
        s,
        &l.code,
        usize::from(matches!(s.site, SiteKind::Implementation(_))),
        phase,
    )?;
    Ok(site.dumps)
}
