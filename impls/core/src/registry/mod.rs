//! The registry: which sites belong to which key, and the update paths.
//!
//! One [`Registry`] exists per implementation crate (a `static`). It owns,
//! behind one mutex ([`State`], reachable only through a [`Locked`] token):
//!
//! * the *images* whose site tables it has taken in (the main program at
//!   `init()`, modules whenever they are loaded), each with its checked,
//!   sorted table and where it is in its life ([`image`]);
//! * per key, one [`Group`] per image with sites of the key: the image's
//!   contiguous range of the key's entries and the home its sites fall back
//!   to. No per-site node is ever allocated: memory is O(keys × images).
//!
//! The parts: this file holds the public types, `init()`, `free_init()`
//! and the queries; [`state`] is what the lock guards; [`update`] updates
//! keys and [`modules`] loads and unloads modules; [`intake`] checks and
//! sorts tables, [`plan`] turns targets into checked slot writes, [`image`]
//! is a module's life, [`stats`] counts, [`batch`] gathers the keys of one
//! batch, and [`design`] describes what an implementation writes. Code is
//! written only through [`crate::text`], with the lock held.

mod batch;
mod design;
mod image;
mod intake;
mod modules;
mod plan;
mod state;
mod stats;
mod update;

use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::gate;
use crate::insn::Form;
use crate::key::RawKey;
use crate::text;

pub use batch::Batch;
pub use design::{CALL_RAX, Design, LOAD_RAX, LOAD_RAX_RAX, NoneTarget, SiteShape};
pub use plan::{STUB_LEN, near_stub, ret_stub, ret0_stub};
pub use state::Group;
pub use stats::{ModuleStats, Stats};

use image::Life;
use plan::plan_from_home;
use state::{Locked, MAIN_IMAGE, State};

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
                for (key, range) in img.table.key_ranges() {
                    let home = st.home_of(key.addr(), img.id).unwrap_or(key.tramp as usize);
                    writes.extend(plan_from_home(
                        key,
                        &img.table.entries()[range],
                        home,
                        img.released().is_some(),
                    )?);
                }
            }
        }
        // SAFETY: every slot was validated; lock held.
        unsafe { text::write_batch(&writes)? };
        let life = match released {
            Some((lo, hi)) => Life::InitReleased(lo, hi),
            None => Life::Live,
        };
        st.commit(MAIN_IMAGE, "main program", main, life);
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
            img.advance(Life::InitReleased(lo, hi));
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
            .filter(|i| i.id != MAIN_IMAGE && i.life() != Life::Loading)
            .map(|i| ModuleId(i.id))
            .collect()
    }
}
