//! The registry: which sites belong to which key, and the update paths.
//!
//! One [`Registry`] exists per implementation crate (a `static`). It owns,
//! behind one mutex ([`State`], reachable only through a [`Locked`] token):
//!
//! * the *images* whose site tables it has taken in (the main program at
//!   `init()`, modules whenever they are loaded), each with its checked,
//!   sorted table and its phase ([`image`]);
//! * per key, one [`Group`] per image with sites of the key: the image's
//!   contiguous run of the key's entries and the home its sites fall back
//!   to. No per-site node is ever allocated: memory is O(keys × images).
//!
//! The parts: [`intake`] checks and sorts tables, [`plan`] turns targets
//! into checked slot writes, [`image`] is a module's life, [`stats`]
//! counts, and [`design`] describes what an implementation writes. Code is
//! written only through [`crate::text`], with the lock held.

mod batch;
mod design;
mod image;
mod intake;
mod plan;
mod stats;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::gate;
use crate::insn::Form;
use crate::key::RawKey;
use crate::text::{self, SlotWrite};

pub use batch::Batch;
pub use design::{CALL_RAX, Design, LOAD_RAX, LOAD_RAX_RAX, NoneTarget, SiteShape};
pub use plan::{STUB_LEN, near_stub, ret_stub, ret0_stub};
pub use stats::{ModuleStats, Stats};

use image::{Image, Phase};
use intake::Prepared;
use plan::{
    Relays, bad_trampoline, plan_from_home, plan_site, plan_trampoline, read_trampoline,
    ret_stub_addr, site_form, trampoline_ok,
};

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
    /// Only the init text's whole pages are released after its init
    /// function returns, and only sites in those pages count as init sites
    /// (sites on a partial page are patched like any other, for good).
    pub sections: ImageSections,
}

/// One call site of a key, as the registry sees it (see
/// [`crate::StaticCall::sites`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteInfo {
    /// Address of the site's 5-byte slot.
    pub addr: usize,
    /// The module it belongs to (`None`: the main program).
    pub module: Option<ModuleId>,
    /// It lies in its image's init text (whole pages).
    pub init: bool,
    /// Its init text was released: it is no longer read or written (and
    /// no longer executable).
    pub released: bool,
    /// What its slot holds now, decoded by the design
    /// ([`Design::decode_site`]; `None` when released, or when the bytes
    /// are no form of the design).
    pub form: Option<Form>,
    /// What an unpatched site of this key calls here: the trampoline, a
    /// near stub, or the retpoline thunk; for a design whose sites call
    /// through the key, the key (or a module's key slot).
    pub home: usize,
}

/// One image's run of one key's sites.
#[derive(Debug)]
pub struct Group {
    image: u64,
    run: Range<usize>,
    /// What the image's sites of this key called when it was registered:
    /// the key's trampoline, a near stub that reaches it, or (indirect) a
    /// retpoline thunk. Sites return to it when the target is out of reach.
    home: usize,
}

/// What the registry knows about one key.
#[derive(Debug)]
struct KeyRecord {
    key: &'static RawKey,
    groups: Vec<Group>,
}

const MAIN_IMAGE: u64 = 0;

/// Hashes a key's address (already unique and well spread in its middle
/// bits) with one multiplication: the map is looked up on every update,
/// where SipHash alone would double the indirect implementation's cost.
#[derive(Debug, Default, Clone, Copy)]
struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64 ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type KeyMap = HashMap<usize, KeyRecord, std::hash::BuildHasherDefault<AddrHasher>>;

/// Everything the registry's mutex guards.
#[derive(Debug, Default)]
struct State {
    initialized: bool,
    policy: InitPolicy,
    /// The main program's init pages, once released (possibly before
    /// `init()`).
    main_released: Option<(usize, usize)>,
    images: Vec<Image>,
    /// Keys the registry knows, by address.
    keys: KeyMap,
    relays: Relays,
    next_module: u64,
}

// SAFETY: the raw pointers inside (site tables) point at memory that stays
// mapped while registered; State is only accessed under the registry's
// mutex.
unsafe impl Send for State {}

impl State {
    fn image(&self, id: u64) -> Option<&Image> {
        self.images.iter().find(|i| i.id == id)
    }

    fn image_mut(&mut self, id: u64) -> Option<&mut Image> {
        self.images.iter_mut().find(|i| i.id == id)
    }

    /// The groups of `key` (none for a key the registry does not know).
    fn groups(&self, key: usize) -> &[Group] {
        self.keys.get(&key).map_or(&[], |r| &r.groups)
    }

    /// Every registered site of `key`: its image, its group (the home),
    /// and its checked entry.
    fn sites_of(&self, key: usize) -> impl Iterator<Item = (&Image, &Group, &intake::Checked)> {
        self.groups(key).iter().flat_map(move |grp| {
            let img = self.image(grp.image);
            img.into_iter().flat_map(move |img| {
                img.table.entries()[grp.run.clone()]
                    .iter()
                    .map(move |e| (img, grp, e))
            })
        })
    }

    fn home_of(&self, key: usize, image: u64) -> Option<usize> {
        self.groups(key)
            .iter()
            .find(|g| g.image == image)
            .map(|g| g.home)
    }

    /// Lists `key` (once).
    fn register(&mut self, key: &'static RawKey) -> &mut KeyRecord {
        self.keys.entry(key.addr()).or_insert_with(|| KeyRecord {
            key,
            groups: Vec::new(),
        })
    }

    fn group_count(&self) -> usize {
        self.keys.values().map(|r| r.groups.len()).sum()
    }

    /// Links a prepared image: one group per key run, and the image record.
    fn commit(&mut self, id: u64, name: &str, p: Prepared, phase: Phase) {
        for run in p.runs {
            self.register(run.key).groups.push(Group {
                image: id,
                run: run.range,
                home: run.home,
            });
        }
        self.images
            .push(Image::new(id, name.to_string(), p.table, phase));
        text::mappings_changed();
    }
}

/// Proof that the registry lock is held (inside the process-wide gate,
/// `crate::gate`): the only way to reach [`State`]. The state lock is
/// released before the gate.
struct Locked<'a> {
    g: MutexGuard<'a, Option<State>>,
    _entered: gate::Entered,
}

impl Locked<'_> {
    fn state(&self) -> &State {
        self.g.as_ref().expect("state is created with the lock")
    }

    fn state_mut(&mut self) -> &mut State {
        self.g.as_mut().expect("state is created with the lock")
    }
}

/// The registry of one implementation.
#[derive(Debug)]
pub struct Registry {
    design: &'static Design,
    main: fn() -> ImageSections,
    indirect_thunk: Option<unsafe extern "C" fn()>,
    /// The `ret` stub of this registry's copy of the crate: what a key
    /// defined as none holds, for a design that stores one.
    own_ret: extern "C" fn(),
    state: Mutex<Option<State>>,
}

impl Registry {
    /// A registry for `design` whose main image's sections `main` reports.
    /// For a design whose sites call a thunk ([`SiteShape::CallThunk`]),
    /// `indirect_thunk` is that thunk (the retpoline of the indirect
    /// implementation).
    ///
    /// Each implementation crate makes its one registry with this; a
    /// program never needs another. It is `unsafe` because the registry
    /// trusts `main` (as [`Registry::load_module`] trusts a module's
    /// sections): safe methods such as [`Registry::main_table`] read the
    /// table it reports without checking that it is mapped.
    ///
    /// ```compile_fail,E0133
    /// use static_call_core::{Design, ImageSections, Registry};
    /// fn bogus() -> ImageSections {
    ///     ImageSections { sites: (8, 16), init: (0, 0) }
    /// }
    /// static R: Registry = Registry::new(&Design::INLINE_PATCH, bogus, None);
    /// fn main() { let _ = R.main_table(); } // would read address 8
    /// ```
    ///
    /// # Safety
    /// Every call of `main` returns the same sections, and they are this
    /// registry's: `sites` is empty or the mapped, writable, 4-aligned site
    /// table of `design` (whole 8-byte entries, as the implementation's
    /// macros emit them) of an image that stays mapped for the life of the
    /// registry, and `init` is empty or that image's init text.
    /// `indirect_thunk` is the thunk the design's sites call (`None`
    /// unless its sites are [`SiteShape::CallThunk`]).
    pub const unsafe fn new(
        design: &'static Design,
        main: fn() -> ImageSections,
        indirect_thunk: Option<unsafe extern "C" fn()>,
    ) -> Registry {
        Registry {
            design,
            main,
            indirect_thunk,
            own_ret: ret_stub,
            state: Mutex::new(None),
        }
    }

    /// The description of the design this registry serves.
    pub fn design(&self) -> &'static Design {
        self.design
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

    /// The thunk every unpatched site calls, for a design whose sites call
    /// one ([`SiteShape::CallThunk`]: the indirect implementation's
    /// retpoline): what a generated module's sites must call (or a copy of
    /// its bytes).
    pub fn thunk(&self) -> Option<usize> {
        self.indirect_thunk.map(|f| f as usize)
    }

    /// What an unpatched site of `key` calls: the key's trampoline, the
    /// design's thunk, or (a design whose sites call through the key,
    /// [`SiteShape::LoadCallRax`]) the key itself, whose first field is
    /// the function pointer. `None` only for a design that promises a
    /// trampoline or a thunk and has none.
    pub fn unpatched_target(&self, key: &RawKey) -> Option<usize> {
        match self.design.site {
            SiteShape::CallTrampoline => key.trampoline(),
            SiteShape::CallThunk => self.thunk(),
            SiteShape::LoadCallRax => Some(key.addr()),
        }
    }

    /// The bytes of an unpatched call site of `key` for code at `at`, and
    /// the offset of its label (the address to record in a site table) in
    /// them, as the design describes it ([`Design::unpatched_code`]):
    /// `call <trampoline>`; `mov rax, [rip + key]; call <retpoline
    /// thunk>`; or `mov rax, [rip + key]; call rax`. What generated code
    /// (a JIT) emits where it calls a key, before it registers the site
    /// with a module's table. `None` when the trampoline, the thunk or the
    /// key is beyond `rel32` reach of `at` (a near stub, [`near_stub`], is
    /// the way out for the trampoline).
    pub fn site_code(&self, key: &RawKey, at: usize) -> Option<(Vec<u8>, usize)> {
        self.design
            .unpatched_code(at, key.addr(), self.unpatched_target(key)?)
    }

    /// The main image's section boundaries.
    pub fn main_sections(&self) -> ImageSections {
        (self.main)()
    }

    /// Whether `init()` has completed.
    pub fn is_initialized(&self) -> bool {
        self.lock().state().initialized
    }

    /// A stored target as a target: `None` for none. A none is null, or
    /// for a design that stores the `ret` stub, the canonical stub (what
    /// every copy's update stores) or the `ret` stub of this registry's
    /// copy (what a key defined as none holds until its first update):
    /// so a key reads the same from every copy of the crate. Never claims
    /// the engine (`text/shared.rs`).
    pub(crate) fn decode_target(&self, p: *mut u8) -> Option<usize> {
        let p = p as usize;
        if p == 0
            || (self.design.none_is_ret_stub()
                && (p == crate::text::shared::ret_known() || p == self.own_ret as usize))
        {
            None
        } else {
            Some(p)
        }
    }

    /// A target as stored: the canonical `ret` stub for none (where the
    /// design stores one) and the canonical RET0 function for any copy's
    /// RET0, so every copy of the crate reads it alike.
    fn encode_target(&self, p: *const u8) -> *mut u8 {
        let own_ret0 = ret0_stub as *const () as usize;
        let own_ret = ret_stub as *const () as usize;
        if self.design.none_is_ret_stub()
            && (p.is_null() || p as usize == own_ret || p as usize == self.own_ret as usize)
        {
            ret_stub_addr() as *mut u8
        } else if p as usize == own_ret0 {
            crate::registry::plan::ret0_addr() as *mut u8
        } else {
            p as *mut u8
        }
    }

    /// Takes in the main program's site table and patches every site (of
    /// the program and of modules loaded so far) to its key's current
    /// target, in one batch. Idempotent: later calls return `Ok` and do
    /// nothing (whatever their policy). After `free_init()` the released
    /// init sites are skipped.
    ///
    /// # Errors
    /// A corrupt entry, a site that does not hold the expected call, init
    /// sites under [`InitPolicy::Strict`], or a failed system call. On
    /// error nothing was patched and the registry is not initialised.
    pub fn init(&self, policy: InitPolicy) -> Result<()> {
        let mut g = self.lock_op("init")?;
        let st = g.state_mut();
        if st.initialized {
            return Ok(());
        }
        if self.design.trampoline {
            text::engine_info()?;
        }
        let released = st.main_released;
        let main = self.prepare(st, (self.main)(), released, policy)?;
        let mut writes = Vec::new();
        if self.design.patches_sites {
            writes.extend(self.plan_prepared(&main)?);
            for img in &st.images {
                // Loaded before init: their sites still call their homes.
                for (key, run) in img.table.key_runs() {
                    let home = st.home_of(key.addr(), img.id).unwrap_or(key.tramp as usize);
                    writes.extend(plan_from_home(
                        key,
                        &img.table.entries()[run],
                        home,
                        img.released().is_some(),
                    )?);
                }
            }
        }
        // SAFETY: every slot was validated; lock held.
        unsafe { text::write_batch(&writes)? };
        let phase = match released {
            Some((lo, hi)) => Phase::InitReleased(lo, hi),
            None => Phase::Live,
        };
        st.commit(MAIN_IMAGE, "main program", main, phase);
        st.initialized = true;
        st.policy = policy;
        Ok(())
    }

    /// Releases the main program's init text (its whole pages become
    /// inaccessible) and stops patching sites inside it. Idempotent.
    /// Returns the released page range. Allowed before `init()`, which
    /// then skips the released sites.
    ///
    /// Calling a function in init text afterwards faults.
    ///
    /// # Errors
    /// A failed `mprotect`; nothing changes then.
    pub fn free_init(&self) -> Result<(usize, usize)> {
        let mut g = self.lock_op("free_init")?;
        let st = g.state_mut();
        if let Some(r) = st.main_released {
            return Ok(r);
        }
        let init = (self.main)().init;
        // SAFETY: the init text belongs to this implementation's init
        // section; the documented contract is that nothing in it runs again.
        // Sites inside it are never read or written after this point.
        let (lo, hi) = unsafe { text::release(init.0, init.1)? };
        st.main_released = Some((lo, hi));
        if let Some(img) = st.image_mut(MAIN_IMAGE) {
            img.advance(Phase::InitReleased(lo, hi));
        }
        Ok((lo, hi))
    }

    /// The entries of the main program's site table as (site, key, is-init)
    /// triples, read from the table itself. Before `init()` the init flag
    /// is not yet computed and reads false.
    pub fn main_table(&self) -> Vec<(usize, usize, bool)> {
        let _g = self.lock();
        intake::raw_triples((self.main)().sites)
    }

    /// The registered sites of `key` in every image: (site, is-init).
    pub fn sites_of(&self, key: &RawKey) -> Vec<(usize, bool)> {
        let g = self.lock();
        g.state()
            .sites_of(key.addr())
            .map(|(_, _, e)| (e.site(), e.is_init()))
            .collect()
    }

    /// Every registered site of `key`, in every image, with what its slot
    /// holds now.
    pub fn key_sites(&self, key: &RawKey) -> Vec<SiteInfo> {
        let g = self.lock();
        g.state()
            .sites_of(key.addr())
            .map(|(img, grp, e)| {
                let released = img.skips(e);
                SiteInfo {
                    addr: e.site(),
                    module: (img.id != MAIN_IMAGE).then_some(ModuleId(img.id)),
                    init: e.is_init(),
                    released,
                    form: (!released)
                        .then(|| {
                            self.design
                                .decode_site(e.site(), &e.read_site(self.design), e.keyref())
                        })
                        .flatten(),
                    home: grp.home,
                }
            })
            .collect()
    }

    /// The sites of a loaded module: (site, key, is-init).
    ///
    /// # Errors
    /// [`Error::UnknownModule`].
    pub fn module_sites(&self, id: ModuleId) -> Result<Vec<(usize, usize, bool)>> {
        let g = self.lock();
        let img = g
            .state()
            .image(id.0)
            .filter(|i| i.id != MAIN_IMAGE)
            .ok_or(Error::UnknownModule { id: id.0 })?;
        Ok(img
            .table
            .entries()
            .iter()
            .map(|e| (e.site(), e.key().addr(), e.is_init()))
            .collect())
    }

    /// The loaded modules (not those still running their init function).
    pub fn modules(&self) -> Vec<ModuleId> {
        let g = self.lock();
        g.state()
            .images
            .iter()
            .filter(|i| i.id != MAIN_IMAGE && i.phase() != Phase::Loading)
            .map(|i| ModuleId(i.id))
            .collect()
    }

    /// Loads a module: checks its whole table, links one group per key it
    /// uses, and (after `init()`) patches its sites to their keys' current
    /// targets in one batch. Then runs `module_init`, if any, without the
    /// registry lock (other threads may update keys meanwhile, and those
    /// updates reach the module's init sites; the module cannot be unloaded
    /// meanwhile), and releases the module's init region's whole pages when
    /// it returns `Ok`.
    ///
    /// # Errors
    /// [`Error::ModuleAlreadyLoaded`], a corrupt table, a site that is not
    /// the expected call, a failed system call, or
    /// [`Error::ModuleInitFailed`]. On error the module leaves no trace: no
    /// key lists it and none of its sites stays patched — except
    /// [`Error::ModuleLeaked`]: init (or releasing its init text) failed
    /// and its sites could then not be written back, so it stays
    /// registered under the handle the error names, and its memory must
    /// stay mapped.
    ///
    /// # Panics
    /// When `module_init` panics: the module is removed first, as for an
    /// init that fails (if writing its sites back fails too, it stays
    /// registered and `Live`, as [`Error::ModuleLeaked`] describes; its
    /// handle is then listed by [`Registry::modules`]), and the panic
    /// continues.
    ///
    /// # Safety
    /// * The table, every site, every near stub or key slot it refers to,
    ///   and the init region stay mapped until [`Registry::unload_module`]
    ///   returns `Ok` (or this call fails with another error than
    ///   [`Error::ModuleLeaked`]).
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
            let st = g.state_mut();
            let start = spec.sections.sites.0;
            if start != 0 && st.images.iter().any(|i| i.table.addr() == start) {
                return Err(Error::ModuleAlreadyLoaded {
                    name: spec.name.to_string(),
                    table: start,
                });
            }
            if self.design.trampoline {
                text::engine_info()?;
            }
            let prepared = self.prepare(st, spec.sections, None, InitPolicy::Track)?;
            if st.initialized && self.design.patches_sites {
                let writes = self.plan_prepared(&prepared)?;
                // SAFETY: validated in prepare; lock held.
                unsafe { text::write_batch(&writes)? };
            }
            st.next_module += 1;
            let id = st.next_module;
            let phase = if module_init.is_some() {
                Phase::Loading
            } else {
                Phase::Live
            };
            st.commit(id, spec.name, prepared, phase);
            id
        };
        let Some(f) = module_init else {
            return Ok(ModuleId(id));
        };
        // A panicking init function is a failed one: the module is removed
        // (never left `Loading`, with its sites linked and patched), then
        // the panic goes on to the caller.
        let r = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(panic) => {
                let mut g = self.lock();
                let st = g.state_mut();
                if self.remove(st, id).is_err() {
                    // Leaked, as after a failed init: it stays registered
                    // (and unloadable), its memory must stay mapped.
                    if let Some(img) = st.image_mut(id) {
                        img.advance(Phase::Live);
                    }
                }
                drop(g);
                std::panic::resume_unwind(panic);
            }
        };
        let mut g = self.lock();
        let st = g.state_mut();
        let leaked = |st: &mut State, cause: Error| {
            if let Some(img) = st.image_mut(id) {
                img.advance(Phase::Live);
            }
            Error::ModuleLeaked {
                name: spec.name.to_string(),
                id,
                cause: Box::new(cause),
            }
        };
        if let Err(message) = r {
            if let Err(e) = self.remove(st, id) {
                return Err(leaked(st, e));
            }
            return Err(Error::ModuleInitFailed {
                name: spec.name.to_string(),
                message,
            });
        }
        let init = spec.sections.init;
        // SAFETY: the caller promises nothing runs in the init region any
        // more; its sites are skipped from now on.
        match unsafe { text::release(init.0, init.1) } {
            Ok((lo, hi)) => {
                let img = st.image_mut(id).expect("a loading module stays registered");
                img.advance(Phase::Live);
                img.advance(Phase::InitReleased(lo, hi));
                Ok(ModuleId(id))
            }
            Err(e) => match self.remove(st, id) {
                Ok(()) => Err(e),
                Err(e2) => Err(leaked(st, e2)),
            },
        }
    }

    /// Unloads a module: writes its sites back to what they called at load,
    /// unlinks its groups from every key and forgets it. After this returns
    /// `Ok` no update reads or writes the module's memory.
    ///
    /// # Errors
    /// [`Error::UnknownModule`], [`Error::ModuleLoading`] while its init
    /// function runs, or a site that is not what the registry wrote or a
    /// failed system call (the module stays loaded then, and its memory
    /// must stay mapped).
    ///
    /// # Safety
    /// The module's memory must still be mapped (unload before unmapping).
    pub unsafe fn unload_module(&self, id: ModuleId) -> Result<()> {
        let mut g = self.lock_op("unload_module")?;
        let st = g.state_mut();
        match st.image(id.0) {
            Some(img) if img.id != MAIN_IMAGE => {
                if img.phase() == Phase::Loading {
                    return Err(Error::ModuleLoading { id: id.0 });
                }
            }
            _ => return Err(Error::UnknownModule { id: id.0 }),
        }
        self.remove(st, id.0)
    }

    /// Restores an image's sites to their home calls, unlinks its groups
    /// and drops it (`→ Removed`). On error nothing changes.
    fn remove(&self, st: &mut State, id: u64) -> Result<()> {
        let Some(img) = st.image(id) else {
            return Err(Error::UnknownModule { id });
        };
        let runs = img.table.key_runs();
        let mut writes = Vec::new();
        if self.design.patches_sites {
            for (key, run) in &runs {
                let home = st.home_of(key.addr(), id).unwrap_or(key.tramp as usize);
                let cur = key.func.load(Ordering::Acquire);
                for e in &img.table.entries()[run.clone()] {
                    if img.skips(e) {
                        continue;
                    }
                    let site = e.site();
                    let now = if st.initialized {
                        site_form(site, home, cur)
                    } else {
                        Form::Call(home)
                    };
                    writes.push(plan_site(key, site, now, Form::Call(home))?);
                }
            }
        }
        // SAFETY: the module's own sites, mapped; lock held.
        unsafe { text::write_batch(&writes)? };
        // The trap handler no longer needs to know these slots (it would
        // otherwise keep every slot address ever published).
        // (Every site of the image: sites of released init text were
        // published while they were patched.) A failure leaves them known,
        // which costs memory, not correctness.
        if self.design.patches_sites {
            let addrs: Vec<usize> = img.table.entries().iter().map(|e| e.site()).collect();
            let _ = text::forget_slots(&addrs);
        }
        for (key, _) in runs {
            if let Some(rec) = st.keys.get_mut(&key.addr()) {
                rec.groups.retain(|g| g.image != id);
            }
        }
        st.images.retain(|i| i.id != id);
        text::mappings_changed();
        Ok(())
    }

    /// Points `key` at `new` (null: none). See [`crate::StaticCall::update`].
    pub(crate) fn update(&self, key: &'static RawKey, new: *const u8) -> Result<()> {
        let r = self.update_locked(key, new);
        // After the lock is released: under valgrind, the callers' turn.
        text::valgrind::let_others_run();
        r
    }

    fn update_locked(&self, key: &'static RawKey, new: *const u8) -> Result<()> {
        debug_assert!(std::ptr::eq(key.registry, self));
        let mut g = self.lock_op("update")?;
        let st = g.state_mut();
        let new = self.encode_target(new);
        self.adopt(st, key)?;
        let cur = key.func.load(Ordering::Acquire);
        if cur == new {
            return Ok(());
        }
        let writes = self.plan_update(st, key, cur, new)?;
        // SAFETY: every slot was validated by `plan_update` and belongs to
        // this key; the registry lock is held, so no other writer touches
        // them.
        unsafe { text::write_batch(&writes)? };
        key.func.store(new, Ordering::Release);
        st.register(key);
        Ok(())
    }

    /// The checked writes that take `key` from `cur` to `new`: its
    /// trampoline and (inline-patch, after `init()`) every live site. None
    /// for an implementation that writes no code.
    fn plan_update(
        &self,
        st: &mut State,
        key: &'static RawKey,
        cur: *mut u8,
        new: *mut u8,
    ) -> Result<Vec<SlotWrite>> {
        let mut writes = Vec::new();
        if self.design.trampoline {
            writes.push(plan_trampoline(&mut st.relays, key, cur, new)?);
            if self.design.patches_sites && st.initialized {
                for (_, grp, e) in st.sites_of(key.addr()).filter(|(img, _, e)| !img.skips(e)) {
                    let site = e.site();
                    writes.push(plan_site(
                        key,
                        site,
                        site_form(site, grp.home, cur),
                        site_form(site, grp.home, new),
                    )?);
                }
            }
        }
        Ok(writes)
    }

    /// Aligns a key's recorded target with its trampoline's initial jump,
    /// once, before the registry first relies on it. `_locked` is the
    /// proof that the registry lock is held.
    ///
    /// The key's initial `func` is the default function's address as the
    /// compiler took it, and the trampoline's `jmp` is its address as the
    /// assembler resolved it. With optimisations these can be two copies of
    /// the same function (rustc may instantiate small functions in each
    /// codegen unit that uses them), which would make every later check of
    /// the trampoline fail. The trampoline is checked (signature and
    /// back-reference) and its target adopted.
    fn adopt(&self, _locked: &State, key: &RawKey) -> Result<()> {
        if !self.design.trampoline || key.adopted.load(Ordering::Acquire) != 0 {
            return Ok(());
        }
        let tramp = key.tramp as usize;
        let (found, slot) = read_trampoline(key);
        let target = match Form::decode(tramp, slot) {
            Some(Form::Jmp(t)) => Some(t as *mut u8),
            Some(Form::Ret) => Some(std::ptr::null_mut()),
            _ => None,
        };
        let (true, Some(target)) = (trampoline_ok(key, &found), target) else {
            return Err(bad_trampoline(key, &found, "a jmp or ret"));
        };
        key.func.store(target, Ordering::Release);
        key.adopted.store(1, Ordering::Release);
        Ok(())
    }

    /// The writes that bring a prepared image's sites to their keys'
    /// current targets.
    fn plan_prepared(&self, p: &Prepared) -> Result<Vec<SlotWrite>> {
        let mut writes = Vec::new();
        for run in &p.runs {
            writes.extend(plan_from_home(
                run.key,
                &p.table.entries()[run.range.clone()],
                run.home,
                p.released.is_some(),
            )?);
        }
        Ok(writes)
    }
}
