//! Memory under module churn (`memory/churn`): generated modules loaded,
//! updated and unloaded one after another.

use super::*;

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
pub(super) fn churn(part: &mut Part) {
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
