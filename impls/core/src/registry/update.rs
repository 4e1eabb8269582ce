//! Updating a key: its target encoded as stored, its trampoline adopted,
//! and the checked writes of its trampoline and sites.

use std::sync::atomic::Ordering;

use super::Registry;
use super::intake::Prepared;
use super::plan::{
    bad_trampoline, plan_from_home, plan_site, plan_trampoline, read_trampoline, ret_stub,
    ret_stub_addr, ret0_stub, site_form, trampoline_ok,
};
use super::state::State;
use crate::error::Result;
use crate::insn::Form;
use crate::key::RawKey;
use crate::text::{self, SlotWrite};

impl Registry {
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
    pub(super) fn encode_target(&self, p: *const u8) -> *mut u8 {
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
    pub(super) fn plan_update(
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
    pub(super) fn adopt(&self, _locked: &State, key: &RawKey) -> Result<()> {
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
    pub(super) fn plan_prepared(&self, p: &Prepared) -> Result<Vec<SlotWrite>> {
        let mut writes = Vec::new();
        for r in &p.ranges {
            writes.extend(plan_from_home(
                r.key,
                &p.table.entries()[r.range.clone()],
                r.home,
                p.released.is_some(),
            )?);
        }
        Ok(writes)
    }
}
