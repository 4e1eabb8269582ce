//! What this tool needs of an ELF file, read with the `object` crate:
//! sections by address, function and data symbols, and the dynamic
//! relocations that fill pointer fields at load time.
//!
//! Addresses are link-time virtual addresses (as `readelf` shows them).

use std::collections::HashMap;

use object::{
    Architecture, Object, ObjectKind, ObjectSection, ObjectSymbol, ObjectSymbolTable,
    RelocationFlags, RelocationTarget, SectionFlags, SectionKind, SymbolKind,
};

use crate::error::Error;

/// `R_X86_64_64`: symbol + addend.
const R_X86_64_64: u32 = 1;
/// `R_X86_64_GLOB_DAT`: symbol.
const R_X86_64_GLOB_DAT: u32 = 6;
/// `R_X86_64_RELATIVE`: load base + addend.
const R_X86_64_RELATIVE: u32 = 8;

/// One section of the file.
#[derive(Debug, Clone)]
pub struct Section {
    /// Its name.
    pub name: String,
    /// Link-time address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Holds code (`SHF_EXECINSTR`).
    pub exec: bool,
    /// Writable (`SHF_WRITE`).
    pub write: bool,
    /// Mapped at run time (`SHF_ALLOC`).
    pub alloc: bool,
    /// Where its bytes are in the file (`None` for `.bss`-like sections).
    file_range: Option<(u64, u64)>,
}

impl Section {
    /// Whether its bytes are stored in the file (not `.bss`-like).
    pub fn in_file(&self) -> bool {
        self.file_range.is_some()
    }

    /// Whether `addr..addr + len` lies inside this section.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.addr
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= self.addr.saturating_add(self.size))
    }
}

/// A symbol with an address.
#[derive(Debug, Clone)]
pub struct Symbol {
    /// Link-time address.
    pub addr: u64,
    /// Size in bytes (0 when unknown).
    pub size: u64,
    /// The name as stored (mangled).
    pub raw: String,
}

impl Symbol {
    /// The demangled name, without the hash.
    pub fn name(&self) -> String {
        demangle(&self.raw)
    }
}

/// Demangles a Rust symbol name (without the hash); other names are
/// returned as they are.
pub fn demangle(raw: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(raw))
}

/// What a pointer-sized field holds once the dynamic linker has run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    /// An address in this file (raw bytes, or a relative relocation).
    Addr(u64),
    /// A symbol another object defines (a relocation naming it).
    External(String),
    /// The field lies outside the file's sections.
    Unreadable,
}

/// One dynamic relocation, as far as this tool needs it.
#[derive(Debug, Clone)]
enum Reloc {
    /// `R_X86_64_RELATIVE`: base + addend.
    Relative(u64),
    /// `R_X86_64_64` or `GLOB_DAT`: a symbol (+ addend).
    Symbol(String, i64),
}

/// A parsed ELF file: sections, symbols and dynamic relocations.
#[derive(Debug)]
pub struct Image<'a> {
    data: &'a [u8],
    /// Its sections, in file order.
    pub sections: Vec<Section>,
    /// Function symbols, sorted by address.
    pub functions: Vec<Symbol>,
    /// Data symbols, sorted by address.
    pub objects: Vec<Symbol>,
    /// Every defined symbol by name (mangled; the first wins).
    by_name: HashMap<String, u64>,
    relocs: HashMap<u64, Reloc>,
    /// Whether the file is a shared object or position-independent
    /// executable.
    pub kind: &'static str,
}

impl<'a> Image<'a> {
    /// Parses `data`, read from `path` (named in errors).
    ///
    /// # Errors
    /// Not ELF, not x86-64, a relocatable object, or a section table that
    /// points outside the file.
    pub fn parse(path: &str, data: &'a [u8]) -> Result<Image<'a>, Error> {
        let not_elf = |reason: String| Error::NotElf {
            path: path.to_owned(),
            reason,
        };
        if !data.starts_with(b"\x7fELF") {
            return Err(not_elf("no ELF magic number".into()));
        }
        let file = object::File::parse(data).map_err(|e| not_elf(e.to_string()))?;
        if file.architecture() != Architecture::X86_64 || !file.is_64() {
            return Err(Error::NotX86_64 {
                path: path.to_owned(),
                arch: format!(
                    "{:?} ({}-bit)",
                    file.architecture(),
                    if file.is_64() { 64 } else { 32 }
                ),
            });
        }
        let kind = match file.kind() {
            ObjectKind::Relocatable => {
                return Err(Error::Relocatable {
                    path: path.to_owned(),
                });
            }
            ObjectKind::Dynamic => "shared object or position-independent executable",
            ObjectKind::Executable => "executable",
            _ => "ELF file",
        };
        let mut sections = Vec::new();
        for s in file.sections() {
            let name = s.name().unwrap_or("").to_owned();
            let (exec, write, alloc) = match s.flags() {
                SectionFlags::Elf { sh_flags, .. } => (
                    sh_flags.0 & object::elf::SHF_EXECINSTR.0 != 0,
                    sh_flags.0 & object::elf::SHF_WRITE.0 != 0,
                    sh_flags.0 & object::elf::SHF_ALLOC.0 != 0,
                ),
                _ => (false, false, false),
            };
            let file_range = match s.kind() {
                SectionKind::UninitializedData | SectionKind::UninitializedTls => None,
                _ => s.file_range(),
            };
            if let Some((off, size)) = file_range
                && off.checked_add(size).is_none_or(|e| e > data.len() as u64)
            {
                return Err(Error::Malformed {
                    path: path.to_owned(),
                    what: format!(
                        "section {name:?} claims file bytes {off:#x}..+{size:#x}, beyond the file's {:#x} bytes",
                        data.len()
                    ),
                });
            }
            sections.push(Section {
                name,
                addr: s.address(),
                size: s.size(),
                exec,
                write,
                alloc,
                file_range,
            });
        }
        let mut functions = Vec::new();
        let mut objects = Vec::new();
        let mut by_name = HashMap::new();
        for sym in file.symbols().chain(file.dynamic_symbols()) {
            if !sym.is_definition() {
                continue;
            }
            let Ok(raw) = sym.name() else { continue };
            if raw.is_empty() {
                continue;
            }
            let s = Symbol {
                addr: sym.address(),
                size: sym.size(),
                raw: raw.to_owned(),
            };
            by_name.entry(s.raw.clone()).or_insert(s.addr);
            match sym.kind() {
                SymbolKind::Text => functions.push(s),
                SymbolKind::Data => objects.push(s),
                _ => {}
            }
        }
        for v in [&mut functions, &mut objects] {
            v.sort_by(|a, b| (a.addr, b.size).cmp(&(b.addr, a.size)));
            v.dedup_by(|a, b| a.addr == b.addr);
        }
        let mut relocs = HashMap::new();
        if let Some(it) = file.dynamic_relocations() {
            let dynsyms = file.dynamic_symbol_table();
            for (at, r) in it {
                let RelocationFlags::Elf { r_type } = r.flags() else {
                    continue;
                };
                let reloc = match (r_type.0, r.target()) {
                    (R_X86_64_RELATIVE, _) => Reloc::Relative(r.addend() as u64),
                    (R_X86_64_64 | R_X86_64_GLOB_DAT, RelocationTarget::Symbol(i)) => {
                        let name = dynsyms
                            .as_ref()
                            .and_then(|t| t.symbol_by_index(i).ok())
                            .and_then(|s| s.name().ok().map(str::to_owned))
                            .unwrap_or_else(|| format!("dynamic symbol #{}", i.0));
                        Reloc::Symbol(name, r.addend())
                    }
                    _ => continue,
                };
                relocs.insert(at, reloc);
            }
        }
        Ok(Image {
            data,
            sections,
            functions,
            objects,
            by_name,
            relocs,
            kind,
        })
    }

    /// The allocated section holding `addr..addr + len`.
    pub fn section_of(&self, addr: u64, len: u64) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.alloc && s.size > 0 && s.contains(addr, len))
    }

    /// Where the byte at link-time address `addr` lies in the file.
    pub fn file_offset(&self, addr: u64) -> Option<u64> {
        let s = self.section_of(addr, 1)?;
        let (off, _) = s.file_range?;
        off.checked_add(addr - s.addr)
    }

    /// Where the bytes of the section named `name` lie in the file
    /// (offset, size).
    pub fn section_file_range(&self, name: &str) -> Option<(u64, u64)> {
        self.section(name)?.file_range
    }

    /// The section named `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The file's bytes at `addr..addr + len` (zeros for `.bss`), or `None`
    /// outside every allocated section.
    pub fn bytes(&self, addr: u64, len: usize) -> Option<std::borrow::Cow<'a, [u8]>> {
        let s = self.section_of(addr, len as u64)?;
        match s.file_range {
            None => Some(std::borrow::Cow::Owned(vec![0; len])),
            Some((off, _)) => {
                let start = usize::try_from(off.checked_add(addr - s.addr)?).ok()?;
                let d = self.data.get(start..start.checked_add(len)?)?;
                Some(std::borrow::Cow::Borrowed(d))
            }
        }
    }

    /// Up to `len` bytes at `addr`, fewer where the section ends.
    pub fn bytes_upto(&self, addr: u64, len: usize) -> Vec<u8> {
        let Some(s) = self.section_of(addr, 1) else {
            return Vec::new();
        };
        let avail = s
            .addr
            .saturating_add(s.size)
            .saturating_sub(addr)
            .min(len as u64) as usize;
        self.bytes(addr, avail)
            .map(|b| b.into_owned())
            .unwrap_or_default()
    }

    /// The 32-bit little-endian word at `addr`.
    pub fn i32_at(&self, addr: u64) -> Option<i32> {
        let b = self.bytes(addr, 4)?;
        Some(i32::from_le_bytes(b[..4].try_into().ok()?))
    }

    /// The pointer-sized field at `addr` as the dynamic linker leaves it.
    pub fn word(&self, addr: u64) -> Word {
        match self.relocs.get(&addr) {
            Some(Reloc::Relative(a)) => Word::Addr(*a),
            Some(Reloc::Symbol(name, addend)) => match self.by_name.get(name) {
                Some(&a) => Word::Addr(a.wrapping_add_signed(*addend)),
                None => Word::External(name.clone()),
            },
            None => match self.bytes(addr, 8) {
                Some(b) => Word::Addr(u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]))),
                None => Word::Unreadable,
            },
        }
    }

    /// The address of the defined symbol whose demangled name (without
    /// hash) or raw name is `name`.
    pub fn symbol_addr(&self, name: &str) -> Option<u64> {
        if let Some(&a) = self.by_name.get(name) {
            return Some(a);
        }
        self.functions
            .iter()
            .chain(&self.objects)
            .find(|s| s.name() == name)
            .map(|s| s.addr)
    }

    /// The function containing `addr`.
    pub fn function_containing(&self, addr: u64) -> Option<&Symbol> {
        containing(&self.functions, addr)
    }

    /// The data symbol at exactly `addr`.
    pub fn object_at(&self, addr: u64) -> Option<&Symbol> {
        let i = self.objects.partition_point(|s| s.addr < addr);
        self.objects.get(i).filter(|s| s.addr == addr)
    }

    /// `name` or `name+0xoff` for an address inside a function (or at a
    /// data symbol).
    pub fn describe(&self, addr: u64) -> Option<String> {
        if let Some(s) = self.function_containing(addr) {
            return Some(if addr == s.addr {
                s.name()
            } else {
                format!("{}+{:#x}", s.name(), addr - s.addr)
            });
        }
        containing(&self.objects, addr).map(|s| {
            if addr == s.addr {
                s.name()
            } else {
                format!("{}+{:#x}", s.name(), addr - s.addr)
            }
        })
    }
}

fn containing(syms: &[Symbol], addr: u64) -> Option<&Symbol> {
    let i = syms.partition_point(|s| s.addr <= addr);
    let s = syms.get(i.checked_sub(1)?)?;
    (addr < s.addr.saturating_add(s.size.max(1))).then_some(s)
}
