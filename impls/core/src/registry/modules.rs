//! Loading and unloading modules: a module's sites linked, patched and
//! written back, its init function run without the lock.

use std::sync::atomic::Ordering;

use super::image::Life;
use super::plan::{plan_site, site_form};
use super::state::{MAIN_IMAGE, State};
use super::{InitPolicy, ModuleId, ModuleSpec, Registry};
use crate::error::{Error, Result};
use crate::insn::Form;
use crate::text;

impl Registry {
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
            let life = if module_init.is_some() {
                Life::Loading
            } else {
                Life::Live
            };
            st.commit(id, spec.name, prepared, life);
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
                        img.advance(Life::Live);
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
                img.advance(Life::Live);
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
                img.advance(Life::Live);
                img.advance(Life::InitReleased(lo, hi));
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
                if img.life() == Life::Loading {
                    return Err(Error::ModuleLoading { id: id.0 });
                }
            }
            _ => return Err(Error::UnknownModule { id: id.0 }),
        }
        self.remove(st, id.0)
    }

    /// Restores an image's sites to their home calls, unlinks its groups
    /// and drops it (`→ Removed`). On error nothing changes.
    pub(super) fn remove(&self, st: &mut State, id: u64) -> Result<()> {
        let Some(img) = st.image(id) else {
            return Err(Error::UnknownModule { id });
        };
        let ranges = img.table.key_ranges();
        let mut writes = Vec::new();
        if self.design.patches_sites {
            for (key, range) in &ranges {
                let home = st.home_of(key.addr(), id).unwrap_or(key.tramp as usize);
                let cur = key.func.load(Ordering::Acquire);
                for e in &img.table.entries()[range.clone()] {
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
        for (key, _) in ranges {
            if let Some(rec) = st.keys.get_mut(&key.addr()) {
                rec.groups.retain(|g| g.image != id);
            }
        }
        st.images.retain(|i| i.id != id);
        text::mappings_changed();
        Ok(())
    }
}
