//! `sctool`: checks the static-call tables of a built ELF file before it
//! runs, as objtool checks the kernel's `.static_call_sites`.
//!
//! This workspace writes its site tables at compile time (one 8-byte entry
//! per call site, in a retained section per implementation; see
//! `docs/DESIGN.md`). [`check_file`] reads an executable or shared object
//! with the `object` crate, finds each implementation's table, resolves
//! every entry (dynamic relocations included), decodes every site and
//! trampoline with iced-x86 and returns a [`Report`]: keys, sites and
//! [`Finding`]s with a [`Severity`]. [`render`] prints it as a table; the
//! report is serde-serialisable for `--json`.
//!
//! Every fact about a design comes from its description
//! (`static_call_core::Design`: sections, registry symbol, site shape,
//! trampoline, thunk bytes) and every design on the workspace's one list
//! is known; sctool names none. Bytes are decoded with the suite's one
//! decoder, `static-call-decode`, which the conformance suite and the
//! benchmarks' proofs use too.
//!
//! ```no_run
//! let report = sctool::check_file("target/debug/my-program")?;
//! print!("{}", sctool::render::report(&report, false));
//! std::process::exit(if report.has_errors() { 1 } else { 0 });
//! # Ok::<(), sctool::Error>(())
//! ```
#![warn(missing_docs)]

mod check;
pub mod elf;
mod entry;
mod error;
mod model;
pub mod render;

pub use check::check;
pub use error::Error;
pub use model::{
    CACHE_LINE, Check, ENTRY_LEN, Finding, Implementation, Key, Report, SITES_PREFIX, Severity,
    Site, SiteForm, Summary, Table, Trampoline,
};

/// Reads and checks the file at `path`.
///
/// # Errors
/// The file cannot be read, is not ELF, not x86-64, a relocatable object,
/// or its section table points outside it. Problems with the static-call
/// tables are findings in the report, not errors.
pub fn check_file(path: &str) -> Result<Report, Error> {
    let data = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let img = elf::Image::parse(path, &data)?;
    Ok(check(path, &img))
}
