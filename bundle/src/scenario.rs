//! The scenarios a bundle may name, with what each measures.

/// One site called in a loop, `extern "C" fn(u64) -> u64`.
pub const CALL_HOT_1: &str = "call/hot-1arg";
/// One site called in a loop, six mixed arguments.
pub const CALL_HOT_6: &str = "call/hot-6arg";
/// 1,024 distinct sites called in turn (branch predictor and i-cache
/// pressure); figures are per call.
pub const CALL_MANY: &str = "call/many-sites";
/// A conditional call whose target is none, against `if let Some(f)`
/// on an `Option<fn>`.
pub const CALL_COND_NONE: &str = "call/cond-none";
/// A conditional call whose target is set (`static_call_cond!` with a
/// target), against `if let Some(f)` with `Some`, and the `static-keys`
/// peer with its key on (the branch taken, then a direct call); the
/// reference is the `Option<fn>` control.
pub const CALL_COND_SOME: &str = "call/cond-some";
/// One switch of a conditional key with `sites` compiled sites (none to a
/// target and back, one update each): `update_cond` of the
/// implementations against the `static-keys` peer's `enable`/`disable`
/// on the same number of `static_branch_unlikely!` sites. Idle only: the
/// crate documents its updates as single-threaded.
pub const UPDATE_COND_SITES: &str = "update/cond-sites";
/// One update of a key with `sites` sites, no other thread running.
pub const UPDATE_IDLE: &str = "update/idle";
/// One update of a key with `sites` sites while two threads call it.
pub const UPDATE_BUSY: &str = "update/busy";
/// One update of a 1-site key on the engine's *valgrind path*, counted
/// under callgrind: there each slot is one store in an `mprotect`
/// window (no `int3`, no `membarrier`, no scan of the threads' signal
/// masks), so the count is not the native update's.
pub const UPDATE_VALGRIND_PATH: &str = "update/valgrind-path";
/// One update of a 1-site key, alone and while 100,000 sites exist on
/// another key. Here a figure's `sites` is the number of *foreign*
/// sites present (0 or 100,000); the key itself always has one.
pub const UPDATE_FOREIGN: &str = "update/among-100k-foreign";
/// Loading a generated module with `sites` sites.
pub const MODULE_LOAD: &str = "module/load";
/// Unloading a generated module with `sites` sites.
pub const MODULE_UNLOAD: &str = "module/unload";
/// `dlopen` + registration of the test shared object.
pub const SO_OPEN: &str = "shared-object/open";
/// Unregistration + `dlclose` of the test shared object.
pub const SO_CLOSE: &str = "shared-object/close";
/// Registry memory, from `stats()` / `module_stats()` (version 1
/// bundles), and, from version 2, the heap the registry allocates as
/// a counting global allocator in the benchmark binary saw it.
pub const MEMORY: &str = "memory/registry";
/// `call/hot-1arg` again, measured on a thread that asked the kernel to
/// disable indirect-branch speculation for itself
/// (`prctl(PR_SET_SPECULATION_CTRL, PR_SPEC_INDIRECT_BRANCH,
/// PR_SPEC_FORCE_DISABLE)`: STIBP/IBPB for the task).
pub const CALL_HOT_1_IB_OFF: &str = "call/hot-1arg-ib-spec-off";
/// Code bytes each implementation puts in executable memory per site
/// and per key (site, trampoline, stub, relay), as decoded.
pub const MEMORY_CODE: &str = "memory/code";
/// Text made private by patching: `Private_Dirty` of the executable
/// mappings (`/proc/self/smaps`), before `init()`, after `init()` and
/// after updates of keys with N sites.
pub const MEMORY_TEXT: &str = "memory/private-text";
/// One update of a 1-site key with `sites` *other threads parked* in
/// the process (0, 10, 100, 1,000; each blocked on a condition
/// variable). Here a figure's `sites` is the number of parked threads.
pub const UPDATE_THREADS: &str = "update/threads";
/// One update of a 1-site key while `sites` *busy callers* (1, 2, 4)
/// call it in a loop, each pinned to a CPU of its own while there are
/// enough. Here a figure's `sites` is the number of callers.
pub const UPDATE_THREADS_BUSY: &str = "update/threads-busy";
/// 100 keys of one site each switched in one `batch`; the figure's
/// ratio is to one 1-key update ([`UPDATE_THREADS`], 0 parked).
pub const UPDATE_BATCH_100: &str = "update/batch-100-keys";
/// The same 100 keys switched one `update` at a time; the figure's
/// ratio is to one 1-key update ([`UPDATE_THREADS`], 0 parked).
pub const UPDATE_100_ONE_BY_ONE: &str = "update/100-keys-one-by-one";
/// Module churn: generated modules loaded, updated and unloaded one
/// after another, each at an address no module had before (as a JIT
/// does). Figures at the first and the last tenth of the run (`sites`
/// is the number of modules churned so far): the trap handler's table
/// of known slots, the resident memory, the time per module.
pub const MEMORY_CHURN: &str = "memory/churn";

/// Callers' per-call latency while nothing updates their key: the
/// baseline of [`CALLERS_1KHZ`] and [`CALLERS_FLAT_OUT`] (same loop,
/// same timing of every call).
pub const CALLERS_IDLE: &str = "callers/no-updates";
/// Callers' per-call latency while another thread updates their key
/// 1,000 times a second.
pub const CALLERS_1KHZ: &str = "callers/updates-1khz";
/// Callers' per-call latency while another thread updates their key
/// as fast as it can.
pub const CALLERS_FLAT_OUT: &str = "callers/updates-flat-out";

/// Cold calls: a chain of 16,384 distinct sites (one per 64-byte line)
/// visited in a shuffled order, so the branch target buffer, the L1i and
/// the op cache miss; figures are per call.
pub const CALL_COLD_16K: &str = "call/cold-16384-sites";
/// [`CALL_COLD_16K`] with 65,536 sites (4 MiB of code).
pub const CALL_COLD_64K: &str = "call/cold-65536-sites";
/// The cold scenarios with their site counts.
pub const CALL_COLD: [(u64, &str); 2] = [(16_384, CALL_COLD_16K), (65_536, CALL_COLD_64K)];
/// One site called after the indirect-branch predictor was trashed (32
/// indirect jumps to random targets before each call); figures are the
/// call's cost derived by subtraction of the trash measured alone in the
/// same rounds.
pub const CALL_TRASHED: &str = "call/trashed-predictor";
/// One site whose target never changes, with `P` other indirect jumps
/// (each with its own changing target) between two calls; figures derived
/// by subtraction of the polluters measured alone in the same rounds.
pub const CALL_POLLUTED: [(u64, &str); 6] = [
    (0, "call/polluted-0"),
    (16, "call/polluted-16"),
    (64, "call/polluted-64"),
    (256, "call/polluted-256"),
    (1024, "call/polluted-1024"),
    (4096, "call/polluted-4096"),
];

/// Every scenario, in report order, with a one-line description.
pub const ALL: &[(&str, &str)] = &[
    (CALL_HOT_1, "one site called in a loop, 1 argument"),
    (CALL_HOT_6, "one site called in a loop, 6 mixed arguments"),
    (CALL_MANY, "1,024 distinct sites called in turn"),
    (
        CALL_COND_NONE,
        "conditional call, target none (vs `if let Some(f)`)",
    ),
    (
        CALL_COLD_16K,
        "16,384 distinct sites (one per 64-byte line) called in a shuffled order: cold BTB, L1i and op cache",
    ),
    (
        CALL_COLD_64K,
        "65,536 distinct sites (4 MiB of code) called in a shuffled order",
    ),
    (
        CALL_TRASHED,
        "one site after 32 indirect jumps to random targets (the call's cost by subtraction)",
    ),
    (
        "call/polluted-0",
        "one site, same target, no other indirect jump between calls (by subtraction)",
    ),
    (
        "call/polluted-16",
        "one site, same target, 16 other indirect jumps between calls (by subtraction)",
    ),
    (
        "call/polluted-64",
        "one site, same target, 64 other indirect jumps between calls (by subtraction)",
    ),
    (
        "call/polluted-256",
        "one site, same target, 256 other indirect jumps between calls (by subtraction)",
    ),
    (
        "call/polluted-1024",
        "one site, same target, 1,024 other indirect jumps between calls (by subtraction)",
    ),
    (
        "call/polluted-4096",
        "one site, same target, 4,096 other indirect jumps between calls (by subtraction)",
    ),
    (
        CALL_COND_SOME,
        "conditional call, target set (vs `if let Some(f)` with Some; static-keys: key on)",
    ),
    (UPDATE_IDLE, "one update, key with N sites, idle"),
    (
        UPDATE_BUSY,
        "one update, key with N sites, 2 threads calling it",
    ),
    (
        UPDATE_COND_SITES,
        "one switch of a conditional key with N compiled sites, idle (update_cond vs static-keys enable/disable, which the crate documents as single-threaded)",
    ),
    (
        UPDATE_FOREIGN,
        "one update of a 1-site key among 100,000 foreign sites",
    ),
    (
        UPDATE_VALGRIND_PATH,
        "one update of a 1-site key on the valgrind path (a store per slot in an mprotect window; not the native path)",
    ),
    (MODULE_LOAD, "load a generated module with N sites"),
    (MODULE_UNLOAD, "unload a generated module with N sites"),
    (SO_OPEN, "open (dlopen + register) the test shared object"),
    (
        SO_CLOSE,
        "close (unregister + dlclose) the test shared object",
    ),
    (
        MEMORY,
        "registry heap bytes (counting allocator), and the registry's own count",
    ),
    (
        CALL_HOT_1_IB_OFF,
        "call/hot-1arg on a thread with indirect-branch speculation disabled (prctl)",
    ),
    (
        MEMORY_CODE,
        "code bytes per site and per key (site, trampoline, stub, relay)",
    ),
    (
        MEMORY_TEXT,
        "Private_Dirty of executable mappings: before/after init, after updates",
    ),
    (
        UPDATE_THREADS,
        "one update of a 1-site key, N other threads parked in the process",
    ),
    (
        UPDATE_THREADS_BUSY,
        "one update of a 1-site key, N busy callers of the key",
    ),
    (
        UPDATE_BATCH_100,
        "100 keys of one site switched in one batch",
    ),
    (
        UPDATE_100_ONE_BY_ONE,
        "100 keys of one site switched one update at a time",
    ),
    (
        MEMORY_CHURN,
        "module churn at fresh addresses: trap-table slots, RSS, time per module",
    ),
    (
        CALLERS_IDLE,
        "a caller's per-call latency, nothing updating the key (the baseline)",
    ),
    (
        CALLERS_1KHZ,
        "a caller's per-call latency while the key is updated 1,000 times a second",
    ),
    (
        CALLERS_FLAT_OUT,
        "a caller's per-call latency while the key is updated flat out",
    ),
];

/// The description of a scenario, if it is known.
pub fn describe(id: &str) -> Option<&'static str> {
    ALL.iter().find(|(s, _)| *s == id).map(|(_, d)| *d)
}
