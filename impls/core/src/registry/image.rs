//! Images (the main program and modules) and the life of a module.
//!
//! A module moves through `Loading → Live → InitReleased → Removed`:
//!
//! * `Loading`: its table is linked (updates reach its sites) and its init
//!   function is running without the registry lock. It is not listed by
//!   `modules()` and cannot be unloaded (`Error::ModuleLoading`).
//! * `Live`: init returned (or there was none).
//! * `InitReleased`: its init pages are inaccessible; its init sites are
//!   neither read nor written any more.
//! * `Removed`: unlinked and forgotten; the record is dropped.
//!
//! Every transition goes through [`Image::advance`], which refuses any
//! other order (a bug in the registry, so it panics rather than going on
//! with a wrong state).

use super::intake::{Checked, Table};

/// Where an image is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    /// Its init function is running.
    Loading,
    /// Registered and followed.
    Live,
    /// Its init text's whole pages `(lo, hi)` are released.
    InitReleased(usize, usize),
}

/// One registered image.
#[derive(Debug)]
pub(crate) struct Image {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) table: Table,
    life: Life,
}

impl Image {
    pub(crate) fn new(id: u64, name: String, table: Table, life: Life) -> Image {
        Image {
            id,
            name,
            table,
            life,
        }
    }

    pub(crate) fn life(&self) -> Life {
        self.life
    }

    /// The released init pages, if released.
    pub(crate) fn released(&self) -> Option<(usize, usize)> {
        match self.life {
            Life::InitReleased(lo, hi) => Some((lo, hi)),
            Life::Loading | Life::Live => None,
        }
    }

    /// Whether updates skip this entry: an init site of released init text.
    pub(crate) fn skips(&self, e: &Checked) -> bool {
        e.is_init() && self.released().is_some()
    }

    /// Moves to `to`, which must follow the current stage of its life.
    pub(crate) fn advance(&mut self, to: Life) {
        let ok = matches!(
            (self.life, to),
            (Life::Loading, Life::Live) | (Life::Live, Life::InitReleased(..))
        );
        assert!(
            ok,
            "registry bug: image {} cannot go from {:?} to {to:?}",
            self.id, self.life
        );
        self.life = to;
    }
}
