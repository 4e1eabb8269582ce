//! Generated modules: machine code assembled at run time with iced-x86's
//! code assembler into fresh executable mappings, with a site table in a
//! separate writable mapping, optionally an init region, placed within
//! `rel32` range of the program or deliberately far from it.
//!
//! Layout of the code mapping:
//!
//! ```text
//! base:           per key: slot       .quad &key
//!                 per key: near stub  mov r11,[rip+slot]; jmp [r11+8]   (or one retpoline thunk copy, or nothing)
//!                 per site: function  sub rsp,8; [mov rax,[rip+slot]; mov rax,[rax]]; call home; add rsp,8; ret
//!                 (through the key:   sub rsp,8; mov rax,[rip+slot]; mov rax,[rax]; call rax; add rsp,8; ret)
//! init (page-aligned, whole pages): the init sites' functions, same shape
//! ```
//!
//! Each function is `extern "C" fn(u64) -> u64`: it passes its argument to
//! the key's target and returns what the target returns. Table entries are
//! 8 bytes with the key field pointing at the key's slot (`KEYREF`).

use iced_x86::BlockEncoderOptions;
use iced_x86::code_asm::*;

use static_call_core::text::exec::{ExecMemory, Placement};
use static_call_core::{ImageSections, RawKey, SiteShape};

/// Where to put a generated module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// Within `rel32` range of this address (the program's code).
    Near(usize),
    /// Wherever the kernel puts anonymous mappings (terabytes from a PIE
    /// executable); checked to be beyond 4 GiB from this address.
    FarFrom(usize),
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenSpec {
    /// The keys the module calls.
    pub keys: Vec<&'static RawKey>,
    /// Ordinary call sites per key.
    pub sites_per_key: usize,
    /// Call sites per key in the init region.
    pub init_sites_per_key: usize,
    /// Placement.
    pub placement: Where,
    /// What the sites call: `None` for a near stub per key (that jumps
    /// through the key's trampoline), or the bytes of the implementation's
    /// retpoline thunk, copied into the module, with the target loaded
    /// from the key first.
    /// Ignored when the keys' design calls through the key
    /// ([`SiteShape::LoadCallRax`], asked of the first key's registry):
    /// its sites are `mov rax, [rip + slot]; mov rax, [rax]; call rax`,
    /// labelled at the first `mov`, with no stub and no thunk, and each
    /// key's home is its slot.
    pub thunk: Option<Vec<u8>>,
    /// Make site number `n` (counting all ordinary sites) hold a 5-byte NOP
    /// instead of its call: a corrupt module.
    pub corrupt_site: Option<usize>,
}

/// One generated function.
#[derive(Debug, Clone, Copy)]
pub struct GenFn {
    /// Index of its key in [`GenSpec::keys`].
    pub key: usize,
    /// Its address (`extern "C" fn(u64) -> u64`).
    pub addr: usize,
    /// Address of its call site.
    pub site: usize,
    /// Whether it lies in the init region.
    pub init: bool,
}

impl GenFn {
    /// Calls the function.
    ///
    /// # Safety
    /// The module must still be mapped, and its init region not released
    /// if this is an init function.
    pub unsafe fn call(&self, x: u64) -> u64 {
        // SAFETY: generated as an extern "C" fn(u64) -> u64.
        let f: extern "C" fn(u64) -> u64 = unsafe { std::mem::transmute(self.addr) };
        f(x)
    }
}

/// A writable, non-executable anonymous mapping (the site table lives here).
#[derive(Debug)]
pub struct DataMap {
    addr: usize,
    len: usize,
}

impl DataMap {
    fn near(near: usize, len: usize) -> Result<DataMap, String> {
        let len = len.max(1).div_ceil(4096) * 4096;
        for _ in 0..8 {
            let Some(hint) = free_near_program(near, len)? else {
                break;
            };
            // SAFETY: anonymous mapping that never replaces another.
            let p = unsafe {
                libc::mmap(
                    hint as *mut _,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                return Ok(DataMap {
                    addr: p as usize,
                    len,
                });
            }
        }
        Err(format!("no room for a table near {near:#x}"))
    }

    /// Makes the mapping inaccessible (after unload, to catch stray access).
    pub fn make_inaccessible(&self) {
        // SAFETY: our own mapping.
        unsafe { libc::mprotect(self.addr as *mut _, self.len, libc::PROT_NONE) };
    }
}

impl Drop for DataMap {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.addr as *mut _, self.len) };
    }
}

/// A generated module: code, table, and what was generated.
#[derive(Debug)]
pub struct GenModule {
    /// The code mapping (unmapped on drop).
    pub code: ExecMemory,
    /// The table mapping.
    pub data: DataMap,
    /// Its sections, to pass to `load_module`.
    pub sections: ImageSections,
    /// Every generated function.
    pub funcs: Vec<GenFn>,
    /// The in-range path of each key's sites (stub, trampoline or thunk).
    pub homes: Vec<usize>,
}

fn asm_err(e: IcedError) -> String {
    format!("iced-x86: {e}")
}

struct Block {
    bytes: Vec<u8>,
    /// (key, function address, site address)
    funcs: Vec<(usize, usize, usize)>,
    homes: Vec<usize>,
    slots: Vec<usize>,
}

/// Assembles the ordinary block at `ip`. `home_of` decides, given the stub
/// address of a key, what its sites call.
fn assemble_main(spec: &GenSpec, ip: u64) -> Result<Block, String> {
    let mut a = CodeAssembler::new(64).map_err(asm_err)?;
    let mut slot_labels: Vec<CodeLabel> = spec.keys.iter().map(|_| a.create_label()).collect();
    let mut stub_labels: Vec<CodeLabel> = spec.keys.iter().map(|_| a.create_label()).collect();
    let mut thunk_label = a.create_label();
    let indirect = spec.thunk.is_some() && !through_key(spec);
    // Key slots first: the block starts page-aligned, so they are 8-aligned.
    for (label, key) in slot_labels.iter_mut().zip(&spec.keys) {
        a.set_label(label).map_err(asm_err)?;
        a.dq(&[key.addr() as u64]).map_err(asm_err)?;
    }
    if through_key(spec) {
        // No stubs: the sites load the key themselves.
    } else if indirect {
        a.set_label(&mut thunk_label).map_err(asm_err)?;
        a.db(spec.thunk.as_deref().unwrap_or_default())
            .map_err(asm_err)?;
    } else {
        for k in 0..spec.keys.len() {
            a.set_label(&mut stub_labels[k]).map_err(asm_err)?;
            a.mov(r11, qword_ptr(slot_labels[k])).map_err(asm_err)?;
            a.jmp(qword_ptr(r11 + 8)).map_err(asm_err)?;
        }
    }
    let mut fn_labels = Vec::new();
    let mut n = 0usize;
    for k in 0..spec.keys.len() {
        for _ in 0..spec.sites_per_key {
            let mut f = a.create_label();
            let mut s = a.create_label();
            a.set_label(&mut f).map_err(asm_err)?;
            a.sub(rsp, 8).map_err(asm_err)?;
            if indirect {
                a.mov(rax, qword_ptr(slot_labels[k])).map_err(asm_err)?;
                a.mov(rax, qword_ptr(rax)).map_err(asm_err)?;
            }
            a.set_label(&mut s).map_err(asm_err)?;
            if spec.corrupt_site == Some(n) {
                a.db(&[0x0f, 0x1f, 0x44, 0x00, 0x00]).map_err(asm_err)?;
            } else if through_key(spec) {
                a.mov(rax, qword_ptr(slot_labels[k])).map_err(asm_err)?;
                a.mov(rax, qword_ptr(rax)).map_err(asm_err)?;
                a.call(rax).map_err(asm_err)?;
            } else if indirect {
                a.call(thunk_label).map_err(asm_err)?;
            } else {
                a.call(stub_labels[k]).map_err(asm_err)?;
            }
            a.add(rsp, 8).map_err(asm_err)?;
            a.ret().map_err(asm_err)?;
            fn_labels.push((k, f, s));
            n += 1;
        }
    }
    let r = a
        .assemble_options(ip, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
        .map_err(asm_err)?;
    let lip = |l: &CodeLabel| r.label_ip(l).map(|x| x as usize).map_err(asm_err);
    let mut funcs = Vec::new();
    for (k, f, s) in &fn_labels {
        funcs.push((*k, lip(f)?, lip(s)?));
    }
    let homes = if through_key(spec) {
        slot_labels.iter().map(lip).collect::<Result<_, _>>()?
    } else if indirect {
        vec![lip(&thunk_label)?; spec.keys.len()]
    } else {
        stub_labels.iter().map(lip).collect::<Result<_, _>>()?
    };
    let slots = slot_labels.iter().map(lip).collect::<Result<_, _>>()?;
    Ok(Block {
        bytes: r.inner.code_buffer,
        funcs,
        homes,
        slots,
    })
}

/// Assembles the init block at `ip`; its sites call `homes` and (indirect)
/// load from `slots`.
fn assemble_init(
    spec: &GenSpec,
    ip: u64,
    homes: &[usize],
    slots: &[usize],
) -> Result<Block, String> {
    if through_key(spec) {
        return through_key_init(spec, ip as usize, slots);
    }
    let mut a = CodeAssembler::new(64).map_err(asm_err)?;
    let mut fn_labels = Vec::new();
    for k in 0..spec.keys.len() {
        for _ in 0..spec.init_sites_per_key {
            let mut f = a.create_label();
            let mut s = a.create_label();
            a.set_label(&mut f).map_err(asm_err)?;
            a.sub(rsp, 8).map_err(asm_err)?;
            if spec.thunk.is_some() {
                a.mov(rax, slots[k] as u64).map_err(asm_err)?;
                a.mov(rax, qword_ptr(rax)).map_err(asm_err)?;
                a.mov(rax, qword_ptr(rax)).map_err(asm_err)?;
            }
            a.set_label(&mut s).map_err(asm_err)?;
            a.call(homes[k] as u64).map_err(asm_err)?;
            a.add(rsp, 8).map_err(asm_err)?;
            a.ret().map_err(asm_err)?;
            fn_labels.push((k, f, s));
        }
    }
    if fn_labels.is_empty() {
        return Ok(Block {
            bytes: Vec::new(),
            funcs: Vec::new(),
            homes: Vec::new(),
            slots: Vec::new(),
        });
    }
    let r = a
        .assemble_options(ip, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)
        .map_err(asm_err)?;
    let mut funcs = Vec::new();
    for (k, f, s) in &fn_labels {
        funcs.push((
            *k,
            r.label_ip(f).map_err(asm_err)? as usize,
            r.label_ip(s).map_err(asm_err)? as usize,
        ));
    }
    Ok(Block {
        bytes: r.inner.code_buffer,
        funcs,
        homes: Vec::new(),
        slots: Vec::new(),
    })
}

/// Whether the keys' design calls through the key (its description says
/// so; the generator never asks which design it serves).
fn through_key(spec: &GenSpec) -> bool {
    spec.keys
        .first()
        .is_some_and(|k| k.registry().design().site == SiteShape::LoadCallRax)
}

/// The init block of a module whose sites call through the key, laid out
/// by hand (the load is relative to `rip`, and the slots lie in another
/// block): per function `sub rsp, 8; mov rax, [rip + slot]; mov rax,
/// [rax]; call rax; add rsp, 8; ret`.
fn through_key_init(spec: &GenSpec, ip: usize, slots: &[usize]) -> Result<Block, String> {
    const FN_LEN: usize = 21;
    let mut bytes = Vec::new();
    let mut funcs = Vec::new();
    for (k, &slot) in slots.iter().enumerate().take(spec.keys.len()) {
        for _ in 0..spec.init_sites_per_key {
            let f = ip + bytes.len();
            let site = f + 4;
            let disp = i32::try_from(slot as i128 - (site as i128 + 7))
                .map_err(|_| format!("key slot {slot:#x} out of reach of {site:#x}"))?;
            bytes.extend_from_slice(&[0x48, 0x83, 0xec, 0x08, 0x48, 0x8b, 0x05]);
            bytes.extend_from_slice(&disp.to_le_bytes());
            bytes.extend_from_slice(&[0x48, 0x8b, 0x00, 0xff, 0xd0, 0x48, 0x83, 0xc4, 0x08, 0xc3]);
            debug_assert_eq!(bytes.len() % FN_LEN, 0);
            funcs.push((k, f, site));
        }
    }
    Ok(Block {
        bytes,
        funcs,
        homes: Vec::new(),
        slots: Vec::new(),
    })
}

/// A free, page-aligned place for `len` bytes within 1 GiB of `near` (so
/// everything in it reaches the program and the program's keys with
/// `rel32`), from the process's mappings.
fn free_near_program(near: usize, len: usize) -> Result<Option<usize>, String> {
    const WINDOW: usize = 1 << 30;
    let maps = static_call_core::maps::mappings().map_err(|e| e.to_string())?;
    let lo = near.saturating_sub(WINDOW).max(0x10_0000) & !0xfff;
    let hi = near.saturating_add(WINDOW).min(1 << 47) & !0xfff;
    Ok(static_call_core::maps::free_near(
        &maps,
        near,
        len,
        (lo, hi),
        4096,
    ))
}

/// Where the kernel would put `len` bytes of a fresh anonymous mapping
/// (terabytes from a PIE executable): a throw-away reservation's address.
fn far_place(len: usize) -> Result<usize, String> {
    // SAFETY: a throw-away reservation, unmapped at once.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err("mmap failed".into());
    }
    // SAFETY: the reservation made above.
    unsafe { libc::munmap(p, len) };
    Ok(p as usize)
}

fn round_page(n: usize) -> usize {
    n.div_ceil(4096) * 4096
}

/// Generates, maps and describes a module. Nothing is registered.
///
/// # Errors
/// Assembly failed, or no place was found.
pub fn generate(spec: &GenSpec) -> Result<GenModule, String> {
    // Size the blocks once at a dummy address (sizes do not depend on it:
    // every branch is rel32 and every slot load RIP-relative).
    let probe = assemble_main(spec, 0x1000_0000)?;
    let main_len = round_page(probe.bytes.len());
    let init_probe = assemble_init(spec, 0x1000_0000, &probe.homes, &probe.slots)?;
    let total = main_len + round_page(init_probe.bytes.len());

    // A place for the module: the free place closest to the program, or one
    // the kernel chooses. Looked for again (up to 8 times) if another
    // thread maps it first.
    let place = || -> Result<Option<usize>, String> {
        match spec.placement {
            Where::Near(near) => free_near_program(near, total),
            Where::FarFrom(_) => far_place(total).map(Some),
        }
    };
    for _ in 0..8 {
        let Some(base) = place()? else { break };
        if base < 0x10_0000 || base >= (1usize << 47) - total {
            continue;
        }
        if let Where::FarFrom(from) = spec.placement
            && base.abs_diff(from) < (1usize << 32)
        {
            return Err("the kernel placed the far module near the program".into());
        }
        let main = assemble_main(spec, base as u64)?;
        let init_base = base + main_len;
        let init = assemble_init(spec, init_base as u64, &main.homes, &main.slots)?;
        let mut bytes = main.bytes.clone();
        bytes.resize(main_len, 0xcc);
        bytes.extend_from_slice(&init.bytes);
        let Ok(code) = ExecMemory::new(Placement::At(base), &bytes) else {
            continue;
        };
        let n_sites = main.funcs.len() + init.funcs.len();
        let data = DataMap::near(base, n_sites * 8)?;
        let mut funcs = Vec::new();
        for (i, &(k, f, s)) in main.funcs.iter().chain(&init.funcs).enumerate() {
            let entry = data.addr + i * 8;
            let site_rel = i32::try_from(s as i64 - entry as i64).map_err(|_| "table too far")?;
            let key_rel = i32::try_from(main.slots[k] as i64 + 4 - entry as i64)
                .map_err(|_| "table too far")?;
            // SAFETY: inside our RW data mapping.
            unsafe {
                std::ptr::write(entry as *mut i32, site_rel);
                std::ptr::write((entry + 4) as *mut i32, key_rel);
            }
            funcs.push(GenFn {
                key: k,
                addr: f,
                site: s,
                init: i >= main.funcs.len(),
            });
        }
        let init_range = if init.bytes.is_empty() {
            (0, 0)
        } else {
            (init_base, init_base + round_page(init.bytes.len()))
        };
        return Ok(GenModule {
            sections: ImageSections {
                sites: (data.addr, data.addr + n_sites * 8),
                init: init_range,
            },
            code,
            data,
            funcs,
            homes: main.homes,
        });
    }
    Err("no free place for the module".into())
}
