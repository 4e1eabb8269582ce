//! One engine per process (`docs/DESIGN.md`, "One engine per process"):
//! every copy of the engine a process links can be found, in a fixed
//! order, even when the executable exports no symbol and a plugin that
//! links its own copy (a key of its own) is opened `RTLD_LOCAL`
//! (`engine_copies`); a later copy's updates are written by the first
//! copy's engine (`engine_shared`); a plugin loads, patches, updates and
//! unloads its keys in a loop while the program updates its own, one
//! `SIGTRAP` handler throughout, a plugin reads the program's none and
//! RET0 keys as the program does, and a plugin of another engine version
//! is refused (`engines`).

use super::*;

use libloading::os::unix::{RTLD_LOCAL, RTLD_NOW};
use static_call_core::text::rendezvous::{self, own_anchor};

/// Builds the test plugin `conformance/so-engine` (a `cdylib` with a key
/// of its own, so its own copy of the engine) and runs `engine_copies_child` with it.
pub(crate) fn engine_copies<A: Adapter>() -> ScenarioResult {
    let so = build_cdylib(
        "static-call-test-engine",
        "libstatic_call_test_engine.so",
        false,
    )?;
    spawn_cell(
        A::NAME,
        "engine_copies_child",
        &[],
        &[("STATIC_CALL_TEST_SO", so.to_str().unwrap_or(""))],
        Duration::from_secs(60),
    )
    .result()
}

/// Opens the test plugin at `path` `RTLD_NOW | RTLD_LOCAL`.
fn open_plugin(path: &str) -> Result<libloading::Library, String> {
    // SAFETY: our own test plugin; its initialiser only resolves the libc
    // functions it forwards to and meets the process's engine.
    unsafe { libloading::os::unix::Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
        .map(libloading::Library::from)
        .map_err(|e| format!("dlopen of the test plugin {path}: {e}"))
}

/// One copy (ours) before the plugin is opened, two while it is (ours
/// first, the second inside the plugin's mapping), one after it closed.
pub(crate) fn engine_copies_child<A: Adapter>() -> ScenarioResult {
    let path = std::env::var("STATIC_CALL_TEST_SO").map_err(|_| "STATIC_CALL_TEST_SO unset")?;
    // The program's engine is started (as any program's is).
    lib(A::init_with(InitPolicy::Track), "init")?;
    let before = rendezvous::engine_copies();
    ensure!(
        before == [own_anchor()],
        "before the plugin: copies {before:x?}, expected only ours at {:#x}",
        own_anchor()
    );
    let plugin = open_plugin(&path)?;
    // SAFETY: a symbol of the plugin, an `extern "C" fn() -> usize`; the
    // symbol borrows `plugin`, which is open while it is called.
    let theirs =
        unsafe { plugin.get::<extern "C" fn() -> usize>(b"static_call_test_engine_anchor\0") }
            .map_err(|e| format!("the plugin lacks its anchor function: {e}"))?();
    let during = rendezvous::engine_copies();
    ensure!(
        during == [own_anchor(), theirs],
        "with the plugin open: copies {during:x?}; expected ours {:#x}, then the plugin's {theirs:#x}",
        own_anchor()
    );
    // Nothing of the plugin is used after this.
    plugin
        .close()
        .map_err(|e| format!("dlclose of the test plugin: {e}"))?;
    let after = rendezvous::engine_copies();
    ensure!(
        after == before,
        "after closing the plugin: copies {after:x?}, expected {before:x?}"
    );
    Ok(Outcome::Pass(format!(
        "found by dl_iterate_phdr + PT_NOTE: ours at {:#x}; with the RTLD_LOCAL plugin open, its copy at {:#x} too; one again after close",
        own_anchor(),
        theirs
    )))
}

/// The `SIGTRAP` action now (its `sa_sigaction`).
fn trap_handler() -> usize {
    // SAFETY: zeroed is a valid sigaction to receive the current one.
    let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: querying only.
    unsafe { libc::sigaction(libc::SIGTRAP, std::ptr::null(), &mut cur) };
    cur.sa_sigaction
}

/// The base address of the object that holds `addr` (0 if none).
fn object_base(addr: usize) -> usize {
    // SAFETY: dladdr only reads the loader's tables.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(addr as *const libc::c_void, &mut info) == 0 {
            return 0;
        }
        info.dli_fbase as usize
    }
}

type Status = unsafe extern "C" fn(*mut u8, usize, *mut [u32; 2]) -> i32;
type UpdateFn = unsafe extern "C" fn(u64, *mut u8, usize, *mut [u32; 2]) -> i32;

/// The test plugin, opened `RTLD_LOCAL`, and its functions (copied out of
/// their symbols: valid while `lib` is open, that is, until `close`).
struct Plugin {
    lib: libloading::Library,
    version: extern "C" fn() -> u32,
    serves: extern "C" fn() -> bool,
    call: extern "C" fn(u64) -> u64,
    sites: extern "C" fn() -> usize,
    init: Status,
    update: UpdateFn,
    own_is_ret0: extern "C" fn() -> bool,
    query_none: unsafe extern "C" fn(*const StaticCall<crate::HookFn>) -> u32,
    is_ret0: unsafe extern "C" fn(*const StaticCall<extern "C" fn(u64) -> bool>) -> u32,
}

/// What one of the plugin's operations returned: 0, 1 (an error) or 2
/// (`EngineVersion`), its text, and the versions it named.
#[derive(Debug)]
struct Outcome2 {
    code: i32,
    text: String,
    versions: [u32; 2],
}

impl Plugin {
    fn open(path: &str) -> Result<Plugin, String> {
        let lib = open_plugin(path)?;
        /// Copies the plugin's function `name` out of its symbol.
        ///
        /// # Safety
        /// `T` must be the function's type; the copy must not be called
        /// after `lib` is closed.
        unsafe fn sym<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T, String> {
            let mut n = name.as_bytes().to_vec();
            n.push(0);
            // SAFETY: `T` is the symbol's type (the caller's promise).
            unsafe { lib.get::<T>(&n) }
                .map(|s| *s)
                .map_err(|e| format!("the plugin lacks {name}: {e}"))
        }
        // SAFETY: the plugin's functions have these signatures
        // (conformance/so-engine); they are kept next to `lib` and called
        // only while it is open (`close` consumes the plugin).
        unsafe {
            Ok(Plugin {
                version: sym(&lib, "static_call_test_engine_version")?,
                serves: sym(&lib, "static_call_test_engine_serves")?,
                call: sym(&lib, "static_call_test_engine_call")?,
                sites: sym(&lib, "static_call_test_engine_sites")?,
                init: sym(&lib, "static_call_test_engine_init")?,
                update: sym(&lib, "static_call_test_engine_update")?,
                own_is_ret0: sym(&lib, "static_call_test_engine_own_is_ret0")?,
                query_none: sym(&lib, "static_call_test_engine_query_none")?,
                is_ret0: sym(&lib, "static_call_test_engine_is_ret0")?,
                lib,
            })
        }
    }

    fn status(&self, f: impl FnOnce(*mut u8, usize, *mut [u32; 2]) -> i32) -> Outcome2 {
        let mut msg = [0u8; 512];
        let mut versions = [0u32; 2];
        let code = f(msg.as_mut_ptr(), msg.len(), &mut versions);
        let text = std::ffi::CStr::from_bytes_until_nul(&msg)
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default();
        Outcome2 {
            code,
            text,
            versions,
        }
    }

    fn init(&self) -> Outcome2 {
        // SAFETY: valid buffers (see `status`).
        self.status(|m, l, v| unsafe { (self.init)(m, l, v) })
    }

    /// `which`: odd for `plus2`, even for `plus1`, `u64::MAX` for RET0.
    fn update(&self, which: u64) -> Outcome2 {
        // SAFETY: valid buffers (see `status`).
        self.status(|m, l, v| unsafe { (self.update)(which, m, l, v) })
    }

    /// Closes the plugin: nothing of it may be used after this (every
    /// thread that called it was joined).
    fn close(self) -> Result<(), String> {
        self.lib
            .close()
            .map_err(|e| format!("dlclose of the test plugin: {e}"))
    }
}

fn engine_plugin(feature: &str) -> Result<std::path::PathBuf, String> {
    super::cdylib::build_cdylib_with(
        "static-call-test-engine",
        "libstatic_call_test_engine.so",
        false,
        feature,
    )
}

/// Builds the test plugin and runs `engine_shared_child` with it.
pub(crate) fn engine_shared<A: Adapter>() -> ScenarioResult {
    let so = engine_plugin("")?;
    spawn_cell(
        A::NAME,
        "engine_shared_child",
        &[],
        &[("STATIC_CALL_TEST_SO", so.to_str().unwrap_or(""))],
        Duration::from_secs(60),
    )
    .result()
}

/// The program runs its engine; the plugin (a later copy) updates its own
/// key, and the update is written by the program's engine: the plugin's
/// copy does not serve, the program's engine counts the batch, the
/// `SIGTRAP` action is unchanged, and the program's updates go on.
pub(crate) fn engine_shared_child<A: Adapter>() -> ScenarioResult {
    let path = std::env::var("STATIC_CALL_TEST_SO").map_err(|_| "STATIC_CALL_TEST_SO unset")?;
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(A::add().update(add2), "update")?;
    // The program's engine is open: its SIGTRAP handler is installed.
    lib(text::engine_info(), "engine_info")?;
    ensure!(
        text::serves_engine(),
        "the program's copy (the first) does not serve the process's engine"
    );
    let ours = trap_handler();
    let p = Plugin::open(&path)?;
    let before = text::engine_stats();
    let r = p.update(1);
    let after = text::engine_stats();
    let handler = trap_handler();
    let serves = (p.serves)();
    let plugin_call = (p.call)(1);
    let program_update = A::add().update(add1);
    p.close()?;
    ensure!(
        r.code == 0,
        "the plugin's update failed: {} ({})",
        r.code,
        r.text
    );
    ensure!(!serves, "the plugin's copy serves an engine of its own");
    ensure!(
        after.batches > before.batches && after.slots > before.slots,
        "the plugin's update was not written by the program's engine: its counters went from \
         {before:?} to {after:?}"
    );
    ensure!(
        handler == ours,
        "the SIGTRAP handler changed from {ours:#x} to {handler:#x}"
    );
    ensure!(
        plugin_call == 3,
        "the plugin's key did not change: call(1) = {plugin_call}"
    );
    lib(program_update, "the program's update after the plugin's")?;
    Ok(Outcome::Pass(format!(
        "the plugin's update went through the program's engine ({} batch(es), {} slot(s) counted \
         there); one SIGTRAP handler; the program's updates go on",
        after.batches - before.batches,
        after.slots - before.slots
    )))
}

/// Builds the plugin (and its `bumped` build) and runs `engines_child`.
pub(crate) fn engines<A: Adapter>() -> ScenarioResult {
    let so = engine_plugin("")?;
    let bumped = engine_plugin("bumped")?;
    spawn_cell(
        A::NAME,
        "engines_child",
        &[],
        &[
            ("STATIC_CALL_TEST_SO", so.to_str().unwrap_or("")),
            ("STATIC_CALL_TEST_SO_BUMPED", bumped.to_str().unwrap_or("")),
        ],
        Duration::from_secs(120),
    )
    .result()
}

/// Plugin rounds in `engines_child`.
const ENGINE_ROUNDS: usize = 20;

/// One engine for the program and a plugin with keys of its own:
/// * torture: one thread flips the program's key between two targets
///   whose rel32 differ in every byte, another calls it, while the main
///   thread loads the plugin, patches its sites (`init`), updates its key
///   50 times (two functions with RET0 between them) while a third thread
///   calls it, and unloads it, 20 times: no wrong call;
/// * one `SIGTRAP` handler throughout, the program's (checked after every
///   step of the plugin);
/// * the plugin's `query()` / `is_ret0()` on program keys set to none and
///   to RET0 answer `None` and `true` (and the opposite after the keys
///   point at functions again); its own key at RET0 reads so too;
/// * a plugin built with the next engine version is refused with
///   `EngineVersion` naming both versions, nothing written.
pub(crate) fn engines_child<A: Adapter>() -> ScenarioResult {
    let path = std::env::var("STATIC_CALL_TEST_SO").map_err(|_| "STATIC_CALL_TEST_SO unset")?;
    let bumped = std::env::var("STATIC_CALL_TEST_SO_BUMPED")
        .map_err(|_| "STATIC_CALL_TEST_SO_BUMPED unset")?;
    lib(A::init_with(InitPolicy::Track), "init")?;
    lib(text::engine_info(), "engine_info")?;
    ensure!(
        text::serves_engine(),
        "the program's copy (the first) does not serve the process's engine"
    );
    let ours = trap_handler();
    let program = object_base(add1 as *const () as usize);
    ensure!(
        ours > 1 && object_base(ours) == program,
        "the SIGTRAP handler {ours:#x} is not the program's (object at {:#x}, program at {program:#x})",
        object_base(ours)
    );
    // The program's key flips between two targets whose rel32 differ in
    // every byte (as in `torture`), so a torn instruction would be seen.
    let near = sites::<A, _>(A::spin())
        .first()
        .map(|s| s.0)
        .unwrap_or(A::call_spin as *const () as usize);
    let t = crate::place::flip_targets(near)?;
    // SAFETY: t.a and t.b are `lea rax, [rdi+n]; ret` — extern "C" fn(u64) -> u64.
    let (fa, fb): (AddFn, AddFn) = unsafe {
        (
            <AddFn as Signature>::from_addr(t.a as *const u8),
            <AddFn as Signature>::from_addr(t.b as *const u8),
        )
    };
    lib(A::spin().update(fa), "update to the first target")?;
    let stop = Arc::new(AtomicBool::new(false));
    let wrong = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let updates = Arc::new(AtomicU64::new(0));
    let fail = Arc::new(std::sync::Mutex::new(None::<String>));
    let updater = {
        let (stop, updates, fail) = (stop.clone(), updates.clone(), fail.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let f: AddFn = if i.is_multiple_of(2) { fb } else { fa };
                if let Err(e) = A::spin().update(f) {
                    *fail.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(format!("program update {i}: {e}"));
                    break;
                }
                updates.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    let caller = {
        let (stop, wrong, calls) = (stop.clone(), wrong.clone(), calls.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for i in 1..=1000u64 {
                    let r = A::call_spin(i);
                    if r != i + 1 && r != i + 2 {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                }
                calls.fetch_add(1000, Ordering::Relaxed);
            }
        })
    };
    let result = engines_rounds::<A>(&path, ours, &wrong, &calls);
    stop.store(true, Ordering::Relaxed);
    let _ = updater.join();
    let _ = caller.join();
    // Leave the key on a function that outlives the mappings.
    lib(A::spin().update(add1), "final update")?;
    drop(t);
    let (plugin_updates, plugin_calls, probes) = result?;
    if let Some(f) = fail.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(f);
    }
    let wrong = wrong.load(Ordering::Relaxed);
    let (calls, updates) = (
        calls.load(Ordering::Relaxed),
        updates.load(Ordering::Relaxed),
    );
    ensure!(
        wrong == 0,
        "{wrong} wrong calls of {calls} (program and plugin keys)"
    );
    ensure!(
        updates > 0,
        "the program's updater made no update during the plugin rounds"
    );
    let refused = engines_bumped(&bumped, ours)?;
    Ok(Outcome::Pass(format!(
        "{ENGINE_ROUNDS} plugin rounds (load, init, {plugin_updates} updates in all, RET0, unload) \
         beside {updates} program updates: {calls} program and {plugin_calls} plugin calls, 0 wrong; \
         one SIGTRAP handler (the program's) throughout; {probes}; {refused}"
    )))
}

/// The plugin rounds of `engines_child`: (plugin updates, plugin calls, what
/// the probes said).
fn engines_rounds<A: Adapter>(
    path: &str,
    ours: usize,
    wrong: &AtomicU64,
    calls_out: &AtomicU64,
) -> Result<(u64, u64, String), String> {
    let handler_same = |step: &str| -> Result<(), String> {
        let now = trap_handler();
        ensure!(
            now == ours,
            "{step}: the SIGTRAP handler changed from {ours:#x} to {now:#x}"
        );
        Ok(())
    };
    let mut plugin_updates = 0u64;
    let mut plugin_calls = 0u64;
    let mut probes = String::new();
    for round in 0..ENGINE_ROUNDS {
        let p = Plugin::open(path)?;
        handler_same(&format!("round {round}, after loading the plugin"))?;
        ensure!(
            (p.version)() == text::ENGINE_VERSION,
            "the plugin's engine version is {}, ours {}",
            (p.version)(),
            text::ENGINE_VERSION
        );
        ensure!(
            !(p.serves)(),
            "round {round}: the plugin serves an engine of its own"
        );
        let r = p.init();
        ensure!(
            r.code == 0,
            "round {round}: the plugin's init failed: {}",
            r.text
        );
        ensure!(
            (p.sites)() > 0,
            "round {round}: the plugin's init registered no site of its key"
        );
        handler_same(&format!("round {round}, after the plugin's init"))?;
        // A caller of the plugin's key while the main thread updates it.
        let stop = AtomicBool::new(false);
        let plugin_wrong = AtomicU64::new(0);
        let n = std::thread::scope(|s| -> Result<u64, String> {
            let c = s.spawn(|| {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let r = (p.call)(5);
                    if r != 6 && r != 7 && r != 0 {
                        plugin_wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
                n
            });
            let mut res = Ok(());
            // plus2, RET0, plus1, RET0, …: an inline-patched site goes
            // between `call` and `xor eax, eax` (all five bytes differ).
            for j in 0..50u64 {
                let (which, want) = match j % 4 {
                    0 => (1, 7),
                    2 => (0, 6),
                    _ => (u64::MAX, 0),
                };
                let r = p.update(which);
                if r.code != 0 {
                    res = Err(format!(
                        "round {round}: the plugin's update {j} failed: {}",
                        r.text
                    ));
                    break;
                }
                plugin_updates += 1;
                let got = (p.call)(5);
                if got != want {
                    res = Err(format!(
                        "round {round}: after update {j} the plugin's key returned {got}, not {want}"
                    ));
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
            let n = c
                .join()
                .map_err(|_| "the plugin's caller panicked".to_string())?;
            res.map(|()| n)
        })?;
        plugin_calls += n;
        wrong.fetch_add(plugin_wrong.load(Ordering::Relaxed), Ordering::Relaxed);
        calls_out.fetch_add(n, Ordering::Relaxed);
        handler_same(&format!("round {round}, after the plugin's updates"))?;
        // The plugin's own key at RET0, and back.
        let r = p.update(u64::MAX);
        ensure!(
            r.code == 0,
            "round {round}: the plugin's RET0 update failed: {}",
            r.text
        );
        let (z, is0) = ((p.call)(5), (p.own_is_ret0)());
        ensure!(
            z == 0 && is0,
            "round {round}: the plugin's key at RET0 returned {z}, is_ret0 = {is0}"
        );
        let r = p.update(0);
        ensure!(
            r.code == 0,
            "round {round}: the plugin's update from RET0 failed: {}",
            r.text
        );
        // The program's keys, asked from the plugin's copy.
        lib(A::hook().update_cond(None), "the program's hook to none")?;
        lib(A::pred().update_ret0(), "the program's pred to RET0")?;
        // SAFETY: live keys of the program with these signatures.
        let (none, ret0) = unsafe { ((p.query_none)(A::hook()), (p.is_ret0)(A::pred())) };
        lib(A::hook().update_cond(Some(hook)), "the program's hook back")?;
        lib(
            A::pred().update(crate::targets::is_odd),
            "the program's pred back",
        )?;
        // SAFETY: as above.
        let (some, not0) = unsafe { ((p.query_none)(A::hook()), (p.is_ret0)(A::pred())) };
        ensure!(
            none == 1 && ret0 == 1,
            "round {round}: asked from the plugin, the program's key at none has query() {} and \
             the one at RET0 is_ret0() = {}",
            if none == 1 { "None" } else { "Some(..)" },
            ret0 == 1
        );
        ensure!(
            some == 0 && not0 == 0,
            "round {round}: asked from the plugin, the program's keys back at functions read \
             none = {some}, ret0 = {not0}"
        );
        if round == 0 {
            probes = "the plugin reads the program's keys at none and RET0 as None and true (and \
                      back at functions as Some and false)"
                .into();
        }
        handler_same(&format!("round {round}, before unloading the plugin"))?;
        p.close()?;
        handler_same(&format!("round {round}, after unloading the plugin"))?;
    }
    Ok((plugin_updates, plugin_calls, probes))
}

/// The plugin built with the next engine version: every engine operation
/// refused with `EngineVersion` naming both versions; nothing written.
fn engines_bumped(path: &str, ours: usize) -> Result<String, String> {
    let p = Plugin::open(path)?;
    let v = (p.version)();
    let before = text::engine_stats();
    let init = p.init();
    let update = p.update(1);
    let ret0 = p.update(u64::MAX);
    let after = text::engine_stats();
    let call = (p.call)(5);
    let handler = trap_handler();
    let serves = (p.serves)();
    p.close()?;
    ensure!(
        v == text::ENGINE_VERSION + 1,
        "the bumped plugin's engine version is {v}, expected {}",
        text::ENGINE_VERSION + 1
    );
    for (what, r) in [("init", &init), ("update", &update), ("RET0 update", &ret0)] {
        ensure!(
            r.code == 2 && r.versions == [v, text::ENGINE_VERSION],
            "the bumped plugin's {what} was not refused with EngineVersion {{ ours: {v}, found: {} }}: \
             returned {} {:?} ({})",
            text::ENGINE_VERSION,
            r.code,
            r.versions,
            r.text
        );
    }
    ensure!(
        after.batches == before.batches,
        "the bumped plugin's refused operations wrote {} batch(es)",
        after.batches - before.batches
    );
    ensure!(
        call == 6,
        "the bumped plugin's key changed: call(5) = {call}"
    );
    ensure!(!serves, "the bumped plugin serves an engine of its own");
    ensure!(
        handler == ours,
        "the bumped plugin changed the SIGTRAP handler from {ours:#x} to {handler:#x}"
    );
    Ok(format!(
        "the version-{v} plugin is refused: {}",
        update.text
    ))
}
