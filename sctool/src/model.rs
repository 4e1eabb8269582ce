//! What `sctool check` reports: the implementations it knows (each through
//! its design's description), the tables, keys, sites and trampolines it
//! read, and its findings.

use std::collections::BTreeMap;

use serde::Serialize;
use static_call_core::Design;

/// Bytes of one site-table entry: `{ site: i32, key: i32 }`.
pub const ENTRY_LEN: u64 = 8;
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
    /// A flag bit no macro emits ([`TAIL`](static_call_core::site::TAIL)), or [`INIT`](static_call_core::site::INIT) set outside init
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
    /// `call` the design's thunk ([`Design::thunk`]: the indirect
    /// design's retpoline), or a copy of its bytes.
    CallThunk,
    /// `jmp` the key's trampoline (a [`TAIL`](static_call_core::site::TAIL) site).
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
            SiteForm::CallThunk => "call thunk",
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
