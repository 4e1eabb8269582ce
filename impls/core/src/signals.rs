//! `SIGTRAP` is never blocked through libc: the patching protocol's
//! breakpoints can meet any thread, so no thread may block the signal that
//! serves them.
//!
//! The kernel forces a trap signal that the trapping thread blocks to its
//! default action: a thread that meets an `int3` of a batch in flight while
//! it blocks `SIGTRAP` kills the process. Asking every thread before every
//! update (the `/proc/self/task` scan this replaces) costs O(threads) and
//! is a check-then-act: a thread can enter a signal handler whose
//! `sa_mask` holds `SIGTRAP` right after the check. Instead this module
//! takes the mask changes themselves, as sanitizers do: the library defines
//! the libc functions that set a thread's mask —
//!
//! * `sigprocmask`, `pthread_sigmask` (the set to block or install),
//! * `sigaction` (the handler's `sa_mask`, blocked while it runs),
//! * `sigsuspend`, `ppoll`, `pselect`, `epoll_pwait` (the mask installed
//!   while they wait: a handler that runs during the wait runs with it),
//!
//! — removes `SIGTRAP` from the set they are given, and forwards the call
//! to the next definition (libc's, found once with `dlsym(RTLD_NEXT)` from
//! an ELF constructor, before `main`). A program's request to *block*
//! `SIGTRAP` therefore succeeds and leaves it unblocked: the request is
//! about signals sent to the thread, and nothing sends `SIGTRAP` but a
//! breakpoint, a single step or an explicit `kill`/`raise`, which now reach
//! the handler chain (ours first, then the program's own handler, or the
//! default action) instead of staying pending.
//!
//! The engine's park signal (`text::park`, `SIGRTMAX - 1`) is kept out the
//! same way while the engine owns it (its handler is installed before
//! `main`; a program that installs an action of its own for that signal
//! through `sigaction` takes it back), so no thread can hold up a round
//! that parks the other threads by blocking it.
//!
//! The constructor also unblocks `SIGTRAP` in the main thread, which may
//! have inherited a blocked mask across `execve`; every later thread
//! inherits its creator's mask.
//!
//! Where it takes effect: calls the program's own code makes (Rust code,
//! `libc::…` calls, `std`, C code linked statically) bind at link time to
//! these definitions. A shared library's calls (a plugin's, even one that
//! links its own copy of this library) bind at run time to the first
//! definition in the global scope: the executable's, when it exports them.
//! lld (Rust's default linker on x86-64 Linux) exports them without being
//! asked, because libc, a shared library on the link line, defines the
//! same names; another linker may need
//! `-Wl,--export-dynamic-symbol=sigaction` and so on. [`guard`] says which
//! holds.
//! What cannot be covered — raw `rt_sigprocmask`/`rt_sigaction` system
//! calls, a handler that edits `uc_sigmask` in its context, libc's own
//! internal calls (`sigset`, `sighold`, `swapcontext`), a statically linked
//! libc — is listed in `docs/DESIGN.md`; [`crate::text::check_sigtrap_masks`]
//! finds a thread in that state on demand.
//!
//! Everything here is async-signal-safe once the constructor has run: one
//! atomic load, a copy of a `sigset_t`, and the forwarded call.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use libc::{c_int, sigset_t};

use crate::error::{Error, Result};

/// The functions taken, in the order of [`REAL`].
const NAMES: [&std::ffi::CStr; 7] = [
    c"sigaction",
    c"sigprocmask",
    c"pthread_sigmask",
    c"sigsuspend",
    c"ppoll",
    c"pselect",
    c"epoll_pwait",
];
const SIGACTION: usize = 0;
const SIGPROCMASK: usize = 1;
const PTHREAD_SIGMASK: usize = 2;
const SIGSUSPEND: usize = 3;
const PPOLL: usize = 4;
const PSELECT: usize = 5;
const EPOLL_PWAIT: usize = 6;

/// The next definition of each function (0: not resolved yet).
static REAL: [AtomicUsize; 7] = [const { AtomicUsize::new(0) }; 7];
/// How many sets had `SIGTRAP` taken out.
static STRIPPED: AtomicU64 = AtomicU64::new(0);

/// Resolves every forwarded function (idempotent). Runs from the ELF
/// constructor, before `main` and before any thread the program starts;
/// later only if some other constructor called one of the functions first.
fn resolve() {
    for (slot, name) in REAL.iter().zip(NAMES) {
        if slot.load(Ordering::Acquire) == 0 {
            // Raw libc, not libloading: it has no `RTLD_NEXT` lookup.
            // SAFETY: dlsym with a valid NUL-terminated name.
            let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
            slot.store(p as usize, Ordering::Release);
        }
    }
}

/// The next definition of function `i`, or `None` (errno `ENOSYS` is set)
/// when there is none — a statically linked libc (not supported).
fn real(i: usize) -> Option<usize> {
    let mut p = REAL[i].load(Ordering::Acquire);
    if p == 0 {
        resolve();
        p = REAL[i].load(Ordering::Acquire);
    }
    if p == 0 {
        // Raw libc: these are libc's functions, which report through errno
        // (rustix never sets it).
        // SAFETY: setting errno of this thread.
        unsafe { *libc::__errno_location() = libc::ENOSYS };
        return None;
    }
    Some(p)
}

/// `set` with `SIGTRAP` taken out, if it held it.
///
/// # Safety
/// `set` is null or points to a valid `sigset_t`.
unsafe fn stripped(set: *const sigset_t) -> Option<sigset_t> {
    if set.is_null() {
        return None;
    }
    // SAFETY: valid, as the caller promises.
    let mut copy = unsafe { *set };
    let park = crate::text::park::signal();
    // libc's sigset operations here and below: the set is libc's
    // `sigset_t`, which rustix has no operations for.
    // SAFETY: `copy` is a valid set.
    let trap = unsafe { libc::sigismember(&copy, libc::SIGTRAP) } == 1;
    // The engine's park signal too, while the engine owns it: a thread
    // that blocked it would hold every parking round up (docs/DESIGN.md,
    // "Bytes the engine does not own").
    // SAFETY: as above.
    let park = crate::text::shared::park_owned() && unsafe { libc::sigismember(&copy, park) } == 1;
    if !trap && !park {
        return None;
    }
    // SAFETY: as above.
    unsafe {
        libc::sigdelset(&mut copy, libc::SIGTRAP);
        if park {
            libc::sigdelset(&mut copy, crate::text::park::signal());
        }
    }
    STRIPPED.fetch_add(1, Ordering::Relaxed);
    Some(copy)
}

/// `set`, or the stripped copy in `buf` when it held `SIGTRAP`.
///
/// # Safety
/// As for [`stripped`].
unsafe fn or_stripped(set: *const sigset_t, buf: &mut sigset_t) -> *const sigset_t {
    // SAFETY: forwarded.
    match unsafe { stripped(set) } {
        Some(s) => {
            *buf = s;
            buf
        }
        None => set,
    }
}

type MaskFn = unsafe extern "C" fn(c_int, *const sigset_t, *mut sigset_t) -> c_int;

/// `sigprocmask` without `SIGTRAP` in the set to block or install.
///
/// # Safety
/// As for libc's `sigprocmask`.
#[unsafe(export_name = "sigprocmask")]
unsafe extern "C" fn take_sigprocmask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> c_int {
    let Some(f) = real(SIGPROCMASK) else {
        return -1;
    };
    // SAFETY: libc's sigprocmask has this signature.
    let f: MaskFn = unsafe { std::mem::transmute(f) };
    // SAFETY: zeroed is a valid sigset_t.
    let mut buf: sigset_t = unsafe { std::mem::zeroed() };
    let set = if how == libc::SIG_UNBLOCK {
        set
    } else {
        // SAFETY: the caller passes a valid or null set.
        unsafe { or_stripped(set, &mut buf) }
    };
    // SAFETY: forwarded with valid arguments.
    unsafe { f(how, set, old) }
}

/// `pthread_sigmask` without `SIGTRAP` in the set to block or install.
///
/// # Safety
/// As for libc's `pthread_sigmask`.
#[unsafe(export_name = "pthread_sigmask")]
unsafe extern "C" fn take_pthread_sigmask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> c_int {
    let Some(f) = real(PTHREAD_SIGMASK) else {
        return libc::ENOSYS;
    };
    // SAFETY: libc's pthread_sigmask has this signature.
    let f: MaskFn = unsafe { std::mem::transmute(f) };
    // SAFETY: zeroed is a valid sigset_t.
    let mut buf: sigset_t = unsafe { std::mem::zeroed() };
    let set = if how == libc::SIG_UNBLOCK {
        set
    } else {
        // SAFETY: the caller passes a valid or null set.
        unsafe { or_stripped(set, &mut buf) }
    };
    // SAFETY: forwarded with valid arguments.
    unsafe { f(how, set, old) }
}

/// `sigaction` without `SIGTRAP` in the handler's `sa_mask`.
///
/// # Safety
/// As for libc's `sigaction`.
#[unsafe(export_name = "sigaction")]
unsafe extern "C" fn take_sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    type F = unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;
    let Some(f) = real(SIGACTION) else {
        return -1;
    };
    // SAFETY: libc's sigaction has this signature.
    let f: F = unsafe { std::mem::transmute(f) };
    let mut copy;
    let mut act = act;
    if !act.is_null() {
        // SAFETY: the caller passes a valid action.
        copy = unsafe { *act };
        if sig == crate::text::park::signal()
            && !crate::text::shared::is_park_handler(copy.sa_sigaction)
        {
            // The program claims the engine's park signal for itself.
            crate::text::shared::park_disown();
        }
        // SAFETY: its mask is a valid set.
        if let Some(m) = unsafe { stripped(&copy.sa_mask) } {
            copy.sa_mask = m;
            act = &copy;
        }
    }
    // SAFETY: forwarded with valid arguments.
    unsafe { f(sig, act, old) }
}

/// libc's `sigaction` (rustix has none outside its experimental `runtime`
/// feature, which bypasses libc), with the action exactly as given: for the engine's
/// own handlers, whose `sa_mask` must keep what it says (the `SIGTRAP`
/// handler blocks the park signal: the grace period of `text::forget_slots`
/// relies on it).
///
/// # Safety
/// As for libc's `sigaction`.
pub(crate) unsafe fn sigaction_exact(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    type F = unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;
    let Some(f) = real(SIGACTION) else {
        return -1;
    };
    // SAFETY: libc's sigaction has this signature.
    let f: F = unsafe { std::mem::transmute(f) };
    // SAFETY: forwarded with the caller's valid arguments.
    unsafe { f(sig, act, old) }
}

/// `sigsuspend` that leaves `SIGTRAP` unblocked while it waits.
///
/// # Safety
/// As for libc's `sigsuspend`.
#[unsafe(export_name = "sigsuspend")]
unsafe extern "C" fn take_sigsuspend(set: *const sigset_t) -> c_int {
    type F = unsafe extern "C" fn(*const sigset_t) -> c_int;
    let Some(f) = real(SIGSUSPEND) else {
        return -1;
    };
    // SAFETY: libc's sigsuspend has this signature.
    let f: F = unsafe { std::mem::transmute(f) };
    // SAFETY: zeroed is a valid sigset_t.
    let mut buf: sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: the caller passes a valid set; forwarded.
    unsafe { f(or_stripped(set, &mut buf)) }
}

/// `ppoll` that leaves `SIGTRAP` unblocked while it waits.
///
/// # Safety
/// As for libc's `ppoll`.
#[unsafe(export_name = "ppoll")]
unsafe extern "C" fn take_ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    timeout: *const libc::timespec,
    set: *const sigset_t,
) -> c_int {
    type F = unsafe extern "C" fn(
        *mut libc::pollfd,
        libc::nfds_t,
        *const libc::timespec,
        *const sigset_t,
    ) -> c_int;
    let Some(f) = real(PPOLL) else {
        return -1;
    };
    // SAFETY: libc's ppoll has this signature.
    let f: F = unsafe { std::mem::transmute(f) };
    // SAFETY: zeroed is a valid sigset_t.
    let mut buf: sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: the caller passes valid arguments; forwarded.
    unsafe { f(fds, n, timeout, or_stripped(set, &mut buf)) }
}

/// `pselect` that leaves `SIGTRAP` unblocked while it waits.
///
/// # Safety
/// As for libc's `pselect`.
#[unsafe(export_name = "pselect")]
unsafe extern "C" fn take_pselect(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: *const libc::timespec,
    set: *const sigset_t,
) -> c_int {
    type F = unsafe extern "C" fn(
        c_int,
        *mut libc::fd_set,
        *mut libc::fd_set,
        *mut libc::fd_set,
        *const libc::timespec,
        *const sigset_t,
    ) -> c_int;
    let Some(f) = real(PSELECT) else {
        return -1;
    };
    // SAFETY: libc's pselect has this signature.
    let f: F = unsafe { std::mem::transmute(f) };
    // SAFETY: zeroed is a valid sigset_t.
    let mut buf: sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: the caller passes valid arguments; forwarded.
    unsafe { f(n, r, w, e, timeout, or_stripped(set, &mut buf)) }
}

/// `epoll_pwait` that leaves `SIGTRAP` unblocked while it waits.
///
/// # Safety
/// As for libc's `epoll_pwait`.
#[unsafe(export_name = "epoll_pwait")]
unsafe extern "C" fn take_epoll_pwait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    set: *const sigset_t,
) -> c_int {
    type F =
        unsafe extern "C" fn(c_int, *mut libc::epoll_event, c_int, c_int, *const sigset_t) -> c_int;
    let Some(f) = real(EPOLL_PWAIT) else {
        return -1;
    };
    // SAFETY: libc's epoll_pwait has this signature.
    let f: F = unsafe { std::mem::transmute(f) };
    // SAFETY: zeroed is a valid sigset_t.
    let mut buf: sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: the caller passes valid arguments; forwarded.
    unsafe { f(epfd, events, max, timeout, or_stripped(set, &mut buf)) }
}

/// Before `main`: resolves the forwarded functions (so that no call, from
/// a signal handler say, ever needs `dlsym`) and unblocks `SIGTRAP` in the
/// main thread, which may have inherited a blocked mask across `execve`.
extern "C" fn at_start() {
    resolve();
    // The first copy of the library to start claims the process's engine
    // (`text/shared.rs`) and installs the park handler, before the program
    // can block its signal in threads it starts (they inherit the mask).
    crate::text::shared::claim_at_start();
    // libc's sigset operations: rustix has none for libc's `sigset_t`.
    // SAFETY: unblocks two signals in this thread; valid sets.
    unsafe {
        let mut set: sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTRAP);
        if crate::text::shared::park_owned() {
            libc::sigaddset(&mut set, crate::text::park::signal());
        }
        take_pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static AT_START: extern "C" fn() = at_start;

/// Where the library keeps `SIGTRAP` unblocked (see [`guard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigmaskGuard {
    /// The program's own calls (Rust, `libc::…`, statically linked C) to
    /// `sigaction`, `sigprocmask`, `pthread_sigmask`, `sigsuspend`,
    /// `ppoll`, `pselect` and `epoll_pwait` go through the library: true
    /// whenever this library is linked into the executable.
    pub program: bool,
    /// Shared libraries' calls to them do too: the executable exports the
    /// library's definitions (see the README for the link arguments).
    pub shared_objects: bool,
    /// Sets that had `SIGTRAP` taken out so far.
    pub stripped: u64,
}

/// Whether calls to the libc functions that set a thread's signal mask go
/// through the library, which keeps `SIGTRAP` out of every mask.
pub fn guard() -> SigmaskGuard {
    let ours = take_pthread_sigmask as MaskFn as usize;
    // Raw libc, not libloading: it has no `RTLD_DEFAULT` (global scope) lookup.
    // SAFETY: dlsym with a valid name; RTLD_DEFAULT searches the global scope.
    let global = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"pthread_sigmask".as_ptr()) } as usize;
    SigmaskGuard {
        program: std::hint::black_box(AT_START) as usize != 0 && real(PTHREAD_SIGMASK).is_some(),
        shared_objects: global == ours,
        stripped: STRIPPED.load(Ordering::Relaxed),
    }
}

/// Makes sure the interposed definitions are linked into every program
/// that can write code (the engine calls this when it starts): an archive
/// member nothing refers to would be left out by the linker.
pub(crate) fn linked() -> bool {
    let fns = [
        take_sigaction as *const () as usize,
        take_sigprocmask as *const () as usize,
        take_pthread_sigmask as *const () as usize,
        take_sigsuspend as *const () as usize,
        take_ppoll as *const () as usize,
        take_pselect as *const () as usize,
        take_epoll_pwait as *const () as usize,
        std::hint::black_box(AT_START) as usize,
    ];
    std::hint::black_box(fns).iter().all(|&f| f != 0)
}

/// Looks for a thread that blocks `SIGTRAP` now: an opt-in diagnostic,
/// never part of an update.
///
/// No thread can block `SIGTRAP` through libc while this library is linked
/// (see [`crate::signals`]); one that did so with a raw `rt_sigprocmask`
/// system call, by editing `uc_sigmask` in a signal handler's context, or
/// through a shared library the executable does not route to the library
/// would be killed by a breakpoint of the patching protocol. This lists the
/// threads in `/proc/self/task` and reads each one's full blocked mask
/// (`SigBlk` in its `status`; `stat` shows only signals 1 to 31). A thread
/// inside glibc's brief all-signals-blocked window (thread creation and
/// exit, which run no code of the program) is recognised by signal 32,
/// which programs cannot block, and passed over. The cost is about 12 µs
/// per thread, which is why updates do not call it.
///
/// A listing of `/proc/self/task` can miss a live thread when another one
/// exits while it is read (the kernel walks the thread list by position
/// and stops at a thread that died under it), so the threads are listed
/// until two listings in a row agree, and every thread of any listing is
/// checked.
///
/// # Errors
/// [`Error::TrapBlocked`] naming the first such thread;
/// [`Error::Syscall`] when `/proc/self/task` cannot be read.
pub fn check_sigtrap_masks() -> Result<()> {
    const SIGTRAP_BIT: u64 = 1 << (libc::SIGTRAP - 1);
    const GLIBC_INTERNAL: u64 = 1 << 31;
    for tid in task_ids()? {
        let Ok(status) = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")) else {
            continue; // exited meanwhile
        };
        let blocked = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .unwrap_or(0);
        if blocked & SIGTRAP_BIT != 0 && blocked & GLIBC_INTERNAL == 0 {
            let name = status
                .lines()
                .find_map(|l| l.strip_prefix("Name:"))
                .map(|n| n.trim().to_owned())
                .unwrap_or_default();
            return Err(Error::TrapBlocked { tid, name });
        }
    }
    Ok(())
}

/// The threads of the process (sorted): the union of listings of
/// `/proc/self/task`, taken until two in a row agree (at most
/// [`LISTINGS`]), since one listing can miss a live thread while another
/// exits.
fn task_ids() -> Result<Vec<i32>> {
    fn listing() -> Result<Vec<i32>> {
        let dir = std::fs::read_dir("/proc/self/task")
            .map_err(|_| Error::last_os("opendir(/proc/self/task)", 0))?;
        let mut tids: Vec<i32> = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|t| t.parse().ok()))
            .collect();
        tids.sort_unstable();
        Ok(tids)
    }
    let mut all = listing()?;
    let mut last = all.clone();
    for _ in 1..LISTINGS {
        let now = listing()?;
        if now == last {
            break;
        }
        all.extend_from_slice(&now);
        last = now;
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

/// The most listings [`task_ids`] takes.
const LISTINGS: usize = 16;
