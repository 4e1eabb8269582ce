//! Which `0xcc` bytes between the slots of a run are the file's own: the
//! compiler's padding between functions, as the mapped file holds it.
//!
//! A phase writes a run in one piece only when every `0xcc` in it is a
//! slot's, because a `0xcc` that is no slot's may be a breakpoint another
//! writer (a debugger, a uprobe) is about to remove, and writing it back
//! would revive it (`text/runs.rs`). Code between functions is padded with
//! `0xcc`, though, so a run that bridges two functions nearly always holds
//! some, and the run fell back to one write per slot and phase: a batch of
//! 100 keys cost as much as 100 single updates.
//!
//! A `0xcc` that the mapped file holds at the same place is different: the
//! byte's own value is `0xcc`, so a debugger that set a breakpoint there
//! saved `0xcc` as the original and restores `0xcc`; writing `0xcc` back
//! can never revive anything. Such bytes are found once per batch, before
//! any thread is parked (this allocates and reads files): the mapping that
//! holds the run (looked up once, see [`forget`]), its file (opened by
//! path and checked to be the same device and inode the mapping names, so
//! a file replaced on disk is never read), and the file's bytes at the
//! run's offset. A `0xcc` found later
//! where the file does not hold one stays foreign. Runs in anonymous
//! memory, in a file that is gone, or that cross mappings get no padding
//! and are cut as before.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Mutex;

use super::SlotWrite;
use super::runs::{Run, foreign_int3s};
use crate::maps::Mapping;

/// A mapping looked up before: its range, and its file when the file
/// could be opened and is the one mapped (none: anonymous memory, or a
/// file that is gone or replaced).
#[derive(Debug)]
struct Known {
    start: usize,
    end: usize,
    /// The file and the file offset of `start`.
    file: Option<(File, u64)>,
}

/// Mappings looked up so far. Reading `/proc/self/maps` costs 25 to 35 µs
/// here, more than the rest of a batch of 100 keys, so each mapping that
/// holds a run is looked up once; the registry calls [`forget`] whenever
/// an image comes or goes, the only time a range of ours can be mapped
/// anew.
static KNOWN: Mutex<Vec<Known>> = Mutex::new(Vec::new());

/// Forgets every mapping looked up: an image was added or removed.
pub(crate) fn forget() {
    KNOWN.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Fills each run's [`Run::padding`]: the addresses, outside its slots, of
/// the `0xcc` bytes it holds now that its mapped file holds too.
///
/// # Safety
/// The runs come from `runs::plan` over `batch` (mapped code).
pub(super) unsafe fn find(batch: &[SlotWrite], runs: &mut [Run]) {
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    for r in runs.iter_mut() {
        if r.len <= r.slots.len() * crate::insn::SLOT_LEN {
            continue;
        }
        // SAFETY: the run is mapped code (the caller's contract).
        let now = unsafe { std::slice::from_raw_parts(r.start as *const u8, r.len) };
        let foreign = foreign_int3s(&batch[r.slots.clone()], r.start, now);
        if foreign.is_empty() {
            continue;
        }
        let end = r.start + r.len;
        let k = match known
            .iter()
            .position(|m| m.start <= r.start && end <= m.end)
        {
            Some(k) => k,
            None => {
                let maps = crate::maps::mappings().unwrap_or_default();
                let i = maps.partition_point(|m| m.end <= r.start);
                let Some(m) = maps.get(i).filter(|m| m.start <= r.start && end <= m.end) else {
                    // No one mapping holds the run: nothing to remember.
                    continue;
                };
                known.push(Known {
                    start: m.start,
                    end: m.end,
                    file: same_file(m).map(|f| (f, m.offset)),
                });
                known.len() - 1
            }
        };
        let Some((file, offset)) = &known[k].file else {
            continue;
        };
        let mut bytes = vec![0u8; r.len];
        if file
            .read_exact_at(&mut bytes, offset + (r.start - known[k].start) as u64)
            .is_err()
        {
            continue;
        }
        r.padding = foreign
            .into_iter()
            .filter(|&a| bytes[a - r.start] == crate::insn::INT3)
            .collect();
    }
}

/// The mapping's file opened by path, if it is a file and still the
/// device and inode the mapping names (a path that now names another
/// file, or a deleted one's ` (deleted)` name, gives none).
fn same_file(m: &Mapping) -> Option<File> {
    if m.inode == 0 || !m.name.starts_with('/') {
        return None;
    }
    let f = File::open(&m.name).ok()?;
    let meta = f.metadata().ok()?;
    let dev = meta.dev();
    let same = meta.ino() == m.inode
        && (rustix::fs::major(dev), rustix::fs::minor(dev)) == (m.dev.0, m.dev.1);
    same.then_some(f)
}
