//! Intake: checking, sorting and classifying a site table before the
//! registry trusts any of it.
//!
//! A table comes in as raw memory ([`crate::site::Entry`]s whose fields may
//! point anywhere). [`Registry::prepare`] checks every entry against the
//! process's mappings, sorts the table by key, marks init sites, finds
//! each key's entry range and *home* (what its unpatched sites call), and only then
//! hands out a [`Table`] of [`Checked`] entries, whose keys can be used as
//! `&'static RawKey` without further checks. It writes no code and links
//! nothing: a failure leaves the registry as it was.

use std::ops::Range;

use crate::error::{Error, Place, Result};
use crate::insn::{Form, SLOT_LEN};
use crate::key::{REGISTRY_OFFSET, RawKey};
use crate::maps::{self, Mapping};
use crate::site::{self, Entry, KEYREF};
use crate::text;

use super::design::{Design, SiteShape};
use super::plan::{STUB_JMP, STUB_LEN, STUB_LOAD, describe};
use super::{ImageSections, InitPolicy, Registry, State};

/// A site-table entry the registry has checked: its site is a mapped
/// 5-byte slot of executable memory (or lies in released init text), its
/// key slot (with `KEYREF`) is mapped and aligned, and its key is a key of
/// this registry.
#[repr(transparent)]
#[derive(Debug)]
pub(crate) struct Checked(Entry);

impl Checked {
    /// Address of the call site.
    pub(crate) fn site(&self) -> usize {
        self.0.site()
    }

    /// Whether the site lies in the image's releasable init text.
    pub(crate) fn is_init(&self) -> bool {
        self.0.is_init()
    }

    /// Whether the site reaches its key through a module's key slot.
    pub(crate) fn keyref(&self) -> bool {
        self.0.flags() & KEYREF != 0
    }

    /// The site's bytes, as many as `design` says a site has.
    pub(crate) fn read_site(&self, design: &Design) -> Vec<u8> {
        let n = design.site_len(self.keyref());
        (0..n)
            // SAFETY: intake found `site..site + n` in executable memory;
            // a registered image stays mapped (callers skip released init
            // text).
            .map(|i| unsafe { std::ptr::read_volatile((self.site() + i) as *const u8) })
            .collect()
    }

    /// The entry's key.
    pub(crate) fn key(&self) -> &'static RawKey {
        // SAFETY: intake checked that the key slot (if any) is mapped and
        // aligned, and that the key's memory is mapped, aligned and holds
        // this registry's address in its `registry` word; every other field
        // of a `RawKey` is valid for any bits. Keys are statics of the
        // program, and a module's slots stay mapped while it is registered.
        unsafe { &*(self.0.key() as *const RawKey) }
    }
}

/// An image's site table after intake: sorted by key, init sites marked,
/// every entry checked. Only [`Registry::prepare`] makes one.
#[derive(Debug)]
pub(crate) struct Table {
    ptr: *const Checked,
    len: usize,
}

impl Table {
    /// Address of the first entry (0 for an empty table).
    pub(crate) fn addr(&self) -> usize {
        if self.len == 0 { 0 } else { self.ptr as usize }
    }

    /// The checked entries.
    pub(crate) fn entries(&self) -> &[Checked] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr..ptr+len` is the image's table, checked at intake;
        // it stays mapped while the image is registered (the contract of
        // `load_module`; the main program's never goes away), and only the
        // registry writes it, under its lock, before a `Table` exists.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The entry range of each key, in table order.
    pub(crate) fn key_ranges(&self) -> Vec<(&'static RawKey, Range<usize>)> {
        let e = self.entries();
        let mut ranges = Vec::new();
        let mut i = 0;
        while i < e.len() {
            let k = e[i].key();
            let mut j = i + 1;
            while j < e.len() && std::ptr::eq(e[j].key(), k) {
                j += 1;
            }
            ranges.push((k, i..j));
            i = j;
        }
        ranges
    }
}

/// One key's entry range in a prepared table (its entries are contiguous
/// once the table is sorted), and the home its sites call.
#[derive(Debug)]
pub(crate) struct EntryRange {
    pub(crate) key: &'static RawKey,
    pub(crate) range: Range<usize>,
    pub(crate) home: usize,
}

/// A table through intake, not yet linked into the registry.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) table: Table,
    /// The init pages already released (main program only: `free_init`
    /// before `init`); their sites are not read.
    pub(crate) released: Option<(usize, usize)>,
    pub(crate) ranges: Vec<EntryRange>,
}

/// The raw entries of a table range (`(0, 0)` or an empty range: none).
fn raw_entries(sites: (usize, usize)) -> (*mut Entry, usize) {
    let (start, end) = sites;
    if start == 0 || end <= start {
        return (std::ptr::null_mut(), 0);
    }
    (start as *mut Entry, (end - start) / size_of::<Entry>())
}

/// The main program's raw table as (site, key field, is-init) triples. For
/// the program's own entries (which never use `KEYREF`) the key field is
/// the key.
pub(crate) fn raw_triples(sites: (usize, usize)) -> Vec<(usize, usize, bool)> {
    let (ptr, len) = raw_entries(sites);
    if len == 0 {
        return Vec::new();
    }
    // SAFETY: the bounds of the implementation's own retained section in
    // the main program, mapped for the life of the process; read only.
    let e = unsafe { std::slice::from_raw_parts(ptr, len) };
    e.iter()
        .map(|e| (e.site(), e.key_field(), e.is_init()))
        .collect()
}

impl Registry {
    /// Checks and sorts an image's table and finds each key's entry range and home.
    /// Writes nothing to code and links nothing.
    pub(super) fn prepare(
        &self,
        st: &State,
        sections: ImageSections,
        released: Option<(usize, usize)>,
        policy: InitPolicy,
    ) -> Result<Prepared> {
        let (ptr, len) = raw_entries(sections.sites);
        let maps = maps::mappings().map_err(|e| Error::Syscall {
            op: "read(/proc/self/maps)",
            addr: 0,
            errno: e.raw_os_error().unwrap_or(0),
        })?;
        let entries: &mut [Entry] = if len == 0 {
            &mut []
        } else {
            // SAFETY: the caller's table (the program's retained section or
            // a module's, which `load_module`'s contract keeps mapped and
            // unwritten by others); only the registry writes it, under its
            // lock, and no `Table` of it exists yet.
            unsafe { std::slice::from_raw_parts_mut(ptr, len) }
        };
        for e in entries.iter() {
            self.check_entry(&maps, e, released)?;
        }
        let init_pages = text::whole_pages(sections.init.0, sections.init.1);
        if policy == InitPolicy::Strict {
            let (lo, hi) = sections.init;
            let refused: Vec<(usize, usize)> = entries
                .iter()
                .filter(|e| e.site() < hi && e.site() + SLOT_LEN > lo)
                // SAFETY: checked above.
                .map(|e| (e.site(), unsafe { e.key() }))
                .collect();
            if !refused.is_empty() {
                return Err(Error::InitSitesRefused { sites: refused });
            }
        }
        // SAFETY: every entry was checked above.
        unsafe { site::sort_and_classify(entries, init_pages) };
        let table = Table {
            ptr: entries.as_ptr().cast::<Checked>(),
            len,
        };
        let mut ranges = Vec::new();
        for (key, range) in table.key_ranges() {
            self.adopt(st, key)?;
            let mut home = None;
            for e in &table.entries()[range.clone()] {
                if e.is_init() && released.is_some() {
                    continue;
                }
                let site = e.site();
                if !self.design.calls_home() {
                    self.check_call_via(key, e)?;
                    continue;
                }
                // SAFETY: check_entry found the slot in executable memory.
                let found = unsafe { text::read_slot(site) };
                let target = match Form::decode(site, found) {
                    Some(Form::Call(t)) if home.is_none_or(|h| h == t) => Some(t),
                    _ => None,
                };
                match target {
                    // (A home already checked for this key's range needs no second look.)
                    Some(t) if home == Some(t) || self.is_home(&maps, key, t) => home = Some(t),
                    _ => {
                        return Err(Error::UnexpectedBytes {
                            place: Place::Site,
                            addr: site,
                            key: key.addr(),
                            found: found.to_vec(),
                            expected: self.expected_home(key, home),
                        });
                    }
                }
            }
            let fallback = if self.design.calls_home() {
                key.tramp as usize
            } else {
                key.addr()
            };
            ranges.push(EntryRange {
                key,
                range,
                home: home.unwrap_or(fallback),
            });
        }
        Ok(Prepared {
            table,
            released,
            ranges,
        })
    }

    fn expected_home(&self, key: &RawKey, home: Option<usize>) -> String {
        match (self.design.site, home) {
            (_, Some(h)) => describe(Form::Call(h)),
            (SiteShape::CallThunk, None) => describe(Form::Call(self.thunk().unwrap_or(0))),
            (SiteShape::CallTrampoline, None) => format!(
                "{} or a call to a near stub of this key",
                describe(Form::Call(key.tramp as usize))
            ),
            (SiteShape::LoadCallRax, None) => describe(Form::CallVia(key.addr())),
        }
    }

    /// Checks a site of a design whose sites call through the key
    /// ([`SiteShape::LoadCallRax`]): it loads the key itself or, in a
    /// module, the entry's key slot.
    fn check_call_via(&self, key: &RawKey, e: &Checked) -> Result<()> {
        let want = if e.keyref() {
            e.0.key_field()
        } else {
            key.addr()
        };
        let found = e.read_site(self.design);
        match self.design.decode_site(e.site(), &found, e.keyref()) {
            Some(Form::CallVia(p)) if p == want => Ok(()),
            _ => Err(Error::UnexpectedBytes {
                place: Place::Site,
                addr: e.site(),
                key: key.addr(),
                found,
                expected: format!(
                    "{} (mov rax, [rip + {want:#x}]{}; call rax)",
                    describe(Form::CallVia(want)),
                    if e.keyref() { "; mov rax, [rax]" } else { "" }
                ),
            }),
        }
    }

    /// Whether a site of `key` may call `t` before it is patched: the key's
    /// trampoline, a near stub for the key, or (indirect) a retpoline thunk.
    fn is_home(&self, maps: &[Mapping], key: &RawKey, t: usize) -> bool {
        match self.design.site {
            SiteShape::LoadCallRax => false,
            SiteShape::CallThunk => {
                let Some(thunk) = self.thunk() else {
                    return false;
                };
                if t == thunk {
                    return true;
                }
                // A module's own copy of the thunk: the same bytes.
                const N: usize = 16;
                if !maps::covered(maps, t, t + N, |m| m.exec && m.read) {
                    return false;
                }
                // SAFETY: both ranges are mapped executable code.
                let (a, b) = unsafe {
                    (
                        std::ptr::read_volatile(t as *const [u8; N]),
                        std::ptr::read_volatile(thunk as *const [u8; N]),
                    )
                };
                a == b
            }
            SiteShape::CallTrampoline => {
                if t == key.tramp as usize {
                    return true;
                }
                if !maps::covered(maps, t, t + STUB_LEN, |m| m.exec && m.read) {
                    return false;
                }
                // SAFETY: mapped executable code.
                let b = unsafe { std::ptr::read_volatile(t as *const [u8; STUB_LEN]) };
                if b[..3] != STUB_LOAD || b[7..] != STUB_JMP {
                    return false;
                }
                let d = i32::from_le_bytes(b[3..7].try_into().expect("4 bytes"));
                let slot = (t + 7).wrapping_add_signed(d as isize);
                slot.is_multiple_of(8)
                    && maps::covered(maps, slot, slot + 8, |m| m.read)
                    // SAFETY: mapped and aligned.
                    && unsafe { std::ptr::read_volatile(slot as *const usize) } == key.addr()
            }
        }
    }

    /// Checks one raw entry: its site is executable (or in the released
    /// init pages), its key slot mapped and aligned, and its key a key of
    /// this registry. Reads only memory the mappings say is readable, and
    /// reads a candidate key's `registry` word as a plain number.
    fn check_entry(
        &self,
        maps: &[Mapping],
        e: &Entry,
        released: Option<(usize, usize)>,
    ) -> Result<()> {
        let site = e.site();
        let bad = |key, reason| Error::CorruptEntry {
            entry: e as *const Entry as usize,
            site,
            key,
            reason,
        };
        let len = self.design.site_len(e.flags() & KEYREF != 0);
        let in_released = released.is_some_and(|(lo, hi)| site < hi && site + len > lo);
        if !in_released && !maps::covered(maps, site, site + len, |m| m.exec && m.read) {
            return Err(bad(e.key_field(), "the site is not in executable memory"));
        }
        if e.flags() & KEYREF != 0 {
            let slot = e.key_field();
            if !slot.is_multiple_of(8) || !maps::covered(maps, slot, slot + 8, |m| m.read) {
                return Err(bad(slot, "the key slot is not mapped and aligned"));
            }
        }
        // SAFETY: with KEYREF the slot was just found mapped and aligned.
        let key = unsafe { e.key() };
        if !key.is_multiple_of(align_of::<RawKey>())
            || !maps::covered(maps, key, key + size_of::<RawKey>(), |m| m.read)
        {
            return Err(bad(key, "the key is not a mapped, aligned key"));
        }
        // SAFETY: mapped, readable and aligned; read as a number, never as
        // a reference, whatever the bytes are.
        let reg = unsafe { std::ptr::read_volatile((key + REGISTRY_OFFSET) as *const usize) };
        if reg != self as *const Registry as usize {
            return Err(bad(key, "no key of this implementation is there"));
        }
        Ok(())
    }
}
