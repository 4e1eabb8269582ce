//! Why a file could not be checked at all (exit status 2).

use std::fmt;

/// A file that cannot be read, is not ELF, is not x86-64, or whose
/// headers do not hold together. Findings about the static-call tables
/// themselves are never errors of this kind: they are
/// [`Finding`](crate::Finding)s in a [`Report`](crate::Report).
#[derive(Debug)]
pub enum Error {
    /// The file could not be read.
    Io {
        /// The path given.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not an ELF file, or its headers could not be parsed.
    NotElf {
        /// The path given.
        path: String,
        /// What the parser said.
        reason: String,
    },
    /// An ELF file for another machine or word size.
    NotX86_64 {
        /// The path given.
        path: String,
        /// The architecture it is for.
        arch: String,
    },
    /// A relocatable object (`.o`): its tables are not linked yet.
    Relocatable {
        /// The path given.
        path: String,
    },
    /// A section this tool must read lies outside the file.
    Malformed {
        /// The path given.
        path: String,
        /// What could not be read, and where.
        what: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{path}: cannot read: {source}"),
            Error::NotElf { path, reason } => write!(f, "{path}: not an ELF file: {reason}"),
            Error::NotX86_64 { path, arch } => {
                write!(f, "{path}: an ELF file for {arch}, not x86-64")
            }
            Error::Relocatable { path } => write!(
                f,
                "{path}: a relocatable object; check the linked executable or shared object"
            ),
            Error::Malformed { path, what } => write!(f, "{path}: malformed ELF file: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
