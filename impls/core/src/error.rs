//! The one error type of the library.

use std::fmt;

/// What kind of patchable place an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A call site recorded in a site table.
    Site,
    /// A key's trampoline.
    Trampoline,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Place::Site => "call site",
            Place::Trampoline => "trampoline",
        })
    }
}

/// Every way an operation of this library can fail.
///
/// When an operation returns an error, nothing was written: every site and
/// trampoline holds the bytes it held before the call, and the registry is
/// unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A site or trampoline does not hold any form this library writes
    /// (or, for a trampoline, its signature or key back-reference is wrong).
    UnexpectedBytes {
        /// Site or trampoline.
        place: Place,
        /// Address of the 5-byte slot.
        addr: usize,
        /// Address of the key the place belongs to.
        key: usize,
        /// What was found there (the slot, then for a trampoline the rest).
        found: Vec<u8>,
        /// What was expected, in words.
        expected: String,
    },
    /// A site-table entry that cannot be right: the site is outside
    /// executable memory, or the key is not a key of this implementation.
    CorruptEntry {
        /// Address of the table entry.
        entry: usize,
        /// Decoded site address.
        site: usize,
        /// Decoded key address.
        key: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The strict init policy is in force and these sites lie in init text.
    InitSitesRefused {
        /// Addresses of the refused sites (and their keys).
        sites: Vec<(usize, usize)>,
    },
    /// No in-range path to the target could be made.
    OutOfRange {
        /// The slot that must reach the target.
        from: usize,
        /// The target.
        to: usize,
    },
    /// No free place within `rel32` reach of `near` could be mapped.
    NoRoomNear {
        /// The address the mapping must reach.
        near: usize,
        /// The bytes wanted.
        len: usize,
    },
    /// A module with this site table is already loaded.
    ModuleAlreadyLoaded {
        /// The module's name.
        name: String,
        /// Address of its site table.
        table: usize,
    },
    /// No loaded module has this handle.
    UnknownModule {
        /// The handle's number.
        id: u64,
    },
    /// A module's init function failed; the module was unloaded again.
    ModuleInitFailed {
        /// The module's name.
        name: String,
        /// What its init function said.
        message: String,
    },
    /// The module is still running its init function; it can be unloaded
    /// once [`Registry::load_module`](crate::Registry::load_module)
    /// returned. Nothing was done.
    ModuleLoading {
        /// The module's handle.
        id: u64,
    },
    /// A module could not be unregistered (its sites could not be written
    /// back): it stays registered, its sites keep following updates, and
    /// its memory is never unmapped (a shared object is not closed).
    ModuleLeaked {
        /// The module's name.
        name: String,
        /// Its handle, still valid: unloading can be tried again.
        id: u64,
        /// Why unregistering failed.
        cause: Box<Error>,
    },
    /// A shared object could not be opened, or lacks its descriptor.
    SharedObject {
        /// The path given.
        path: String,
        /// What the dynamic loader said.
        message: String,
    },
    /// The program replaced this library's `SIGTRAP` handler, which the
    /// patching protocol needs; nothing was written.
    TrapHandlerReplaced {
        /// The handler (or `SIG_DFL` 0 / `SIG_IGN` 1) now installed.
        found: usize,
    },
    /// A thread of the process blocks `SIGTRAP`: if it ran into a slot
    /// while an update's breakpoint is there, the kernel would kill the
    /// process. Returned only by the opt-in diagnostic
    /// [`check_sigtrap_masks`](crate::text::check_sigtrap_masks), never by
    /// an update: no thread can block `SIGTRAP` through libc while the
    /// library is linked (see [`crate::signals`]), so such a thread used a
    /// raw system call or edited a signal context.
    TrapBlocked {
        /// The thread's id.
        tid: i32,
        /// The thread's name (`/proc/self/task/<tid>/comm`).
        name: String,
    },
    /// The same key was given twice in one batch ([`Registry::batch`](crate::Registry::batch)).
    /// Nothing was written.
    BatchDuplicateKey {
        /// Address of the key.
        key: usize,
    },
    /// A batch was given a key of another implementation than the one
    /// whose `batch` was called. Nothing was written.
    BatchForeignKey {
        /// Address of the key.
        key: usize,
    },
    /// Another copy of this library in the process (the program's, when a
    /// plugin links the crates itself) serves the process's engine, and
    /// its engine table is of another version (or layout) than this
    /// copy's: this copy refuses every operation that needs the engine.
    /// Nothing was written.
    EngineVersion {
        /// This copy's engine version
        /// ([`ENGINE_VERSION`](crate::text::ENGINE_VERSION)).
        ours: u32,
        /// The version of the engine the process runs.
        found: u32,
        /// The object that serves it (its path).
        object: String,
    },
    /// The engine of another copy of this library in the process returned
    /// an error that no other variant describes (its text).
    EngineFailed {
        /// What the engine said.
        message: String,
    },
    /// A tracer (a debugger) is attached, so the update is written with no
    /// breakpoint, every other thread parked by the engine's park signal
    /// (`SIGRTMAX - 1`), and this thread did not park: it blocks that
    /// signal, or the program replaced its handler. Nothing was written.
    Traced {
        /// The tracer's pid (`TracerPid`).
        tracer: i32,
        /// The thread that did not park (0: the threads could not be
        /// listed).
        tid: i32,
    },
    /// A static-call operation was called on a thread that is already
    /// inside one: from a signal handler that interrupted an update, say.
    /// Waiting would deadlock; nothing was done.
    Reentrant {
        /// The operation refused.
        op: &'static str,
    },
    /// This process was forked by a thread that was inside a static-call
    /// operation (from a signal handler), so its registries may be half
    /// updated; every later operation is refused.
    ForkedDuringUpdate {
        /// The operation refused.
        op: &'static str,
    },
    /// A system call failed.
    Syscall {
        /// Which operation, e.g. `"pwrite(/proc/self/mem)"`.
        op: &'static str,
        /// The address involved, where there is one.
        addr: usize,
        /// The OS error number.
        errno: i32,
    },
}

impl Error {
    /// A failed system call, from the error rustix returned.
    pub(crate) fn os(op: &'static str, addr: usize, errno: rustix::io::Errno) -> Error {
        Error::Syscall {
            op,
            addr,
            errno: errno.raw_os_error(),
        }
    }

    /// A failed system call made through libc, from `errno`.
    pub(crate) fn last_os(op: &'static str, addr: usize) -> Error {
        Error::Syscall {
            op,
            addr,
            errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnexpectedBytes {
                place,
                addr,
                key,
                found,
                expected,
            } => {
                write!(f, "{place} at {addr:#x} (key {key:#x}) holds")?;
                for b in found {
                    write!(f, " {b:02x}")?;
                }
                write!(f, ", expected {expected}; nothing was written")
            }
            Error::CorruptEntry {
                entry,
                site,
                key,
                reason,
            } => write!(
                f,
                "corrupt site-table entry at {entry:#x} (site {site:#x}, key {key:#x}): {reason}"
            ),
            Error::InitSitesRefused { sites } => {
                write!(
                    f,
                    "strict init policy: {} call site(s) in init text:",
                    sites.len()
                )?;
                for (s, k) in sites {
                    write!(f, " {s:#x} (key {k:#x})")?;
                }
                Ok(())
            }
            Error::OutOfRange { from, to } => {
                write!(f, "no in-range path from {from:#x} to {to:#x}")
            }
            Error::ModuleAlreadyLoaded { name, table } => {
                write!(
                    f,
                    "module {name:?} (site table {table:#x}) is already loaded"
                )
            }
            Error::UnknownModule { id } => write!(f, "no loaded module has handle {id}"),
            Error::ModuleInitFailed { name, message } => {
                write!(
                    f,
                    "init of module {name:?} failed: {message}; the module was unloaded"
                )
            }
            Error::ModuleLoading { id } => write!(
                f,
                "module {id} is still running its init function; nothing was done"
            ),
            Error::ModuleLeaked { name, id, cause } => write!(
                f,
                "module {name:?} (handle {id}) could not be unregistered ({cause}); it stays \
                 registered and mapped (leaked, never unmapped)"
            ),
            Error::SharedObject { path, message } => {
                write!(f, "shared object {path:?}: {message}")
            }
            Error::TrapHandlerReplaced { found } => write!(
                f,
                "the SIGTRAP handler the patching protocol needs was replaced (now {found:#x}); \
                 nothing was written"
            ),
            Error::NoRoomNear { near, len } => write!(
                f,
                "no free place for {len} bytes within rel32 reach of {near:#x}"
            ),
            Error::EngineVersion {
                ours,
                found,
                object,
            } if ours == found => write!(
                f,
                "the process's engine (served by {object}) is engine version {found} like this \
                 copy of static-call-core, but of another layout; refused, nothing was written"
            ),
            Error::EngineVersion {
                ours,
                found,
                object,
            } => write!(
                f,
                "the process's engine (served by {object}) is engine version {found}, this copy \
                 of static-call-core is version {ours}; refused, nothing was written"
            ),
            Error::EngineFailed { message } => {
                write!(f, "the process's engine failed: {message}")
            }
            Error::Traced { tracer, tid } => write!(
                f,
                "a tracer (pid {tracer}) is attached, and thread {tid} did not stop for the \
                 update (it blocks the engine's park signal, SIGRTMAX-1); nothing was written"
            ),
            Error::TrapBlocked { tid, name } => write!(
                f,
                "thread {tid} ({name}) blocks SIGTRAP, which the patching protocol's breakpoints \
                 need (blocked without libc: a raw system call or an edited signal context)"
            ),
            Error::BatchDuplicateKey { key } => write!(
                f,
                "key {key:#x} appears twice in one batch; nothing was written"
            ),
            Error::BatchForeignKey { key } => write!(
                f,
                "key {key:#x} belongs to another implementation than the batch's; nothing was written"
            ),
            Error::Reentrant { op } => write!(
                f,
                "{op} called on a thread that is already inside a static-call operation \
                 (from a signal handler?); refused instead of deadlocking, nothing was done"
            ),
            Error::ForkedDuringUpdate { op } => write!(
                f,
                "{op} refused: this process was forked during a static-call operation, \
                 so its registries may be half updated"
            ),
            Error::Syscall { op, addr, errno } => write!(
                f,
                "{op} failed at {addr:#x}: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
