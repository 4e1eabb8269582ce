//! The site-table format.
//!
//! Every call site emits one 8-byte entry into its implementation's
//! retained link section:
//!
//! ```text
//! struct Entry { site: i32, key: i32 }   // both relative to &entry
//! ```
//!
//! `entry + site` is the address of the site's 5-byte `call`; `entry + key`
//! is the address of the key, whose low three bits carry flags ([`TAIL`],
//! [`INIT`], [`KEYREF`]; keys are 8-byte aligned so those bits are free).
//! With [`KEYREF`] the key field points instead at an 8-byte slot that holds
//! the key's absolute address: modules (shared objects, generated code)
//! use it for keys beyond 32-bit reach, with one slot per (key, module), so
//! their entries stay 8 bytes too. At `init()`
//! the registry sorts the array in place by key (re-basing both fields of
//! every moved entry) and sets [`INIT`] on sites inside init text, so each
//! key's sites of one image form one contiguous run.

/// Flag bit: the site is a tail call (`jmp`). Reserved; no macro emits it.
pub const TAIL: usize = 1;
/// Flag bit: the site lies in init text.
pub const INIT: usize = 2;
/// Flag bit: the key field points at a slot holding the key's address.
pub const KEYREF: usize = 4;
const FLAGS: usize = TAIL | INIT | KEYREF;

/// One site-table entry.
#[repr(C)]
#[derive(Debug)]
pub struct Entry {
    site: i32,
    key: i32,
}

impl Entry {
    fn base(&self) -> usize {
        self as *const Entry as usize
    }

    /// Address of the call site.
    pub fn site(&self) -> usize {
        self.base().wrapping_add_signed(self.site as isize)
    }

    fn key_word(&self) -> usize {
        self.base().wrapping_add_signed(self.key as isize)
    }

    /// Address the key field points at: the key, or with [`KEYREF`] the
    /// slot holding the key's address.
    pub fn key_field(&self) -> usize {
        self.key_word() & !FLAGS
    }

    /// Address of the key. With [`KEYREF`] this reads the slot.
    ///
    /// # Safety
    /// With [`KEYREF`], the slot ([`Entry::key_field`]) must be mapped,
    /// readable and 8-byte aligned (the registry checks this before it
    /// first calls this on an entry).
    pub unsafe fn key(&self) -> usize {
        let f = self.key_field();
        if self.flags() & KEYREF != 0 {
            // SAFETY: the caller promises the slot is mapped and aligned.
            unsafe { std::ptr::read_volatile(f as *const usize) }
        } else {
            f
        }
    }

    /// Flag bits ([`TAIL`], [`INIT`]).
    pub fn flags(&self) -> usize {
        self.key_word() & FLAGS
    }

    /// Whether the site lies in init text (valid once the registry has
    /// classified the table).
    pub fn is_init(&self) -> bool {
        self.flags() & INIT != 0
    }

    /// Writes an entry for `site` and `key | flags`, relative to its own
    /// position. Returns false if a field does not fit in 32 bits.
    fn set(&mut self, site: usize, key_word: usize) -> bool {
        let base = self.base() as i128;
        match (
            i32::try_from(site as i128 - base),
            i32::try_from(key_word as i128 - base),
        ) {
            (Ok(s), Ok(k)) => {
                self.site = s;
                self.key = k;
                true
            }
            _ => false,
        }
    }
}

/// A site table for generated code (a JIT's call sites), in the program's
/// writable data, so that its entries reach the program's keys and code
/// mapped near the program with 32-bit offsets. Fill it with
/// [`SiteTable::set`], then pass [`SiteTable::range`] as the `sites` of a
/// module's `ImageSections`.
#[repr(transparent)]
#[derive(Debug)]
pub struct SiteTable<const N: usize>(std::cell::UnsafeCell<[Entry; N]>);

// SAFETY: entries are written only through `set` (whose caller promises
// the table is not registered) and by the registry under its lock.
unsafe impl<const N: usize> Sync for SiteTable<N> {}

impl<const N: usize> SiteTable<N> {
    /// An empty table of `N` entries.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        SiteTable(std::cell::UnsafeCell::new(
            [const { Entry { site: 0, key: 0 } }; N],
        ))
    }

    /// The table's address range (`ImageSections::sites`).
    pub fn range(&'static self) -> (usize, usize) {
        let start = self.0.get() as usize;
        (start, start + N * size_of::<Entry>())
    }

    /// Makes entry `i` record the call site at `site` of the key at `key`
    /// (a key's `raw().addr()`). Returns false, writing nothing, when `i`
    /// is out of bounds or either address is beyond 32-bit reach of the
    /// entry.
    ///
    /// # Safety
    /// The table is not registered (loaded as a module's table) now, and
    /// no other thread writes it.
    pub unsafe fn set(&'static self, i: usize, site: usize, key: usize) -> bool {
        if i >= N || !key.is_multiple_of(8) {
            return false;
        }
        // SAFETY: not registered and not written by anyone else (the
        // caller's promise): this is the only reference to the entry.
        let e = unsafe { &mut (*self.0.get())[i] };
        e.set(site, key)
    }
}

/// Sorts `entries` by (key, site) in place and sets [`INIT`] on entries
/// whose 5-byte slot overlaps `init` (a half-open address range: the init
/// text's whole pages, the part that is released), clearing it on the
/// others.
///
/// A temporary array of absolute addresses is used while sorting and freed
/// before returning; the registry keeps no per-site allocation.
///
/// # Safety
/// As for [`Entry::key`], for every entry.
pub(crate) unsafe fn sort_and_classify(entries: &mut [Entry], init: (usize, usize)) {
    let mut abs: Vec<(usize, usize, usize, usize)> = entries
        .iter()
        .map(|e| {
            let site = e.site();
            let init_flag = if site < init.1 && site + crate::insn::SLOT_LEN > init.0 {
                INIT
            } else {
                0
            };
            let flags = (e.flags() & (TAIL | KEYREF)) | init_flag;
            // SAFETY: the caller promises every KEYREF slot is mapped.
            (unsafe { e.key() }, site, e.key_field(), flags)
        })
        .collect();
    abs.sort_unstable();
    for (e, (_, site, field, flags)) in entries.iter_mut().zip(abs) {
        // Entries only move within their own array, which lies within
        // ±2 GiB of every site and key field it already encoded.
        let ok = e.set(site, field | flags);
        debug_assert!(ok, "re-based entry fits");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_at(buf: &mut [Entry], i: usize, site: usize, key_word: usize) {
        assert!(buf[i].set(site, key_word));
    }

    #[test]
    fn sort_rebases_and_keeps_flags() {
        // One allocation: four entries, then a key slot. Sites and keys are
        // only numbers here, except the slot, which `key()` reads.
        let mut words = vec![0u64; 8];
        let slot = &mut words[6] as *mut u64 as usize;
        // SAFETY: Entry is two i32s, the size and alignment u64 permits.
        let buf: &mut [Entry] =
            unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<Entry>(), 4) };
        let base = buf.as_ptr() as usize;
        let (k1, k2) = ((base + 0x1000) & !7, (base + 0x2000) & !7);
        // SAFETY: `slot` is words[6], not covered by `buf`.
        unsafe { std::ptr::write(slot as *mut usize, k2) };
        entry_at(buf, 0, base + 0x500, k2);
        entry_at(buf, 1, base + 0x400, k1);
        entry_at(buf, 2, base + 0x300, slot | KEYREF);
        entry_at(buf, 3, base + 0x200, k1 | TAIL);
        // SAFETY: the only KEYREF slot is `slot`, mapped and aligned.
        unsafe { sort_and_classify(buf, (base + 0x250, base + 0x350)) };
        let got: Vec<(usize, usize, usize, usize)> = buf
            .iter()
            // SAFETY: as above.
            .map(|e| (unsafe { e.key() }, e.site(), e.key_field(), e.flags()))
            .collect();
        assert_eq!(
            got,
            vec![
                (k1, base + 0x200, k1, TAIL),
                (k1, base + 0x400, k1, 0),
                (k2, base + 0x300, slot, KEYREF | INIT),
                (k2, base + 0x500, k2, 0),
            ]
        );
    }
}
