//! Statistics: what the registry holds, and which form each site has by
//! its account.

use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::insn::Form;

use super::image::Image;
use super::plan::site_form;
use super::state::{Group, KeyRecord, MAIN_IMAGE, State};
use super::{ModuleId, Registry};

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
    /// Sites that call through the key's pointer (a design without a
    /// trampoline: the retpoline thunk of the indirect one, or a plain
    /// `call rax`).
    pub indirect: usize,
    /// Sites in init text (counted in the totals above too).
    pub init: usize,
    /// Init-text sites no longer patched because init text was released.
    pub init_released: usize,
    /// Loaded modules (images other than the main program).
    pub modules: usize,
    /// Site groups, one per (key, image) with sites.
    pub groups: usize,
    /// Heap bytes the registry holds (images, key list, groups, relays).
    pub registry_bytes: usize,
    /// Bytes of relay code (jumps near a trampoline to targets beyond its
    /// reach), included in `registry_bytes`.
    pub relay_bytes: usize,
}

/// Statistics of one module.
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
    /// Sites that call through the key's pointer (a design without a
    /// trampoline: the retpoline thunk of the indirect one, or a plain
    /// `call rax`).
    pub indirect: usize,
    /// Sites in the module's init region (its whole pages: the part that
    /// is released).
    pub init: usize,
    /// The released init pages `(start, end)` once the module's init
    /// region was released (an empty range when it holds no whole page);
    /// `None` before.
    pub init_pages: Option<(usize, usize)>,
    /// Bytes of registry memory held for this module (image record,
    /// name, one group per key).
    pub registry_bytes: usize,
}

impl Registry {
    /// Which form a registered site holds now, by the registry's account.
    fn classify(&self, st: &State, img: &Image, site: usize, key: usize, s: &mut ModuleStats) {
        let f = self.design;
        if !f.patches_sites {
            if f.trampoline {
                s.via_trampoline += 1;
            } else {
                s.indirect += 1;
            }
            return;
        }
        if !st.initialized {
            s.via_trampoline += 1;
            return;
        }
        let Some(rec) = st.keys.get(&key) else {
            return;
        };
        let cur = rec.key.func.load(Ordering::Acquire);
        let home = st.home_of(key, img.id).unwrap_or(rec.key.tramp as usize);
        match site_form(site, home, cur) {
            Form::Call(t) if t == home => s.fallback += 1,
            _ => s.direct += 1,
        }
    }

    fn image_stats(&self, st: &State, img: &Image) -> ModuleStats {
        let mut s = ModuleStats {
            name: img.name.clone(),
            init_pages: img.released(),
            ..ModuleStats::default()
        };
        let ranges = img.table.key_ranges();
        s.sites_per_key = ranges.iter().map(|(k, r)| (k.addr(), r.len())).collect();
        for e in img.table.entries() {
            s.sites += 1;
            if e.is_init() {
                s.init += 1;
            }
            if !img.skips(e) {
                self.classify(st, img, e.site(), e.key().addr(), &mut s);
            }
        }
        s.registry_bytes =
            size_of::<Image>() + img.name.capacity() + ranges.len() * size_of::<Group>();
        s
    }

    /// Statistics of the whole registry.
    pub fn stats(&self) -> Stats {
        let g = self.lock();
        let st = g.state();
        let mut s = Stats {
            keys: st.keys.len(),
            modules: st.images.iter().filter(|i| i.id != MAIN_IMAGE).count(),
            groups: st.group_count(),
            registry_bytes: st.images.capacity() * size_of::<Image>()
                + st.images.iter().map(|i| i.name.capacity()).sum::<usize>()
                + st.keys.capacity() * size_of::<(usize, KeyRecord)>()
                + st.keys
                    .values()
                    .map(|r| r.groups.capacity() * size_of::<Group>())
                    .sum::<usize>()
                + st.relays.bytes(),
            relay_bytes: st.relays.bytes(),
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
            if m.init_pages.is_some() {
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
        let st = g.state();
        let img = st
            .image(id.0)
            .filter(|i| i.id != MAIN_IMAGE)
            .ok_or(Error::UnknownModule { id: id.0 })?;
        Ok(self.image_stats(st, img))
    }
}
