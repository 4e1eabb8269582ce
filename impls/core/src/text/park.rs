//! Parking the process's other threads for a moment: each is sent the
//! engine's park signal ([`signal`], `SIGRTMAX - 1`), whose handler counts
//! itself in and waits on a futex until the writer releases the round.
//!
//! Used for three things (see `docs/DESIGN.md`, "The write path" and
//! "Under a debugger"):
//! * while a phase of a batch copies a run's bytes and writes them back,
//!   no other thread of the process runs, so a write another thread makes
//!   to code (through `/proc/self/mem`, as a debugger or a JIT does) lands
//!   wholly before the copy or wholly after the write: never undone;
//! * under a tracer, a batch is written with every other thread parked and
//!   no breakpoint at all;
//! * a completed round is a grace period for the trap handler: the park
//!   signal is blocked while the `SIGTRAP` handler runs, and a pending
//!   `SIGTRAP` (synchronous) is delivered before it, so a thread that has
//!   parked has finished every trap it took before the round began.
//!
//! While parked (between [`park`] and [`Parked::release`]) the writer must
//! not allocate: a parked thread may hold an allocator lock.

use std::cell::Cell;
use std::fs::File;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use rustix::thread::futex;

/// Odd while a round is on; a round is `GEN` at its start.
static GEN: AtomicU32 = AtomicU32::new(0);
/// Threads that parked in the current round (low 16 bits), tagged with
/// the round (high 16 bits: `GEN / 2`), so that a handler of an earlier
/// round that counts itself late is not taken for a thread of this one.
static ARRIVED: AtomicU32 = AtomicU32::new(0);

/// The tag of round `g` in [`ARRIVED`].
fn tag(g: u32) -> u32 {
    (g >> 1) << 16
}

/// Threads counted in [`ARRIVED`] for the current round.
fn arrived() -> usize {
    (ARRIVED.load(SeqCst) & 0xffff) as usize
}
/// Rounds that ended with a thread that did not park (it blocks the park
/// signal, or did not run within [`WAIT`]).
static INCOMPLETE: AtomicU64 = AtomicU64::new(0);
/// Rounds with at least one other thread.
static ROUNDS: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds spent waiting for threads to park, over all rounds.
static WAITED: AtomicU64 = AtomicU64::new(0);
/// `Some(true)`: our handler is installed; `Some(false)`: the program had
/// its own action for the signal, so parking is unavailable.
static INSTALLED: Mutex<Option<bool>> = Mutex::new(None);

thread_local! {
    /// The last round this thread parked in (a real-time signal is queued,
    /// so a thread can be sent two for one round; it counts once).
    static LAST: Cell<u32> = const { Cell::new(0) };
}

/// How long the writer waits for every thread to park.
/// How long a round of the write path waits for every thread to park: a
/// round that ends incomplete only makes the phase write slot by slot.
pub(super) const WAIT: Duration = Duration::from_millis(20);

/// How long a round under a tracer waits: there an incomplete round fails
/// the update (`Error::Traced`), and every park signal passes through the
/// tracer, which stops the thread, looks at the signal and resumes it.
pub(super) const WAIT_TRACED: Duration = Duration::from_secs(1);

/// The engine's park signal.
pub(crate) fn signal() -> libc::c_int {
    libc::SIGRTMAX() - 1
}

/// Installs the park handler (once). Leaves a program's own action for
/// the signal alone, and parking unavailable then.
pub(crate) fn install() {
    let mut g = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_some() {
        return;
    }
    // SAFETY: zeroed is a valid sigaction to receive the current one.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: querying only.
    if unsafe { crate::signals::sigaction_exact(signal(), std::ptr::null(), &mut cur) } != 0
        || cur.sa_sigaction != libc::SIG_DFL
    {
        *g = Some(false);
        return;
    }
    // SAFETY: a zeroed sigaction is "no handler, empty mask"; filled below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_park as *const () as usize;
    act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
    // libc's sigset operation: rustix has none for libc's `sigset_t`.
    // SAFETY: `act.sa_mask` is a valid sigset; we only fill it.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    // SAFETY: installs a valid `extern "C"` handler.
    let ok = unsafe { crate::signals::sigaction_exact(signal(), &act, std::ptr::null_mut()) } == 0;
    OWNED.store(ok, SeqCst);
    *g = Some(ok);
}

/// Whether the park handler is installed and the program has not claimed
/// the signal since: then the library keeps the park signal out of every
/// mask set through libc, as it does `SIGTRAP` (`crate::signals`), so no
/// thread can hold a round up by blocking it.
static OWNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// See [`OWNED`]. Async-signal-safe.
pub(crate) fn owned() -> bool {
    OWNED.load(SeqCst)
}

/// The program installs an action of its own for the park signal (seen
/// by the library's `sigaction`): parking is off from now on, and the
/// signal is the program's to block.
pub(crate) fn disown() {
    OWNED.store(false, SeqCst);
}

/// Whether `handler` (an `sa_sigaction`) is the park handler.
pub(crate) fn is_handler(handler: usize) -> bool {
    handler == on_park as *const () as usize
}

/// Whether the park handler is still the signal's action.
fn available() -> bool {
    if *INSTALLED.lock().unwrap_or_else(|e| e.into_inner()) != Some(true) {
        return false;
    }
    // SAFETY: zeroed is a valid sigaction to receive the current one.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: querying only.
    (unsafe { crate::signals::sigaction_exact(signal(), std::ptr::null(), &mut cur) }) == 0
        && cur.sa_sigaction == on_park as *const () as usize
}

pub(super) extern "C" fn on_park(
    _sig: libc::c_int,
    _info: *mut libc::siginfo_t,
    _ctx: *mut libc::c_void,
) {
    let g = GEN.load(SeqCst);
    if g & 1 == 0 || LAST.with(|l| l.replace(g)) == g {
        // No round on (a late signal), or counted in this round already.
        return;
    }
    // The interrupted code's errno, kept for it: raw libc, since rustix
    // neither reads nor restores it (and, on its libc backend, its futex
    // calls below would change it).
    // SAFETY: errno is thread-local; saved and restored around our calls.
    let errno = unsafe { *libc::__errno_location() };
    // Count in, only for round `g` (a handler that ran late, after its
    // round ended, does not count in the next one; it leaves at once).
    let mut a = ARRIVED.load(SeqCst);
    loop {
        if a & !0xffff != tag(g) || GEN.load(SeqCst) != g {
            // SAFETY: as above.
            unsafe { *libc::__errno_location() = errno };
            return;
        }
        match ARRIVED.compare_exchange(a, a + 1, SeqCst, SeqCst) {
            Ok(_) => break,
            Err(now) => a = now,
        }
    }
    // Wakes the writer if it waits (rustix's futex calls are plain system
    // calls: async-signal-safe, allocation-free).
    let _ = futex::wake(&ARRIVED, futex::Flags::PRIVATE, 1);
    while GEN.load(SeqCst) == g {
        // Returns at once if `GEN` no longer holds `g`, or on a wake or a
        // signal.
        let _ = futex::wait(&GEN, futex::Flags::PRIVATE, g, None);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// The other threads of the process, listed from `task` into `out`
/// (cleared first). Allocates only if `out` lacks capacity (rustix's
/// `RawDir` reads the directory into a buffer on the stack).
fn list(task: &File, me: i32, out: &mut Vec<i32>) -> bool {
    out.clear();
    if rustix::fs::seek(task, rustix::fs::SeekFrom::Start(0)).is_err() {
        return false;
    }
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
    let mut dir = rustix::fs::RawDir::new(task, &mut buf);
    while let Some(entry) = dir.next() {
        let Ok(entry) = entry else { return false };
        let name = entry.file_name().to_bytes();
        let mut tid = 0i32;
        let mut ok = !name.is_empty();
        for &c in name {
            ok &= c.is_ascii_digit();
            tid = tid
                .wrapping_mul(10)
                .wrapping_add(i32::from(c.wrapping_sub(b'0')));
        }
        if ok && tid != me {
            if out.len() == out.capacity() {
                return false;
            }
            out.push(tid);
        }
    }
    true
}

/// A parking round in progress (or none, when there was no other thread).
#[must_use = "a parked round must be released"]
pub(super) struct Parked {
    round: Option<u32>,
    /// A thread that did not park, if any.
    pub missing: Option<i32>,
}

impl Parked {
    /// No round (nothing to park for).
    pub fn none() -> Parked {
        Parked {
            round: None,
            missing: None,
        }
    }

    /// Whether every other thread is parked (or there is none).
    pub fn complete(&self) -> bool {
        self.missing.is_none()
    }

    /// Lets the parked threads go on.
    pub fn release(self) {
        if let Some(g) = self.round {
            GEN.store(g.wrapping_add(1), SeqCst);
            // Wakes every parked thread.
            let _ = futex::wake(&GEN, futex::Flags::PRIVATE, i32::MAX as u32);
        }
    }
}

/// Buffers for [`park`], reserved before a batch so that a round does
/// not allocate.
pub(super) struct Lists {
    signalled: Vec<i32>,
    now: Vec<i32>,
    /// The process had no other thread when the batch began: no round is
    /// needed (only the writer runs, and it creates no thread meanwhile).
    alone: bool,
}

impl Lists {
    /// Whether the process had no other thread when listed.
    pub fn alone(&self) -> bool {
        self.alone
    }

    /// No list: for a batch that parks no thread.
    pub fn none() -> Lists {
        Lists {
            signalled: Vec::new(),
            now: Vec::new(),
            alone: false,
        }
    }

    /// Lists the threads once (`task`: `/proc/self/task`), with room
    /// for however many there are, and as many again created during a
    /// round (reserved here: a round does not allocate).
    pub fn new(task: Option<&File>) -> Lists {
        let mut l = Lists {
            signalled: Vec::with_capacity(256),
            now: Vec::with_capacity(256),
            alone: false,
        };
        if let Some(task) = task {
            let me = rustix::thread::gettid().as_raw_nonzero().get();
            // A list that did not fit is listed again with twice the room.
            loop {
                if list(task, me, &mut l.now) {
                    break;
                }
                if l.now.len() < l.now.capacity() || l.now.capacity() >= 1 << 22 {
                    // The directory could not be read: a round will say so.
                    return l;
                }
                l.now = Vec::with_capacity(l.now.capacity() * 2);
            }
            l.alone = l.now.is_empty();
            let room = (l.now.len() * 2).max(256);
            l.now.reserve(room);
            l.signalled.reserve(room);
        }
        l
    }
}

/// Parks every other thread of the process (listed from `task`). Waits up
/// to `wait` ([`WAIT`], or [`WAIT_TRACED`]); a thread that has not parked by then (it blocks the park
/// signal, or the handler is not ours) is named in `missing`. Callers hold
/// the engine lock. Does not allocate.
pub(super) fn park(task: Option<&File>, lists: &mut Lists, wait: Duration) -> Parked {
    if lists.alone {
        return Parked {
            round: None,
            missing: None,
        };
    }
    let me = rustix::thread::gettid().as_raw_nonzero().get();
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    let Some(task) = task else {
        return Parked {
            round: None,
            missing: Some(0),
        };
    };
    if !list(task, me, &mut lists.signalled) {
        return Parked {
            round: None,
            missing: Some(0),
        };
    }
    if lists.signalled.is_empty() {
        return Parked {
            round: None,
            missing: None,
        };
    }
    ROUNDS.fetch_add(1, SeqCst);
    if !available() {
        INCOMPLETE.fetch_add(1, SeqCst);
        return Parked {
            round: None,
            missing: Some(lists.signalled[0]),
        };
    }
    let g = GEN.load(SeqCst).wrapping_add(1);
    ARRIVED.store(tag(g), SeqCst);
    GEN.store(g, SeqCst);
    let mut parked = Parked {
        round: Some(g),
        missing: None,
    };
    let send = |tid: i32| {
        // A raw `tgkill`: rustix has no call that signals one thread of a
        // process, and libc's `pthread_kill` needs a `pthread_t`.
        // SAFETY: a signal to a thread of our own process.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, signal()) };
    };
    for &t in &lists.signalled {
        send(t);
    }
    let start = Instant::now();
    let mut next_list = Duration::from_micros(200);
    loop {
        // Threads that exited meanwhile never arrive: count only the live
        // ones, and signal any thread that appeared (one that was being
        // created when the round began).
        let want = lists.signalled.len();
        let waited = start.elapsed();
        if arrived() >= want {
            WAITED.fetch_add(waited.as_nanos() as u64, SeqCst);
            return parked;
        }
        if waited >= next_list {
            next_list = waited + Duration::from_millis(1);
            if !list(task, me, &mut lists.now) {
                parked.missing = Some(0);
                break;
            }
            for i in 0..lists.now.len() {
                let t = lists.now[i];
                if !lists.signalled.contains(&t) {
                    if lists.signalled.len() == lists.signalled.capacity() {
                        parked.missing = Some(t);
                        break;
                    }
                    lists.signalled.push(t);
                    send(t);
                }
            }
            let now = &lists.now;
            lists.signalled.retain(|t| now.contains(t));
            if parked.missing.is_some() {
                break;
            }
            if arrived() >= lists.signalled.len() {
                WAITED.fetch_add(waited.as_nanos() as u64, SeqCst);
                return parked;
            }
        }
        if waited > wait {
            parked.missing = lists.signalled.first().copied().or(Some(0));
            break;
        }
        // Sleep until a thread arrives (or 200 us): the threads to park
        // may need this CPU to run their handler.
        let seen = ARRIVED.load(SeqCst);
        if ((seen & 0xffff) as usize) < lists.signalled.len() {
            let ts = futex::Timespec {
                tv_sec: 0,
                tv_nsec: 200_000,
            };
            let _ = futex::wait(&ARRIVED, futex::Flags::PRIVATE, seen, Some(&ts));
        }
    }
    INCOMPLETE.fetch_add(1, SeqCst);
    parked
}

/// (rounds with another thread, rounds in which a thread did not park,
/// nanoseconds spent waiting for threads to park).
pub(crate) fn stats() -> (u64, u64, u64) {
    (
        ROUNDS.load(SeqCst),
        INCOMPLETE.load(SeqCst),
        WAITED.load(SeqCst),
    )
}
