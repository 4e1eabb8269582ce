//! The peers: published mechanisms of other libraries, measured beside the
//! implementations in the same interleaved rounds and proved by decoding
//! like them ([`SubjectKind::Peer`]; names in [`static_call_bundle::peer`]).
//!
//! * **static-keys** (the `static-keys` crate, pinned at 0.8.2: Rust
//!   userspace jump labels, after the kernel's). A site is
//!   `if static_branch_unlikely!(KEY) { … }`: a 5-byte NOP that falls
//!   through while the key is off, a `jmp rel32` to the out-of-line block
//!   while it is on. In `call/cond-none` a key that is off, against
//!   `static_call_cond!` on a none key; in `call/cond-some` a key that is
//!   on (compiled on: the same `jmp rel32` a switched-on key holds), the
//!   branch taken and then a direct `call` of the target, against
//!   `static_call_cond!` with a target; in `update/cond-sites` switching a
//!   key with 1 to 2,000 compiled sites against `update_cond` on the same
//!   number of sites ([`cond_sites`]). The crate documents its switches as
//!   single-threaded, so they are measured idle only.
//!
//!   Where the sites are: the crate's own table, the `__static_keys`
//!   section (one entry per site: the site's address, the out-of-line
//!   block's, the key's), read after its `global_init()` has made the
//!   entries absolute ([`jump_entries`]; the layout is 0.8.2's, hence the
//!   pin, and the count is checked against the crate's
//!   `jump_entries_count()`). Each entry of a key must lie inside the
//!   function the benchmark runs, as many as it has sites, each holding
//!   the 5-byte NOP (off) or a `jmp rel32` to its block (on), the block's
//!   first call a direct `call` of the target, and, for the call loops, the
//!   site inside the loop.
//! * **plt-call** and **got-call**: a function in a shared object,
//!   `libsc_peer.so` (`benches/peer/sc_peer.c`, built by `build.rs` with the
//!   machine's C compiler and linked with an rpath), called as `call
//!   sc_peer_add1@PLT` and as `call qword ptr [rip +
//!   sc_peer_add1@GOTPCREL]`, each in `call/hot-1arg` against the direct
//!   call. The PLT proof decodes the site (`call rel32` to a stub of this
//!   program) *and* the stub (`jmp qword ptr [rip + GOT]`, after an
//!   `endbr64` where the linker puts one), and requires the GOT slot to
//!   hold the shared object's function; the GOT proof requires `call
//!   qword ptr [rip + slot]` with the slot in this program holding it. A
//!   trampoline is a PLT stub in all but name: the same `call stub` at
//!   the site, but the trampoline's `jmp rel32` is direct (an update
//!   rewrites it), where the stub's jump loads the GOT at every call.
//!
//! The calls are written in inline assembly, as the direct control's are,
//! so that the optimiser can neither hoist the GOT load out of the loop
//! (`mov r14, [GOT]` before it, `call r14` in it) nor choose the form.

use std::sync::atomic::{AtomicU64, Ordering};

use iced_x86::{Code, Instruction, Mnemonic};
use static_call_bundle::{SiteDump, SubjectKind, peer, scenario};

use crate::prove::{decode, dump, format_insn, loop_around, name_of, read_code};
use crate::subjects::{CallScenario, HookFn, Loops, Subject};

// ------------------------------------------------------------ the target

/// Calls of [`tick`].
pub static TICKS: AtomicU64 = AtomicU64::new(0);

/// The target of every set conditional call (`call/cond-some`,
/// `update/cond-sites`): counts its calls with a plain load and store (no
/// locked instruction, which would cost more than the call it counts; the
/// loops that call it run on one thread).
#[inline(never)]
pub extern "C" fn tick(_x: u64) {
    TICKS.store(
        TICKS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Calls of [`tick`] so far.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Puts a function on a page of its own section, `sc_peer_keys`, aligned to
/// 4 KiB (an empty piece of assembly sets the alignment): a switch of a
/// `static-keys` key replaces each page that holds one of its sites with a
/// rewritten copy (`mremap`), so the crate's sites are kept off the pages
/// of the suite's own code.
macro_rules! keys_section {
    () => {
        ::core::arch::global_asm!(
            ".pushsection \"sc_peer_keys\",\"ax\",@progbits\n.p2align 12\n.popsection"
        );
    };
}
mod cond_update;
mod keys;
mod proof;
mod shared;

pub use cond_update::cond_sites_keys::cond_sites;
pub use cond_update::{CondKey, CondSites, cond_site_counts, cond_sites_keys, static_keys_sites};
pub use keys::{JumpEntry, NOP5, check_key_sites, jump_entries, static_keys_peer};
pub use proof::prove;
use shared::object_of;
pub use shared::{got_call, plt_call, sc_peer_add1, shared_function};

static STATIC_KEYS: Subject = Subject {
    name: peer::STATIC_KEYS,
    kind: SubjectKind::Peer,
    description: "the static-keys crate 0.8.2 (Rust userspace jump labels): `if static_branch_unlikely!(KEY)`, a 5-byte NOP falling through while the key is off, a `jmp rel32` to an out-of-line direct `call` of the target while it is on; a switch rewrites each site's page (a rewritten copy mremapped over the text), documented as single-threaded",
    loops: Loops {
        hot1: None,
        hot6: None,
        many: None,
        cond_none: Some(static_keys_peer::cond_none),
        cond_some: Some(static_keys_peer::cond_some),
    },
    imp: None,
};

static PLT_CALL: Subject = Subject {
    name: peer::PLT_CALL,
    kind: SubjectKind::Peer,
    description: "`call func@PLT` into a shared object (libsc_peer.so, x + 1 in C), whose stub is `jmp qword ptr [rip + GOT]`: a trampoline is a PLT stub in all but name, but a trampoline's `jmp rel32` is direct (an update rewrites it) where the stub's jump loads the GOT at every call",
    loops: Loops {
        hot1: Some(plt_call::hot1),
        hot6: None,
        many: None,
        cond_none: None,
        cond_some: None,
    },
    imp: None,
};

static GOT_CALL: Subject = Subject {
    name: peer::GOT_CALL,
    kind: SubjectKind::Peer,
    description: "`call qword ptr [rip + func@GOTPCREL]` into the same shared object: what rustc emits for a call into another library by default on x86-64 (no PLT), an indirect call through memory",
    loops: Loops {
        hot1: Some(got_call::hot1),
        hot6: None,
        many: None,
        cond_none: None,
        cond_some: None,
    },
    imp: None,
};

/// The peers, in display order.
pub static PEERS: [&Subject; 3] = [&STATIC_KEYS, &PLT_CALL, &GOT_CALL];

/// How many threads this process has now (`/proc/self/task`): a
/// `static-keys` switch is measured only while it is 1.
///
/// # Errors
/// The directory cannot be read.
pub fn thread_count() -> Result<usize, String> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .map_err(|e| format!("/proc/self/task: {e}"))
}

/// What a peer's call figure adds to its note: how its site was proved
/// and how it compares (the PLT stub with a trampoline). `None` for other
/// subjects.
pub fn call_note(subject: &str, scenario_id: &str) -> Option<&'static str> {
    Some(match (subject, scenario_id) {
        (peer::PLT_CALL, _) => {
            "plt-call: the site `call stub` and the PLT stub `jmp qword ptr [rip + GOT]` decoded, the GOT slot holding sc_peer_add1 of libsc_peer.so (x + 1 in C); a trampoline is a PLT stub in all but name: the same `call stub` at the site, but a trampoline's `jmp rel32` is direct and rewritten by an update, where the stub's jump is indirect, a load of the GOT at every call (compare with trampoline in this scenario)"
        }
        (peer::GOT_CALL, _) => {
            "got-call: `call qword ptr [rip + GOT slot]` decoded, the slot holding sc_peer_add1 of libsc_peer.so: what rustc emits for a call into another library by default (no PLT), written in assembly so that the load stays in the loop"
        }
        (peer::STATIC_KEYS, scenario::CALL_COND_NONE) => {
            "static-keys: the site found through the crate's jump table (__static_keys) and decoded inside the loop: a 5-byte NOP falling through (key off)"
        }
        (peer::STATIC_KEYS, _) => {
            "static-keys: the site found through the crate's jump table (__static_keys) and decoded inside the loop: `jmp rel32` to the out-of-line block, whose first call is a direct `call` of the target (key on: compiled on, the bytes a switched-on key holds)"
        }
        _ => return None,
    })
}
