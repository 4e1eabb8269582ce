//! Counters with perf-event, and registry memory.
//!
//! * Hardware counters (cycles, instructions, branch misses) around the
//!   call loops, per call. Where the machine has none (virtual machines
//!   often do not), the bundle records `unavailable: <the error>` and the
//!   run goes on.
//! * Software counters (task clock, context switches, page faults) around
//!   updates and module loads, whose cost is mostly system calls.
//! * Memory, measured: the registry's heap per site and per module load
//!   (a counting global allocator in this binary), the heap the first
//!   update keeps (the trap handler's table), code bytes per site and per
//!   key (decoded; stubs and relays from the library's constants, named as
//!   formulas), and text made private by patching (`Private_Dirty` of the
//!   executable mappings before and after each `init()` and around updates
//!   of 10 to 10,000 sites). The registry's own count per (key, module),
//!   capacity x size_of, is kept and named a formula.
//! * Memory under module churn (`memory/churn`): generated modules loaded,
//!   updated and unloaded one after another, each at an address no module
//!   had before (as a JIT does); the trap handler's table of known slots,
//!   the resident memory and the time per module at the first and the
//!   last tenth of the run. Every module's site is decoded and its call
//!   checked, so the loop measures what its name says.
//!
//! The crate is `perf-event2`, the maintained fork of `perf-event`: it
//! builds against current kernels' headers and is released regularly,
//! while `perf-event` has not had a release in years.

use std::time::Instant;

use perf_event::Builder;
use perf_event::events::{Event, Hardware, Software};
use static_call_bench::parts::{Part, write_and_assemble};
use static_call_bench::rounds::{self, bootstrap_median, median, quantile};
use static_call_bench::subjects::{
    self, CALL_SCENARIOS, Implementation, SUBJECTS, implementations,
};
use static_call_bench::targets::{add1, flip_target};
use static_call_bench::{SITE_COUNTS, prove, quick, scale};
use static_call_bundle::{Figure, Instrument, Metric, Per, Statistic, scenario};

fn fail(what: &str) -> ! {
    eprintln!("perf benchmarks: {what}");
    std::process::exit(1);
}

/// A counter, opened for this process (user and kernel where allowed).
struct Counter {
    metric: Metric,
    counter: perf_event::Counter,
    kernel: bool,
}

fn open<E: Event + Clone>(metric: Metric, name: &str, ev: E) -> Result<Counter, String> {
    let with_kernel = Builder::new(ev.clone()).include_kernel().build();
    match with_kernel {
        Ok(counter) => Ok(Counter {
            metric,
            counter,
            kernel: true,
        }),
        Err(_) => Builder::new(ev)
            .build()
            .map(|counter| Counter {
                metric,
                counter,
                kernel: false,
            })
            .map_err(|e| format!("unavailable: perf_event_open({name}): {e}")),
    }
}

/// Counts `f` with every counter; returns the deltas.
fn count(counters: &mut [Counter], f: impl FnOnce()) -> Vec<u64> {
    for c in counters.iter_mut() {
        c.counter
            .reset()
            .unwrap_or_else(|e| fail(&format!("reset: {e}")));
        c.counter
            .enable()
            .unwrap_or_else(|e| fail(&format!("enable: {e}")));
    }
    f();
    let mut out = Vec::new();
    for c in counters.iter_mut() {
        c.counter
            .disable()
            .unwrap_or_else(|e| fail(&format!("disable: {e}")));
        out.push(
            c.counter
                .read()
                .unwrap_or_else(|e| fail(&format!("read: {e}"))),
        );
    }
    out
}

fn hardware(part: &mut Part) {
    let mut counters = Vec::new();
    for (m, name, ev) in [
        (Metric::Cycles, "cycles", Hardware::CPU_CYCLES),
        (Metric::Instructions, "instructions", Hardware::INSTRUCTIONS),
        (
            Metric::BranchMisses,
            "branch-misses",
            Hardware::BRANCH_MISSES,
        ),
    ] {
        match open(m, name, ev) {
            Ok(c) => counters.push(c),
            Err(e) => {
                for sc in &CALL_SCENARIOS {
                    part.missing(sc.id, None, m, e.clone());
                }
            }
        }
    }
    if counters.is_empty() {
        return;
    }
    let n = if quick() { 200_000 } else { 2_000_000 };
    for s in SUBJECTS {
        for sc in &CALL_SCENARIOS {
            let Some(f) = (sc.pick)(&s.loops) else {
                continue;
            };
            let units = (n / sc.calls_per_unit).max(2);
            let a = count(&mut counters, || {
                subjects::run_checked(sc, s.name, f, units / 2);
            });
            let b = count(&mut counters, || {
                subjects::run_checked(sc, s.name, f, units);
            });
            let calls = (units - units / 2) * sc.calls_per_unit;
            for (i, c) in counters.iter().enumerate() {
                part.figures.push(Figure {
                    scenario: sc.id.into(),
                    subject: s.name.into(),
                    sites: None,
                    metric: c.metric,
                    per: Per::Call,
                    instrument: Instrument::PerfEvent,
                    value: b[i].saturating_sub(a[i]) as f64 / calls as f64,
                    interval: None,
                    samples: Some(2),
                    note: Some(format!(
                        "difference of two loop lengths over {calls} calls{}",
                        if c.kernel { "" } else { "; user space only" }
                    )),
                    statistic: Some(Statistic::Single),
                    raw: Vec::new(),
                    first: None,
                    ratio: None,
                    histogram: None,
                });
            }
        }
    }
}

fn software_figures(
    part: &mut Part,
    counters: &[Counter],
    deltas: &[u64],
    (sc, subject, sites, per, reps): (&str, &str, u64, Per, u64),
) {
    for (i, c) in counters.iter().enumerate() {
        part.figures.push(Figure {
            scenario: sc.into(),
            subject: subject.into(),
            sites: Some(sites),
            metric: c.metric,
            per,
            instrument: Instrument::PerfEvent,
            value: deltas[i] as f64 / reps as f64,
            interval: None,
            samples: Some(reps),
            note: Some(format!(
                "mean over {reps} operations{}",
                if c.kernel {
                    ", user and kernel"
                } else {
                    ", user space only (perf_event_paranoid)"
                }
            )),
            statistic: Some(Statistic::Mean),
            raw: Vec::new(),
            first: None,
            ratio: None,
            histogram: None,
        });
    }
}

fn software(part: &mut Part) {
    let mut counters = Vec::new();
    for (m, name, ev) in [
        (Metric::TaskClock, "task-clock", Software::TASK_CLOCK),
        (
            Metric::ContextSwitches,
            "context-switches",
            Software::CONTEXT_SWITCHES,
        ),
        (Metric::PageFaults, "page-faults", Software::PAGE_FAULTS),
    ] {
        match open(m, name, ev) {
            Ok(c) => counters.push(c),
            Err(e) => {
                for sc in [scenario::UPDATE_IDLE, scenario::MODULE_LOAD] {
                    part.missing(sc, None, m, e.clone());
                }
            }
        }
    }
    if counters.is_empty() {
        return;
    }
    for (s, imp) in implementations() {
        for n in [1u64, 10_000] {
            let m = scale::make(imp, &[imp.scale.raw()], n as usize).unwrap_or_else(|e| fail(&e));
            let id = scale::load(imp, &m, "scale").unwrap_or_else(|e| fail(&e));
            let reps: u64 = match (n, quick()) {
                (1, false) => 2_000,
                (1, true) => 200,
                (_, false) => 40,
                (_, true) => 6,
            };
            let d = count(&mut counters, || updates(imp, reps));
            scale::check_calls(&m, add1, 1).unwrap_or_else(|e| fail(&e));
            scale::unload(imp, id).unwrap_or_else(|e| fail(&e));
            software_figures(
                part,
                &counters,
                &d,
                (scenario::UPDATE_IDLE, s.name, n, Per::Update, reps),
            );
        }
        for &n in &SITE_COUNTS {
            let m = scale::make(imp, &[imp.scale.raw()], n as usize).unwrap_or_else(|e| fail(&e));
            let reps: u64 = if quick() { 5 } else { 20 };
            let mut total = vec![0u64; counters.len()];
            for _ in 0..reps {
                let mut id = None;
                let d = count(&mut counters, || {
                    id = Some(scale::load(imp, &m, "scale").unwrap_or_else(|e| fail(&e)));
                });
                for (t, d) in total.iter_mut().zip(d) {
                    *t += d;
                }
                scale::unload(imp, id.expect("loaded above")).unwrap_or_else(|e| fail(&e));
            }
            software_figures(
                part,
                &counters,
                &total,
                (scenario::MODULE_LOAD, s.name, n, Per::Load, reps),
            );
        }
    }
}

/// `reps` updates of SCALE, flipping targets, ending on `add1`.
fn updates(imp: &Implementation, reps: u64) {
    for i in 0..reps {
        imp.scale
            .update(flip_target(i))
            .unwrap_or_else(|e| fail(&e.to_string()));
    }
    imp.scale
        .update(add1)
        .unwrap_or_else(|e| fail(&e.to_string()));
}

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
fn private_text() -> Result<u64, String> {
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
fn memory(part: &mut Part, text_before_init: &[(String, Result<u64, String>)]) {
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

/// Resident memory, bytes (`/proc/self/statm`).
fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages = s.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).unwrap_or(4096))
}

/// Keeps `addr..addr + len` reserved (inaccessible) so that no later module
/// lands there; false if the kernel refused.
fn reserve(addr: usize, len: usize) -> bool {
    // SAFETY: an anonymous inaccessible mapping that never replaces another
    // (MAP_FIXED_NOREPLACE): it touches no memory anyone uses.
    let p = unsafe {
        libc::mmap(
            addr as *mut _,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE
                | libc::MAP_ANONYMOUS
                | libc::MAP_FIXED_NOREPLACE
                | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    p as usize == addr
}

/// Modules of the churn: the quick mode's count, and the full mode's
/// count and time budget (the run stops at whichever comes first).
const CHURN_QUICK: usize = 2_000;
const CHURN_FULL: usize = 100_000;
const CHURN_BUDGET_S: f64 = 30.0;
/// Sites per churned module.
const CHURN_SITES: usize = 8;

/// memory/churn: inline-patch (the implementation whose loads patch sites,
/// so whose trap table sees every module's slots) loads, updates and
/// unloads modules at fresh addresses.
fn churn(part: &mut Part) {
    let sc = scenario::MEMORY_CHURN;
    let Some((s, imp)) = implementations().find(|(s, _)| s.name == "inline-patch") else {
        part.missing(
            sc,
            None,
            Metric::TrapTableSlots,
            "no inline-patch implementation",
        );
        return;
    };
    let (n, budget) = if quick() {
        (CHURN_QUICK, f64::INFINITY)
    } else {
        (CHURN_FULL, CHURN_BUDGET_S)
    };
    let key = imp.scale;
    let start = Instant::now();
    let step = (n / 100).max(1);
    // (modules so far, trap-table slots, RSS bytes) every `step` modules.
    let mut marks: Vec<(u64, u64, Option<u64>)> = Vec::new();
    let mut times = Vec::with_capacity(n);
    let mut last = None;
    let mut refused = 0u64;
    for i in 0..n {
        let m = scale::make(imp, &[key.raw()], CHURN_SITES).unwrap_or_else(|e| fail(&e));
        if last == Some(m.code.addr()) {
            fail(&format!(
                "churn: module {i} placed at the address of the previous one"
            ));
        }
        last = Some(m.code.addr());
        let target = flip_target(i as u64 + 1);
        let t = Instant::now();
        let id = scale::load(imp, &m, "churn").unwrap_or_else(|e| fail(&e));
        key.update(target)
            .unwrap_or_else(|e| fail(&format!("churn: update: {e}")));
        let mut ns = t.elapsed().as_nanos() as f64;
        // The site calls the target directly (decoded), and the call
        // reaches it.
        let f = &m.funcs[0];
        // SAFETY: the module's code is mapped and loaded.
        let bytes = unsafe { prove::read_code(f.site, 5) };
        let insn = prove::decode(&bytes, f.site);
        let ok = insn.first().is_some_and(|x| {
            x.mnemonic() == iced_x86::Mnemonic::Call
                && x.near_branch_target() == target as *const () as u64
        });
        if !ok {
            fail(&format!(
                "churn: module {i}: site {:#x} holds {bytes:02x?}, not a call to the target",
                f.site
            ));
        }
        // SAFETY: a generated `extern "C" fn(u64) -> u64` of a loaded module.
        let r = unsafe { f.call(1) };
        if r != target(1) {
            fail(&format!("churn: module {i}: the call returned {r}"));
        }
        let t = Instant::now();
        scale::unload(imp, id).unwrap_or_else(|e| fail(&e));
        ns += t.elapsed().as_nanos() as f64;
        times.push(ns);
        let (a, len) = (m.code.addr(), m.code.len());
        drop(m);
        refused += u64::from(!reserve(a, len));
        if (i + 1) % step == 0 {
            marks.push((
                i as u64 + 1,
                static_call_core::text::trap_table_len() as u64,
                rss_bytes(),
            ));
            // Stop only at a multiple of ten marks, so that the first
            // tenth ends on a mark.
            if (i + 1) % (10 * step) == 0 && start.elapsed().as_secs_f64() > budget {
                break;
            }
        }
    }
    key.update(add1)
        .unwrap_or_else(|e| fail(&format!("churn: update: {e}")));
    let done = times.len();
    let tenth = (done / 10).max(1);
    let secs = start.elapsed().as_secs_f64();
    let how = format!(
        "{done} modules of {CHURN_SITES} sites ({} asked{}), each loaded, its key updated, its site decoded and called, unloaded, and its address range kept reserved so that no later module lands there{}; {secs:.1} s",
        n,
        if done < n {
            ", stopped by the time budget"
        } else {
            ""
        },
        if refused > 0 {
            format!(
                " ({refused} reservations refused by the kernel: those addresses could come back)"
            )
        } else {
            String::new()
        }
    );
    let first_mark = marks.iter().find(|m| m.0 as usize >= tenth).copied();
    let last_mark = marks.last().copied();
    for (which, mark) in [("first", first_mark), ("last", last_mark)] {
        let Some((at, slots, rss)) = mark else {
            continue;
        };
        part.figures.push(Figure {
            scenario: sc.into(),
            subject: s.name.into(),
            sites: Some(at),
            metric: Metric::TrapTableSlots,
            per: Per::Total,
            instrument: Instrument::Memory,
            value: slots as f64,
            interval: None,
            samples: Some(1),
            note: Some(format!(
                "text::trap_table_len() after {at} modules (the {which} tenth of the run): slot addresses the trap handler knows; {how}"
            )),
            statistic: Some(Statistic::Single),
            raw: Vec::new(),
            first: None,
            ratio: None,
            histogram: None,
        });
        match rss {
            Some(v) => part.figures.push(Figure {
                scenario: sc.into(),
                subject: s.name.into(),
                sites: Some(at),
                metric: Metric::ResidentBytes,
                per: Per::Total,
                instrument: Instrument::Memory,
                value: v as f64,
                interval: None,
                samples: Some(1),
                note: Some(format!(
                    "resident memory of the whole benchmark process (/proc/self/statm) after {at} modules (the {which} tenth of the run)"
                )),
                statistic: Some(Statistic::Single),
                raw: Vec::new(),
                first: None,
                ratio: None,
                histogram: None,
            }),
            None => part.missing(
                sc,
                Some(s.name),
                Metric::ResidentBytes,
                "unavailable: /proc/self/statm",
            ),
        }
    }
    let mut rng = rounds::Rng::new(0x5eed);
    for (which, v, at) in [
        ("first", &times[..tenth], tenth),
        ("last", &times[done - tenth..], done),
    ] {
        part.figures.push(Figure {
            scenario: sc.into(),
            subject: s.name.into(),
            sites: Some(at as u64),
            metric: Metric::WallTime,
            per: Per::Module,
            instrument: Instrument::Timer,
            value: median(v),
            interval: Some(bootstrap_median(v, &mut rng)),
            samples: Some(v.len() as u64),
            note: Some(format!(
                "median time of load + update + unload over the {which} tenth of the run ({} modules, ending at module {at}; bootstrap 95% interval); p99 {:.0} ns, max {:.0} ns",
                v.len(),
                quantile(v, 0.99),
                quantile(v, 1.0)
            )),
            statistic: Some(Statistic::Median),
            raw: v.to_vec(),
            first: None,
            ratio: None,
            histogram: None,
        });
    }
    eprintln!(
        "perf benchmarks: memory/churn: {done} modules in {secs:.1} s; trap-table slots {} -> {}",
        first_mark.map_or(0, |m| m.1),
        last_mark.map_or(0, |m| m.1)
    );
}

fn main() {
    let start = Instant::now();
    // Text made private by init(): Private_Dirty before and after each
    // implementation's init (nothing has patched anything before this).
    let mut text_by_init = Vec::new();
    for (s, imp) in implementations() {
        let a = private_text();
        (imp.init)().unwrap_or_else(|e| fail(&format!("{}: init: {e}", s.name)));
        let v = match (a, private_text()) {
            (Ok(a), Ok(b)) => Ok(b.saturating_sub(a)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        text_by_init.push((s.name.to_owned(), v));
    }
    if let Err(e) = prove::prove_all() {
        fail(&format!("not measuring what the name says: {e}"));
    }
    // Memory first: no module has been loaded or updated in this process
    // yet, so the heap and the trap handler's table start from nothing.
    let t = Instant::now();
    let mut mem = Part::new(Instrument::Registry);
    memory(&mut mem, &text_by_init);
    mem.seconds = t.elapsed().as_secs_f64();
    let mut part = Part::new(Instrument::PerfEvent);
    hardware(&mut part);
    software(&mut part);
    // Churn last: it grows the trap handler's table and reserves address
    // space that the figures above must not see.
    let t = Instant::now();
    churn(&mut mem);
    mem.seconds += t.elapsed().as_secs_f64();
    part.seconds = start.elapsed().as_secs_f64() - mem.seconds;
    if let Err(e) = static_call_bench::parts::write_part(&part) {
        fail(&e);
    }
    match write_and_assemble(&mem) {
        Ok(p) => eprintln!(
            "perf benchmarks: {} counter figures, {} missing, {} memory figures in {:.1} s; bundle {}",
            part.figures.len(),
            part.missing.len(),
            mem.figures.len(),
            start.elapsed().as_secs_f64(),
            p.display()
        ),
        Err(e) => fail(&e),
    }
}
