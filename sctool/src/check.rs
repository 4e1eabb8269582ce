//! Reading and checking the static-call tables of one ELF file.
//!
//! The layout checked here is the one `impls/core` emits and the registry
//! checks at run time (see `docs/DESIGN.md`); its constants come from
//! `static-call-core` itself, so the two cannot drift apart, and every fact
//! about a design (its sections, registry, site shape, trampoline, thunk)
//! comes from its [`Design`] description. [`check`] goes in steps: tables
//! of no known design, each known table's entries ([`crate::entry`]), the
//! keys and their trampolines, trampolines no entry reaches, the summary.

use std::collections::{HashMap, HashSet};

use static_call_core::Design;
use static_call_core::insn::{RET5, SLOT_LEN, TRAMPOLINE_LEN, TRAMPOLINE_SIGNATURE};
use static_call_decode::{Slot, classify, decode, format_insn, hex};

use crate::elf::{Image, Word};
use crate::entry::{Entry, Seen, check_entry};
use crate::model::{
    Check, ENTRY_LEN, Finding, Implementation, Key, Report, SITES_PREFIX, Severity, Site, Summary,
    Table, Trampoline,
};

/// Offset of the trampoline pointer in a key.
pub(crate) const KEY_TRAMP: u64 = static_call_core::TRAMPOLINE_OFFSET as u64;
/// Offset of the registry pointer in a key.
const KEY_REGISTRY: u64 = static_call_core::REGISTRY_OFFSET as u64;
/// A key's alignment (the flag bits of an entry's key field rely on it).
const KEY_ALIGN: u64 = align_of::<static_call_core::RawKey>() as u64;

/// How a key is known while the tables are read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum KeyId {
    Addr(u64),
    External(String),
    /// A key field that resolves to nothing; one per entry.
    Unresolved(u64),
}

/// The file being checked, the registries found in it, and the findings
/// so far.
pub(crate) struct Checker<'i, 'a> {
    pub(crate) img: &'i Image<'a>,
    findings: Vec<Finding>,
    registries: HashMap<Implementation, u64>,
}

impl<'i, 'a> Checker<'i, 'a> {
    /// A checker of `img` for the implementations `all`, whose registries
    /// it looks up by symbol.
    fn new(img: &'i Image<'a>, all: &[Implementation]) -> Self {
        Checker {
            img,
            findings: Vec::new(),
            registries: all
                .iter()
                .filter_map(|&i| Some((i, img.symbol_addr(i.registry_symbol())?)))
                .collect(),
        }
    }

    pub(crate) fn find(&mut self, severity: Severity, check: Check, addr: u64, message: String) {
        self.findings.push(Finding {
            severity,
            check,
            addr,
            message,
        });
    }

    pub(crate) fn name(&self, addr: u64) -> String {
        self.img
            .describe(addr)
            .unwrap_or_else(|| format!("{addr:#x}"))
    }

    /// Why `k` is not a key of `imp`, if it is not.
    pub(crate) fn key_problem(&self, imp: Implementation, k: u64) -> Option<String> {
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
        let slot_form = classify(&bytes, t as usize);
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
    pub(crate) fn is_near_stub(&self, t: u64, slot: u64) -> bool {
        let want = static_call_core::near_stub(t as usize, slot as usize);
        let got = self.img.bytes(t, static_call_core::STUB_LEN);
        matches!((want, got), (Some(w), Some(g)) if w[..] == g[..])
            && self.img.section_of(t, 1).is_some_and(|s| s.exec)
    }

    /// Whether `t` is the code of `design`'s thunk ([`Design::thunk`]):
    /// the registry's, or a module's copy of its bytes.
    pub(crate) fn is_thunk(&self, design: &Design, t: u64) -> bool {
        !design.thunk.is_empty()
            && self
                .img
                .bytes(t, design.thunk.len())
                .is_some_and(|b| b == design.thunk)
            && self.img.section_of(t, 1).is_some_and(|s| s.exec)
    }
}

/// Checks the static-call tables of a parsed file, `path` naming it.
pub fn check(path: &str, img: &Image<'_>) -> Report {
    let all = Implementation::all();
    let mut c = Checker::new(img, &all);
    c.unknown_tables(&all);
    let mut seen = Seen::default();
    let mut sites = Vec::new();
    let tables: Vec<Table> = all
        .iter()
        .filter_map(|&imp| c.table(imp, &mut seen, &mut sites))
        .collect();
    let (mut keys, found) = c.keys(&seen, &sites);
    keys.extend(c.keys_without_sites(&all, &found));
    keys.sort_by(|a, b| {
        (a.implementation, &a.name, a.addr).cmp(&(b.implementation, &b.name, b.addr))
    });
    let mut findings = std::mem::take(&mut c.findings);
    findings.sort_by(|a, b| (b.severity, a.addr).cmp(&(a.severity, b.addr)));
    Report {
        file: path.to_owned(),
        kind: img.kind.to_owned(),
        summary: summarize(&tables, &keys, &sites, &findings),
        tables,
        keys,
        sites,
        findings,
    }
}

impl Checker<'_, '_> {
    /// A `static_call_sites_*` table of no design on the list is an error:
    /// its sites would go unverified.
    fn unknown_tables(&mut self, all: &[Implementation]) {
        let img = self.img;
        for sec in &img.sections {
            if sec.name.starts_with(SITES_PREFIX)
                && !all.iter().any(|i| i.sites_section() == sec.name)
            {
                self.find(
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
    }

    /// Reads `imp`'s site table, if the file has one, checking each entry
    /// into `sites`.
    fn table(
        &mut self,
        imp: Implementation,
        seen: &mut Seen,
        sites: &mut Vec<Site>,
    ) -> Option<Table> {
        let img = self.img;
        let sec = img.section(imp.sites_section())?.clone();
        let init = img
            .section(imp.init_section())
            .map(|s| (s.addr, s.addr.saturating_add(s.size)));
        if !sec.in_file() {
            self.find(
                Severity::Error,
                Check::TableSize,
                sec.addr,
                format!("{}: the table has no bytes in the file", sec.name),
            );
            return None;
        }
        let n = sec.size / ENTRY_LEN;
        if !sec.size.is_multiple_of(ENTRY_LEN) {
            self.find(
                Severity::Error,
                Check::TableSize,
                sec.addr,
                format!(
                    "{}: {} bytes is not a whole number of {ENTRY_LEN}-byte entries",
                    sec.name, sec.size
                ),
            );
        }
        for i in 0..n {
            let entry = sec.addr.wrapping_add(i * ENTRY_LEN);
            let (Some(site_rel), Some(key_rel)) =
                (img.i32_at(entry), img.i32_at(entry.wrapping_add(4)))
            else {
                self.find(
                    Severity::Error,
                    Check::TableSize,
                    entry,
                    format!("{}: entry {entry:#x} cannot be read", sec.name),
                );
                continue;
            };
            let e = Entry {
                imp,
                entry,
                site_rel,
                key_rel,
                init,
            };
            sites.push(check_entry(self, &e, seen));
        }
        Some(Table {
            implementation: imp,
            section: sec.name.clone(),
            addr: sec.addr,
            entries: n as usize,
            init_text: init,
        })
    }

    /// The keys the entries named, each with its trampoline (checked) and
    /// its sites; and the trampolines found that way.
    fn keys(&mut self, seen: &Seen, sites: &[Site]) -> (Vec<Key>, HashSet<u64>) {
        let img = self.img;
        let mut found = HashSet::new();
        let mut out = Vec::new();
        for ((imp, id), (name, external)) in &seen.keys {
            let addr = match id {
                KeyId::Addr(a) => Some(*a),
                _ => None,
            };
            let mut trampoline = None;
            if let Some(k) = addr {
                match (imp.patched(), img.word(k.wrapping_add(KEY_TRAMP))) {
                    (true, Word::Addr(t)) if t != 0 => {
                        found.insert(t);
                        trampoline = Some(self.trampoline(k, t));
                    }
                    (true, w) => self.find(
                        Severity::Error,
                        Check::KeyWithoutTrampoline,
                        k,
                        format!(
                            "key {name} ({k:#x}) of {} has no trampoline (its trampoline field holds {w:?})",
                            imp.name()
                        ),
                    ),
                    (false, Word::Addr(0)) => {}
                    (false, w) => self.find(
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
            out.push(Key {
                implementation: *imp,
                addr,
                name: name.clone(),
                external: *external,
                trampoline,
                sites: places.len(),
                places: places.into_iter().map(|p| p.1).collect(),
            });
        }
        (out, found)
    }

    /// Keys without sites: the trampolines (`…::__tramp` functions) no
    /// entry led to, checked, with the key their back-reference names.
    fn keys_without_sites(&mut self, all: &[Implementation], found: &HashSet<u64>) -> Vec<Key> {
        let img = self.img;
        let mut out = Vec::new();
        for f in &img.functions {
            if !f.raw.contains("__tramp") || found.contains(&f.addr) {
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
                .find(|&i| self.registries.contains_key(&i) && self.key_problem(i, k).is_none());
            let t = self.trampoline(k, f.addr);
            if let Some(imp) = imp {
                out.push(Key {
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
        out
    }
}

/// The counts of a report.
fn summarize(tables: &[Table], keys: &[Key], sites: &[Site], findings: &[Finding]) -> Summary {
    let mut summary = Summary {
        tables: tables.len(),
        keys: keys.len(),
        sites: sites.len(),
        init_sites: sites.iter().filter(|s| s.init_text).count(),
        cache_line_crossing: sites.iter().filter(|s| s.crosses_cache_line).count(),
        ..Summary::default()
    };
    for s in sites {
        *summary
            .sites_per_implementation
            .entry(s.implementation)
            .or_default() += 1;
    }
    for f in findings {
        match f.severity {
            Severity::Error => summary.errors += 1,
            Severity::Warning => summary.warnings += 1,
            Severity::Info => summary.infos += 1,
        }
    }
    summary
}
