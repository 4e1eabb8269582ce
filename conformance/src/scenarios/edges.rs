//! Edges of the API and of the engine (issue 19): the README's plugin
//! built in both profiles, and the corner cases of the registry, the
//! module life and the trap handler.

use std::time::Duration;

use static_call_core::{InitPolicy, StaticCall};

use super::cdylib::build_cdylib;
use super::lib;
use crate::runner::{Outcome, ScenarioResult, spawn_cell};
use crate::targets::{add1, add2, add3};
use crate::{Adapter, AddFn};

// ------------------------------------------------------------ README plugin

// The keys the README's plugin declares, one per implementation of the
// list, exported under the symbol names its copies link to (`my_add_<m>`;
// `build.rs` exports `my_add*` dynamically).
macro_rules! readme_keys {
    ($(($m:ident, $krate:path, $name:literal))*) => {
        $(mod $m {
            use $krate as sc;
            sc::define_static_call!(
                #[unsafe(export_name = concat!("my_add_", stringify!($m)))]
                pub(super) static MY_ADD: extern "C" fn(u64) -> u64 = crate::targets::add1;
            );
        })*

        /// The README key of the implementation whose symbol prefix is
        /// `prefix`.
        fn readme_key_of(prefix: &str) -> Option<&'static StaticCall<AddFn>> {
            match prefix {
                $(stringify!($m) => Some(&$m::MY_ADD),)*
                _ => None,
            }
        }
    };
}
static_call_implementations::implementations!(readme_keys);

/// This implementation's README key and the plugin's entry point for it.
fn readme_key<A: Adapter>() -> Result<(&'static StaticCall<AddFn>, String), String> {
    let key = readme_key_of(A::SYMBOL_PREFIX)
        .ok_or_else(|| format!("no README key for implementation {}", A::NAME))?;
    Ok((key, format!("plugin_entry_{}", A::SYMBOL_PREFIX)))
}

/// The README's plugin block: the text between the fence line "```rs" and
/// the closing fence of the "Modules" section's block that starts with
/// the plugin's own first line.
fn readme_plugin_block(readme: &str) -> Option<&str> {
    let start = readme.find("```rs\n// src/lib.rs of the plugin crate")? + "```rs\n".len();
    let len = readme[start..].find("\n```\n")? + 1;
    Some(&readme[start..start + len])
}

/// The README's plugin (`init_text!` and `module!` in one module; the
/// crate `conformance/readme-plugin`, whose source is the README's text),
/// built in debug and in release as one codegen unit, loads (its init
/// function calls its init-text site), follows an update, releases its
/// init page and closes.
pub(crate) fn readme_plugin<A: Adapter>() -> ScenarioResult {
    if !A::LISTED {
        return Ok(Outcome::Skip(format!(
            "needs a copy built from the workspace's implementations list, and {} is not on it",
            A::NAME
        )));
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../README.md"))
        .map_err(|e| format!("README.md: {e}"))?;
    let source = std::fs::read_to_string(root.join("readme-plugin/src/plugin.rs"))
        .map_err(|e| format!("readme-plugin/src/plugin.rs: {e}"))?;
    let block = readme_plugin_block(&readme)
        .ok_or("README.md has no ```rs block starting \"// src/lib.rs of the plugin crate\"")?;
    ensure!(
        block == source,
        "the README's plugin and conformance/readme-plugin/src/plugin.rs differ:\n--- README\n{block}--- plugin.rs\n{source}"
    );
    let mut notes = Vec::new();
    for release in [false, true] {
        let so = build_cdylib(
            "static-call-readme-plugin",
            "libstatic_call_readme_plugin.so",
            release,
        )?;
        let profile = if release { "release" } else { "debug" };
        let r = spawn_cell(
            A::NAME,
            "readme_plugin_child",
            &[],
            &[("STATIC_CALL_TEST_SO", so.to_str().unwrap_or(""))],
            Duration::from_secs(60),
        );
        match r.result().map_err(|e| format!("{profile} build: {e}"))? {
            Outcome::Pass(m) => notes.push(format!("{profile}: {m}")),
            other => return Ok(other),
        }
    }
    Ok(Outcome::Pass(format!(
        "README text = plugin.rs; {}",
        notes.join("; ")
    )))
}

pub(crate) fn readme_plugin_child<A: Adapter>() -> ScenarioResult {
    let path = std::env::var("STATIC_CALL_TEST_SO").map_err(|_| "STATIC_CALL_TEST_SO unset")?;
    let (key, entry_name) = readme_key::<A>()?;
    lib(A::init_with(InitPolicy::Track), "init")?;
    // SAFETY: the README's plugin, built from this workspace.
    let so = lib(
        unsafe { A::load_shared_object(&path) },
        "load_shared_object",
    )?;
    let sym = std::ffi::CString::new(entry_name).map_err(|e| e.to_string())?;
    let p = so
        .symbol(&sym)
        .ok_or_else(|| format!("symbol {sym:?} missing"))?;
    // SAFETY: the plugin defines it as extern "C" fn(u64) -> u64.
    let entry: extern "C" fn(u64) -> u64 = unsafe { std::mem::transmute(p) };
    ensure!(entry(2) == 3, "plugin call before update: {}", entry(2));
    lib(key.update(add2), "update")?;
    ensure!(entry(2) == 4, "plugin call after update: {}", entry(2));
    let ms = lib(A::registry().module_stats(so.id()), "module_stats")?;
    ensure!(
        ms.sites == 2 && ms.init == 1,
        "module stats: {} sites, {} in init text (expected 2 and 1): {ms:?}",
        ms.sites,
        ms.init
    );
    let (lo, hi) = ms.init_pages.ok_or("init text not released")?;
    ensure!(hi > lo, "no whole init page released: {lo:#x}..{hi:#x}");
    let perms = super::init::maps_perms(lo, hi)?;
    ensure!(
        !perms.is_empty() && perms.iter().all(|p| p.starts_with("---")),
        "released init pages {lo:#x}..{hi:#x} are {perms:?}"
    );
    // SAFETY: nothing of the plugin is used after close.
    lib(unsafe { so.close() }, "close")?;
    lib(key.update(add1), "update after close")?;
    Ok(Outcome::Pass(format!(
        "loaded (init ran its init-text site), 2 sites followed an update, init page {lo:#x}..{hi:#x} ---p, closed"
    )))
}

// ------------------------------------------------------- module init panics

/// A module whose init function panics leaves no trace, as one whose init
/// fails: the panic reaches the caller, the module is not left `Loading`
/// (no key links it, its sites hold their stub call again, the registry's
/// statistics are as before) and the same table loads and unloads again.
pub(crate) fn module_init_panic<A: Adapter>() -> ScenarioResult {
    use super::modules::{load, make, snapshot, unload};
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update")?;
    let keys = vec![A::add().raw(), A::spin().raw()];
    let m = make::<A>(&keys, 4, 2, false, None)?;
    let before = A::stats();
    let modules_before = A::registry().modules();
    let addrs: Vec<usize> = m.funcs.iter().map(|f| f.site).collect();
    let bytes = snapshot(&addrs);
    let mut ran = false;
    let mut init = || -> Result<(), String> {
        ran = true;
        panic!("module init panics (scenario module_init_panic)");
    };
    let spec = static_call_core::ModuleSpec {
        name: "gen-init-panics",
        sections: m.sections,
    };
    // The panic's message is expected: keep it out of the cell's stderr.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the module stays mapped for the whole scenario.
        unsafe { A::load_module(spec, Some(&mut init)) }
    }));
    std::panic::set_hook(hook);
    ensure!(ran, "the init function did not run");
    match r {
        Err(_) => {}
        Ok(Ok(id)) => return Err(format!("load returned {id:?} although init panicked")),
        Ok(Err(e)) => return Err(format!("load returned an error instead of the panic: {e}")),
    }
    ensure!(
        A::registry().modules() == modules_before,
        "modules {:?} -> {:?}: the module stayed registered",
        modules_before,
        A::registry().modules()
    );
    ensure!(
        A::stats() == before,
        "registry changed: {before:?} -> {:?}",
        A::stats()
    );
    ensure!(
        snapshot(&addrs) == bytes,
        "sites stayed patched after the panicking init"
    );
    lib(A::add().update(add3), "update after the panic")?;
    ensure!(
        snapshot(&addrs) == bytes,
        "a later update wrote the panicked module's sites"
    );
    let again = load::<A>(&m, "gen-init-panics-again")?;
    unload::<A>(again)?;
    lib(A::add().update(add1), "update")?;
    Ok(Outcome::Pass(
        "the panic reached the caller; module not listed, stats as before, sites back to their stub call, the table loads and unloads again".into(),
    ))
}

// ------------------------------------------- foreign int3, SIG_IGN / SIG_DFL

/// A foreign breakpoint: `int3` as the first byte of a function.
#[unsafe(naked)]
extern "C" fn foreign_int3() {
    core::arch::naked_asm!("int3", "ret")
}

/// How a traced child ended: the `SIGTRAP` stops it went through
/// (`si_code`, `rip`) and its end.
#[derive(Debug, PartialEq, Eq)]
struct TrapRun {
    stops: Vec<(i32, u64)>,
    end: String,
}

/// Forks a child that is traced by this process (when `ptrace` is
/// allowed), sets `action` (`SIG_IGN` or `SIG_DFL`) as its `SIGTRAP`
/// action, installs the engine's handler over it when `library`, and runs
/// [`foreign_int3`]. The tracer passes every signal on unchanged.
fn run_foreign_int3(action: libc::sighandler_t, library: bool) -> Result<(TrapRun, bool), String> {
    // SAFETY: the child sets up, traps and ends (`_exit`); it runs no
    // code of the parent's other threads.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child: plain system calls, then the trap.
        unsafe {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            libc::alarm(5);
            let traced = libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) == 0;
            if traced {
                libc::raise(libc::SIGSTOP);
            }
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = action;
            libc::sigaction(libc::SIGTRAP, &act, std::ptr::null_mut());
            if library && static_call_core::text::engine_info().is_err() {
                libc::_exit(3);
            }
            foreign_int3();
            libc::_exit(if traced { 0 } else { 10 });
        }
    }
    ensure!(pid > 0, "fork failed");
    let mut run = TrapRun {
        stops: Vec::new(),
        end: String::new(),
    };
    let mut traced = false;
    loop {
        let mut status = 0;
        // SAFETY: waiting for our own child (its alarm bounds the wait).
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            return Err("waitpid failed".into());
        }
        if libc::WIFSTOPPED(status) {
            traced = true;
            let sig = libc::WSTOPSIG(status);
            let pass = if sig == libc::SIGSTOP && run.stops.is_empty() {
                0
            } else {
                if sig == libc::SIGTRAP {
                    // SAFETY: zeroed is valid for both; the child is stopped.
                    let (mut si, mut regs): (libc::siginfo_t, libc::user_regs_struct) =
                        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
                    // SAFETY: our stopped tracee; valid out-pointers.
                    unsafe {
                        libc::ptrace(libc::PTRACE_GETSIGINFO, pid, 0, &mut si);
                        libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs);
                    }
                    run.stops.push((si.si_code, regs.rip));
                }
                sig
            };
            // SAFETY: resumes our stopped tracee with its signal.
            unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, pass as libc::c_long) };
            continue;
        }
        run.end = if libc::WIFSIGNALED(status) {
            format!("killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!("exited {}", libc::WEXITSTATUS(status))
        };
        return Ok((run, traced));
    }
}

/// A foreign `int3` with `SIG_IGN` and with `SIG_DFL` as the action before
/// the engine's handler ends as it does in a child without the library
/// (measured here, not assumed: the kernel never ignores a forced trap,
/// so both die of `SIGTRAP`), and — where this process may trace its
/// children — with the same last `SIGTRAP`: the `int3`'s own `si_code`
/// and `rip`, not a re-raise from inside the handler.
pub(crate) fn foreign_int3_default_actions<A: Adapter>() -> ScenarioResult {
    let mut notes = Vec::new();
    let mut all_traced = true;
    for (name, action) in [("SIG_IGN", libc::SIG_IGN), ("SIG_DFL", libc::SIG_DFL)] {
        let (without, t1) = run_foreign_int3(action, false)?;
        let (with, t2) = run_foreign_int3(action, true)?;
        all_traced &= t1 && t2;
        ensure!(
            with.end == without.end,
            "{name}: with the library the child {}, without it {} ({with:?} / {without:?})",
            with.end,
            without.end
        );
        if t1 && t2 {
            ensure!(
                with.stops.last() == without.stops.last(),
                "{name}: the last SIGTRAP (si_code, rip) was {:?} with the library, {:?} without (int3 at {:#x})",
                with.stops.last(),
                without.stops.last(),
                foreign_int3 as *const () as usize
            );
        }
        let f = foreign_int3 as *const () as u64;
        let last = match with.stops.last() {
            Some((code, rip)) => format!(
                "last SIGTRAP si_code {code:#x} at int3{:+}",
                rip.wrapping_sub(f) as i64
            ),
            None => "no SIGTRAP stop seen".into(),
        };
        notes.push(format!(
            "{name}: {} as without the library, {last}",
            with.end
        ));
    }
    if !all_traced {
        notes.push("ptrace not permitted here: the SIGTRAP context was not compared".into());
    }
    let _ = A::NAME;
    Ok(Outcome::Pass(notes.join("; ")))
}

// ------------------------------------------------------ engine_info and fork

/// `engine_info()` on one thread while another forks, 300 times: every
/// child can still use the engine and update (it would hang on the
/// engine's lock if `engine_info` held it outside the fork gate when the
/// fork came).
pub(crate) fn engine_info_fork<A: Adapter>() -> ScenarioResult {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    lib(A::init_with(InitPolicy::Track), "init")?;
    let stop = Arc::new(AtomicBool::new(false));
    let infos = Arc::new(AtomicU64::new(0));
    let h = {
        let (stop, infos) = (stop.clone(), infos.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if static_call_core::text::engine_info().is_ok() {
                    infos.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let forks = 300;
    let mut r = Ok(());
    for i in 0..forks {
        let to = if i % 2 == 0 { add2 } else { add1 };
        r = super::fork_and_check(|| {
            static_call_core::text::engine_info().is_ok()
                && A::add().update(to).is_ok()
                && A::call_add(2) == to(2)
        })
        .map_err(|e| format!("fork {i} of {forks}: {e}"));
        if r.is_err() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    h.join().map_err(|_| "the engine_info thread panicked")?;
    r?;
    Ok(Outcome::Pass(format!(
        "{forks} children forked during {} engine_info() calls each updated and called",
        infos.load(Ordering::Relaxed)
    )))
}

// ------------------------------------------------- near_with, huge lengths

/// `ExecMemory::near_with` with lengths no `rel32` reach can hold (2 GiB,
/// 4 GiB, 1 TiB, `usize::MAX` and `usize::MAX` less a page, which
/// overflows when rounded to pages): a typed error naming the length, the
/// code is never built, no panic, no overflow.
pub(crate) fn near_with_huge_len<A: Adapter>() -> ScenarioResult {
    use static_call_core::text::exec::ExecMemory;
    let near = A::call_add as *const () as usize;
    let lens = [
        1usize << 31,
        1 << 32,
        1 << 40,
        usize::MAX - 4095,
        usize::MAX,
    ];
    let mut seen = Vec::new();
    for len in lens {
        let mut built = false;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ExecMemory::near_with(near, len, |_| {
                built = true;
                vec![0xc3]
            })
        }));
        let e = match r {
            Err(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                return Err(format!("near_with(len {len:#x}) panicked: {msg}"));
            }
            Ok(Ok(m)) => {
                return Err(format!(
                    "near_with(len {len:#x}) mapped {:#x} bytes at {:#x}",
                    m.len(),
                    m.addr()
                ));
            }
            Ok(Err(e)) => e,
        };
        ensure!(!built, "near_with(len {len:#x}) built code before failing");
        ensure!(
            matches!(e, static_call_core::Error::NoRoomNear { len: l, .. } if l == len),
            "near_with(len {len:#x}): {e} (expected NoRoomNear naming the length)"
        );
        seen.push(format!("{len:#x}"));
    }
    Ok(Outcome::Pass(format!(
        "lengths {} refused with NoRoomNear naming the length; code never built",
        seen.join(", ")
    )))
}
