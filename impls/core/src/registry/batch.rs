//! Many keys, one protocol round: [`Registry::batch`].
//!
//! Switching a set of hooks (enable tracing on 100 keys) one `update` at a
//! time pays the breakpoint protocol's three core synchronisations per key.
//! A batch collects the keys and their new targets, then, under the
//! registry lock, checks and plans every slot of every key (nothing is
//! written while any check fails) and writes them all with one
//! [`crate::text`] batch: three synchronisations in total. Either every key
//! has its new target afterwards, or (an error) every key has its old one.

use std::sync::atomic::Ordering;

use super::Registry;
use crate::error::{Error, Result};
use crate::key::{RawKey, ReturnsZero, Signature, StaticCall};

/// The updates of one batch, collected by the closure given to
/// [`Registry::batch`] (and the implementation crates' `batch`). Nothing is
/// written until the closure returns `Ok`.
#[derive(Debug)]
pub struct Batch<'r> {
    registry: &'r Registry,
    /// (key, new target as the key stores it: null for none).
    entries: Vec<(&'static RawKey, *const u8)>,
}

impl Batch<'_> {
    /// Adds one update. A key listed twice is found when the closure
    /// returns (one sort, not a search per key), and refused then.
    fn push(&mut self, key: &'static RawKey, new: *const u8) -> Result<()> {
        if !std::ptr::eq(key.registry, self.registry) {
            return Err(Error::BatchForeignKey { key: key.addr() });
        }
        self.entries.push((key, new));
        Ok(())
    }

    /// The first key (by address) listed more than once.
    fn duplicate(&self) -> Option<usize> {
        let mut keys: Vec<usize> = self.entries.iter().map(|(k, _)| k.addr()).collect();
        keys.sort_unstable();
        keys.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
    }

    /// Points `key` at `f` when the batch is written.
    ///
    /// # Errors
    /// [`Error::BatchForeignKey`] for a key of another implementation (a
    /// key listed twice makes the whole batch fail with
    /// [`Error::BatchDuplicateKey`] when the closure returns).
    pub fn update<F: Signature>(&mut self, key: &'static StaticCall<F>, f: F) -> Result<()> {
        self.push(key.raw_static(), f.addr())
    }

    /// Points a key whose function returns nothing at `f`, or at nothing
    /// (`None`), when the batch is written.
    ///
    /// # Errors
    /// As for [`Batch::update`].
    pub fn update_cond<F: Signature<Ret = ()>>(
        &mut self,
        key: &'static StaticCall<F>,
        f: Option<F>,
    ) -> Result<()> {
        self.push(key.raw_static(), f.map_or(std::ptr::null(), |f| f.addr()))
    }

    /// Points `key` at RET0 when the batch is written.
    ///
    /// # Errors
    /// As for [`Batch::update`].
    pub fn update_ret0<F: Signature>(&mut self, key: &'static StaticCall<F>) -> Result<()>
    where
        F::Ret: ReturnsZero,
    {
        self.push(key.raw_static(), super::ret0_stub as *const u8)
    }

    /// How many keys the batch holds so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the batch holds no key yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Registry {
    /// Updates many keys of this implementation at once: `f` lists the
    /// updates ([`Batch::update`], [`Batch::update_cond`],
    /// [`Batch::update_ret0`]); then every slot of every key is checked and
    /// planned, and all are written in one round of the patching protocol
    /// (three core synchronisations in total, however many keys). A key
    /// already at its new target is left alone.
    ///
    /// # Errors
    /// An error returned by `f` (a key twice, a key of another
    /// implementation, or the closure's own), or any error an
    /// [`update`](crate::StaticCall::update) of one of the keys would
    /// return. All or nothing: when an error is returned, every key keeps
    /// its old target and nothing was written (a system call that fails
    /// part way is rolled back as for one key).
    pub fn batch(&self, f: impl FnOnce(&mut Batch<'_>) -> Result<()>) -> Result<()> {
        let mut b = Batch {
            registry: self,
            entries: Vec::with_capacity(16),
        };
        f(&mut b)?;
        if let Some(key) = b.duplicate() {
            return Err(Error::BatchDuplicateKey { key });
        }
        let mut g = self.lock_op("batch")?;
        let st = g.state_mut();
        let mut targets = Vec::with_capacity(b.entries.len());
        let mut writes = Vec::new();
        for &(key, new) in &b.entries {
            let new = self.encode_target(new);
            self.adopt(st, key)?;
            let cur = key.func.load(Ordering::Acquire);
            if cur == new {
                continue;
            }
            writes.extend(self.plan_update(st, key, cur, new)?);
            targets.push((key, new));
        }
        // SAFETY: every slot was validated above and belongs to one of the
        // batch's keys (each once); the registry lock is held.
        unsafe { crate::text::write_batch(&writes)? };
        for (key, new) in targets {
            key.func.store(new, Ordering::Release);
            st.register(key);
        }
        Ok(())
    }
}
