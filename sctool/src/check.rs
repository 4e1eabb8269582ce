//! Reading and checking the static-call tables of one ELF file.
//!
//! The layout checked here is the one `impls/core` emits and the registry
//! checks at run time (see `docs/DESIGN.md`); its constants come from
//! `static-call-core` itself, so the two cannot drift apart.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use static_call_core::insn::Form;
use static_call_core::insn::{RET5, SLOT_LEN, TRAMPOLINE_LEN, TRAMPOLINE_SIGNATURE};
use static_call_core::site::{INIT, KEYREF, TAIL};
use static_call_core::{Design, SiteShape};

use crate::decode::{Slot, classify, decode, format_insn, hex};
use crate::elf::{Image, Word};

/// Bytes of one site-table entry: `{ site: i32, key: i32 }`.
pub const ENTRY_LEN: u64 = 8;
/// Offset of the trampoline pointer in a key.
const KEY_TRAMP: u64 = static_call_core::TRAMPOLINE_OFFSET as u64;
/// Offset of the registry pointer in a key.
const KEY_REGISTRY: u64 = static_call_core::REGISTRY_OFFSET as u64;
/// A key's alignment (the flag bits of an entry's key field rely on it).
const KEY_ALIGN: u64 = align_of::<static_call_core::RawKey>() as u64;
/// The retpoline thunk every indirect site calls (`retpoline_rax` of
/// `static-call-indirect`): `call 1f; 2: pause; lfence; jmp 2b; 1: mov
/// [rsp], rax; ret`.
pub const RETPOLINE: [u8; 17] = [
    0xe8, 0x07, 0x00, 0x00, 0x00, 0xf3, 0x90, 0x0f, 0xae, 0xe8, 0xeb, 0xf9, 0x48, 0x89, 0x04, 0x24,
    0xc3,
];
/// A cache line, for the crossing check.
pub const CACHE_LINE: u64 = 64;

/// An implementation, as its design's description ([`Design`]) tells
/// where it keeps its tables and what its sites and keys hold. Ordered and
/// serialised by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Implementation(&'static Design);

impl Serialize for Implementation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl PartialOrd for Implementation {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Implementation {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.name, self.0.sites_section).cmp(&(other.0.name, other.0.sites_section))
    }
}

/// The designs sctool checks: every implementation in the workspace's one
/// list (`static_call_implementations::implementations!`), each through
/// the description its registry carries.
fn known_designs() -> Vec<&'static Design> {
    macro_rules! designs {
        ($(($m:ident, $krate:path, $name:literal))*) => {
            vec![$({ use $krate as sc; sc::__private::REGISTRY.design() }),*]
        };
    }
    static_call_implementations::implementations!(designs)
}

impl Implementation {
    /// An implementation described by `design`.
    pub fn new(design: &'static Design) -> Implementation {
        Implementation(design)
    }

    /// Every implementation sctool knows (the workspace's list).
    pub fn all() -> Vec<Implementation> {
        known_designs().into_iter().map(Implementation).collect()
    }

    /// Its description.
    pub fn design(self) -> &'static Design {
        self.0
    }

    /// Its short name.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// Its site-table section.
    pub fn sites_section(self) -> &'static str {
        self.0.sites_section
    }

    /// Its init-text section.
    pub fn init_section(self) -> &'static str {
        self.0.init_section
    }

    /// The demangled name of its registry static.
    pub fn registry_symbol(self) -> &'static str {
        self.0.registry_symbol
    }

    /// Whether its keys have a trampoline.
    pub fn patched(self) -> bool {
        self.0.trampoline
    }
}

/// The prefix of every site-table section; one sctool does not know is an
/// error ([`Check::UnknownTable`]).
pub const SITES_PREFIX: &str = "static_call_sites_";

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is wrong.
    Info,
    /// Suspicious, but the registry would accept it.
    Warning,
    /// The registry would refuse it, or patch the wrong bytes.
    Error,
}

impl Severity {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Which check a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// A table whose size is not a whole number of entries.
    TableSize,
    /// An entry whose site does not lie in executable text.
    SiteOutsideText,
    /// Two entries for the same site.
    DuplicateEntry,
    /// A site whose instruction is not the expected unpatched form.
    UnexpectedSite,
    /// An entry whose key field does not resolve to a key of its
    /// implementation.
    UnresolvedKey,
    /// A key of a patched implementation without a trampoline.
    KeyWithoutTrampoline,
    /// A trampoline whose slot is not `jmp rel32` or `ret`.
    TrampolineSlot,
    /// A trampoline without the `ud1` signature.
    TrampolineSignature,
    /// A trampoline whose back-reference does not name its key.
    TrampolineBackReference,
    /// A flag bit no macro emits ([`TAIL`]), or [`INIT`] set outside init
    /// text.
    Flags,
    /// A site whose 5 bytes cross a cache line.
    CacheLine,
    /// A key without a trampoline whose trampoline field is not null.
    IndirectTrampoline,
    /// A `static_call_sites_*` table of no implementation sctool knows:
    /// its sites are unverified.
    UnknownTable,
}

impl Check {
    /// Its kebab-case name, as in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Check::TableSize => "table-size",
            Check::SiteOutsideText => "site-outside-text",
            Check::DuplicateEntry => "duplicate-entry",
            Check::UnexpectedSite => "unexpected-site",
            Check::UnresolvedKey => "unresolved-key",
            Check::KeyWithoutTrampoline => "key-without-trampoline",
            Check::TrampolineSlot => "trampoline-slot",
            Check::TrampolineSignature => "trampoline-signature",
            Check::TrampolineBackReference => "trampoline-back-reference",
            Check::Flags => "flags",
            Check::CacheLine => "cache-line",
            Check::IndirectTrampoline => "indirect-trampoline",
            Check::UnknownTable => "unknown-table",
        }
    }
}

/// One problem (or remark) about the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// Which check.
    pub check: Check,
    /// The address concerned (entry, site, key or trampoline).
    pub addr: u64,
    /// What was found, where, and what was expected.
    pub message: String,
}

/// One implementation's site table.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Whose table.
    pub implementation: Implementation,
    /// The section.
    pub section: String,
    /// Its address.
    pub addr: u64,
    /// Its entries.
    pub entries: usize,
    /// The implementation's init text, if the file has some.
    pub init_text: Option<(u64, u64)>,
}

/// A trampoline, decoded.
#[derive(Debug, Clone, Serialize)]
pub struct Trampoline {
    /// Its address.
    pub addr: u64,
    /// Its symbol.
    pub symbol: Option<String>,
    /// Its 12 bytes (fewer where the file ends).
    pub bytes: String,
    /// The slot's instruction, with the name of its target.
    pub slot: String,
    /// Whether the slot is `jmp rel32` or `ret`.
    pub slot_ok: bool,
    /// The 3 signature bytes.
    pub signature: String,
    /// Whether they are `0f b9 cc` (`ud1 ecx, esp`).
    pub signature_ok: bool,
    /// The key the back-reference names.
    pub back_ref: Option<u64>,
    /// Whether it names this trampoline's key.
    pub back_ref_ok: bool,
}

/// One key and its sites.
#[derive(Debug, Clone, Serialize)]
pub struct Key {
    /// Its implementation.
    pub implementation: Implementation,
    /// Its address (`None` for a key another object defines, or one that
    /// does not resolve).
    pub addr: Option<u64>,
    /// Its name: the symbol, demangled; the dynamic symbol for a key of
    /// another object.
    pub name: String,
    /// Defined in another object (a module's key slot names it).
    pub external: bool,
    /// Its trampoline (patched implementations, keys of this file).
    pub trampoline: Option<Trampoline>,
    /// Its sites in this file.
    pub sites: usize,
    /// Where they are: function + offset, in address order.
    pub places: Vec<String>,
}

/// What a site holds, measured against what its implementation emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SiteForm {
    /// `call` the key's trampoline.
    CallTrampoline,
    /// `call` a module's near stub for the key.
    CallNearStub,
    /// `call` a retpoline thunk.
    CallRetpoline,
    /// `jmp` the key's trampoline (a [`TAIL`] site).
    JmpTrampoline,
    /// Load the key's pointer (a module: through its key slot) and `call`
    /// it: `mov rax, [rip + key]; call rax`.
    CallThroughKey,
    /// Anything else.
    Unexpected,
}

impl SiteForm {
    /// Short description.
    pub fn name(self) -> &'static str {
        match self {
            SiteForm::CallTrampoline => "call trampoline",
            SiteForm::CallNearStub => "call near stub",
            SiteForm::CallRetpoline => "call retpoline",
            SiteForm::JmpTrampoline => "jmp trampoline",
            SiteForm::CallThroughKey => "call through key",
            SiteForm::Unexpected => "UNEXPECTED",
        }
    }
}

/// One site-table entry and the site it names.
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    /// Its implementation.
    pub implementation: Implementation,
    /// The entry's address.
    pub entry: u64,
    /// The site's address.
    pub addr: u64,
    /// Function + offset.
    pub place: Option<String>,
    /// The key's name (as in [`Key::name`]).
    pub key: String,
    /// The key's address, where it resolves in this file.
    pub key_addr: Option<u64>,
    /// The site's 5 bytes (empty outside the file).
    pub bytes: String,
    /// The instruction found, with the name of its target.
    pub insn: String,
    /// Its form.
    pub form: SiteForm,
    /// Whether that is the expected unpatched form.
    pub expected: bool,
    /// The entry's flags (`TAIL`, `INIT`, `KEYREF`).
    pub flags: Vec<&'static str>,
    /// Whether the site lies in its implementation's init text.
    pub init_text: bool,
    /// Whether its 5 bytes cross a 64-byte cache line.
    pub crosses_cache_line: bool,
    /// Whether the key field resolves to a key (or, in a module, to a
    /// key slot naming another object's key).
    pub key_resolves: bool,
}

/// Counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Site tables found.
    pub tables: usize,
    /// Keys with sites or trampolines.
    pub keys: usize,
    /// Site-table entries.
    pub sites: usize,
    /// Entries per implementation.
    pub sites_per_implementation: BTreeMap<Implementation, usize>,
    /// Sites in init text.
    pub init_sites: usize,
    /// Sites whose 5 bytes cross a cache line.
    pub cache_line_crossing: usize,
    /// Findings of severity error.
    pub errors: usize,
    /// Findings of severity warning.
    pub warnings: usize,
    /// Findings of severity info.
    pub infos: usize,
}

/// Everything `sctool check` says about one file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The path checked.
    pub file: String,
    /// What kind of ELF file.
    pub kind: String,
    /// The site tables found.
    pub tables: Vec<Table>,
    /// The keys, by implementation then name.
    pub keys: Vec<Key>,
    /// Every entry, by implementation then site address.
    pub sites: Vec<Site>,
    /// Problems and remarks, errors first.
    pub findings: Vec<Finding>,
    /// Counts.
    pub summary: Summary,
}

impl Report {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.summary.errors > 0
    }
}

/// How a key is known while the tables are read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum KeyId {
    Addr(u64),
    External(String),
    /// A key field that resolves to nothing; one per entry.
    Unresolved(u64),
}

struct Checker<'i, 'a> {
    img: &'i Image<'a>,
    findings: Vec<Finding>,
    registries: HashMap<Implementation, u64>,
}

impl Checker<'_, '_> {
    fn find(&mut self, severity: Severity, check: Check, addr: u64, message: String) {
        self.findings.push(Finding {
            severity,
            check,
            addr,
            message,
        });
    }

    fn name(&self, addr: u64) -> String {
        self.img
            .describe(addr)
            .unwrap_or_else(|| format!("{addr:#x}"))
    }

    /// Why `k` is not a key of `imp`, if it is not.
    fn key_problem(&self, imp: Implementation, k: u64) -> Option<String> {
        if !k.is_multiple_of(KEY_ALIGN) {
            return Some(format!("{k:#x} is not {KEY_ALIGN}-byte aligned"));
        }
        let Some(sec) = self.img.section_of(k, 24) else {
            return Some(format!("{k:#x} lies outside every mapped section"));
        };
        if sec.exec || !sec.write {
            return Some(format!("{k:#x} lies in {}, not in writable data", sec.name));
        }
        let want = *self.registries.get(&imp)?;
        match self.img.word(k.wrapping_add(KEY_REGISTRY)) {
            Word::Addr(r) if r == want => None,
            Word::Addr(r) => {
                let other = self
                    .registries
                    .iter()
                    .find(|&(_, &a)| a == r)
                    .map(|(i, _)| format!("a key of {}", i.name()));
                Some(format!(
                    "{k:#x} ({}) is {}, not a key of {} (its registry field holds {r:#x})",
                    self.name(k),
                    other.unwrap_or_else(|| "not a key".into()),
                    imp.name()
                ))
            }
            w => Some(format!(
                "{k:#x}: the registry field holds {w:?}, not {}",
                imp.registry_symbol()
            )),
        }
    }

    fn trampoline(&mut self, key: u64, t: u64) -> Trampoline {
        let bytes = self.img.bytes_upto(t, TRAMPOLINE_LEN);
        let in_text = self
            .img
            .section_of(t, TRAMPOLINE_LEN as u64)
            .is_some_and(|s| s.exec);
        let slot_form = classify(&bytes, t);
        let slot = decode(&bytes[..bytes.len().min(SLOT_LEN)], t)
            .first()
            .map(|i| format_insn(i, |a| self.img.describe(a)))
            .unwrap_or_default();
        let slot_ok = in_text
            && match slot_form {
                Slot::Jmp(_) => true,
                Slot::Ret => bytes.get(..SLOT_LEN) == Some(&RET5[..]),
                _ => false,
            };
        let sig = bytes.get(SLOT_LEN..SLOT_LEN + 3).unwrap_or(&[]);
        let signature_ok = sig == TRAMPOLINE_SIGNATURE;
        let back_ref = bytes.get(8..12).and_then(|b| b.try_into().ok()).map(|b| {
            t.wrapping_add(8)
                .wrapping_add_signed(i32::from_le_bytes(b) as i64)
        });
        let back_ref_ok = back_ref == Some(key);
        let tn = self.name(t);
        let kn = self.name(key);
        if !in_text {
            self.find(
                Severity::Error,
                Check::TrampolineSlot,
                t,
                format!("trampoline {t:#x} of key {kn} does not lie in executable text (12 bytes)"),
            );
        } else if !slot_ok {
            self.find(
                Severity::Error,
                Check::TrampolineSlot,
                t,
                format!(
                    "trampoline {tn} ({t:#x}) of key {kn}: slot holds `{slot}` ({}), expected `jmp rel32` or `ret` (c3 cc cc cc cc)",
                    hex(&bytes[..bytes.len().min(SLOT_LEN)])
                ),
            );
        }
        if in_text && !signature_ok {
            self.find(
                Severity::Error,
                Check::TrampolineSignature,
                t.wrapping_add(SLOT_LEN as u64),
                format!(
                    "trampoline {tn} ({t:#x}) of key {kn}: signature is {}, expected 0f b9 cc (ud1 ecx, esp); the registry refuses to write it",
                    hex(sig)
                ),
            );
        }
        if in_text && !back_ref_ok {
            self.find(
                Severity::Error,
                Check::TrampolineBackReference,
                t.wrapping_add(8),
                format!(
                    "trampoline {tn} ({t:#x}): back-reference names {}, expected its key {kn} ({key:#x}); the registry refuses to write it",
                    back_ref.map_or("nothing".into(), |b| format!("{} ({b:#x})", self.name(b)))
                ),
            );
        }
        Trampoline {
            addr: t,
            symbol: self.img.describe(t),
            bytes: hex(&bytes),
            slot,
            slot_ok,
            signature: hex(sig),
            signature_ok,
            back_ref,
            back_ref_ok,
        }
    }

    /// Whether `t` is a near stub that loads `slot`.
    fn is_near_stub(&self, t: u64, slot: u64) -> bool {
        let want = static_call_core::near_stub(t as usize, slot as usize);
        let got = self.img.bytes(t, static_call_core::STUB_LEN);
        matches!((want, got), (Some(w), Some(g)) if w[..] == g[..])
            && self.img.section_of(t, 1).is_some_and(|s| s.exec)
    }

    fn is_retpoline(&self, t: u64) -> bool {
        self.img
            .bytes(t, RETPOLINE.len())
            .is_some_and(|b| b[..] == RETPOLINE)
            && self.img.section_of(t, 1).is_some_and(|s| s.exec)
    }
}

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

/// Checks the static-call tables of a parsed file, `path` naming it.
pub fn check(path: &str, img: &Image<'_>) -> Report {
    let mut c = Checker {
        img,
        findings: Vec::new(),
        registries: Implementation::all()
            .iter()
            .filter_map(|&i| Some((i, img.symbol_addr(i.registry_symbol())?)))
            .collect(),
    };
    let all = Implementation::all();
    for sec in &img.sections {
        if sec.name.starts_with(SITES_PREFIX) && !all.iter().any(|i| i.sites_section() == sec.name)
        {
            c.find(
                Severity::Error,
                Check::UnknownTable,
                sec.addr,
                format!(
                    "{}: a site table of no implementation sctool knows ({}); its {} bytes of entries are unverified (describe the design through static_call_core::Design and add it to the implementations list)",
                    sec.name,
                    all.iter().map(|i| i.name()).collect::<Vec<_>>().join(", "),
                    sec.size
                ),
            );
        }
    }
    let mut tables = Vec::new();
    let mut sites: Vec<Site> = Vec::new();
    // (implementation, key) -> (name, external, trampoline, sites)
    let mut keys: BTreeMap<(Implementation, KeyId), (String, bool)> = BTreeMap::new();
    let mut seen: HashMap<u64, (Implementation, u64)> = HashMap::new();
    for imp in all.iter().copied() {
        let Some(sec) = img.section(imp.sites_section()).cloned() else {
            continue;
        };
        let init = img
            .section(imp.init_section())
            .map(|s| (s.addr, s.addr.saturating_add(s.size)));
        if !sec.in_file() {
            c.find(
                Severity::Error,
                Check::TableSize,
                sec.addr,
                format!("{}: the table has no bytes in the file", sec.name),
            );
            continue;
        }
        let n = sec.size / ENTRY_LEN;
        if !sec.size.is_multiple_of(ENTRY_LEN) {
            c.find(
                Severity::Error,
                Check::TableSize,
                sec.addr,
                format!(
                    "{}: {} bytes is not a whole number of {ENTRY_LEN}-byte entries",
                    sec.name, sec.size
                ),
            );
        }
        tables.push(Table {
            implementation: imp,
            section: sec.name.clone(),
            addr: sec.addr,
            entries: n as usize,
            init_text: init,
        });
        for i in 0..n {
            let entry = sec.addr.wrapping_add(i * ENTRY_LEN);
            let (Some(site_rel), Some(key_rel)) =
                (img.i32_at(entry), img.i32_at(entry.wrapping_add(4)))
            else {
                c.find(
                    Severity::Error,
                    Check::TableSize,
                    entry,
                    format!("{}: entry {entry:#x} cannot be read", sec.name),
                );
                continue;
            };
            sites.push(check_entry(
                &mut c, imp, entry, site_rel, key_rel, init, &mut keys, &mut seen,
            ));
        }
    }
    // Trampolines no table points at: keys without sites.
    let mut found_tramps: HashSet<u64> = HashSet::new();
    let mut key_list = Vec::new();
    for ((imp, id), (name, external)) in &keys {
        let addr = match id {
            KeyId::Addr(a) => Some(*a),
            _ => None,
        };
        let mut trampoline = None;
        if let Some(k) = addr {
            match (imp.patched(), img.word(k.wrapping_add(KEY_TRAMP))) {
                (true, Word::Addr(t)) if t != 0 => {
                    found_tramps.insert(t);
                    trampoline = Some(c.trampoline(k, t));
                }
                (true, w) => c.find(
                    Severity::Error,
                    Check::KeyWithoutTrampoline,
                    k,
                    format!(
                        "key {name} ({k:#x}) of {} has no trampoline (its trampoline field holds {w:?})",
                        imp.name()
                    ),
                ),
                (false, Word::Addr(0)) => {}
                (false, w) => c.find(
                    Severity::Warning,
                    Check::IndirectTrampoline,
                    k,
                    format!("{} key {name} ({k:#x}): trampoline field holds {w:?}, expected null (the design has no trampoline)", imp.name()),
                ),
            }
        }
        let mut places: Vec<(u64, String)> = sites
            .iter()
            .filter(|s| s.implementation == *imp && s.key == *name && s.key_addr == addr)
            .map(|s| {
                (
                    s.addr,
                    s.place.clone().unwrap_or_else(|| format!("{:#x}", s.addr)),
                )
            })
            .collect();
        places.sort();
        key_list.push(Key {
            implementation: *imp,
            addr,
            name: name.clone(),
            external: *external,
            trampoline,
            sites: places.len(),
            places: places.into_iter().map(|p| p.1).collect(),
        });
    }
    for f in &img.functions {
        if !f.raw.contains("__tramp") || found_tramps.contains(&f.addr) {
            continue;
        }
        let name = f.name();
        let Some(key_name) = name.strip_suffix("::__tramp") else {
            continue;
        };
        let Some(b) = img.i32_at(f.addr.wrapping_add(8)) else {
            continue;
        };
        let k = f.addr.wrapping_add(8).wrapping_add_signed(b as i64);
        let imp = all
            .iter()
            .copied()
            .find(|&i| c.registries.contains_key(&i) && c.key_problem(i, k).is_none());
        let t = c.trampoline(k, f.addr);
        if let Some(imp) = imp {
            key_list.push(Key {
                implementation: imp,
                addr: Some(k),
                name: key_name.to_owned(),
                external: false,
                trampoline: Some(t),
                sites: 0,
                places: Vec::new(),
            });
        }
    }
    key_list.sort_by(|a, b| {
        (a.implementation, &a.name, a.addr).cmp(&(b.implementation, &b.name, b.addr))
    });
    let mut findings = std::mem::take(&mut c.findings);
    findings.sort_by(|a, b| (b.severity, a.addr).cmp(&(a.severity, b.addr)));
    let mut summary = Summary {
        tables: tables.len(),
        keys: key_list.len(),
        sites: sites.len(),
        init_sites: sites.iter().filter(|s| s.init_text).count(),
        cache_line_crossing: sites.iter().filter(|s| s.crosses_cache_line).count(),
        ..Summary::default()
    };
    for s in &sites {
        *summary
            .sites_per_implementation
            .entry(s.implementation)
            .or_default() += 1;
    }
    for f in &findings {
        match f.severity {
            Severity::Error => summary.errors += 1,
            Severity::Warning => summary.warnings += 1,
            Severity::Info => summary.infos += 1,
        }
    }
    Report {
        file: path.to_owned(),
        kind: img.kind.to_owned(),
        tables,
        keys: key_list,
        sites,
        findings,
        summary,
    }
}

#[allow(clippy::too_many_arguments)]
fn check_entry(
    c: &mut Checker<'_, '_>,
    imp: Implementation,
    entry: u64,
    site_rel: i32,
    key_rel: i32,
    init: Option<(u64, u64)>,
    keys: &mut BTreeMap<(Implementation, KeyId), (String, bool)>,
    seen: &mut HashMap<u64, (Implementation, u64)>,
) -> Site {
    let img = c.img;
    let site = entry.wrapping_add_signed(site_rel as i64);
    let key_word = entry.wrapping_add_signed(key_rel as i64);
    let flags = key_word & 7;
    let field = key_word & !7;
    // The key: directly, or through a module's key slot.
    let (id, key_name, external, key_problem) = if flags & KEYREF as u64 != 0 {
        let slot_ok =
            field.is_multiple_of(8) && img.section_of(field, 8).is_some_and(|s| !s.exec && s.write);
        match img.word(field) {
            _ if !slot_ok => (
                KeyId::Unresolved(entry),
                format!("<key slot {field:#x}>"),
                false,
                Some(format!(
                    "key slot {field:#x} is not an aligned word of writable data"
                )),
            ),
            Word::External(n) => (KeyId::External(n.clone()), n, true, None),
            Word::Addr(k) => {
                let p = c.key_problem(imp, k);
                (KeyId::Addr(k), c.name(k), false, p)
            }
            Word::Unreadable => (
                KeyId::Unresolved(entry),
                format!("<key slot {field:#x}>"),
                false,
                Some(format!("key slot {field:#x} cannot be read")),
            ),
        }
    } else {
        let p = c.key_problem(imp, field);
        let name = img
            .object_at(field)
            .map(|s| s.name())
            .unwrap_or_else(|| c.name(field));
        match p {
            None => (KeyId::Addr(field), name, false, None),
            Some(p) => (KeyId::Unresolved(entry), name, false, Some(p)),
        }
    };
    if let Some(p) = &key_problem {
        c.find(
            Severity::Error,
            Check::UnresolvedKey,
            entry,
            format!("{} entry {entry:#x} (site {site:#x}): the key field does not resolve to a key: {p}", imp.name()),
        );
    }
    let key_addr = match &id {
        KeyId::Addr(a) => Some(*a),
        _ => None,
    };
    keys.entry((imp, id))
        .or_insert((key_name.clone(), external));
    let init_text = init.is_some_and(|(a, b)| site >= a && site < b);
    let crosses_cache_line =
        site / CACHE_LINE != site.wrapping_add(SLOT_LEN as u64 - 1) / CACHE_LINE;
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
        key_resolves: key_problem.is_none(),
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
    let keyref = flags & KEYREF as u64 != 0;
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
    if let Some((_, (other, e))) = seen.get_key_value(&site) {
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
        seen.insert(site, (imp, entry));
    }
    let bytes = img.bytes_upto(site, 15);
    s.bytes = hex(&bytes[..bytes.len().min(site_len)]);
    s.insn = decode(&bytes, site)
        .first()
        .map(|i| format_insn(i, |a| img.describe(a)))
        .unwrap_or_default();
    let tail = flags & TAIL as u64 != 0;
    let tramp = key_addr.and_then(|k| match img.word(k.wrapping_add(KEY_TRAMP)) {
        Word::Addr(t) if t != 0 && imp.patched() => Some(t),
        _ => None,
    });
    let target = match (classify(&bytes, site), tail) {
        (Slot::Call(t), false) | (Slot::Jmp(t), true) => Some(t),
        _ => None,
    };
    let shape = imp.design().site;
    let via = if keyref { Some(field) } else { key_addr };
    s.form = match target {
        _ if shape == SiteShape::LoadCallRax => {
            match (imp.design().decode_site(site as usize, &bytes, keyref), via) {
                (Some(Form::CallVia(p)), Some(v)) if p as u64 == v => SiteForm::CallThroughKey,
                _ => SiteForm::Unexpected,
            }
        }
        Some(t) if shape == SiteShape::CallThunk && c.is_retpoline(t) => SiteForm::CallRetpoline,
        Some(t) if imp.patched() && Some(t) == tramp && tail => SiteForm::JmpTrampoline,
        Some(t) if imp.patched() && Some(t) == tramp => SiteForm::CallTrampoline,
        Some(t) if imp.patched() && flags & KEYREF as u64 != 0 && c.is_near_stub(t, field) => {
            SiteForm::CallNearStub
        }
        _ => SiteForm::Unexpected,
    };
    s.expected = s.form != SiteForm::Unexpected;
    if !s.expected {
        let want = match (imp.patched(), flags & KEYREF as u64 != 0) {
            _ if shape == SiteShape::LoadCallRax => match via {
                Some(v) if keyref => format!(
                    "`mov rax, [rip + {v:#x}]; mov rax, [rax]; call rax` (through key slot {v:#x})"
                ),
                Some(v) => format!(
                    "`mov rax, [rip + {v:#x}]; call rax` (through key {})",
                    c.name(v)
                ),
                None => "a call through the key (which does not resolve)".to_owned(),
            },
            (false, _) => "`call` a retpoline thunk".to_owned(),
            (true, true) => format!("`call` a near stub loading key slot {field:#x}"),
            (true, false) => match tramp {
                Some(t) => format!("`call {}` ({t:#x}, the key's trampoline)", c.name(t)),
                None => "`call` the key's trampoline (the key has none)".to_owned(),
            },
        };
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
