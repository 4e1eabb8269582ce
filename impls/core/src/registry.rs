//! The registry: which sites belong to which key, and the update paths.
//!
//! One [`Registry`] exists per implementation crate (a `static`). It owns:
//!
//! * the *images* whose site tables it has taken in (the main program at
//!   `init()`, modules whenever they are loaded), each with its sorted entry
//!   array and its init-text range;
//! * per key, a singly linked list of [`Group`]s, one per (key, image),
//!   each pointing at that image's contiguous run of the key's entries. No
//!   per-site node is ever allocated: memory is O(keys × images).
//!
//! All of it is guarded by one mutex. Writes to code happen with the mutex
//! held, through [`crate::text`] only.

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Place, Result};
use crate::gate;
use crate::insn::{Form, SLOT_LEN, TRAMPOLINE_LEN, TRAMPOLINE_SIGNATURE};
use crate::key::RawKey;
use crate::maps;
use crate::site::{self, Entry, KEYREF};
use crate::text::{self, SlotWrite, exec::ExecMemory, exec::Placement};

/// Which of the three designs a registry implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Update rewrites the trampoline and every call site.
    InlinePatch,
    /// Update rewrites only the trampoline.
    Trampoline,
    /// Update stores a function pointer; sites call through a retpoline.
    Indirect,
}

impl Flavor {
    /// Short name (`inline-patch`, `trampoline`, `indirect`).
    pub fn name(self) -> &'static str {
        match self {
            Flavor::InlinePatch => "inline-patch",
            Flavor::Trampoline => "trampoline",
            Flavor::Indirect => "indirect",
        }
    }
}

/// What `init()` does with call sites inside init text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitPolicy {
    /// Patch them like any other site while init text exists; skip them
    /// once `free_init()` released it (what the kernel settled on).
    #[default]
    Track,
    /// Refuse them: `init()` fails with [`Error::InitSitesRefused`] naming
    /// every such site.
    Strict,
}

/// Section boundaries of one image, as half-open address ranges
/// (`(0, 0)` when the image has no such section).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageSections {
    /// The site table.
    pub sites: (usize, usize),
    /// The init text.
    pub init: (usize, usize),
}

/// Statistics of a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Keys the registry knows (seen in a site table or updated).
    pub keys: usize,
    /// Recorded call sites in all registered images.
    pub sites: usize,
    /// Sites that call their key's target directly (or hold the NOP for a
    /// none target).
    pub direct: usize,
    /// Sites that call the trampoline by design (trampoline
    /// implementation, or any implementation before `init()`).
    pub via_trampoline: usize,
    /// Inline-patch sites that cannot reach their target with a `rel32`
    /// and call the trampoline instead.
    pub fallback: usize,
    /// Sites that call through the retpoline (indirect implementation).
    pub indirect: usize,
    /// Sites in init text (counted in the totals above too).
    pub init: usize,
    /// Init-text sites no longer patched because init text was released.
    pub init_released: usize,
    /// Loaded modules (images other than the main program).
    pub modules: usize,
    /// Site groups, one per (key, image) with sites.
    pub groups: usize,
    /// Heap bytes the registry holds (images, key list, groups).
    pub registry_bytes: usize,
}

/// Statistics of one loaded module.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModuleStats {
    /// The module's name, as given at load.
    pub name: String,
    /// Its recorded call sites.
    pub sites: usize,
    /// Sites per key: (key address, sites).
    pub sites_per_key: Vec<(usize, usize)>,
    /// Sites that call their key's target directly (or hold the NOP).
    pub direct: usize,
    /// Sites that call their in-range path (trampoline or near stub)
    /// because the target is beyond `rel32` reach.
    pub fallback: usize,
    /// Sites that call the trampoline or stub by design (trampoline
    /// implementation, or before `init()`).
    pub via_trampoline: usize,
    /// Sites that call through the retpoline (indirect implementation).
    pub indirect: usize,
    /// Sites in the module's init region.
    pub init: usize,
    /// Whether the module's init region has been released.
    pub init_released: bool,
    /// Bytes of registry memory held for this module (image record,
    /// name, one group per key).
    pub registry_bytes: usize,
}

/// Handle of a loaded module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId(pub u64);

/// What a module brings: its name, its site table and its init region.
///
/// The table is an array of 8-byte entries in writable memory (the
/// registry sorts it in place), in the format of [`crate::site`]: each
/// entry's site field points at a 5-byte `call` within ±2 GiB, and its key
/// field either points at the key or, with the `KEYREF` flag, at an 8-byte
/// slot holding the key's address. Every site of one key must call the
/// same *home*: the key's trampoline, a near stub for the key
/// ([`near_stub`]), or (indirect implementation) a retpoline thunk.
#[derive(Debug, Clone, Copy)]
pub struct ModuleSpec<'a> {
    /// A name for messages and statistics.
    pub name: &'a str,
    /// Its site table and init text (half-open ranges; `(0, 0)` for none).
    /// Only whole pages of the init text are released after its init
    /// function returns.
    pub sections: ImageSections,
}

/// One site-table run of one key in one image.
#[derive(Debug)]
pub struct Group {
    next: *mut Group,
    image: u64,
    first: *mut Entry,
    len: usize,
    /// What the image's sites of this key called when it was registered:
    /// the key's trampoline, a near stub that reaches it, or (indirect) a
    /// retpoline thunk. Sites return to it when the target is out of reach.
    home: usize,
}

impl Group {
    fn entries(&self) -> &[Entry] {
        // SAFETY: a group's run lies inside its image's table, which stays
        // mapped while the group is linked.
        unsafe { std::slice::from_raw_parts(self.first, self.len) }
    }
}

#[derive(Debug)]
struct Image {
    id: u64,
    name: String,
    entries: *mut Entry,
    len: usize,
    init_released: bool,
}

impl Image {
    fn entries(&self) -> &[Entry] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `entries..entries+len` is the image's site table, which
        // lives as long as the image is registered.
        unsafe { std::slice::from_raw_parts(self.entries, self.len) }
    }
}

#[derive(Debug, Default)]
struct State {
    initialized: bool,
    policy: InitPolicy,
    main_init_released: bool,
    images: Vec<Image>,
    keys: Vec<&'static RawKey>,
    relays: Vec<(usize, ExecMemory)>,
    groups: usize,
    next_module: u64,
}

impl State {
    fn image(&self, id: u64) -> Option<&Image> {
        self.images.iter().find(|i| i.id == id)
    }
}

// SAFETY: the raw pointers in State point at site tables and groups that
// the registry owns or that stay mapped while registered; State is only
// accessed under the registry's mutex.
unsafe impl Send for State {}

/// A site table checked and sorted, with its groups and writes planned but
/// not yet linked or written.
struct Prepared {
    id: u64,
    name: String,
    entries: &'static mut [Entry],
    init_released: bool,
    /// (key, first entry index, len, home)
    runs: Vec<(&'static RawKey, usize, usize, usize)>,
}

/// The registry's state, locked, inside the process-wide gate
/// (`crate::gate`). The state lock is released before the gate.
struct Locked<'a> {
    g: MutexGuard<'a, Option<State>>,
    _entered: gate::Entered,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Option<State>;
    fn deref(&self) -> &Option<State> {
        &self.g
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Option<State> {
        &mut self.g
    }
}

/// The registry of one implementation.
#[derive(Debug)]
pub struct Registry {
    flavor: Flavor,
    main: fn() -> ImageSections,
    indirect_thunk: Option<unsafe extern "C" fn()>,
    state: Mutex<Option<State>>,
}

const MAIN_IMAGE: u64 = 0;

/// `mov r11, qword ptr [rip + disp32]` (then the disp32).
const STUB_LOAD: [u8; 3] = [0x4c, 0x8b, 0x1d];
/// `jmp qword ptr [r11 + 8]`: through the key's trampoline field.
const STUB_JMP: [u8; 4] = [0x41, 0xff, 0x63, 0x08];
/// Length of a near stub.
pub const STUB_LEN: usize = 11;

/// The bytes of a near stub at `at` that reaches the key whose address is
/// stored at `slot`: it loads the key and jumps through its trampoline
/// field, so it works from anywhere and needs no patching.
pub fn near_stub(at: usize, slot: usize) -> Option<[u8; STUB_LEN]> {
    let d = i32::try_from(slot as i128 - (at as i128 + 7)).ok()?;
    let mut b = [0u8; STUB_LEN];
    b[..3].copy_from_slice(&STUB_LOAD);
    b[3..7].copy_from_slice(&d.to_le_bytes());
    b[7..].copy_from_slice(&STUB_JMP);
    Some(b)
}

impl Registry {
    /// A registry for `flavor` whose main image's sections `main` reports.
    /// For [`Flavor::Indirect`], `indirect_thunk` is the retpoline thunk
    /// every site calls.
    pub const fn new(
        flavor: Flavor,
        main: fn() -> ImageSections,
        indirect_thunk: Option<unsafe extern "C" fn()>,
    ) -> Registry {
        Registry {
            flavor,
            main,
            indirect_thunk,
            state: Mutex::new(None),
        }
    }

    /// The implementation this registry serves.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    fn locked(&self, entered: gate::Entered) -> Locked<'_> {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(State::default());
        }
        Locked {
            g,
            _entered: entered,
        }
    }

    /// The registry lock, for an operation that cannot fail (statistics,
    /// queries) or that is already inside one.
    fn lock(&self) -> Locked<'_> {
        self.locked(gate::enter_nested())
    }

    /// The registry lock for an operation a caller started: refused with
    /// [`Error::Reentrant`] on a thread that is already inside one (a
    /// signal handler), and after a fork made during one.
    fn lock_op(&self, op: &'static str) -> Result<Locked<'_>> {
        Ok(self.locked(gate::enter(op)?))
    }

    /// The main image's section boundaries.
    pub fn main_sections(&self) -> ImageSections {
        (self.main)()
    }

    /// Whether `init()` has completed.
    pub fn is_initialized(&self) -> bool {
        self.lock().as_ref().is_some_and(|s| s.initialized)
    }

    pub(crate) fn decode_target(&self, p: *mut u8) -> Option<usize> {
        if p.is_null() || (self.flavor == Flavor::Indirect && p as usize == ret_stub_addr()) {
            None
        } else {
            Some(p as usize)
        }
    }

    fn encode_target(&self, p: *const u8) -> *mut u8 {
        if p.is_null() && self.flavor == Flavor::Indirect {
            ret_stub_addr() as *mut u8
        } else {
            p as *mut u8
        }
    }

    /// Takes in the main program's site table and patches every site (of
    /// the program and of modules loaded so far) to its key's current
    /// target, in one batch. Idempotent: later calls return `Ok` and do
    /// nothing (whatever their policy).
    ///
    /// # Errors
    /// A corrupt entry, a site that does not hold the expected call, init
    /// sites under [`InitPolicy::Strict`], or a failed system call. On
    /// error nothing was patched and the registry is not initialised.
    pub fn init(&self, policy: InitPolicy) -> Result<()> {
        let mut g = self.lock_op("init")?;
        let st = g.as_mut().expect("state");
        if st.initialized {
            return Ok(());
        }
        if self.flavor != Flavor::Indirect {
            text::engine_info()?;
        }
        let released = st.main_init_released;
        let main = self.prepare(MAIN_IMAGE, "main program", (self.main)(), released, policy)?;
        let mut writes = Vec::new();
        if self.flavor == Flavor::InlinePatch {
            writes.extend(self.plan_prepared(&main)?);
            for img in &st.images {
                // Loaded before init: their sites still call their homes.
                for (key, run) in key_runs(img.entries()) {
                    let home = self.home_of(key, img.id).unwrap_or(key.tramp as usize);
                    writes.extend(plan_from_home(
                        key,
                        &img.entries()[run],
                        home,
                        img.init_released,
                    )?);
                }
            }
        }
        // SAFETY: every slot was validated; lock held.
        unsafe { text::write_batch(&writes)? };
        self.commit(st, main);
        st.initialized = true;
        st.policy = policy;
        Ok(())
    }

    /// Releases the main program's init text (its whole pages become
    /// inaccessible) and stops patching sites inside it. Idempotent.
    /// Returns the released page range.
    ///
    /// Calling a function in init text afterwards faults.
    ///
    /// # Errors
    /// A failed `mprotect`; nothing changes then.
    pub fn free_init(&self) -> Result<(usize, usize)> {
        let mut g = self.lock_op("free_init")?;
        let st = g.as_mut().expect("state");
        let init = (self.main)().init;
        if st.main_init_released {
            return Ok(page_range(init));
        }
        // SAFETY: the init text belongs to this implementation's init
        // section; the documented contract is that nothing in it runs again.
        // Sites inside it are never read or written after this point.
        let range = unsafe { text::release(init.0, init.1)? };
        st.main_init_released = true;
        if let Some(img) = st.images.iter_mut().find(|i| i.id == MAIN_IMAGE) {
            img.init_released = true;
        }
        Ok(range)
    }

    /// The entries of the main program's site table as (site, key, is-init)
    /// triples, read from the table itself. Before `init()` the init flag
    /// is not yet computed and reads false.
    pub fn main_table(&self) -> Vec<(usize, usize, bool)> {
        let _g = self.lock();
        let s = (self.main)().sites;
        table(s)
            .iter()
            .map(|e| (e.site(), e.key(), e.is_init()))
            .collect()
    }

    /// The registered sites of `key` in every image: (site, is-init).
    pub fn sites_of(&self, key: &RawKey) -> Vec<(usize, bool)> {
        let _g = self.lock();
        let mut out = Vec::new();
        // SAFETY: lock held.
        let mut gp = unsafe { key.state() }.groups;
        while !gp.is_null() {
            // SAFETY: groups are live while linked; lock held.
            let grp = unsafe { &*gp };
            out.extend(grp.entries().iter().map(|e| (e.site(), e.is_init())));
            gp = grp.next;
        }
        out
    }

    /// The sites of a loaded module: (site, key, is-init).
    ///
    /// # Errors
    /// [`Error::UnknownModule`].
    pub fn module_sites(&self, id: ModuleId) -> Result<Vec<(usize, usize, bool)>> {
        let g = self.lock();
        let st = g.as_ref().expect("state");
        let img = st.image(id.0).ok_or(Error::UnknownModule { id: id.0 })?;
        Ok(img
            .entries()
            .iter()
            .map(|e| (e.site(), e.key(), e.is_init()))
            .collect())
    }

    /// Which form a registered site holds now, by the registry's account.
    fn classify(&self, st: &State, img: &Image, e: &Entry, s: &mut ModuleStats) {
        match self.flavor {
            Flavor::Indirect => s.indirect += 1,
            Flavor::Trampoline => s.via_trampoline += 1,
            Flavor::InlinePatch if !st.initialized => s.via_trampoline += 1,
            Flavor::InlinePatch => {
                // SAFETY: entries point at keys validated at registration.
                let key = unsafe { &*(e.key() as *const RawKey) };
                let cur = key.func.load(Ordering::Acquire);
                let home = self.home_of(key, img.id).unwrap_or(key.tramp as usize);
                match site_form(e.site(), home, cur) {
                    Form::Call(t) if t == home => s.fallback += 1,
                    _ => s.direct += 1,
                }
            }
        }
    }

    fn home_of(&self, key: &RawKey, image: u64) -> Option<usize> {
        // SAFETY: callers hold the lock.
        let mut gp = unsafe { key.state() }.groups;
        while !gp.is_null() {
            // SAFETY: linked groups are live.
            let grp = unsafe { &*gp };
            if grp.image == image {
                return Some(grp.home);
            }
            gp = grp.next;
        }
        None
    }

    fn image_stats(&self, st: &State, img: &Image) -> ModuleStats {
        let mut s = ModuleStats {
            name: img.name.clone(),
            init_released: img.init_released,
            ..ModuleStats::default()
        };
        s.sites_per_key = key_runs(img.entries())
            .into_iter()
            .map(|(k, r)| (k.addr(), r.len()))
            .collect();
        let groups = s.sites_per_key.len();
        for e in img.entries() {
            s.sites += 1;
            if e.is_init() {
                s.init += 1;
                if img.init_released {
                    continue;
                }
            }
            self.classify(st, img, e, &mut s);
        }
        s.registry_bytes = size_of::<Image>() + img.name.capacity() + groups * size_of::<Group>();
        s
    }

    /// Statistics of the whole registry.
    pub fn stats(&self) -> Stats {
        let g = self.lock();
        let st = g.as_ref().expect("state");
        let mut s = Stats {
            keys: st.keys.len(),
            modules: st.images.iter().filter(|i| i.id != MAIN_IMAGE).count(),
            groups: st.groups,
            registry_bytes: st.images.capacity() * size_of::<Image>()
                + st.images.iter().map(|i| i.name.capacity()).sum::<usize>()
                + st.keys.capacity() * size_of::<&RawKey>()
                + st.relays.capacity() * size_of::<(usize, ExecMemory)>()
                + st.groups * size_of::<Group>(),
            ..Stats::default()
        };
        for img in &st.images {
            let m = self.image_stats(st, img);
            s.sites += m.sites;
            s.direct += m.direct;
            s.fallback += m.fallback;
            s.via_trampoline += m.via_trampoline;
            s.indirect += m.indirect;
            s.init += m.init;
            if img.init_released {
                s.init_released += m.init;
            }
        }
        s
    }

    /// Statistics of one loaded module.
    ///
    /// # Errors
    /// [`Error::UnknownModule`].
    pub fn module_stats(&self, id: ModuleId) -> Result<ModuleStats> {
        let g = self.lock();
        let st = g.as_ref().expect("state");
        let img = st.image(id.0).ok_or(Error::UnknownModule { id: id.0 })?;
        Ok(self.image_stats(st, img))
    }

    /// The loaded modules.
    pub fn modules(&self) -> Vec<ModuleId> {
        let g = self.lock();
        g.as_ref()
            .expect("state")
            .images
            .iter()
            .filter(|i| i.id != MAIN_IMAGE)
            .map(|i| ModuleId(i.id))
            .collect()
    }

    /// Loads a module: checks its whole table, links one group per key it
    /// uses, and (after `init()`) patches its sites to their keys' current
    /// targets in one batch. Then runs `module_init`, if any, without the
    /// registry lock (other threads may update keys meanwhile, and those
    /// updates reach the module's init sites), and releases the module's
    /// init region when it returns `Ok`.
    ///
    /// # Errors
    /// [`Error::ModuleAlreadyLoaded`], a corrupt table, a site that is not
    /// the expected call, a failed system call, or
    /// [`Error::ModuleInitFailed`]. On error the module leaves no trace: no
    /// key lists it and none of its sites stays patched.
    ///
    /// # Safety
    /// * The table, every site, every near stub or key slot it refers to,
    ///   and the init region stay mapped until [`Registry::unload_module`]
    ///   returns (or this call fails).
    /// * The table is not written by anyone else while loaded.
    /// * Threads may run the module's code at any time, but nothing may run
    ///   code in the init region after `module_init` returned.
    pub unsafe fn load_module(
        &self,
        spec: ModuleSpec<'_>,
        module_init: Option<&mut dyn FnMut() -> std::result::Result<(), String>>,
    ) -> Result<ModuleId> {
        let id = {
            let mut g = self.lock_op("load_module")?;
            let st = g.as_mut().expect("state");
            let start = spec.sections.sites.0;
            if start != 0 && st.images.iter().any(|i| i.entries as usize == start) {
                return Err(Error::ModuleAlreadyLoaded {
                    name: spec.name.to_string(),
                    table: start,
                });
            }
            if self.flavor != Flavor::Indirect {
                text::engine_info()?;
            }
            st.next_module += 1;
            let id = st.next_module;
            let prepared = self.prepare(id, spec.name, spec.sections, false, InitPolicy::Track)?;
            if st.initialized && self.flavor == Flavor::InlinePatch {
                let writes = self.plan_prepared(&prepared)?;
                // SAFETY: validated in prepare; lock held.
                unsafe { text::write_batch(&writes)? };
            }
            self.commit(st, prepared);
            id
        };
        if let Some(f) = module_init {
            let r = f();
            let mut g = self.lock();
            let st = g.as_mut().expect("state");
            if let Err(msg) = r {
                self.remove(st, id)?;
                return Err(Error::ModuleInitFailed {
                    name: spec.name.to_string(),
                    message: msg,
                });
            }
            let init = spec.sections.init;
            // SAFETY: the caller promises nothing runs in the init region
            // any more; its sites are skipped from now on.
            if let Err(e) = unsafe { text::release(init.0, init.1) } {
                self.remove(st, id)?;
                return Err(e);
            }
            if let Some(img) = st.images.iter_mut().find(|i| i.id == id) {
                img.init_released = true;
            }
        }
        Ok(ModuleId(id))
    }

    /// Unloads a module: writes its sites back to what they called at load,
    /// unlinks its groups from every key and forgets it. After this returns
    /// no update reads or writes the module's memory.
    ///
    /// # Errors
    /// [`Error::UnknownModule`], or a failed system call (the module stays
    /// loaded then).
    ///
    /// # Safety
    /// The module's memory must still be mapped (unload before unmapping).
    pub unsafe fn unload_module(&self, id: ModuleId) -> Result<()> {
        let mut g = self.lock_op("unload_module")?;
        let st = g.as_mut().expect("state");
        if id.0 == MAIN_IMAGE || st.image(id.0).is_none() {
            return Err(Error::UnknownModule { id: id.0 });
        }
        self.remove(st, id.0)
    }

    /// Restores an image's sites to their home calls, unlinks its groups
    /// and drops it. On error nothing changes.
    fn remove(&self, st: &mut State, id: u64) -> Result<()> {
        let Some(img) = st.image(id) else {
            return Err(Error::UnknownModule { id });
        };
        let mut writes = Vec::new();
        let keys: Vec<&'static RawKey> = key_runs(img.entries()).into_iter().map(|r| r.0).collect();
        for e in img.entries() {
            // SAFETY: validated at load.
            let key: &'static RawKey = unsafe { &*(e.key() as *const RawKey) };
            if self.flavor != Flavor::InlinePatch || (e.is_init() && img.init_released) {
                continue;
            }
            let home = self.home_of(key, id).unwrap_or(key.tramp as usize);
            let site = e.site();
            let now = if st.initialized {
                site_form(site, home, key.func.load(Ordering::Acquire))
            } else {
                Form::Call(home)
            };
            writes.push(plan_site(key, site, now, Form::Call(home))?);
        }
        // SAFETY: the module's own sites, mapped; lock held.
        unsafe { text::write_batch(&writes)? };
        for key in keys {
            // SAFETY: lock held.
            let ks = unsafe { key.state() };
            let mut link: *mut *mut Group = &mut ks.groups;
            // SAFETY: walking and editing the key's list under the lock;
            // removed nodes came from Box::into_raw in `commit`.
            unsafe {
                while !(*link).is_null() {
                    let grp = *link;
                    if (*grp).image == id {
                        *link = (*grp).next;
                        drop(Box::from_raw(grp));
                        st.groups -= 1;
                    } else {
                        link = &mut (*grp).next;
                    }
                }
            }
        }
        st.images.retain(|i| i.id != id);
        Ok(())
    }

    /// Points `key` at `new` (null: none). See [`crate::StaticCall::update`].
    pub(crate) fn update(&self, key: &'static RawKey, new: *const u8) -> Result<()> {
        debug_assert!(std::ptr::eq(key.registry, self));
        let mut g = self.lock_op("update")?;
        let st = g.as_mut().expect("state");
        let new = self.encode_target(new);
        self.adopt(key)?;
        let cur = key.func.load(Ordering::Acquire);
        if cur == new {
            return Ok(());
        }
        if self.flavor != Flavor::Indirect {
            let mut writes = vec![self.plan_trampoline(st, key, cur, new)?];
            if self.flavor == Flavor::InlinePatch && st.initialized {
                // SAFETY: lock held.
                let mut gp = unsafe { key.state() }.groups;
                while !gp.is_null() {
                    // SAFETY: linked groups are live; lock held.
                    let grp = unsafe { &*gp };
                    let released = st.image(grp.image).is_none_or(|i| i.init_released);
                    for e in grp.entries() {
                        if e.is_init() && released {
                            continue;
                        }
                        let site = e.site();
                        writes.push(plan_site(
                            key,
                            site,
                            site_form(site, grp.home, cur),
                            site_form(site, grp.home, new),
                        )?);
                    }
                    gp = grp.next;
                }
            }
            // SAFETY: every slot was validated above and belongs to this
            // key; the registry lock is held, so no other writer touches them.
            unsafe { text::write_batch(&writes)? };
        }
        key.func.store(new, Ordering::Release);
        register_key(st, key);
        Ok(())
    }

    /// Aligns a key's recorded target with its trampoline's initial jump,
    /// once, before the registry first relies on it.
    ///
    /// The key's initial `func` is the default function's address as the
    /// compiler took it, and the trampoline's `jmp` is its address as the
    /// assembler resolved it. With optimisations these can be two copies of
    /// the same function (rustc may instantiate small functions in each
    /// codegen unit that uses them), which would make every later check of
    /// the trampoline fail. The trampoline is checked (signature and
    /// back-reference) and its target adopted. Lock held.
    fn adopt(&self, key: &RawKey) -> Result<()> {
        // SAFETY: lock held.
        let ks = unsafe { key.state() };
        if ks.adopted || self.flavor == Flavor::Indirect {
            return Ok(());
        }
        let tramp = key.tramp as usize;
        let (found, slot) = read_trampoline(key);
        let form = Form::decode(tramp, slot);
        let target = match form {
            Some(Form::Jmp(t)) => t as *mut u8,
            Some(Form::Ret) => std::ptr::null_mut(),
            _ => std::ptr::dangling_mut(),
        };
        if !trampoline_ok(key, &found) || target == std::ptr::dangling_mut() {
            return Err(bad_trampoline(key, &found, "a jmp or ret"));
        }
        key.func.store(target, Ordering::Release);
        ks.adopted = true;
        Ok(())
    }

    fn plan_trampoline(
        &self,
        st: &mut State,
        key: &RawKey,
        cur: *mut u8,
        new: *mut u8,
    ) -> Result<SlotWrite> {
        let tramp = key.tramp as usize;
        let (found, slot) = read_trampoline(key);
        let old_form = tramp_form(st, tramp, cur, false)?;
        if !trampoline_ok(key, &found) || old_form.encode(tramp) != Some(slot) {
            return Err(bad_trampoline(key, &found, &describe(old_form)));
        }
        let form = tramp_form(st, tramp, new, true)?;
        Ok(SlotWrite {
            addr: tramp,
            old: slot,
            new: form.encode(tramp).ok_or(Error::OutOfRange {
                from: tramp,
                to: new as usize,
            })?,
            form,
            place: Place::Trampoline,
            key: key.addr(),
        })
    }

    /// Checks and sorts an image's table and finds each key's run and home.
    /// Writes nothing to code and links nothing.
    fn prepare(
        &self,
        id: u64,
        name: &str,
        sections: ImageSections,
        init_released: bool,
        policy: InitPolicy,
    ) -> Result<Prepared> {
        let entries = table(sections.sites);
        let maps = maps::mappings().map_err(|e| Error::Syscall {
            op: "read(/proc/self/maps)",
            addr: 0,
            errno: e.raw_os_error().unwrap_or(0),
        })?;
        for e in entries.iter() {
            self.check_entry(&maps, e)?;
        }
        site::sort_and_classify(entries, sections.init);
        if policy == InitPolicy::Strict {
            let refused: Vec<(usize, usize)> = entries
                .iter()
                .filter(|e| e.is_init())
                .map(|e| (e.site(), e.key()))
                .collect();
            if !refused.is_empty() {
                return Err(Error::InitSitesRefused { sites: refused });
            }
        }
        let mut runs = Vec::new();
        for (key, run) in key_runs(entries) {
            self.adopt(key)?;
            let mut home = None;
            for e in &entries[run.clone()] {
                if e.is_init() && init_released {
                    continue;
                }
                let site = e.site();
                // SAFETY: check_entry found the slot in executable memory.
                let found = unsafe { text::read_slot(site) };
                let target = match Form::decode(site, found) {
                    Some(Form::Call(t)) if home.is_none_or(|h| h == t) => Some(t),
                    _ => None,
                };
                match target {
                    // (A home already checked for this run needs no second look.)
                    Some(t) if home == Some(t) || self.is_home(&maps, key, t) => home = Some(t),
                    _ => {
                        return Err(Error::UnexpectedBytes {
                            place: Place::Site,
                            addr: site,
                            key: key.addr(),
                            found: found.to_vec(),
                            expected: match (self.flavor, home) {
                                (_, Some(h)) => describe(Form::Call(h)),
                                (Flavor::Indirect, None) => describe(Form::Call(
                                    self.indirect_thunk.map_or(0, |f| f as usize),
                                )),
                                (_, None) => format!(
                                    "{} or a call to a near stub of this key",
                                    describe(Form::Call(key.tramp as usize))
                                ),
                            },
                        });
                    }
                }
            }
            runs.push((
                key,
                run.start,
                run.len(),
                home.unwrap_or(key.tramp as usize),
            ));
        }
        Ok(Prepared {
            id,
            name: name.to_string(),
            entries,
            init_released,
            runs,
        })
    }

    /// Whether a site of `key` may call `t` before it is patched: the key's
    /// trampoline, a near stub for the key, or (indirect) a retpoline thunk.
    fn is_home(&self, maps: &[maps::Mapping], key: &RawKey, t: usize) -> bool {
        if self.flavor == Flavor::Indirect {
            let Some(thunk) = self.indirect_thunk.map(|f| f as usize) else {
                return false;
            };
            if t == thunk {
                return true;
            }
            // A module's own copy of the thunk: the same bytes.
            const N: usize = 16;
            if !maps::covered(maps, t, t + N, |m| m.exec && m.read) {
                return false;
            }
            // SAFETY: both ranges are mapped executable code.
            let (a, b) = unsafe {
                (
                    std::ptr::read_volatile(t as *const [u8; N]),
                    std::ptr::read_volatile(thunk as *const [u8; N]),
                )
            };
            return a == b;
        }
        if t == key.tramp as usize {
            return true;
        }
        if !maps::covered(maps, t, t + STUB_LEN, |m| m.exec && m.read) {
            return false;
        }
        // SAFETY: mapped executable code.
        let b = unsafe { std::ptr::read_volatile(t as *const [u8; STUB_LEN]) };
        if b[..3] != STUB_LOAD || b[7..] != STUB_JMP {
            return false;
        }
        let d = i32::from_le_bytes(b[3..7].try_into().expect("4 bytes"));
        let slot = (t + 7).wrapping_add_signed(d as isize);
        slot.is_multiple_of(8)
            && maps::covered(maps, slot, slot + 8, |m| m.read)
            // SAFETY: mapped and aligned.
            && unsafe { std::ptr::read_volatile(slot as *const usize) } == key.addr()
    }

    /// The writes that bring a prepared image's sites to their keys'
    /// current targets.
    fn plan_prepared(&self, p: &Prepared) -> Result<Vec<SlotWrite>> {
        let mut writes = Vec::new();
        for &(key, first, len, home) in &p.runs {
            writes.extend(plan_from_home(
                key,
                &p.entries[first..first + len],
                home,
                p.init_released,
            )?);
        }
        Ok(writes)
    }

    /// Links a prepared image: one group per key run, and the image record.
    fn commit(&self, st: &mut State, p: Prepared) {
        for &(key, first, len, home) in &p.runs {
            // SAFETY: lock held.
            let ks = unsafe { key.state() };
            let grp = Box::into_raw(Box::new(Group {
                next: ks.groups,
                image: p.id,
                first: &mut p.entries[first],
                len,
                home,
            }));
            ks.groups = grp;
            st.groups += 1;
            register_key(st, key);
        }
        st.images.push(Image {
            id: p.id,
            name: p.name,
            entries: p.entries.as_mut_ptr(),
            len: p.entries.len(),
            init_released: p.init_released,
        });
    }

    fn check_entry(&self, maps: &[maps::Mapping], e: &Entry) -> Result<()> {
        let site = e.site();
        let bad = |key, reason| Error::CorruptEntry {
            entry: e as *const Entry as usize,
            site,
            key,
            reason,
        };
        if !maps::covered(maps, site, site + SLOT_LEN, |m| m.exec && m.read) {
            return Err(bad(e.key_field(), "the site is not in executable memory"));
        }
        if e.flags() & KEYREF != 0 {
            let slot = e.key_field();
            if !slot.is_multiple_of(8) || !maps::covered(maps, slot, slot + 8, |m| m.read) {
                return Err(bad(slot, "the key slot is not mapped and aligned"));
            }
        }
        let key = e.key();
        if !key.is_multiple_of(align_of::<RawKey>())
            || !maps::covered(maps, key, key + size_of::<RawKey>(), |m| m.read)
        {
            return Err(bad(key, "the key is not a mapped, aligned key"));
        }
        // SAFETY: mapped, readable and aligned; we only compare the
        // registry pointer, whatever the bytes are.
        let reg = unsafe { std::ptr::read_volatile(&(*(key as *const RawKey)).registry) };
        if !std::ptr::eq(reg, self) {
            return Err(bad(key, "no key of this implementation is there"));
        }
        Ok(())
    }
}

/// The trampoline's bytes, and its slot.
fn read_trampoline(key: &RawKey) -> ([u8; TRAMPOLINE_LEN], [u8; SLOT_LEN]) {
    // SAFETY: the trampoline is part of the key's image's text, mapped for
    // as long as the key exists.
    let found = unsafe { std::ptr::read_volatile(key.tramp as *const [u8; TRAMPOLINE_LEN]) };
    let slot = found[..SLOT_LEN].try_into().expect("5 bytes");
    (found, slot)
}

/// The error for a trampoline that is not what we wrote; `slot` says what
/// its 5-byte slot should hold.
fn bad_trampoline(key: &RawKey, found: &[u8; TRAMPOLINE_LEN], slot: &str) -> Error {
    Error::UnexpectedBytes {
        place: Place::Trampoline,
        addr: key.tramp as usize,
        key: key.addr(),
        found: found.to_vec(),
        expected: format!(
            "{slot}, then signature 0f b9 cc and an offset to key {:#x}",
            key.addr()
        ),
    }
}

/// Whether a trampoline carries the signature and points back at `key`.
fn trampoline_ok(key: &RawKey, found: &[u8; TRAMPOLINE_LEN]) -> bool {
    let back = i32::from_le_bytes(found[8..12].try_into().expect("4 bytes"));
    let back_key = (key.tramp as usize + 8).wrapping_add_signed(back as isize);
    found[SLOT_LEN..SLOT_LEN + 3] == TRAMPOLINE_SIGNATURE && back_key == key.addr()
}

fn page_range(r: (usize, usize)) -> (usize, usize) {
    let lo = r.0.div_ceil(4096) * 4096;
    let hi = r.1 & !4095;
    if hi <= lo { (lo, lo) } else { (lo, hi) }
}

fn table(sites: (usize, usize)) -> &'static mut [Entry] {
    let (start, end) = sites;
    if start == 0 || end <= start {
        return &mut [];
    }
    // SAFETY: the bounds of a writable array of 8-byte entries (a retained
    // link section, or a module's table); only the registry (under its
    // lock) writes it.
    unsafe {
        std::slice::from_raw_parts_mut(start as *mut Entry, (end - start) / size_of::<Entry>())
    }
}

/// Splits a table sorted by key into runs of entries of one key.
///
/// The entries' keys must have been validated (`check_entry`).
fn key_runs(entries: &[Entry]) -> Vec<(&'static RawKey, std::ops::Range<usize>)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let k = entries[i].key();
        let mut j = i + 1;
        while j < entries.len() && entries[j].key() == k {
            j += 1;
        }
        // SAFETY: validated keys (see above) are statics of the program.
        runs.push((unsafe { &*(k as *const RawKey) }, i..j));
        i = j;
    }
    runs
}

/// Plans a run of sites of `key` that still call their `home` to the form
/// for the key's current target (skipping released init sites).
fn plan_from_home(
    key: &RawKey,
    run: &[Entry],
    home: usize,
    init_released: bool,
) -> Result<Vec<SlotWrite>> {
    let cur = key.func.load(Ordering::Acquire);
    run.iter()
        .filter(|e| !(e.is_init() && init_released))
        .map(|e| {
            let site = e.site();
            plan_site(key, site, Form::Call(home), site_form(site, home, cur))
        })
        .collect()
}

fn register_key(st: &mut State, key: &'static RawKey) {
    // SAFETY: called with the registry lock held.
    let ks = unsafe { key.state() };
    if !ks.registered {
        ks.registered = true;
        st.keys.push(key);
    }
}

/// The form a call site holds for target `t` (null: none), given its home
/// (the in-range path it falls back to).
fn site_form(site: usize, home: usize, t: *mut u8) -> Form {
    if t.is_null() {
        Form::Nop
    } else if crate::insn::in_range(site, t as usize) {
        Form::Call(t as usize)
    } else {
        Form::Call(home)
    }
}

/// Checks that `site` holds `old`, and plans its rewrite to `new`.
fn plan_site(key: &RawKey, site: usize, old: Form, new: Form) -> Result<SlotWrite> {
    // SAFETY: registered sites are in mapped, executable memory.
    let found = unsafe { text::read_slot(site) };
    if old.encode(site) != Some(found) {
        return Err(Error::UnexpectedBytes {
            place: Place::Site,
            addr: site,
            key: key.addr(),
            found: found.to_vec(),
            expected: describe(old),
        });
    }
    Ok(SlotWrite {
        addr: site,
        old: found,
        new: new
            .encode(site)
            .expect("site forms are in range by construction"),
        form: new,
        place: Place::Site,
        key: key.addr(),
    })
}

fn tramp_form(st: &mut State, tramp: usize, t: *mut u8, create: bool) -> Result<Form> {
    let t = t as usize;
    if t == 0 {
        return Ok(Form::Ret);
    }
    if crate::insn::in_range(tramp, t) {
        return Ok(Form::Jmp(t));
    }
    if let Some((_, m)) = st
        .relays
        .iter()
        .find(|(rt, m)| *rt == t && crate::insn::in_range(tramp, m.addr()))
    {
        return Ok(Form::Jmp(m.addr()));
    }
    if !create {
        return Err(Error::OutOfRange { from: tramp, to: t });
    }
    // jmp [rip+0]; .quad target
    let mut code = vec![0xff, 0x25, 0, 0, 0, 0];
    code.extend_from_slice(&(t as u64).to_le_bytes());
    let m = ExecMemory::new(Placement::Near(tramp), &code).map_err(|e| match e {
        // Name the real target: it is the one out of reach.
        Error::NoRoomNear { .. } => Error::OutOfRange { from: tramp, to: t },
        e => e,
    })?;
    let at = m.addr();
    st.relays.push((t, m));
    Ok(Form::Jmp(at))
}

fn describe(f: Form) -> String {
    match f {
        Form::Call(t) => format!("call {t:#x}"),
        Form::Jmp(t) => format!("jmp {t:#x}"),
        Form::Nop => "the 5-byte NOP".into(),
        Form::Ret => "ret".into(),
    }
}

/// The shared "do nothing" target: the indirect implementation stores it
/// for a none target so its sites need no null check.
#[unsafe(naked)]
pub extern "C" fn ret_stub() {
    core::arch::naked_asm!("ret")
}

fn ret_stub_addr() -> usize {
    ret_stub as *const () as usize
}
