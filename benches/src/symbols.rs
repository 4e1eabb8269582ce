//! The running program's own symbol table (read with `object` from
//! `/proc/self/exe`), to find where a function ends and to name the targets
//! of decoded calls.

use std::sync::OnceLock;

use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

/// A function symbol at its run-time address.
#[derive(Debug, Clone)]
pub struct Symbol {
    /// Run-time address.
    pub addr: usize,
    /// Size in bytes.
    pub size: usize,
    /// Demangled name (without the hash).
    pub name: String,
}

/// The program's function symbols, sorted by address.
#[derive(Debug)]
pub struct Symbols {
    syms: Vec<Symbol>,
}

static SYMBOLS: OnceLock<Result<Symbols, String>> = OnceLock::new();

impl Symbols {
    /// The program's symbols (read once).
    ///
    /// # Errors
    /// The executable cannot be read or parsed, or has no symbol table
    /// (a stripped build).
    pub fn get() -> Result<&'static Symbols, String> {
        SYMBOLS
            .get_or_init(Self::load)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn load() -> Result<Symbols, String> {
        let path = "/proc/self/exe";
        let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let file = object::File::parse(&*data).map_err(|e| format!("{path}: {e}"))?;
        // The load bias: where the first loadable segment was mapped, less
        // its link-time address.
        let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
        // SAFETY: `dladdr` fills `info` for an address of this program.
        let ok = unsafe { libc::dladdr(Symbols::load as *const libc::c_void, info.as_mut_ptr()) };
        if ok == 0 {
            return Err("dladdr found no object for this program".into());
        }
        // SAFETY: filled by the successful call above.
        let base = unsafe { info.assume_init() }.dli_fbase as usize;
        let first = file
            .segments()
            .map(|s| s.address())
            .min()
            .ok_or_else(|| format!("{path}: no loadable segment"))?;
        let bias = base.wrapping_sub((first & !0xfff) as usize);
        let mut syms: Vec<Symbol> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
            .filter_map(|s| {
                let name = s.name().ok()?;
                Some(Symbol {
                    addr: (s.address() as usize).wrapping_add(bias),
                    size: s.size() as usize,
                    name: format!("{:#}", rustc_demangle::demangle(name)),
                })
            })
            .collect();
        if syms.is_empty() {
            return Err(format!("{path}: no function symbols (stripped?)"));
        }
        syms.sort_by_key(|s| s.addr);
        Ok(Symbols { syms })
    }

    /// The function containing `addr`.
    pub fn containing(&self, addr: usize) -> Option<&Symbol> {
        let i = self.syms.partition_point(|s| s.addr <= addr);
        let s = self.syms.get(i.checked_sub(1)?)?;
        (addr < s.addr + s.size).then_some(s)
    }

    /// `name` or `name+0xoff` for an address inside a function.
    pub fn describe(&self, addr: usize) -> Option<String> {
        let s = self.containing(addr)?;
        Some(if addr == s.addr {
            s.name.clone()
        } else {
            format!("{}+{:#x}", s.name, addr - s.addr)
        })
    }
}
