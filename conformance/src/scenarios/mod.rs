//! Scenario bodies, written once and generic over the [`Adapter`].

mod bad_input;
mod basic;
mod batch;
pub(crate) mod cdylib;
mod churn;
mod debugger;
mod edges;
mod engines;
mod foreign;
pub(crate) mod init;
mod lifecycle;
pub(crate) mod module_kit;
pub(crate) mod modules;
mod readme;
mod ret0;
pub use cdylib::build_shared_object;
mod scale;
mod shared_object;
mod signals;
mod threads;
mod tools;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use static_call_core::{Error, InitPolicy, Place, Signature, StaticCall, text};

use crate::decode::{Insn, insn_at};

use crate::runner::{Mode, Outcome, Scenario, ScenarioResult, spawn_cell};
use crate::targets::{HOOK_CALLS, HOOK_SUM, add1, add2, add3, hook};
use crate::{Adapter, AddFn, Unpatched, place};
use bad_input::*;
use basic::*;
use batch::*;
use cdylib::*;
use churn::*;
use debugger::*;
use edges::*;
use engines::*;
use foreign::*;
use init::*;
pub use lifecycle::static_call_test_hook_module_init;
use lifecycle::*;
use modules::*;
use readme::*;
use ret0::*;
use scale::*;
use shared_object::*;
use signals::*;
use threads::*;
use tools::*;

/// A thread that calls `SPIN` (target `add1` or `add2`, so every result
/// must be 2 or 3) until it is stopped, counting calls and wrong results.
pub(crate) struct SpinCaller {
    stop: Arc<AtomicBool>,
    wrong: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
    handle: std::thread::JoinHandle<()>,
}

impl SpinCaller {
    pub(crate) fn start<A: Adapter>() -> SpinCaller {
        let stop = Arc::new(AtomicBool::new(false));
        let (wrong, calls) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let handle = {
            let (stop, wrong, calls) = (stop.clone(), wrong.clone(), calls.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = A::call_spin(1);
                    if r != 2 && r != 3 {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        SpinCaller {
            stop,
            wrong,
            calls,
            handle,
        }
    }

    /// Calls made so far.
    pub(crate) fn calls(&self) -> &AtomicU64 {
        &self.calls
    }

    /// Stops the thread; returns (calls, wrong results).
    pub(crate) fn finish(self) -> Result<(u64, u64), String> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| "the caller thread panicked")?;
        Ok((
            self.calls.load(Ordering::Relaxed),
            self.wrong.load(Ordering::Relaxed),
        ))
    }
}

/// Forks a child that runs `child` under a 5 s alarm and exits 0 if it
/// returns true; waits for it and says how it ended.
pub(crate) fn fork_and_check(child: impl FnOnce() -> bool) -> Result<(), String> {
    // SAFETY: the child runs `child` (updates and calls) and `_exit`s; an
    // alarm ends it if it hangs.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child: a 5 s alarm (default action: die).
        unsafe { libc::alarm(5) };
        let ok = child();
        // SAFETY: leave the child without running the parent's exit paths.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    ensure!(pid > 0, "fork failed");
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGALRM {
        Err("the child hung (killed by its 5 s alarm)".into())
    } else {
        Err(format!("the child failed (status {status:#x})"))
    }
}

/// Updates `key` to `to` with `fault` injected (and cleared again after).
/// `Ok(true)`: the fault made the update fail with `Error::Syscall`.
/// `Ok(false)`: the batch needed fewer system calls than the fault let
/// through, so it succeeded, and the key was set `back` again.
pub(crate) fn update_under_fault<F: Signature>(
    key: &'static StaticCall<F>,
    fault: text::Fault,
    to: F,
    back: F,
) -> Result<bool, String> {
    text::inject_fault_for_tests(Some(fault));
    let r = key.update(to);
    text::inject_fault_for_tests(None);
    match r {
        Err(Error::Syscall { .. }) => Ok(true),
        Ok(()) => {
            lib(key.update(back), "update back")?;
            Ok(false)
        }
        Err(e) => Err(format!("{fault:?}: unexpected error {e}")),
    }
}

pub(crate) fn lib<T>(r: Result<T, Error>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// The catalogue for one implementation.
pub fn catalogue<A: Adapter>() -> Vec<Scenario> {
    macro_rules! sc {
        ($name:ident) => {
            sc!($name, Mode::Child)
        };
        ($name:ident, $mode:expr) => {
            Scenario {
                name: stringify!($name),
                run: $name::<A>,
                mode: $mode,
            }
        };
    }
    vec![
        sc!(selftest),
        sc!(query),
        sc!(same_target_noop),
        sc!(cond_none),
        sc!(pre_init),
        sc!(init_twice),
        sc!(init_text),
        sc!(init_strict),
        sc!(corrupt_site, Mode::Parent),
        sc!(bad_trampoline),
        sc!(torture),
        sc!(naive_patcher_caught, Mode::Parent),
        sc!(fallback_engine),
        sc!(concurrent_updaters),
        sc!(rollback_faults),
        sc!(no_wx_mapping),
        sc!(valgrind_selftest, Mode::Parent),
        sc!(valgrind_threads, Mode::Parent),
        sc!(threads_updates_child, Mode::Hidden),
        sc!(far_target),
        sc!(many_far_targets),
        sc!(inlined_copies),
        sc!(cross_crate_key),
        sc!(signatures),
        sc!(key_sites),
        sc!(engine_counters),
        sc!(ret0_selftest),
        sc!(ret0_torture),
        sc!(ret0_and_none),
        sc!(small_default_target),
        sc!(local_key_shadowing),
        sc!(fork_child),
        sc!(fork_during_updates),
        sc!(update_in_signal_handler),
        sc!(sigtrap_blocked_thread),
        sc!(sigfillset_handler),
        sc!(parked_threads),
        sc!(sigtrap_raw_syscall),
        sc!(sigmask_shared_objects, Mode::Parent),
        sc!(sigmask_shared_objects_child, Mode::Hidden),
        sc!(foreign_traps),
        sc!(trap_handler_replaced),
        sc!(many_keys),
        sc!(batch_basic),
        sc!(batch_faults),
        sc!(batch_torture),
        sc!(module_load_after_update),
        sc!(module_before_init),
        sc!(module_unload_then_update),
        sc!(module_reload),
        sc!(module_init_region),
        sc!(module_load_failure),
        sc!(module_init_failure),
        sc!(module_errors),
        sc!(module_far),
        sc!(module_many),
        sc!(module_concurrent),
        sc!(module_unload_fails, Mode::Parent),
        sc!(module_unload_fails_child, Mode::Hidden),
        sc!(module_loading_refused),
        sc!(free_init_before_init),
        sc!(init_partial_page),
        sc!(sigaction_retry),
        sc!(shared_object, Mode::Parent),
        sc!(shared_object_minimal, Mode::Parent),
        sc!(shared_object_minimal_child, Mode::Hidden),
        sc!(shared_object_child, Mode::Hidden),
        sc!(readme_plugin, Mode::Parent),
        sc!(readme_host, Mode::Parent),
        sc!(module_init_panic),
        sc!(foreign_int3_default_actions),
        sc!(engine_info_fork),
        sc!(near_with_huge_len),
        sc!(readme_plugin_child, Mode::Hidden),
        sc!(selftest_print, Mode::Hidden),
        sc!(torture_naive, Mode::Hidden),
        sc!(scale_wx_watch),
        sc!(scale_rollback_faults),
        sc!(scale_wx_watch_caught, Mode::Parent),
        sc!(scale_wx_watch_fallback, Mode::Hidden),
        sc!(scale_wx_watcher, Mode::Hidden),
        sc!(foreign_breakpoints),
        sc!(foreign_writes),
        sc!(foreign_writes_masked),
        sc!(module_churn),
        sc!(debugger_gdb, Mode::Parent),
        sc!(debugger_child, Mode::Hidden),
        sc!(engine_copies, Mode::Parent),
        sc!(engine_copies_child, Mode::Hidden),
        sc!(engine_shared, Mode::Parent),
        sc!(engine_shared_child, Mode::Hidden),
        sc!(engines, Mode::Parent),
        sc!(engines_child, Mode::Hidden),
    ]
}

/// Sites of `key` in the main table (works before and after init).
pub(crate) fn sites<A: Adapter, F>(key: &StaticCall<F>) -> Vec<(usize, bool)> {
    let k = key.raw().addr();
    A::registry()
        .main_table()
        .into_iter()
        .filter(|e| e.1 == k)
        .map(|e| (e.0, e.2))
        .collect()
}

/// The sites of `key` and its trampoline.
pub(crate) fn places_of<A: Adapter, F>(key: &StaticCall<F>) -> Vec<usize> {
    let mut places: Vec<usize> = sites::<A, F>(key).into_iter().map(|s| s.0).collect();
    places.extend(key.raw().trampoline());
    places
}

pub(crate) fn insn(addr: usize) -> Insn {
    // SAFETY: sites and trampolines are live code of this binary.
    unsafe { insn_at(addr) }
}

pub(crate) fn expect_at(addr: usize, want: &Insn, what: &str) -> Result<(), String> {
    let got = insn(addr);
    ensure!(
        &got == want,
        "{what} at {addr:#x}: decoded {got:?}, expected {want:?}"
    );
    Ok(())
}

/// What an un-patched site of this implementation calls.
pub(crate) fn unpatched_target<A: Adapter, F>(key: &StaticCall<F>) -> usize {
    match A::caps().unpatched {
        Unpatched::Thunk => A::registry().thunk().expect("a retpoline thunk"),
        Unpatched::Trampoline => key.raw().trampoline().expect("trampoline"),
        Unpatched::ThroughKey => key.raw().addr(),
    }
}

/// What an unpatched site whose home is `home` decodes as: `call home`,
/// or for a design whose sites call through the key, a call through the
/// pointer at `home` (the key, or a module's key slot).
pub(crate) fn home_insn<A: Adapter>(home: usize) -> Insn {
    match A::caps().unpatched {
        Unpatched::ThroughKey => Insn::CallVia(home),
        Unpatched::Trampoline | Unpatched::Thunk => Insn::Call(home),
    }
}

/// Checks every (non-released) site of `key` holds what the design says
/// for target `t` (`None`: none), and the trampoline too.
pub(crate) fn expect_patched<A: Adapter, F>(
    key: &StaticCall<F>,
    t: Option<usize>,
) -> Result<(), String> {
    let unpatched = unpatched_target::<A, F>(key);
    let initialized = A::registry().is_initialized();
    let released = A::stats().init_released > 0;
    for (s, init) in sites::<A, F>(key) {
        if init && released {
            // Inaccessible now, and no longer patched.
            continue;
        }
        let want = match (A::caps().patches_sites, initialized, t) {
            (true, true, None) => Insn::Nop5,
            (true, true, Some(t)) if static_call_core::insn::in_range(s, t) => Insn::Call(t),
            _ => home_insn::<A>(unpatched),
        };
        expect_at(s, &want, "site")?;
    }
    if let Some(tr) = key.raw().trampoline() {
        expect_trampoline(tr, t)?;
    }
    Ok(())
}

/// Checks the trampoline at `tr` leads to `t` (none: `ret`): a `jmp` to it,
/// or to a relay in range (`jmp qword ptr [rip+0]; .quad t`).
pub(crate) fn expect_trampoline(tr: usize, t: Option<usize>) -> Result<(), String> {
    match t {
        None => expect_at(tr, &Insn::Ret, "trampoline"),
        Some(t) if static_call_core::insn::in_range(tr, t) => {
            expect_at(tr, &Insn::Jmp(t), "trampoline")
        }
        Some(t) => {
            let Insn::Jmp(relay) = insn(tr) else {
                return Err(format!("trampoline {tr:#x} does not jump: {:?}", insn(tr)));
            };
            // SAFETY: the relay is live code of the library.
            let b = unsafe { crate::decode::read_code(relay, 14) };
            let dest = u64::from_le_bytes(b[6..14].try_into().expect("8 bytes")) as usize;
            ensure!(
                b[..6] == [0xff, 0x25, 0, 0, 0, 0] && dest == t,
                "relay at {relay:#x} is {b:02x?}, expected jmp [rip] to {t:#x}"
            );
            Ok(())
        }
    }
}

pub(crate) fn addr_of(f: AddFn) -> usize {
    f as *const () as usize
}
