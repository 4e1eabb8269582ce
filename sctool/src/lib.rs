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
//! [`decode`] decodes site bytes for sctool and for the benchmarks' proofs
//! (and so the report's "sites, decoded" section). The conformance suite
//! keeps its own few-line classification in `conformance/src/decode.rs`:
//! sctool's tests build on the suite, so the suite cannot build on sctool.
//!
//! ```no_run
//! let report = sctool::check_file("target/debug/my-program")?;
//! print!("{}", sctool::render::report(&report, false));
//! std::process::exit(if report.has_errors() { 1 } else { 0 });
//! # Ok::<(), sctool::Error>(())
//! ```
#![warn(missing_docs)]

mod check;
pub mod decode;
pub mod elf;
mod error;
pub mod render;

pub use check::{
    CACHE_LINE, Check, ENTRY_LEN, Finding, Implementation, Key, RETPOLINE, Report, SITES_PREFIX,
    Severity, Site, SiteForm, Summary, Table, Trampoline, check,
};
pub use error::Error;

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
