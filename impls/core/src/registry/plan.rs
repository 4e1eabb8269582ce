//! Planning: which bytes each slot must hold for a target, checked against
//! what it holds now, as [`SlotWrite`]s for the engine. Nothing here writes
//! code; relays (jumps for far targets) are mapped as fresh code.

use std::sync::atomic::Ordering;

use crate::error::{Error, Place, Result};
use crate::insn::{Form, SLOT_LEN, TRAMPOLINE_LEN, TRAMPOLINE_SIGNATURE};
use crate::key::RawKey;
use crate::text::SlotWrite;
use crate::text::exec::{ExecMemory, Placement};

use super::intake::Checked;

/// `mov r11, qword ptr [rip + disp32]` (then the disp32).
pub(super) const STUB_LOAD: [u8; 3] = [0x4c, 0x8b, 0x1d];
/// `jmp qword ptr [r11 + 8]`: through the key's trampoline field.
pub(super) const STUB_JMP: [u8; 4] = [0x41, 0xff, 0x63, crate::key::TRAMPOLINE_OFFSET as u8];
/// Length of a near stub.
pub const STUB_LEN: usize = 11;

/// The bytes of a near stub at `at` that reaches the key whose address is
/// stored at `slot`: it loads the key and jumps through its trampoline
/// field, so it works from anywhere and needs no patching.
pub fn near_stub(at: usize, slot: usize) -> Option<[u8; STUB_LEN]> {
    let d = i32::try_from(slot as i128 - (at as i128 + 7)).ok()?;
    let mut b = [0u8; STUB_LEN];
    b[..3].copy_from_slice(&STUB_LOAD);
    b[3..7].copy_from_slice(&d.to_le_bytes());
    b[7..].copy_from_slice(&STUB_JMP);
    Some(b)
}

/// The shared "do nothing" target: the indirect implementation stores it
/// for a none target so its sites need no null check.
#[unsafe(naked)]
pub extern "C" fn ret_stub() {
    core::arch::naked_asm!("ret")
}

/// The canonical `ret` stub: the one of the copy of this crate that
/// serves the process's engine (`text/shared.rs`), which every copy
/// stores for none, so a none key reads the same in every copy.
pub(super) fn ret_stub_addr() -> usize {
    crate::text::shared::ret_stub_addr()
}

/// RET0, the shared "return 0" target (the kernel's
/// `__static_call_return0`): `xor eax, eax; ret`. A key pointed at it
/// holds its address; inline-patched sites become `xor eax, eax` (one
/// 5-byte instruction), trampolines jump to it like to any target (a slot
/// holds one instruction, never two), and the indirect implementation
/// calls it. It ignores its arguments, so it serves every key
/// whose return is an integer, `bool` or pointer.
#[unsafe(naked)]
pub extern "C" fn ret0_stub() -> u64 {
    core::arch::naked_asm!("xor eax, eax", "ret")
}

/// The canonical RET0 function (the serving copy's, see
/// [`ret_stub_addr`]): what every copy stores for RET0 and compares with.
pub(crate) fn ret0_addr() -> usize {
    crate::text::shared::ret0_addr()
}

/// Bytes of one relay: `jmp qword ptr [rip + 0]`, the target, two `int3`.
const RELAY_LEN: usize = 16;

/// A page of relays, filled from its start.
#[derive(Debug)]
struct RelayPage {
    mem: ExecMemory,
    used: usize,
}

/// Relays: `jmp [rip+0]; .quad target` stubs near a trampoline for
/// targets beyond `rel32` reach of it. One per (target, ±2 GiB region),
/// reused by every trampoline in reach, packed 256 to a page (a new relay
/// goes into a free slot of a page in reach, written through
/// `/proc/self/mem`; with the `mprotect` fallback each gets its own page).
///
/// They are kept for the life of the process: a thread may have jumped
/// into one and been preempted before executing it, and userspace has no
/// way to prove that no thread is there any more (the kernel waits for an
/// RCU-tasks grace period instead). What bounds them is reuse: 16 bytes
/// per distinct far target.
#[derive(Debug, Default)]
pub(super) struct Relays {
    pages: Vec<RelayPage>,
    /// (target, relay address).
    made: Vec<(usize, usize)>,
}

impl Relays {
    /// Bytes of memory the relays take.
    pub(super) fn bytes(&self) -> usize {
        self.pages.capacity() * size_of::<RelayPage>()
            + self.made.capacity() * size_of::<(usize, usize)>()
            + self.pages.iter().map(|p| p.mem.len()).sum::<usize>()
    }

    /// The form of a trampoline at `tramp` for target `t` (null: none):
    /// a direct `jmp`, a `jmp` to a relay (made when `create`), or `ret`.
    /// RET0 is a target like any other here: `jmp` to the shared function.
    pub(super) fn tramp_form(&mut self, tramp: usize, t: *mut u8, create: bool) -> Result<Form> {
        let t = t as usize;
        if t == 0 {
            return Ok(Form::Ret);
        }
        if crate::insn::in_range(tramp, t) {
            return Ok(Form::Jmp(t));
        }
        if let Some(&(_, at)) = self
            .made
            .iter()
            .find(|(rt, at)| *rt == t && crate::insn::in_range(tramp, *at))
        {
            return Ok(Form::Jmp(at));
        }
        if !create {
            return Err(Error::OutOfRange { from: tramp, to: t });
        }
        let mut code = vec![0xff, 0x25, 0, 0, 0, 0];
        code.extend_from_slice(&(t as u64).to_le_bytes());
        let at = match self.pack(tramp, &code)? {
            Some(at) => at,
            None => {
                let mem = ExecMemory::new(Placement::Near(tramp), &code).map_err(|e| match e {
                    // Name the real target: it is the one out of reach.
                    Error::NoRoomNear { .. } => Error::OutOfRange { from: tramp, to: t },
                    e => e,
                })?;
                let at = mem.addr();
                self.pages.push(RelayPage { mem, used: 1 });
                at
            }
        };
        self.made.push((t, at));
        Ok(Form::Jmp(at))
    }

    /// Writes `code` into a free slot of a relay page in reach of
    /// `tramp`, if there is one and the engine can write it there.
    fn pack(&mut self, tramp: usize, code: &[u8]) -> Result<Option<usize>> {
        let Some(page) = self.pages.iter_mut().find(|p| {
            (p.used + 1) * RELAY_LEN <= p.mem.len()
                && crate::insn::in_range(tramp, p.mem.addr() + p.used * RELAY_LEN)
        }) else {
            return Ok(None);
        };
        let at = page.mem.addr() + page.used * RELAY_LEN;
        // SAFETY: a slot past every relay of this page made so far: no
        // jump leads there yet, so no thread executes it, and only the
        // registry (under its lock) writes relay pages.
        if !unsafe { crate::text::write_fresh(at, code)? } {
            return Ok(None);
        }
        page.used += 1;
        Ok(Some(at))
    }
}

/// Checks that `site` holds `old`, and plans its rewrite to `new`.
pub(super) fn plan_site(key: &RawKey, site: usize, old: Form, new: Form) -> Result<SlotWrite> {
    // SAFETY: registered sites are in mapped, executable memory.
    let found = unsafe { crate::text::read_slot(site) };
    if old.encode(site) != Some(found) {
        return Err(Error::UnexpectedBytes {
            place: Place::Site,
            addr: site,
            key: key.addr(),
            found: found.to_vec(),
            expected: describe(old),
        });
    }
    let Some(bytes) = new.encode(site) else {
        return Err(Error::OutOfRange {
            from: site,
            to: form_target(new),
        });
    };
    Ok(SlotWrite {
        addr: site,
        old: found,
        new: bytes,
        form: new,
        place: Place::Site,
        key: key.addr(),
    })
}

fn form_target(f: Form) -> usize {
    match f {
        Form::Call(t) | Form::Jmp(t) | Form::CallVia(t) => t,
        Form::Nop | Form::Ret | Form::Zero => 0,
    }
}

/// Plans a trampoline's rewrite from target `cur` to `new`, after checking
/// that it holds `cur`'s form, its signature and its back-reference.
pub(super) fn plan_trampoline(
    relays: &mut Relays,
    key: &RawKey,
    cur: *mut u8,
    new: *mut u8,
) -> Result<SlotWrite> {
    let tramp = key.tramp as usize;
    let (found, slot) = read_trampoline(key);
    let old_form = relays.tramp_form(tramp, cur, false)?;
    if !trampoline_ok(key, &found) || old_form.encode(tramp) != Some(slot) {
        return Err(bad_trampoline(key, &found, &describe(old_form)));
    }
    let form = relays.tramp_form(tramp, new, true)?;
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

/// Plans the sites `entries` of `key` that still call their `home` to the form
/// for the key's current target (skipping released init sites).
pub(super) fn plan_from_home(
    key: &RawKey,
    entries: &[Checked],
    home: usize,
    init_released: bool,
) -> Result<Vec<SlotWrite>> {
    let cur = key.func.load(Ordering::Acquire);
    entries
        .iter()
        .filter(|e| !(e.is_init() && init_released))
        .map(|e| {
            let site = e.site();
            plan_site(key, site, Form::Call(home), site_form(site, home, cur))
        })
        .collect()
}

/// The form a call site holds for target `t` (null: none), given its home
/// (the in-range path it falls back to).
pub(super) fn site_form(site: usize, home: usize, t: *mut u8) -> Form {
    if t.is_null() {
        Form::Nop
    } else if t as usize == ret0_addr() {
        Form::Zero
    } else if crate::insn::in_range(site, t as usize) {
        Form::Call(t as usize)
    } else {
        Form::Call(home)
    }
}

/// The trampoline's bytes, and its slot.
pub(super) fn read_trampoline(key: &RawKey) -> ([u8; TRAMPOLINE_LEN], [u8; SLOT_LEN]) {
    // SAFETY: the trampoline is part of the key's image's text, mapped for
    // as long as the key exists.
    let found = unsafe { std::ptr::read_volatile(key.tramp as *const [u8; TRAMPOLINE_LEN]) };
    let slot = found[..SLOT_LEN].try_into().expect("5 bytes");
    (found, slot)
}

/// The error for a trampoline that is not what we wrote; `slot` says what
/// its 5-byte slot should hold.
pub(super) fn bad_trampoline(key: &RawKey, found: &[u8; TRAMPOLINE_LEN], slot: &str) -> Error {
    Error::UnexpectedBytes {
        place: Place::Trampoline,
        addr: key.tramp as usize,
        key: key.addr(),
        found: found.to_vec(),
        expected: format!(
            "{slot}, then signature 0f b9 cc and an offset to key {:#x}",
            key.addr()
        ),
    }
}

/// Whether a trampoline carries the signature and points back at `key`.
pub(super) fn trampoline_ok(key: &RawKey, found: &[u8; TRAMPOLINE_LEN]) -> bool {
    let back = i32::from_le_bytes(found[8..12].try_into().expect("4 bytes"));
    let back_key = (key.tramp as usize + 8).wrapping_add_signed(back as isize);
    found[SLOT_LEN..SLOT_LEN + 3] == TRAMPOLINE_SIGNATURE && back_key == key.addr()
}

/// A form in words, for errors.
pub(super) fn describe(f: Form) -> String {
    match f {
        Form::Call(t) => format!("call {t:#x}"),
        Form::Jmp(t) => format!("jmp {t:#x}"),
        Form::Nop => "the 5-byte NOP".into(),
        Form::Ret => "ret".into(),
        Form::Zero => "xor eax, eax (RET0)".into(),
        Form::CallVia(p) => format!("a call through the pointer at {p:#x}"),
    }
}
