//! Other code writers: a thread that writes bytes between the sites of a
//! generated module through `/proc/self/mem` (as a debugger inserting and
//! removing breakpoints, or a JIT rewriting immediates, would) while the
//! key is updated in a loop. None of its writes may ever be undone by a
//! batch (the engine writes runs of slots with one `pwrite`, the bytes
//! between them included: see `docs/DESIGN.md`, "The write path").

use super::*;

/// Sites of the module (functions of 14 bytes: the runs bridge them).
const SITES: usize = 2000;

/// What the writer did and saw.
struct Seen {
    writes: u64,
    /// A breakpoint it had inserted was gone (lost).
    lost: u64,
    /// A byte it had put back was `int3` again (revived), or, for plain
    /// writes, any byte that no longer held what it wrote.
    revived: u64,
    first: Option<String>,
}

/// Runs the key's update loop for about 1.5 s while a thread writes the
/// bytes at `targets` (never executed: every other function of the
/// module) through `/proc/self/mem`: `int3` and back (`breakpoints`), or
/// changing values. Before each write it checks the byte still holds what
/// it wrote last. A thread calls the other functions meanwhile.
fn foreign_writer<A: Adapter>(breakpoints: bool, block_all: bool) -> ScenarioResult {
    if !A::caps().patches_sites {
        return Ok(Outcome::Skip(
            "updates write no site of a module here (nothing is written between sites)".into(),
        ));
    }
    lib(A::init_with(InitPolicy::Track), "init")?;
    let key = A::add();
    let m = make::<A>(&[key.raw()], SITES, 0, false, None)?;
    let id = load::<A>(&m, "foreign")?;
    lib(key.update(add1), "update")?;
    // Odd functions are written, even ones are called.
    let (written, called): (Vec<_>, Vec<_>) =
        m.funcs.iter().enumerate().partition(|(i, _)| i % 2 == 1);
    // A breakpoint goes on a function's first byte (`sub rsp, 8`); plain
    // writes change the immediate of its `add rsp, 8` (after the site).
    let targets: Vec<usize> = written
        .iter()
        .map(|(_, f)| if breakpoints { f.addr } else { f.site + 8 })
        .collect();
    let called: Vec<usize> = called.iter().map(|(_, f)| f.addr).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let targets = targets.clone();
        std::thread::spawn(move || -> Result<Seen, String> {
            if block_all {
                // The classic "signals go to one thread" setup: this
                // thread blocks every signal through libc.
                // SAFETY: a valid full set for this thread's own mask.
                unsafe {
                    let mut all: libc::sigset_t = std::mem::zeroed();
                    libc::sigfillset(&mut all);
                    libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
                }
                // What the kernel holds now (a raw read: no library between).
                let mut now = [0u64; 1];
                // SAFETY: reads this thread's mask into 8 bytes of ours.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_rt_sigprocmask,
                        libc::SIG_BLOCK,
                        std::ptr::null::<u64>(),
                        now.as_mut_ptr(),
                        8usize,
                    )
                };
                let park = 1u64 << (text::park_signal() - 1);
                if r != 0 || now[0] & park != 0 {
                    return Err(format!(
                        "the park signal is blocked in the writer after pthread_sigmask(sigfillset): kernel mask {:#x}",
                        now[0]
                    ));
                }
            }
            let mem = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/proc/self/mem")
                .map_err(|e| format!("open /proc/self/mem: {e}"))?;
            let put = |a: usize, b: u8| {
                // SAFETY: writes one byte of the module's code (a function
                // no thread calls) through the kernel.
                let n = unsafe {
                    libc::pwrite(
                        std::os::fd::AsRawFd::as_raw_fd(&mem),
                        (&b as *const u8).cast(),
                        1,
                        a as libc::off_t,
                    )
                };
                n == 1
            };
            // SAFETY: mapped code of the module, which outlives this thread.
            let get = |a: usize| unsafe { std::ptr::read_volatile(a as *const u8) };
            let orig: Vec<u8> = targets.iter().map(|&a| get(a)).collect();
            let mut last = orig.clone();
            let mut seen = Seen {
                writes: 0,
                lost: 0,
                revived: 0,
                first: None,
            };
            let check = |i: usize, last: &[u8], seen: &mut Seen| {
                let now = get(targets[i]);
                if now != last[i] {
                    if breakpoints && last[i] == 0xcc {
                        seen.lost += 1;
                    } else {
                        seen.revived += 1;
                    }
                    seen.first.get_or_insert_with(|| {
                        format!(
                            "at {:#x} wrote {:#04x}, found {now:#04x} later",
                            targets[i], last[i]
                        )
                    });
                }
            };
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let i = n % targets.len();
                check(i, &last, &mut seen);
                let b = if breakpoints {
                    if last[i] == 0xcc { orig[i] } else { 0xcc }
                } else {
                    last[i].wrapping_add(1 + (n as u8 % 7))
                };
                if !put(targets[i], b) {
                    return Err(format!("pwrite at {:#x} failed", targets[i]));
                }
                last[i] = b;
                seen.writes += 1;
                n += 1;
            }
            // Updates have stopped: every byte must hold what was written
            // last. Then put the module back as it was.
            for i in 0..targets.len() {
                check(i, &last, &mut seen);
                put(targets[i], orig[i]);
            }
            Ok(seen)
        })
    };
    let caller_stop = Arc::new(AtomicBool::new(false));
    let caller = {
        let stop = caller_stop.clone();
        std::thread::spawn(move || {
            let (mut calls, mut wrong) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: generated `extern "C" fn(u64) -> u64`s of a
                // module that stays loaded until this thread is joined.
                let f: extern "C" fn(u64) -> u64 =
                    unsafe { std::mem::transmute(called[calls as usize % called.len()]) };
                let r = f(40);
                wrong += u64::from(r != 41 && r != 42);
                calls += 1;
            }
            (calls, wrong)
        })
    };
    let t = Instant::now();
    let mut updates = 0u64;
    let mut failed = None;
    while t.elapsed() < Duration::from_millis(1500 * crate::runner::soak_factor()) {
        let f = if updates.is_multiple_of(2) {
            add2
        } else {
            add1
        };
        if let Err(e) = key.update(f) {
            failed = Some(format!("update {updates}: {e}"));
            break;
        }
        updates += 1;
    }
    stop.store(true, Ordering::Relaxed);
    caller_stop.store(true, Ordering::Relaxed);
    let seen = writer.join().map_err(|_| "the writer thread panicked")??;
    let (calls, wrong) = caller.join().map_err(|_| "the caller thread panicked")?;
    if let Some(e) = failed {
        return Err(e);
    }
    lib(key.update(add1), "update")?;
    unload::<A>(id)?;
    let (rounds, incomplete, waited) = text::park_stats();
    ensure!(
        wrong == 0,
        "{wrong} of {calls} calls reached neither target"
    );
    ensure!(
        seen.lost + seen.revived == 0,
        "{} of {} foreign writes undone during {updates} updates ({}); first: {}",
        seen.lost + seen.revived,
        seen.writes,
        if breakpoints {
            format!("{} breakpoints lost, {} revived", seen.lost, seen.revived)
        } else {
            "bytes written back".into()
        },
        seen.first.unwrap_or_default()
    );
    ensure!(
        // A round also ends incomplete when a thread gets no CPU within
        // its 20 ms (a loaded machine); a thread that kept the park signal
        // blocked would leave every round incomplete.
        !block_all || (rounds > 0 && incomplete * 4 <= rounds),
        "a thread that blocked every signal through libc held parking rounds up: {incomplete} of {rounds} rounds incomplete"
    );
    ensure!(
        seen.writes >= 1000 && updates >= 10,
        "too little happened to mean anything: {} writes, {updates} updates",
        seen.writes
    );
    Ok(Outcome::Pass(format!(
        "{} {} through /proc/self/mem between {SITES} sites during {updates} updates, {calls} calls: 0 undone, 0 wrong (parking rounds {rounds}, incomplete {incomplete}, {:.1} us waited per round)",
        seen.writes,
        if breakpoints {
            "breakpoint inserts/removes"
        } else {
            "byte rewrites"
        },
        waited as f64 / 1e3 / rounds.max(1) as f64
    )))
}

/// A debugger's breakpoints between sites are never lost or revived.
pub(crate) fn foreign_breakpoints<A: Adapter>() -> ScenarioResult {
    foreign_writer::<A>(true, false)
}

/// Another writer's bytes between sites are never written back.
pub(crate) fn foreign_writes<A: Adapter>() -> ScenarioResult {
    foreign_writer::<A>(false, false)
}

/// The same with a writer thread that blocks every signal through libc
/// (`sigfillset`, `pthread_sigmask`): the library keeps the park signal
/// out of its mask, so every parking round completes.
pub(crate) fn foreign_writes_masked<A: Adapter>() -> ScenarioResult {
    foreign_writer::<A>(false, true)
}
