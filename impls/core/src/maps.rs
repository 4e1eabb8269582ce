//! Reading `/proc/self/maps`.

use std::io::{BufRead, BufReader};

/// One mapping of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// First address.
    pub start: usize,
    /// One past the last address.
    pub end: usize,
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// The path or pseudo-name (`[stack]`), empty for anonymous mappings.
    pub name: String,
}

/// The process's current mappings, in address order.
///
/// # Errors
/// The file could not be read.
pub fn mappings() -> std::io::Result<Vec<Mapping>> {
    let f = std::fs::File::open("/proc/self/maps")?;
    let mut out = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line?;
        let mut it = line.split_whitespace();
        let (Some(range), Some(perms)) = (it.next(), it.next()) else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        else {
            continue;
        };
        let p = perms.as_bytes();
        let name = it.nth(3).unwrap_or("").to_string();
        out.push(Mapping {
            start,
            end,
            read: p.first() == Some(&b'r'),
            write: p.get(1) == Some(&b'w'),
            exec: p.get(2) == Some(&b'x'),
            name,
        });
    }
    Ok(out)
}

/// Whether `start..end` lies inside one mapping that satisfies `pred`.
pub(crate) fn covered(
    maps: &[Mapping],
    start: usize,
    end: usize,
    pred: impl Fn(&Mapping) -> bool,
) -> bool {
    // Adjacent mappings with the same permissions can split a range. The
    // mappings are in address order: find the one holding `start` by
    // binary search (registration checks every entry of a table this
    // way, so a linear scan would cost entries × mappings).
    let mut at = start;
    let first = maps.partition_point(|m| m.end <= at);
    for m in &maps[first..] {
        if !(m.start <= at && at < m.end && pred(m)) {
            return false;
        }
        at = m.end;
        if at >= end {
            return true;
        }
    }
    false
}
