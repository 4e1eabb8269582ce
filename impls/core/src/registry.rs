//! The registry: which sites belong to which key, and the update paths.
//!
//! One [`Registry`] exists per implementation crate (a `static`). It owns:
//!
//! * the *images* whose site tables it has taken in (the main program at
//!   `init()`; loaded modules later), each with its sorted entry array and
//!   its init-text range;
//! * per key, a singly linked list of [`Group`]s, one per (key, image),
//!   each pointing at that image's contiguous run of the key's entries. No
//!   per-site node is ever allocated: memory is O(keys × images).
//!
//! All of it is guarded by one mutex. Writes to code happen with the mutex
//! held, through [`crate::text`] only.

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Place, Result};
use crate::insn::{Form, SLOT_LEN, TRAMPOLINE_LEN, TRAMPOLINE_SIGNATURE};
use crate::key::RawKey;
use crate::maps;
use crate::site::{self, Entry};
use crate::text::{self, SlotWrite, exec::ExecMemory, exec::Placement};

/// Which of the three designs a registry implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Update rewrites the trampoline and every call site.
    InlinePatch,
    /// Update rewrites only the trampoline.
    Trampoline,
    /// Update stores a function pointer; sites call through a retpoline.
    Indirect,
}

impl Flavor {
    /// Short name (`inline-patch`, `trampoline`, `indirect`).
    pub fn name(self) -> &'static str {
        match self {
            Flavor::InlinePatch => "inline-patch",
            Flavor::Trampoline => "trampoline",
            Flavor::Indirect => "indirect",
        }
    }
}

/// What `init()` does with call sites inside init text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitPolicy {
    /// Patch them like any other site while init text exists; skip them
    /// once `free_init()` released it (what the kernel settled on).
    #[default]
    Track,
    /// Refuse them: `init()` fails with [`Error::InitSitesRefused`] naming
    /// every such site.
    Strict,
}

/// Section boundaries of one image, as half-open address ranges
/// (`(0, 0)` when the image has no such section).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageSections {
    /// The site table.
    pub sites: (usize, usize),
    /// The init text.
    pub init: (usize, usize),
}

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
    /// Sites that call through the retpoline (indirect implementation).
    pub indirect: usize,
    /// Sites in init text (counted in the totals above too).
    pub init: usize,
    /// Init-text sites no longer patched because init text was released.
    pub init_released: usize,
    /// Loaded modules (images other than the main program).
    pub modules: usize,
    /// Heap bytes the registry holds (images, key list, groups).
    pub registry_bytes: usize,
}

/// One site-table run of one key in one image.
#[derive(Debug)]
pub struct Group {
    next: *mut Group,
    image: u64,
    first: *mut Entry,
    len: usize,
}

#[derive(Debug)]
struct Image {
    id: u64,
    entries: *mut Entry,
    len: usize,
    init_released: bool,
}

impl Image {
    fn entries(&self) -> &[Entry] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `entries..entries+len` is the image's site table, which
        // lives as long as the image is registered.
        unsafe { std::slice::from_raw_parts(self.entries, self.len) }
    }
}

#[derive(Debug, Default)]
struct State {
    initialized: bool,
    policy: InitPolicy,
    main_init_released: bool,
    images: Vec<Image>,
    keys: Vec<&'static RawKey>,
    relays: Vec<(usize, ExecMemory)>,
    groups: usize,
}

// SAFETY: the raw pointers in State point at site tables and groups that
// the registry owns or that live for the whole program; State is only
// accessed under the registry's mutex.
unsafe impl Send for State {}

/// The registry of one implementation.
#[derive(Debug)]
pub struct Registry {
    flavor: Flavor,
    main: fn() -> ImageSections,
    indirect_thunk: Option<unsafe extern "C" fn()>,
    state: Mutex<Option<State>>,
}

const MAIN_IMAGE: u64 = 0;

impl Registry {
    /// A registry for `flavor` whose main image's sections `main` reports.
    /// For [`Flavor::Indirect`], `indirect_thunk` is the retpoline thunk
    /// every site calls.
    pub const fn new(
        flavor: Flavor,
        main: fn() -> ImageSections,
        indirect_thunk: Option<unsafe extern "C" fn()>,
    ) -> Registry {
        Registry {
            flavor,
            main,
            indirect_thunk,
            state: Mutex::new(None),
        }
    }

    /// The implementation this registry serves.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    fn lock(&self) -> MutexGuard<'_, Option<State>> {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(State::default());
        }
        g
    }

    /// The main image's section boundaries.
    pub fn main_sections(&self) -> ImageSections {
        (self.main)()
    }

    /// Whether `init()` has completed.
    pub fn is_initialized(&self) -> bool {
        self.lock().as_ref().is_some_and(|s| s.initialized)
    }

    pub(crate) fn decode_target(&self, p: *mut u8) -> Option<usize> {
        if p.is_null() || (self.flavor == Flavor::Indirect && p as usize == ret_stub_addr()) {
            None
        } else {
            Some(p as usize)
        }
    }

    fn encode_target(&self, p: *const u8) -> *mut u8 {
        if p.is_null() && self.flavor == Flavor::Indirect {
            ret_stub_addr() as *mut u8
        } else {
            p as *mut u8
        }
    }

    /// Takes in the main program's site table and patches every site to
    /// its key's current target. Idempotent: later calls return `Ok` and do
    /// nothing (whatever their policy).
    ///
    /// # Errors
    /// A corrupt entry, a site that does not hold the expected call, init
    /// sites under [`InitPolicy::Strict`], or a failed system call. On
    /// error nothing was patched and the registry is not initialised.
    pub fn init(&self, policy: InitPolicy) -> Result<()> {
        let mut g = self.lock();
        let st = g.as_mut().expect("state");
        if st.initialized {
            return Ok(());
        }
        if self.flavor != Flavor::Indirect {
            text::engine_info()?;
        }
        let sections = (self.main)();
        let released = st.main_init_released;
        self.register_image(st, MAIN_IMAGE, sections, released, policy)?;
        st.initialized = true;
        st.policy = policy;
        Ok(())
    }

    /// Releases the main program's init text (its whole pages become
    /// inaccessible) and stops patching sites inside it. Idempotent.
    ///
    /// Calling a function in init text afterwards faults.
    ///
    /// # Errors
    /// A failed `mprotect`; nothing changes then.
    pub fn free_init(&self) -> Result<(usize, usize)> {
        let mut g = self.lock();
        let st = g.as_mut().expect("state");
        let init = (self.main)().init;
        if st.main_init_released {
            return Ok(init);
        }
        // SAFETY: the init text belongs to this implementation's init
        // section; the documented contract is that nothing in it runs again.
        // Sites inside it are never read or written after this point.
        let range = unsafe { text::release(init.0, init.1)? };
        st.main_init_released = true;
        if let Some(img) = st.images.iter_mut().find(|i| i.id == MAIN_IMAGE) {
            img.init_released = true;
        }
        Ok(range)
    }

    /// The entries of the main program's site table as (site, key, is-init)
    /// triples, read from the table itself. Before `init()` the init flag
    /// is not yet computed and reads false.
    pub fn main_table(&self) -> Vec<(usize, usize, bool)> {
        let _g = self.lock();
        let s = (self.main)().sites;
        table(s)
            .iter()
            .map(|e| (e.site(), e.key(), e.is_init()))
            .collect()
    }

    /// Addresses of the registered sites of `key`, with their init flag.
    pub fn sites_of(&self, key: &RawKey) -> Vec<(usize, bool)> {
        let _g = self.lock();
        let mut out = Vec::new();
        // SAFETY: lock held.
        let mut gp = unsafe { key.state() }.groups;
        while !gp.is_null() {
            // SAFETY: groups are live while linked; lock held.
            let grp = unsafe { &*gp };
            // SAFETY: a group's run lies inside its image's table.
            let run = unsafe { std::slice::from_raw_parts(grp.first, grp.len) };
            out.extend(run.iter().map(|e| (e.site(), e.is_init())));
            gp = grp.next;
        }
        out
    }

    /// Statistics.
    pub fn stats(&self) -> Stats {
        let g = self.lock();
        let st = g.as_ref().expect("state");
        let mut s = Stats {
            keys: st.keys.len(),
            modules: st.images.iter().filter(|i| i.id != MAIN_IMAGE).count(),
            registry_bytes: st.images.capacity() * size_of::<Image>()
                + st.keys.capacity() * size_of::<&RawKey>()
                + st.relays.capacity() * size_of::<(usize, ExecMemory)>()
                + st.groups * size_of::<Group>(),
            ..Stats::default()
        };
        for img in &st.images {
            for e in img.entries() {
                s.sites += 1;
                let init = e.is_init();
                if init {
                    s.init += 1;
                }
                if init && img.init_released {
                    s.init_released += 1;
                    continue;
                }
                match self.flavor {
                    Flavor::Indirect => s.indirect += 1,
                    Flavor::Trampoline => s.via_trampoline += 1,
                    Flavor::InlinePatch => {
                        // SAFETY: entries point at keys validated at registration.
                        let key = unsafe { &*(e.key() as *const RawKey) };
                        let cur = key.func.load(Ordering::Acquire);
                        match site_form(e.site(), key.tramp as usize, cur) {
                            Form::Call(t) if t == key.tramp as usize && !cur.is_null() => {
                                s.fallback += 1
                            }
                            _ => s.direct += 1,
                        }
                    }
                }
            }
        }
        s
    }

    /// Points `key` at `new` (null: none). See [`crate::StaticCall::update`].
    pub(crate) fn update(&self, key: &'static RawKey, new: *const u8) -> Result<()> {
        debug_assert!(std::ptr::eq(key.registry, self));
        let mut g = self.lock();
        let st = g.as_mut().expect("state");
        let new = self.encode_target(new);
        let cur = key.func.load(Ordering::Acquire);
        if cur == new {
            return Ok(());
        }
        if self.flavor != Flavor::Indirect {
            let mut writes = vec![self.plan_trampoline(st, key, cur, new)?];
            if self.flavor == Flavor::InlinePatch && st.initialized {
                // SAFETY: lock held.
                let mut gp = unsafe { key.state() }.groups;
                while !gp.is_null() {
                    // SAFETY: linked groups are live; lock held.
                    let grp = unsafe { &*gp };
                    let released = st
                        .images
                        .iter()
                        .find(|i| i.id == grp.image)
                        .is_none_or(|i| i.init_released);
                    // SAFETY: a group's run lies inside its image's table.
                    let run = unsafe { std::slice::from_raw_parts(grp.first, grp.len) };
                    for e in run {
                        if e.is_init() && released {
                            continue;
                        }
                        writes.push(plan_site(key, e.site(), cur, new)?);
                    }
                    gp = grp.next;
                }
            }
            // SAFETY: every slot was validated above and belongs to this
            // key; the registry lock is held, so no other writer touches them.
            unsafe { text::write_batch(&writes)? };
        }
        key.func.store(new, Ordering::Release);
        register_key(st, key);
        Ok(())
    }

    fn plan_trampoline(
        &self,
        st: &mut State,
        key: &RawKey,
        cur: *mut u8,
        new: *mut u8,
    ) -> Result<SlotWrite> {
        let tramp = key.tramp as usize;
        // SAFETY: the trampoline is part of the key's image's text, mapped
        // for as long as the key exists.
        let found = unsafe { std::ptr::read_volatile(tramp as *const [u8; TRAMPOLINE_LEN]) };
        let back = i32::from_le_bytes(found[8..12].try_into().expect("4 bytes"));
        let back_key = (tramp + 8).wrapping_add_signed(back as isize);
        let old_form = tramp_form(st, tramp, cur, false)?;
        let old = old_form.encode(tramp);
        let slot: [u8; SLOT_LEN] = found[..SLOT_LEN].try_into().expect("5 bytes");
        if found[SLOT_LEN..SLOT_LEN + 3] != TRAMPOLINE_SIGNATURE
            || back_key != key.addr()
            || old != Some(slot)
        {
            return Err(Error::UnexpectedBytes {
                place: Place::Trampoline,
                addr: tramp,
                key: key.addr(),
                found: found.to_vec(),
                expected: format!(
                    "{} then signature 0f b9 cc and an offset to key {:#x}",
                    describe(old_form),
                    key.addr()
                ),
            });
        }
        let form = tramp_form(st, tramp, new, true)?;
        Ok(SlotWrite {
            addr: tramp,
            old: slot,
            new: form.encode(tramp).ok_or(Error::OutOfRange {
                from: tramp,
                to: new as usize,
            })?,
            form,
            place: Place::Trampoline,
            key: key.addr(),
        })
    }

    fn register_image(
        &self,
        st: &mut State,
        id: u64,
        sections: ImageSections,
        init_released: bool,
        policy: InitPolicy,
    ) -> Result<()> {
        let entries = table(sections.sites);
        let maps = maps::mappings().map_err(|e| Error::Syscall {
            op: "read(/proc/self/maps)",
            addr: 0,
            errno: e.raw_os_error().unwrap_or(0),
        })?;
        for e in entries.iter() {
            self.check_entry(&maps, e)?;
        }
        site::sort_and_classify(entries, sections.init);
        if policy == InitPolicy::Strict {
            let refused: Vec<(usize, usize)> = entries
                .iter()
                .filter(|e| e.is_init())
                .map(|e| (e.site(), e.key()))
                .collect();
            if !refused.is_empty() {
                return Err(Error::InitSitesRefused { sites: refused });
            }
        }
        let mut writes = Vec::new();
        for e in entries.iter() {
            if e.is_init() && init_released {
                continue;
            }
            // SAFETY: check_entry validated the key.
            let key = unsafe { &*(e.key() as *const RawKey) };
            let site = e.site();
            let expected = match self.flavor {
                Flavor::Indirect => Form::Call(self.indirect_thunk.map_or(0, |f| f as usize)),
                _ => Form::Call(key.tramp as usize),
            };
            // SAFETY: check_entry found the slot in executable memory.
            let found = unsafe { text::read_slot(site) };
            if Form::decode(site, found) != Some(expected) {
                return Err(Error::UnexpectedBytes {
                    place: Place::Site,
                    addr: site,
                    key: key.addr(),
                    found: found.to_vec(),
                    expected: describe(expected),
                });
            }
            if self.flavor == Flavor::InlinePatch {
                let cur = key.func.load(Ordering::Acquire);
                writes.push(plan_site_from(key, site, found, cur));
            }
        }
        // SAFETY: slots validated above; lock held.
        unsafe { text::write_batch(&writes)? };

        // Link one group per key run.
        let mut i = 0;
        while i < entries.len() {
            let k = entries[i].key();
            let mut j = i;
            while j < entries.len() && entries[j].key() == k {
                j += 1;
            }
            // SAFETY: validated key.
            let key: &'static RawKey = unsafe { &*(k as *const RawKey) };
            // SAFETY: lock held.
            let ks = unsafe { key.state() };
            let grp = Box::into_raw(Box::new(Group {
                next: ks.groups,
                image: id,
                first: &mut entries[i],
                len: j - i,
            }));
            ks.groups = grp;
            st.groups += 1;
            register_key(st, key);
            i = j;
        }
        st.images.push(Image {
            id,
            entries: entries.as_mut_ptr(),
            len: entries.len(),
            init_released,
        });
        Ok(())
    }

    fn check_entry(&self, maps: &[maps::Mapping], e: &Entry) -> Result<()> {
        let (site, key) = (e.site(), e.key());
        let bad = |reason| Error::CorruptEntry {
            entry: e as *const Entry as usize,
            site,
            key,
            reason,
        };
        if !maps::covered(maps, site, site + SLOT_LEN, |m| m.exec && m.read) {
            return Err(bad("the site is not in executable memory"));
        }
        if !key.is_multiple_of(align_of::<RawKey>())
            || !maps::covered(maps, key, key + size_of::<RawKey>(), |m| m.read)
        {
            return Err(bad("the key is not a mapped, aligned key"));
        }
        // SAFETY: mapped, readable and aligned; we only compare the
        // registry pointer, whatever the bytes are.
        let reg = unsafe { std::ptr::read_volatile(&(*(key as *const RawKey)).registry) };
        if !std::ptr::eq(reg, self) {
            return Err(bad("the key belongs to another implementation"));
        }
        Ok(())
    }
}

fn table(sites: (usize, usize)) -> &'static mut [Entry] {
    let (start, end) = sites;
    if start == 0 || end <= start {
        return &mut [];
    }
    // SAFETY: the linker-provided bounds of a retained, writable section
    // of 8-byte entries; only the registry (under its lock) writes it.
    unsafe {
        std::slice::from_raw_parts_mut(start as *mut Entry, (end - start) / size_of::<Entry>())
    }
}

fn register_key(st: &mut State, key: &'static RawKey) {
    // SAFETY: called with the registry lock held.
    let ks = unsafe { key.state() };
    if !ks.registered {
        ks.registered = true;
        st.keys.push(key);
    }
}

/// The form a call site of a key with trampoline `tramp` holds for target
/// `t` (null: none).
fn site_form(site: usize, tramp: usize, t: *mut u8) -> Form {
    if t.is_null() {
        Form::Nop
    } else if crate::insn::in_range(site, t as usize) {
        Form::Call(t as usize)
    } else {
        Form::Call(tramp)
    }
}

fn plan_site(key: &RawKey, site: usize, cur: *mut u8, new: *mut u8) -> Result<SlotWrite> {
    let tramp = key.tramp as usize;
    let old_form = site_form(site, tramp, cur);
    // SAFETY: registered sites are in mapped, executable memory.
    let found = unsafe { text::read_slot(site) };
    if old_form.encode(site) != Some(found) {
        return Err(Error::UnexpectedBytes {
            place: Place::Site,
            addr: site,
            key: key.addr(),
            found: found.to_vec(),
            expected: describe(old_form),
        });
    }
    Ok(plan_site_from(key, site, found, new))
}

fn plan_site_from(key: &RawKey, site: usize, found: [u8; SLOT_LEN], new: *mut u8) -> SlotWrite {
    let form = site_form(site, key.tramp as usize, new);
    SlotWrite {
        addr: site,
        old: found,
        new: form
            .encode(site)
            .expect("site forms are in range by construction"),
        form,
        place: Place::Site,
        key: key.addr(),
    }
}

fn tramp_form(st: &mut State, tramp: usize, t: *mut u8, create: bool) -> Result<Form> {
    let t = t as usize;
    if t == 0 {
        return Ok(Form::Ret);
    }
    if crate::insn::in_range(tramp, t) {
        return Ok(Form::Jmp(t));
    }
    if let Some((_, m)) = st
        .relays
        .iter()
        .find(|(rt, m)| *rt == t && crate::insn::in_range(tramp, m.addr()))
    {
        return Ok(Form::Jmp(m.addr()));
    }
    if !create {
        return Err(Error::OutOfRange { from: tramp, to: t });
    }
    // jmp [rip+0]; .quad target
    let mut code = vec![0xff, 0x25, 0, 0, 0, 0];
    code.extend_from_slice(&(t as u64).to_le_bytes());
    let m = ExecMemory::new(Placement::Near(tramp), &code)?;
    let at = m.addr();
    st.relays.push((t, m));
    Ok(Form::Jmp(at))
}

fn describe(f: Form) -> String {
    match f {
        Form::Call(t) => format!("call {t:#x}"),
        Form::Jmp(t) => format!("jmp {t:#x}"),
        Form::Nop => "the 5-byte NOP".into(),
        Form::Ret => "ret".into(),
    }
}

/// The shared "do nothing" target: the indirect implementation stores it
/// for a none target so its sites need no null check.
#[unsafe(naked)]
pub extern "C" fn ret_stub() {
    core::arch::naked_asm!("ret")
}

fn ret_stub_addr() -> usize {
    ret_stub as *const () as usize
}
