//! The `SIGTRAP` handler that serves threads which hit a breakpoint the
//! patching protocol left on a slot.
//!
//! While a batch is being written, its slots and their new instructions are
//! *published* here (an immutable, address-sorted array behind an atomic
//! pointer). A thread that executes one of those `int3`s traps; the handler
//! finds the slot and emulates the slot's new instruction by editing the
//! interrupted context (a `call` pushes the return address and jumps, a
//! `jmp` jumps, a NOP skips the slot, a `ret` pops).
//!
//! Retirement: after the last phase the writer clears the pointer and waits
//! until no handler is inside the published array (`ACTIVE` counts them), so
//! the array is never freed under a reader.
//!
//! A thread can take the trap and be delivered the signal only after the
//! batch was retired. Then the breakpoint is gone from memory; the handler
//! sees that the slot now holds a whole instruction of ours and restarts the
//! thread at the slot (the approach Linux uprobes take for a removed
//! breakpoint). If it finds an `int3` there again, the next batch on that
//! slot has begun, and that batch was published before its `int3` was
//! written, so the handler looks it up again. Only a breakpoint trap
//! (`si_code` `SI_KERNEL` or `TRAP_BRKPT`) at an address some batch has
//! published is ours; the handler reads code only at such an address.
//! Any other `SIGTRAP` (a single step, a hardware breakpoint, a foreign
//! `int3`, a `kill`) goes at once, untouched, to the handler that was
//! installed before ours, or gets the default action.
//!
//! Everything the handler does is async-signal-safe: atomic loads, reads of
//! the published array and of code, and edits of the signal context.

use std::cell::UnsafeCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::SeqCst};

use crate::error::{Error, Result};
use crate::insn::{Form, INT3, SLOT_LEN};

pub(super) struct Published {
    slots: Vec<(usize, Form)>,
}

static BATCH: AtomicPtr<Published> = AtomicPtr::new(std::ptr::null_mut());
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static EMULATED: AtomicU64 = AtomicU64::new(0);
static RESTARTED: AtomicU64 = AtomicU64::new(0);

struct PrevAction(UnsafeCell<Option<libc::sigaction>>);
// SAFETY: written only under `INSTALLED` while our handler is not
// installed, read-only once it is.
unsafe impl Sync for PrevAction {}
static PREV: PrevAction = PrevAction(UnsafeCell::new(None));
/// Whether our handler is installed. Not a `Once`: a failed `sigaction`
/// leaves it false, and the next attempt tries again.
static INSTALLED: Mutex<bool> = Mutex::new(false);

/// Counters of the breakpoint handler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrapStats {
    /// Threads that hit a breakpoint of a batch in flight and were sent on
    /// through the emulated new instruction.
    pub emulated: u64,
    /// Threads that hit a breakpoint after it was removed and were
    /// restarted at the (now complete) instruction.
    pub restarted: u64,
}

pub(super) fn stats() -> TrapStats {
    TrapStats {
        emulated: EMULATED.load(SeqCst),
        restarted: RESTARTED.load(SeqCst),
    }
}

pub(super) fn install() -> Result<()> {
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *installed {
        return Ok(());
    }
    // SAFETY: a zeroed sigaction is a valid "no handler, empty mask".
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_sigtrap as *const () as usize;
    // SA_NODEFER: SIGTRAP stays unblocked while the handler runs (without
    // it the kernel would add SIGTRAP to the mask for the handler's
    // duration), so a thread being served here is not one that blocks
    // SIGTRAP, which `check_sigtrap_masks` would name. The handler never
    // executes a slot, so it cannot trap inside itself.
    act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART | libc::SA_NODEFER;
    // SAFETY: zeroed is a valid sigaction to receive the old one.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // Every other signal is blocked while the handler runs: a handler of
    // the program's that interrupted ours would run on our alternate stack
    // (it is the current stack), and its own calls of keys would stack
    // more breakpoint frames there, overflowing the small stack Rust gives
    // each thread (a SIGSEGV, seen with a SIGUSR1 handler that calls keys
    // at 10 kHz). The handler is short; the signals wait until it returns.
    // libc's sigset operations: rustix has none for libc's `sigset_t`.
    // SAFETY: `act.sa_mask` is a valid sigset; we only fill it.
    unsafe {
        // Every other signal waits until the handler is done (see
        // docs/DESIGN.md): the engine's park signal among them, so a thread
        // that parks has finished every trap it took before (the grace
        // period `forget` relies on), and is never parked while it reads a
        // published array.
        libc::sigfillset(&mut act.sa_mask);
        libc::sigdelset(&mut act.sa_mask, libc::SIGTRAP);
    }
    // We must store PREV before our handler can run, so we ask for the
    // current action with a null new action, then install.
    if super::switches::injected(super::switches::Hit::Sigaction) {
        return Err(Error::os("sigaction(SIGTRAP)", 0, rustix::io::Errno::PERM));
    }
    // Not rustix, which has no `sigaction`: libc's, reached past this
    // library's own definition (`crate::signals`).
    // SAFETY: querying only.
    if unsafe { crate::signals::sigaction_exact(libc::SIGTRAP, std::ptr::null(), &mut old) } != 0 {
        return Err(Error::last_os("sigaction(SIGTRAP)", 0));
    }
    // SAFETY: our handler is not installed (INSTALLED is false and we hold
    // its lock), so nothing reads PREV now; sigaction below publishes it,
    // with the kernel as the barrier.
    unsafe { *PREV.0.get() = Some(old) };
    // SAFETY: installs our handler, a valid `extern "C"` signal handler.
    if unsafe { crate::signals::sigaction_exact(libc::SIGTRAP, &act, std::ptr::null_mut()) } != 0 {
        return Err(Error::last_os("sigaction(SIGTRAP)", 0));
    }
    *installed = true;
    Ok(())
}

/// Checks that our handler is still the `SIGTRAP` action: a program that
/// replaced it would have threads killed by the protocol's breakpoints.
pub(super) fn check_installed() -> Result<()> {
    // SAFETY: zeroed is a valid sigaction to receive the current one.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: querying only.
    if unsafe { crate::signals::sigaction_exact(libc::SIGTRAP, std::ptr::null(), &mut cur) } != 0 {
        return Err(Error::last_os("sigaction(SIGTRAP)", 0));
    }
    if cur.sa_sigaction != on_sigtrap as *const () as usize {
        return Err(Error::TrapHandlerReplaced {
            found: cur.sa_sigaction,
        });
    }
    Ok(())
}

/// A published batch: while it lives, `BATCH` points at it and the handler
/// serves its slots; dropping it withdraws it (also on unwinding), and
/// frees it once no handler reads it.
#[must_use = "dropping a published batch withdraws it at once"]
pub(super) struct Token(*mut Published);

impl Token {
    /// Replaces the published instructions for the same slots (a rollback
    /// publishes the old ones), with no moment in between where the slots
    /// are unpublished.
    pub(super) fn republish(&mut self, slots: impl Iterator<Item = (usize, Form)>) {
        let p = boxed(slots);
        BATCH.store(p, SeqCst);
        quiesce();
        // SAFETY: `self.0` came from `publish` (or an earlier republish);
        // BATCH no longer points at it and no handler that loaded it is
        // still running.
        drop(unsafe { Box::from_raw(self.0) });
        self.0 = p;
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        BATCH.store(std::ptr::null_mut(), SeqCst);
        quiesce();
        // SAFETY: `self.0` came from `publish`; no handler holds it any
        // more (a handler increments ACTIVE before loading BATCH, and
        // BATCH is null).
        drop(unsafe { Box::from_raw(self.0) });
    }
}

fn boxed(slots: impl Iterator<Item = (usize, Form)>) -> *mut Published {
    let mut slots: Vec<(usize, Form)> = slots.collect();
    // Batches arrive sorted (the engine sorts them to coalesce writes):
    // checking is O(n), sorting only when needed.
    if !slots.is_sorted_by_key(|s| s.0) {
        slots.sort_unstable_by_key(|s| s.0);
    }
    Box::into_raw(Box::new(Published { slots }))
}

/// Waits until no handler is inside a published array it loaded before.
fn quiesce() {
    while ACTIVE.load(SeqCst) != 0 {
        std::thread::yield_now();
    }
}

/// Every slot address ever published (sorted, deduplicated): only a trap
/// at one of these can be a breakpoint of ours that a batch already
/// removed, so only there does the handler read code. Replaced (never
/// edited) when a batch brings new addresses; the old array is freed once
/// no handler reads it.
static KNOWN: AtomicPtr<Published> = AtomicPtr::new(std::ptr::null_mut());

/// The slots of `new` whose address is not in `known` (both sorted by
/// address). Walks them together, galloping through `known`: O(n log(m /
/// n)) for n new and m known slots, so a 1-slot batch among 100,000 known
/// ones and a 10,000-slot batch both cost what they should.
fn not_in(new: &[(usize, Form)], known: &[(usize, Form)]) -> Vec<(usize, Form)> {
    let k = known;
    let mut fresh = Vec::new();
    let mut base = 0;
    for &(a, f) in new {
        // Invariant: every address in k[..base] is below `a`.
        let mut step = 1;
        while base + step < k.len() && k[base + step].0 < a {
            base += step;
            step *= 2;
        }
        let end = (base + step + 1).min(k.len());
        base += k[base..end].partition_point(|s| s.0 < a);
        if k.get(base).is_none_or(|s| s.0 != a) {
            fresh.push((a, f));
        }
    }
    fresh
}

/// Adds the addresses of a batch to [`KNOWN`] (callers hold the engine
/// lock, so there is one writer).
fn remember(p: *const Published) {
    let old = KNOWN.load(SeqCst);
    // SAFETY: `p` is a live array of ours; `old` is only freed below, by
    // the one writer.
    let (new_slots, known) = unsafe { (&(*p).slots, old.as_ref().map(|k| &k.slots)) };
    let fresh = not_in(new_slots, known.map_or(&[][..], |k| &k[..]));
    if fresh.is_empty() {
        return;
    }
    // Both sorted: merge in O(n + m).
    let known = known.map_or(&[][..], |k| &k[..]);
    let mut merged = Vec::with_capacity(known.len() + fresh.len());
    let (mut i, mut j) = (0, 0);
    while i < known.len() || j < fresh.len() {
        if j == fresh.len() || (i < known.len() && known[i].0 < fresh[j].0) {
            merged.push(known[i]);
            i += 1;
        } else {
            merged.push(fresh[j]);
            j += 1;
        }
    }
    KNOWN.store(boxed(merged.into_iter()), SeqCst);
    if !old.is_null() {
        quiesce();
        // SAFETY: no longer reachable through KNOWN, and no handler that
        // loaded it is still running.
        drop(unsafe { Box::from_raw(old) });
    }
}

/// Forgets the slots in `addrs` (sorted or not): a trap there is no
/// longer the handler's. Callers hold the engine lock and guarantee that
/// no thread can still trap on a breakpoint of ours there (see
/// `text::forget_slots`).
pub(super) fn forget(addrs: &[usize]) {
    let old = KNOWN.load(SeqCst);
    if old.is_null() || addrs.is_empty() {
        return;
    }
    let mut gone = addrs.to_vec();
    gone.sort_unstable();
    // SAFETY: `old` is only freed below, by the one writer.
    let known = unsafe { &(*old).slots };
    let kept: Vec<(usize, Form)> = known
        .iter()
        .filter(|s| gone.binary_search(&s.0).is_err())
        .copied()
        .collect();
    if kept.len() == known.len() {
        return;
    }
    KNOWN.store(boxed(kept.into_iter()), SeqCst);
    quiesce();
    // SAFETY: no longer reachable through KNOWN, and no handler that
    // loaded it is still running.
    drop(unsafe { Box::from_raw(old) });
}

/// How many slot addresses the handler knows (the size of its table).
pub(super) fn known_len() -> usize {
    let p = KNOWN.load(SeqCst);
    // SAFETY: only the engine-lock holder frees KNOWN's array; callers
    // hold that lock.
    unsafe { p.as_ref() }.map_or(0, |k| k.slots.len())
}

/// Whether `at` is a slot some batch published.
fn known(at: usize) -> bool {
    ACTIVE.fetch_add(1, SeqCst);
    // SAFETY: KNOWN's array is freed only after ACTIVE drops to zero.
    let hit = unsafe { find(KNOWN.load(SeqCst), at) }.is_some();
    ACTIVE.fetch_sub(1, SeqCst);
    hit
}

/// Publishes the slots of a batch (address, new instruction) for the
/// handler.
pub(super) fn publish(slots: impl Iterator<Item = (usize, Form)>) -> Token {
    let p = boxed(slots);
    remember(p);
    BATCH.store(p, SeqCst);
    Token(p)
}

/// Slots whose old bytes could not be put back after a failed batch: the
/// handler serves them for the life of the process. Append-only; an older
/// array is leaked rather than freed, so no handler can read freed memory.
static KEPT: AtomicPtr<Published> = AtomicPtr::new(std::ptr::null_mut());

/// Keeps serving `slots` (address, instruction) forever.
pub(super) fn keep_forever(slots: Vec<(usize, Form)>) {
    let old = KEPT.load(SeqCst);
    let mut all = if old.is_null() {
        Vec::new()
    } else {
        // SAFETY: arrays in KEPT are never freed.
        unsafe { (*old).slots.clone() }
    };
    all.retain(|(a, _)| !slots.iter().any(|(b, _)| a == b));
    all.extend(slots);
    KEPT.store(boxed(all.into_iter()), SeqCst);
}

/// `si_code` of a breakpoint trap: `int3` reports `SI_KERNEL`; `TRAP_BRKPT`
/// is accepted too. A single step (`TRAP_TRACE`), a hardware breakpoint
/// or a `SIGTRAP` sent by `kill` is never ours.
const SI_KERNEL: libc::c_int = 0x80;
const TRAP_BRKPT: libc::c_int = 1;

extern "C" fn on_sigtrap(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let code = unsafe { info.as_ref() }.map_or(0, |i| i.si_code);
    if code != SI_KERNEL && code != TRAP_BRKPT {
        // SAFETY: the previous action was stored before we were installed.
        unsafe { chain(sig, info, ctx) };
        return;
    }
    // SAFETY: the kernel passes a valid ucontext_t for SA_SIGINFO handlers.
    let uc = unsafe { &mut *(ctx as *mut libc::ucontext_t) };
    let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
    let at = rip.wrapping_sub(1);

    // A breakpoint of ours exists in memory only while the batch that
    // wrote it is published (it is published before the first `int3` is
    // written and withdrawn after the last is replaced). So: look the
    // address up in the published batch; if it is not there, look at the
    // byte. A whole instruction of ours means the breakpoint was removed
    // after we hit it: restart there. An `int3` means another batch may be
    // starting on the same slot (published before it wrote the byte we
    // read): look again. A bounded number of rounds tells a foreign `int3`
    // apart.
    for _ in 0..10_000 {
        if let Some(form) = lookup(at) {
            emulate(uc, at, form);
            EMULATED.fetch_add(1, SeqCst);
            return;
        }
        if !known(at) {
            // Not a slot of ours: a foreign `int3`. Chain at once, without
            // reading code that may not be mapped.
            break;
        }
        // SAFETY: `at` is a slot some batch published: its 5 bytes are
        // mapped code (a slot never ends past its mapping).
        let now = unsafe { std::ptr::read_volatile(at as *const [u8; SLOT_LEN]) };
        if now[0] != INT3 {
            if Form::decode(at, now).is_some() {
                uc.uc_mcontext.gregs[libc::REG_RIP as usize] = at as i64;
                RESTARTED.fetch_add(1, SeqCst);
                return;
            }
            break;
        }
        std::hint::spin_loop();
    }
    // SAFETY: the previous action was stored before we were installed.
    unsafe { chain(sig, info, ctx) }
}

/// # Safety
/// `p` is null or points to a `Published` that stays alive for the call.
unsafe fn find(p: *const Published, at: usize) -> Option<Form> {
    if p.is_null() {
        return None;
    }
    // SAFETY: alive, as the caller promises.
    let slots = unsafe { &(*p).slots };
    slots
        .binary_search_by_key(&at, |s| s.0)
        .ok()
        .map(|i| slots[i].1)
}

/// The new instruction of slot `at` in the published batch, or the kept
/// instruction of a slot a failed batch could not restore, if any.
fn lookup(at: usize) -> Option<Form> {
    ACTIVE.fetch_add(1, SeqCst);
    // SAFETY: a non-null BATCH points to a live Published while ACTIVE > 0
    // (see `Token`'s drop); arrays in KEPT are never freed.
    let hit = unsafe { find(BATCH.load(SeqCst), at).or_else(|| find(KEPT.load(SeqCst), at)) };
    ACTIVE.fetch_sub(1, SeqCst);
    hit
}

fn emulate(uc: &mut libc::ucontext_t, at: usize, form: Form) {
    let g = &mut uc.uc_mcontext.gregs;
    let rsp = libc::REG_RSP as usize;
    let rip = libc::REG_RIP as usize;
    match form {
        Form::Call(target) => {
            let sp = (g[rsp] as usize) - 8;
            // SAFETY: a `call` at this point would push here; the stack of
            // the interrupted thread has room (the kernel put the signal
            // frame below the red zone).
            unsafe { std::ptr::write(sp as *mut u64, (at + SLOT_LEN) as u64) };
            g[rsp] = sp as i64;
            g[rip] = target as i64;
        }
        Form::Jmp(target) => g[rip] = target as i64,
        Form::Nop => g[rip] = (at + SLOT_LEN) as i64,
        Form::Ret => {
            let sp = g[rsp] as usize;
            // SAFETY: a `ret` here would pop this word from the stack.
            let ret = unsafe { std::ptr::read(sp as *const u64) };
            g[rsp] = (sp + 8) as i64;
            g[rip] = ret as i64;
        }
        Form::Zero => {
            zero_rax(g);
            g[rip] = (at + SLOT_LEN) as i64;
        }
        // Never written: it has no 5-byte encoding, so no write plans it.
        Form::CallVia(_) => {}
    }
}

/// What `xor eax, eax` does: `rax = 0`, and the flags of a zero result
/// (ZF and PF set; CF, OF and SF clear; AF is undefined and cleared).
fn zero_rax(g: &mut [libc::greg_t; 23]) {
    const CF: i64 = 1;
    const PF: i64 = 1 << 2;
    const AF: i64 = 1 << 4;
    const ZF: i64 = 1 << 6;
    const SF: i64 = 1 << 7;
    const OF: i64 = 1 << 11;
    g[libc::REG_RAX as usize] = 0;
    let fl = libc::REG_EFL as usize;
    g[fl] = (g[fl] & !(CF | PF | AF | ZF | SF | OF)) | ZF | PF;
}

/// Passes a `SIGTRAP` that is not ours to the action installed before us,
/// so that it ends as it would have without the library:
/// * a handler is called;
/// * `SIG_IGN` ignores a sent `SIGTRAP` (`kill`, `raise`), but a trap the
///   kernel forces (an `int3`, a single step) is never ignored: the kernel
///   resets an ignored action to `SIG_DFL` for it and the process dies;
/// * `SIG_DFL` (and `SIG_IGN` for a forced trap): the default action is
///   restored. For an `int3` the thread is then sent back to it, so the
///   instruction runs again and the kernel delivers its `SIGTRAP` itself:
///   the process dies of it with the fault's own context (registers,
///   `si_code`) for a core dump or a tracer. Any other trap is raised
///   again from here (its context is this handler's).
///
/// # Safety
/// Called only from the signal handler, with its arguments.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: PREV is immutable once the handler is installed.
    let prev = unsafe { *PREV.0.get() };
    let Some(prev) = prev else { return };
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let code = unsafe { info.as_ref() }.map_or(0, |i| i.si_code);
    // Positive codes (and SI_KERNEL) are the kernel's own traps; zero and
    // negative ones were sent (SI_USER, SI_TKILL, SI_QUEUE, …).
    let forced = code > 0;
    match prev.sa_sigaction {
        libc::SIG_IGN if !forced => {}
        libc::SIG_IGN | libc::SIG_DFL => {
            // SAFETY: a zeroed sigaction is SIG_DFL with an empty mask.
            let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
            dfl.sa_sigaction = libc::SIG_DFL;
            // SAFETY: a plain syscall with a valid action.
            unsafe { crate::signals::sigaction_exact(libc::SIGTRAP, &dfl, std::ptr::null_mut()) };
            if (code == SI_KERNEL || code == TRAP_BRKPT) && !ctx.is_null() {
                // SAFETY: the kernel passes a valid ucontext_t for
                // SA_SIGINFO handlers.
                let uc = unsafe { &mut *(ctx as *mut libc::ucontext_t) };
                let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
                let at = rip.wrapping_sub(1);
                if byte_at(at) == Some(INT3) {
                    uc.uc_mcontext.gregs[libc::REG_RIP as usize] = at as i64;
                    return;
                }
            }
            // libc's `raise` (rustix has none): async-signal-safe, and with
            // SIG_DFL it ends the process as the trap would have.
            // SAFETY: a plain syscall.
            unsafe { libc::raise(libc::SIGTRAP) };
        }
        h if prev.sa_flags & libc::SA_SIGINFO != 0 => {
            // SAFETY: the previous handler was installed with SA_SIGINFO,
            // so it has this signature.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(h) };
            f(sig, info, ctx);
        }
        h => {
            // SAFETY: a handler installed without SA_SIGINFO takes one int.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
            f(sig);
        }
    }
}

/// The byte at `addr`, read with a system call (async-signal-safe, and
/// `None` rather than a fault where nothing is mapped).
fn byte_at(addr: usize) -> Option<u8> {
    let mut b = 0u8;
    let local = libc::iovec {
        iov_base: (&mut b as *mut u8).cast(),
        iov_len: 1,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: 1,
    };
    // libc's `process_vm_readv`: rustix has no such call. `getpid` is
    // rustix's, a plain system call (async-signal-safe).
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    // SAFETY: reads one byte of this process into `b`; the kernel checks
    // the remote address.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    (n == 1).then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the comments at `install` promise, as the kernel holds it:
    /// `SIGTRAP` stays unblocked inside the handler (`SA_NODEFER`), and the
    /// park signal is blocked there (the grace period of `forget` relies on
    /// it).
    #[test]
    fn the_handler_takes_sigtrap_and_blocks_the_park_signal() {
        install().expect("the SIGTRAP handler installs");
        // SAFETY: a zeroed sigaction is a valid buffer for the query.
        let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: querying only.
        let r =
            unsafe { crate::signals::sigaction_exact(libc::SIGTRAP, std::ptr::null(), &mut cur) };
        assert_eq!(r, 0);
        assert_eq!(cur.sa_sigaction, on_sigtrap as *const () as usize);
        assert_ne!(cur.sa_flags & libc::SA_NODEFER, 0, "SA_NODEFER missing");
        // SAFETY: `cur.sa_mask` is a valid set.
        let (trap, park) = unsafe {
            (
                libc::sigismember(&cur.sa_mask, libc::SIGTRAP),
                libc::sigismember(&cur.sa_mask, super::super::park::signal()),
            )
        };
        assert_eq!(
            (trap, park),
            (0, 1),
            "(SIGTRAP, park signal) in the handler's mask"
        );
    }

    #[test]
    fn not_in_matches_a_plain_search() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut rnd = |n: u64| rng.u64(..n);
        for _ in 0..200 {
            let mut known: Vec<(usize, Form)> = (0..rnd(300))
                .map(|_| (rnd(2000) as usize, Form::Nop))
                .collect();
            known.sort_unstable_by_key(|s| s.0);
            known.dedup_by_key(|s| s.0);
            let mut new: Vec<(usize, Form)> = (0..rnd(50))
                .map(|_| (rnd(2000) as usize, Form::Ret))
                .collect();
            new.sort_unstable_by_key(|s| s.0);
            new.dedup_by_key(|s| s.0);
            let want: Vec<_> = new
                .iter()
                .filter(|(a, _)| !known.iter().any(|k| k.0 == *a))
                .copied()
                .collect();
            assert_eq!(not_in(&new, &known), want);
        }
    }
}
