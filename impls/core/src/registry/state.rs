//! Everything the registry's mutex guards ([`State`]), reachable only
//! through the [`Locked`] token, and the per-key records in it.

use std::ops::Range;
use std::sync::MutexGuard;

use super::InitPolicy;
use super::image::{Image, Life};
use super::intake::{self, Prepared};
use super::plan::Relays;
use crate::gate;
use crate::key::RawKey;
use crate::text;

/// One image's sites of one key: their entry range in the image's table.
#[derive(Debug)]
pub struct Group {
    pub(super) image: u64,
    pub(super) range: Range<usize>,
    /// What the image's sites of this key called when it was registered:
    /// the key's trampoline, a near stub that reaches it, or (indirect) a
    /// retpoline thunk. Sites return to it when the target is out of reach.
    pub(super) home: usize,
}

/// What the registry knows about one key.
#[derive(Debug)]
pub(super) struct KeyRecord {
    pub(super) key: &'static RawKey,
    pub(super) groups: Vec<Group>,
}

pub(super) const MAIN_IMAGE: u64 = 0;

/// The keys the registry knows, by address. The map is looked up on every
/// update, where SipHash alone would double the indirect implementation's
/// cost: rustc-hash's `FxHash` (one multiplication per word) fits keys
/// that are addresses, unique and chosen by no adversary.
type KeyMap = rustc_hash::FxHashMap<usize, KeyRecord>;

/// Everything the registry's mutex guards.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) initialized: bool,
    pub(super) policy: InitPolicy,
    /// The main program's init pages, once released (possibly before
    /// `init()`).
    pub(super) main_released: Option<(usize, usize)>,
    pub(super) images: Vec<Image>,
    /// Keys the registry knows, by address.
    pub(super) keys: KeyMap,
    pub(super) relays: Relays,
    pub(super) next_module: u64,
}

// SAFETY: the raw pointers inside (site tables) point at memory that stays
// mapped while registered; State is only accessed under the registry's
// mutex.
unsafe impl Send for State {}

impl State {
    pub(super) fn image(&self, id: u64) -> Option<&Image> {
        self.images.iter().find(|i| i.id == id)
    }

    pub(super) fn image_mut(&mut self, id: u64) -> Option<&mut Image> {
        self.images.iter_mut().find(|i| i.id == id)
    }

    /// The groups of `key` (none for a key the registry does not know).
    pub(super) fn groups(&self, key: usize) -> &[Group] {
        self.keys.get(&key).map_or(&[], |r| &r.groups)
    }

    /// Every registered site of `key`: its image, its group (the home),
    /// and its checked entry.
    pub(super) fn sites_of(
        &self,
        key: usize,
    ) -> impl Iterator<Item = (&Image, &Group, &intake::Checked)> {
        self.groups(key).iter().flat_map(move |grp| {
            let img = self.image(grp.image);
            img.into_iter().flat_map(move |img| {
                img.table.entries()[grp.range.clone()]
                    .iter()
                    .map(move |e| (img, grp, e))
            })
        })
    }

    pub(super) fn home_of(&self, key: usize, image: u64) -> Option<usize> {
        self.groups(key)
            .iter()
            .find(|g| g.image == image)
            .map(|g| g.home)
    }

    /// Lists `key` (once).
    pub(super) fn register(&mut self, key: &'static RawKey) -> &mut KeyRecord {
        self.keys.entry(key.addr()).or_insert_with(|| KeyRecord {
            key,
            groups: Vec::new(),
        })
    }

    pub(super) fn group_count(&self) -> usize {
        self.keys.values().map(|r| r.groups.len()).sum()
    }

    /// Links a prepared image: one group per key's entry range, and the image record.
    pub(super) fn commit(&mut self, id: u64, name: &str, p: Prepared, life: Life) {
        for r in p.ranges {
            self.register(r.key).groups.push(Group {
                image: id,
                range: r.range,
                home: r.home,
            });
        }
        self.images
            .push(Image::new(id, name.to_string(), p.table, life));
        text::mappings_changed();
    }
}

/// Proof that the registry lock is held (inside the process-wide gate,
/// `crate::gate`): the only way to reach [`State`]. The state lock is
/// released before the gate.
pub(super) struct Locked<'a> {
    pub(super) g: MutexGuard<'a, Option<State>>,
    pub(super) _entered: gate::Entered,
}

impl Locked<'_> {
    pub(super) fn state(&self) -> &State {
        self.g.as_ref().expect("state is created with the lock")
    }

    pub(super) fn state_mut(&mut self) -> &mut State {
        self.g.as_mut().expect("state is created with the lock")
    }
}
