//! Bounded memory under churn: generated modules loaded and unloaded at
//! fresh addresses (as a JIT does) must not grow the trap handler's table
//! of known slots, nor the process's memory.

use super::*;

/// Modules loaded and unloaded (times `STATIC_CALL_SOAK`).
const MODULES: usize = 1500;
/// Sites per module.
const SITES: usize = 8;

/// Resident memory in KiB (`/proc/self/statm`).
pub(crate) fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// Keeps `addr..addr + len` reserved (inaccessible), so the next module
/// cannot be placed there: every module gets a fresh address.
fn reserve(addr: usize, len: usize) -> bool {
    // SAFETY: a fresh inaccessible mapping that never replaces another.
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

/// Loads, calls and unloads [`MODULES`] generated modules, each at an
/// address no module had before, with the key updated between them;
/// checks the trap handler's table and the resident memory stay flat.
pub(crate) fn module_churn<A: Adapter>() -> ScenarioResult {
    if !A::caps().patches_sites {
        return Ok(Outcome::Skip(
            "no module site is ever written here, so none is published to the trap handler".into(),
        ));
    }
    lib(A::init_with(InitPolicy::Track), "init")?;
    let key = A::add();
    lib(key.update(add1), "update")?;
    let n = MODULES * crate::runner::soak_factor() as usize;
    let mut reserved = Vec::new();
    let mut addrs = std::collections::BTreeSet::new();
    let (mut table0, mut rss0) = (0, 0);
    let mut t_first = Duration::ZERO;
    let mut t_last = Duration::ZERO;
    for i in 0..n {
        if i == n / 10 {
            // Past the warm-up (allocator and map caches filled).
            table0 = text::trap_table_len();
            rss0 = rss_kib();
        }
        let m = make::<A>(&[key.raw()], SITES, 0, false, None)?;
        ensure!(
            addrs.insert(m.code.addr()),
            "module {i} placed at {:#x} again",
            m.code.addr()
        );
        let t = Instant::now();
        let id = load::<A>(&m, "churn")?;
        lib(key.update(if i % 2 == 0 { add2 } else { add1 }), "update")?;
        let want = if i % 2 == 0 { 3 } else { 2 };
        // SAFETY: the module is loaded and mapped.
        let r = unsafe { m.funcs[i % SITES].call(1) };
        ensure!(
            r == want,
            "module {i}: a function gave {r}, expected {want}"
        );
        unload::<A>(id)?;
        let dt = t.elapsed();
        if i < n / 10 {
            t_first += dt;
        } else if i >= n - n / 10 {
            t_last += dt;
        }
        let (a, len) = (m.code.addr(), m.code.len());
        drop(m);
        if reserve(a, len) {
            reserved.push((a, len));
        }
    }
    let table1 = text::trap_table_len();
    let rss1 = rss_kib();
    for (a, len) in reserved {
        // SAFETY: our own reservations.
        unsafe { libc::munmap(a as *mut _, len) };
    }
    lib(key.update(add1), "update")?;
    let per = |t: Duration| t.as_secs_f64() * 1e6 / (n / 10).max(1) as f64;
    ensure!(
        table1 <= table0,
        "the trap handler's table grew from {table0} to {table1} slots over {} modules at fresh addresses ({} sites each); it keeps slots of unloaded modules",
        n - n / 10,
        SITES
    );
    ensure!(
        rss1 <= rss0 + 4096,
        "resident memory grew from {rss0} KiB to {rss1} KiB over {} modules",
        n - n / 10
    );
    Ok(Outcome::Pass(format!(
        "{n} modules of {SITES} sites at fresh addresses: trap table {table0} -> {table1} slots, RSS {rss0} -> {rss1} KiB; load+update+unload {:.1} us (first tenth) vs {:.1} us (last tenth)",
        per(t_first),
        per(t_last)
    )))
}
