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
pub(crate) enum Phase {
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
    phase: Phase,
}

impl Image {
    pub(crate) fn new(id: u64, name: String, table: Table, phase: Phase) -> Image {
        Image {
            id,
            name,
            table,
            phase,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// The released init pages, if released.
    pub(crate) fn released(&self) -> Option<(usize, usize)> {
        match self.phase {
            Phase::InitReleased(lo, hi) => Some((lo, hi)),
            Phase::Loading | Phase::Live => None,
        }
    }

    /// Whether updates skip this entry: an init site of released init text.
    pub(crate) fn skips(&self, e: &Checked) -> bool {
        e.is_init() && self.released().is_some()
    }

    /// Moves to `to`, which must follow the current phase.
    pub(crate) fn advance(&mut self, to: Phase) {
        let ok = matches!(
            (self.phase, to),
            (Phase::Loading, Phase::Live) | (Phase::Live, Phase::InitReleased(..))
        );
        assert!(
            ok,
            "registry bug: image {} cannot go from {:?} to {to:?}",
            self.id, self.phase
        );
        self.phase = to;
    }
}
