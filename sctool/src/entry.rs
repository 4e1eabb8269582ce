//! One site-table entry: the key it names (directly, or through a module's
//! key slot), its flags, where its site lies, and the form the site holds
//! measured against its design's description.

use std::collections::{BTreeMap, HashMap};

use static_call_core::SiteShape;
use static_call_core::insn::{Form, SLOT_LEN};
use static_call_core::site::{INIT, KEYREF, TAIL};
use static_call_decode::{Slot, classify, decode, format_insn, hex};

use crate::check::{Checker, KEY_TRAMP, KeyId};
use crate::elf::Word;
use crate::model::{CACHE_LINE, Check, Implementation, Severity, Site, SiteForm};

/// One entry of an implementation's site table, as read.
pub(crate) struct Entry {
    /// Whose table.
    pub(crate) imp: Implementation,
    /// The entry's address.
    pub(crate) entry: u64,
    /// Its site field (relative to the entry).
    pub(crate) site_rel: i32,
    /// Its key field (relative to the field), flags in the low bits.
    pub(crate) key_rel: i32,
    /// The implementation's init text in this file, if any.
    pub(crate) init: Option<(u64, u64)>,
}

/// What the entries read so far named.
#[derive(Default)]
pub(crate) struct Seen {
    /// (implementation, key) → (name, defined in another object).
    pub(crate) keys: BTreeMap<(Implementation, KeyId), (String, bool)>,
    /// Site → the implementation and entry that recorded it first.
    sites: HashMap<u64, (Implementation, u64)>,
}

/// The key an entry names, resolved.
struct KeyRef {
    id: KeyId,
    name: String,
    external: bool,
    /// Why it is no key of the entry's implementation, if it is not.
    problem: Option<String>,
}

/// Checks one entry and the site it names, recording its key in `seen`.
pub(crate) fn check_entry(c: &mut Checker<'_, '_>, e: &Entry, seen: &mut Seen) -> Site {
    let img = c.img;
    let (imp, entry) = (e.imp, e.entry);
    let site = entry.wrapping_add_signed(e.site_rel as i64);
    let key_word = entry.wrapping_add_signed(e.key_rel as i64);
    let flags = key_word & 7;
    let field = key_word & !7;
    let keyref = flags & KEYREF as u64 != 0;
    let key = resolve_key(c, imp, field, keyref, entry);
    if let Some(p) = &key.problem {
        c.find(
            Severity::Error,
            Check::UnresolvedKey,
            entry,
            format!("{} entry {entry:#x} (site {site:#x}): the key field does not resolve to a key: {p}", imp.name()),
        );
    }
    let key_addr = match &key.id {
        KeyId::Addr(a) => Some(*a),
        _ => None,
    };
    seen.keys
        .entry((imp, key.id.clone()))
        .or_insert((key.name.clone(), key.external));
    let init_text = e.init.is_some_and(|(a, b)| site >= a && site < b);
    let crosses_cache_line =
        site / CACHE_LINE != site.wrapping_add(SLOT_LEN as u64 - 1) / CACHE_LINE;
    let key_name = key.name;
    let mut s = Site {
        implementation: imp,
        entry,
        addr: site,
        place: img.describe(site),
        key: key_name.clone(),
        key_addr,
        bytes: String::new(),
        insn: String::new(),
        form: SiteForm::Unexpected,
        expected: false,
        flags: flag_names(flags),
        init_text,
        crosses_cache_line,
        key_resolves: key.problem.is_none(),
    };
    if flags & TAIL as u64 != 0 {
        c.find(
            Severity::Warning,
            Check::Flags,
            entry,
            format!("entry {entry:#x} (site {site:#x}) has TAIL set, a flag no macro emits"),
        );
    }
    if flags & INIT as u64 != 0 && !init_text {
        c.find(
            Severity::Warning,
            Check::Flags,
            entry,
            format!("entry {entry:#x} (site {site:#x}) has INIT set but the site is not in {}; the registry recomputes it", imp.init_section()),
        );
    }
    let site_len = imp.design().site_len(keyref);
    if !img
        .section_of(site, site_len as u64)
        .is_some_and(|s| s.exec)
    {
        let at = img
            .section_of(site, 1)
            .map_or("outside every mapped section".to_owned(), |s| {
                format!("in {}", s.name)
            });
        c.find(
            Severity::Error,
            Check::SiteOutsideText,
            entry,
            format!("{} entry {entry:#x}: site {site:#x} (key {key_name}) lies {at}, not in executable text", imp.name()),
        );
        return s;
    }
    if let Some((_, (other, e))) = seen.sites.get_key_value(&site) {
        c.find(
            Severity::Error,
            Check::DuplicateEntry,
            entry,
            format!(
                "{} entry {entry:#x}: site {site:#x} ({}) is already recorded by {} entry {e:#x}",
                imp.name(),
                s.place.as_deref().unwrap_or("?"),
                other.name()
            ),
        );
    } else {
        seen.sites.insert(site, (imp, entry));
    }
    let bytes = img.bytes_upto(site, 15);
    s.bytes = hex(&bytes[..bytes.len().min(site_len)]);
    s.insn = decode(&bytes, site)
        .first()
        .map(|i| format_insn(i, |a| img.describe(a)))
        .unwrap_or_default();
    let tramp = key_addr.and_then(|k| match img.word(k.wrapping_add(KEY_TRAMP)) {
        Word::Addr(t) if t != 0 && imp.patched() => Some(t),
        _ => None,
    });
    let at = Place {
        site,
        field,
        flags,
        via: if keyref { Some(field) } else { key_addr },
        tramp,
    };
    s.form = site_form(c, imp, &at, &bytes);
    s.expected = s.form != SiteForm::Unexpected;
    if !s.expected {
        let want = expected(c, imp, &at);
        c.find(
            Severity::Error,
            Check::UnexpectedSite,
            site,
            format!(
                "{} site {site:#x} ({}) of key {key_name} holds `{}` ({}), expected {want}",
                imp.name(),
                s.place.as_deref().unwrap_or("?"),
                s.insn,
                s.bytes
            ),
        );
    }
    if crosses_cache_line {
        c.find(
            Severity::Info,
            Check::CacheLine,
            site,
            format!(
                "{} site {site:#x} ({}) crosses a {CACHE_LINE}-byte cache line; safe here: the engine rewrites it behind an int3 (see docs/DESIGN.md)",
                imp.name(),
                s.place.as_deref().unwrap_or("?")
            ),
        );
    }
    s
}

/// The key an entry's key field names: the key itself, or (a module's
/// site, `keyref`) the key slot at `field` that holds it or names another
/// object's.
fn resolve_key(
    c: &Checker<'_, '_>,
    imp: Implementation,
    field: u64,
    keyref: bool,
    entry: u64,
) -> KeyRef {
    let img = c.img;
    let unresolved = |name: String, problem: String| KeyRef {
        id: KeyId::Unresolved(entry),
        name,
        external: false,
        problem: Some(problem),
    };
    if !keyref {
        let name = img
            .object_at(field)
            .map(|s| s.name())
            .unwrap_or_else(|| c.name(field));
        return match c.key_problem(imp, field) {
            None => KeyRef {
                id: KeyId::Addr(field),
                name,
                external: false,
                problem: None,
            },
            Some(p) => unresolved(name, p),
        };
    }
    let slot_ok =
        field.is_multiple_of(8) && img.section_of(field, 8).is_some_and(|s| !s.exec && s.write);
    match img.word(field) {
        _ if !slot_ok => unresolved(
            format!("<key slot {field:#x}>"),
            format!("key slot {field:#x} is not an aligned word of writable data"),
        ),
        Word::External(n) => KeyRef {
            id: KeyId::External(n.clone()),
            name: n,
            external: true,
            problem: None,
        },
        Word::Addr(k) => KeyRef {
            id: KeyId::Addr(k),
            name: c.name(k),
            external: false,
            problem: c.key_problem(imp, k),
        },
        Word::Unreadable => unresolved(
            format!("<key slot {field:#x}>"),
            format!("key slot {field:#x} cannot be read"),
        ),
    }
}

/// Where a site is and what it should reach.
struct Place {
    site: u64,
    /// The entry's key field (a key, or a module's key slot).
    field: u64,
    flags: u64,
    /// The pointer a design that calls through its key must load: the key
    /// slot (a module's site) or the key, where it resolves.
    via: Option<u64>,
    /// The key's trampoline, for a design that has one.
    tramp: Option<u64>,
}

/// The form of the site's `bytes`, as its design describes them.
fn site_form(c: &Checker<'_, '_>, imp: Implementation, at: &Place, bytes: &[u8]) -> SiteForm {
    let design = imp.design();
    let tail = at.flags & TAIL as u64 != 0;
    let keyref = at.flags & KEYREF as u64 != 0;
    let target = match (classify(bytes, at.site as usize), tail) {
        (Slot::Call(t), false) | (Slot::Jmp(t), true) => Some(t as u64),
        _ => None,
    };
    match target {
        _ if design.site == SiteShape::LoadCallRax => {
            match (design.decode_site(at.site as usize, bytes, keyref), at.via) {
                (Some(Form::CallVia(p)), Some(v)) if p as u64 == v => SiteForm::CallThroughKey,
                _ => SiteForm::Unexpected,
            }
        }
        Some(t) if design.site == SiteShape::CallThunk && c.is_thunk(design, t) => {
            SiteForm::CallThunk
        }
        Some(t) if imp.patched() && Some(t) == at.tramp && tail => SiteForm::JmpTrampoline,
        Some(t) if imp.patched() && Some(t) == at.tramp => SiteForm::CallTrampoline,
        Some(t) if imp.patched() && keyref && c.is_near_stub(t, at.field) => SiteForm::CallNearStub,
        _ => SiteForm::Unexpected,
    }
}

/// What a site of `imp` at `at` should hold, in words.
fn expected(c: &Checker<'_, '_>, imp: Implementation, at: &Place) -> String {
    let keyref = at.flags & KEYREF as u64 != 0;
    match imp.design().site {
        SiteShape::LoadCallRax => match at.via {
            Some(v) if keyref => format!(
                "`mov rax, [rip + {v:#x}]; mov rax, [rax]; call rax` (through key slot {v:#x})"
            ),
            Some(v) => format!(
                "`mov rax, [rip + {v:#x}]; call rax` (through key {})",
                c.name(v)
            ),
            None => "a call through the key (which does not resolve)".to_owned(),
        },
        SiteShape::CallThunk => format!(
            "`call` the {} design's thunk ({} bytes: {})",
            imp.name(),
            imp.design().thunk.len(),
            hex(imp.design().thunk)
        ),
        SiteShape::CallTrampoline if keyref => {
            format!("`call` a near stub loading key slot {:#x}", at.field)
        }
        SiteShape::CallTrampoline => match at.tramp {
            Some(t) => format!("`call {}` ({t:#x}, the key's trampoline)", c.name(t)),
            None => "`call` the key's trampoline (the key has none)".to_owned(),
        },
    }
}

/// The names of an entry's flag bits.
fn flag_names(flags: u64) -> Vec<&'static str> {
    let mut v = Vec::new();
    if flags & TAIL as u64 != 0 {
        v.push("TAIL");
    }
    if flags & INIT as u64 != 0 {
        v.push("INIT");
    }
    if flags & KEYREF as u64 != 0 {
        v.push("KEYREF");
    }
    v
}
