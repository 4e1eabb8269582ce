//! Registry memory: the heap (a counting global allocator), text made
//! private by patching, and code bytes per site and per key.

use super::*;

/// Modules loaded side by side per site count in the memory figures.
const MEMORY_COPIES: usize = 8;

/// A global allocator that counts the bytes live on the heap, so that the
/// registry's heap is measured, not computed from capacities.
struct Counting;

static LIVE: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator with the same
// layout; the counter is only arithmetic on the side.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { std::alloc::System.alloc(l) };
        if !p.is_null() {
            LIVE.fetch_add(l.size() as isize, std::sync::atomic::Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { std::alloc::System.dealloc(p, l) };
        LIVE.fetch_sub(l.size() as isize, std::sync::atomic::Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        // SAFETY: forwarded; `p` came from this allocator with layout `l`.
        let q = unsafe { std::alloc::System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_add(
                new as isize - l.size() as isize,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes live on the heap now.
fn live() -> isize {
    LIVE.load(std::sync::atomic::Ordering::Relaxed)
}

/// `Private_Dirty` of the executable mappings, bytes (`/proc/self/smaps`).
pub(super) fn private_text() -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/self/smaps")
        .map_err(|e| format!("unavailable: /proc/self/smaps: {e}"))?;
    let mut exec = false;
    let mut kb = 0u64;
    for l in s.lines() {
        let mut w = l.split_whitespace();
        let first = w.next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            exec = w.next().is_some_and(|p| p.contains('x'));
        } else if exec && first == "Private_Dirty:" {
            kb += w.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Ok(kb * 1024)
}

fn mem_figure(
    (sc, subject, sites): (&str, &str, Option<u64>),
    (metric, per, statistic): (Metric, Per, Statistic),
    value: f64,
    note: String,
) -> Figure {
    Figure {
        scenario: sc.into(),
        subject: subject.into(),
        sites,
        metric,
        per,
        instrument: if statistic == Statistic::Formula {
            Instrument::Registry
        } else {
            Instrument::Memory
        },
        value,
        interval: None,
        samples: Some(1),
        note: Some(note),
        statistic: Some(statistic),
        raw: Vec::new(),
        first: None,
        ratio: None,
        histogram: None,
    }
}

/// Registry heap (counting allocator), the registry's own count (a
/// formula), the heap the first update keeps (the trap handler's table of
/// published slots), code bytes, and text made private by patching.
pub(super) fn memory(part: &mut Part, text_before_init: &[(String, Result<u64, String>)]) {
    let reg = scenario::MEMORY;
    for (s, imp) in implementations() {
        // Modules stay loaded until the implementation is done, so every
        // module's sites have addresses no batch published before (the
        // trap handler's table only grows on new addresses).
        let mut loaded = Vec::new();
        for &n in &SITE_COUNTS {
            let mods: Vec<_> = (0..MEMORY_COPIES)
                .map(|_| {
                    scale::make(imp, &[imp.scale.raw()], n as usize).unwrap_or_else(|e| fail(&e))
                })
                .collect();
            let heap0 = live();
            let ids: Vec<_> = mods
                .iter()
                .map(|m| scale::load(imp, m, "scale").unwrap_or_else(|e| fail(&e)))
                .collect();
            let heap1 = live();
            let ms = imp
                .registry
                .module_stats(ids[0])
                .unwrap_or_else(|e| fail(&e.to_string()));
            // The first update that publishes these sites: what it keeps
            // on the heap (the trap handler's table of every slot address
            // ever published grows by the new slots; none under valgrind).
            // The key also has the sites of the modules of smaller counts,
            // already published.
            let text0 = private_text();
            imp.scale
                .update(flip_target(0))
                .unwrap_or_else(|e| fail(&e.to_string()));
            let heap2 = live();
            imp.scale
                .update(add1)
                .unwrap_or_else(|e| fail(&e.to_string()));
            let text1 = private_text();
            // The modules' memory stays mapped while they are loaded.
            loaded.push((mods, ids));
            let copies = MEMORY_COPIES as f64;
            let grown = (heap1 - heap0) as f64;
            let new_slots = copies * n as f64;
            let keys = ms.sites_per_key.len().max(1) as f64;
            let key = (reg, s.name, Some(n));
            part.figures.push(mem_figure(
                key,
                (Metric::RegistryBytes, Per::Site, Statistic::Single),
                grown / new_slots,
                format!("counting allocator: the heap grew {grown} bytes while {MEMORY_COPIES} modules of {n} sites loaded (all kept loaded), / {new_slots} sites: the registry's nodes and, where the load patches the sites (inline-patch), the trap handler's table of published slot addresses; the 8-byte table entries live in each module's own memory"),
            ));
            part.figures.push(mem_figure(
                key,
                (Metric::RegistryBytes, Per::Load, Statistic::Single),
                grown / copies,
                format!("counting allocator: live heap bytes after loading {MEMORY_COPIES} modules of {n} sites less before, per module (one key each)"),
            ));
            part.figures.push(mem_figure(
                key,
                (Metric::RegistryBytes, Per::KeyModule, Statistic::Formula),
                ms.registry_bytes as f64 / keys,
                format!(
                    "formula: module_stats().registry_bytes (capacity x size_of, the registry's own count) = {} bytes over {keys} key(s)",
                    ms.registry_bytes
                ),
            ));
            part.figures.push(mem_figure(
                key,
                (Metric::RegistryBytes, Per::Update, Statistic::Single),
                (heap2 - heap1) as f64 / new_slots,
                format!("counting allocator: heap kept by the update that first published {new_slots} new sites ({} bytes), per site: the trap handler's table of published slot addresses (0 under valgrind, which takes another path)", heap2 - heap1),
            ));
            match (text0, text1) {
                (Ok(a), Ok(b)) => part.figures.push(mem_figure(
                    (scenario::MEMORY_TEXT, s.name, Some(n)),
                    (Metric::PrivateTextBytes, Per::Update, Statistic::Single),
                    b as f64 - a as f64,
                    format!("Private_Dirty of executable mappings after two updates of a key with {n} sites in each of {MEMORY_COPIES} generated modules, less before ({a} -> {b} bytes; generated code is anonymous memory, private from the start)"),
                )),
                (Err(e), _) | (_, Err(e)) => {
                    part.missing(scenario::MEMORY_TEXT, Some(s.name), Metric::PrivateTextBytes, e)
                }
            }
        }
        for (mods, ids) in loaded {
            for id in ids {
                scale::unload(imp, id).unwrap_or_else(|e| fail(&e));
            }
            drop(mods);
        }
        // Text made private by patching the program's own text: the MANY
        // key's sites (1,024 in each copy of the many-sites loop).
        let a = private_text();
        imp.many
            .update(static_call_bench::targets::add2)
            .unwrap_or_else(|e| fail(&e.to_string()));
        imp.many
            .update(add1)
            .unwrap_or_else(|e| fail(&e.to_string()));
        match (a, private_text()) {
            (Ok(a), Ok(b)) => part.figures.push(mem_figure(
                (
                    scenario::MEMORY_TEXT,
                    s.name,
                    Some(static_call_bench::MANY_SITES * static_call_bench::subjects::MANY_COPIES as u64),
                ),
                (Metric::PrivateTextBytes, Per::Update, Statistic::Single),
                b as f64 - a as f64,
                format!("Private_Dirty of executable mappings after two updates of MANY ({} sites in the program's own text: {} copies of the 1,024-site loop), less before ({a} -> {b} bytes)", static_call_bench::MANY_SITES * static_call_bench::subjects::MANY_COPIES as u64, static_call_bench::subjects::MANY_COPIES),
            )),
            (Err(e), _) | (_, Err(e)) => {
                part.missing(scenario::MEMORY_TEXT, Some(s.name), Metric::PrivateTextBytes, e)
            }
        }
        code_bytes(part, s.name, imp);
    }
    for (subject, v) in text_before_init {
        match v {
            Ok(v) => part.figures.push(mem_figure(
                (scenario::MEMORY_TEXT, subject, Some(0)),
                (Metric::PrivateTextBytes, Per::Total, Statistic::Single),
                *v as f64,
                "Private_Dirty of executable mappings grown by this implementation's init() (sites = 0: the program's own text, no update yet)".into(),
            )),
            Err(e) => part.missing(
                scenario::MEMORY_TEXT,
                Some(subject),
                Metric::PrivateTextBytes,
                e.clone(),
            ),
        }
    }
}

/// Code bytes per site (decoded), per key (the trampoline's symbol size),
/// and the per-(key, shared object) stub and per-far-target relay (the
/// library's constants: formulas).
fn code_bytes(part: &mut Part, name: &str, imp: &Implementation) {
    let key = imp.hot1.raw();
    let sites = imp.registry.sites_of(key);
    let Some(&(site, _)) = sites.first() else {
        part.missing(
            scenario::MEMORY_CODE,
            Some(name),
            Metric::CodeBytes,
            "HOT1 has no site",
        );
        return;
    };
    // SAFETY: a recorded site of this program (and, for a thunk design,
    // its 7-byte load before it), mapped and readable.
    let (start, bytes) = unsafe { prove::site_code(imp.registry.design(), site) };
    let insns = prove::decode(&bytes, start);
    let take = insns.len();
    let len: usize = insns.iter().take(take).map(|i| i.len()).sum();
    let asm: Vec<String> = insns.iter().take(take).map(prove::format_insn).collect();
    let c = scenario::MEMORY_CODE;
    part.figures.push(mem_figure(
        (c, name, None),
        (Metric::CodeBytes, Per::Site, Statistic::Single),
        len as f64,
        format!("decoded at a site of HOT1: `{}`", asm.join("; ")),
    ));
    let tramp = match key.trampoline() {
        Some(t) => static_call_bench::symbols::Symbols::get()
            .ok()
            .and_then(|s| s.containing(t).map(|x| (x.size, x.name.clone())))
            .map(|(size, n)| (size as f64, format!("the trampoline's symbol `{n}`: {size} bytes (slot, signature, back-reference)"))),
        None => Some((0.0, format!("no trampoline: sites load the key and call {}", if imp.registry.thunk().is_some() { "a retpoline thunk shared by every key" } else { "through it (`call rax`)" }))),
    };
    if let Some((v, note)) = tramp {
        part.figures.push(mem_figure(
            (c, name, None),
            (Metric::CodeBytes, Per::Key, Statistic::Single),
            v,
            note,
        ));
    }
    part.figures.push(mem_figure(
        (c, name, None),
        (Metric::CodeBytes, Per::KeyModule, Statistic::Formula),
        static_call_core::STUB_LEN as f64,
        "formula: STUB_LEN, the near stub per (key, shared object) a far module's sites call, plus an 8-byte key slot".into(),
    ));
    if imp.registry.design().trampoline {
        part.figures.push(mem_figure(
            (c, name, None),
            (Metric::CodeBytes, Per::Total, Statistic::Formula),
            16.0,
            "formula: one 16-byte relay (`jmp [rip+0]; .quad f`) per far target and 2 GiB region, shared by every trampoline in reach, never freed".into(),
        ));
    }
}
