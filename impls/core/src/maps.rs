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
    /// The permission field as the kernel wrote it (`r-xp`, `---p`, …).
    pub perms: String,
    /// Offset in the mapped file of the mapping's first byte (0 when no
    /// file is mapped).
    pub offset: u64,
    /// Device (major, minor) and inode of the mapped file ((0, 0) and 0
    /// when none).
    pub dev: (u32, u32),
    /// Inode of the mapped file (0 when none).
    pub inode: u64,
    /// The path or pseudo-name (`[stack]`), empty for anonymous mappings.
    pub name: String,
}

/// The process's current mappings, in address order.
///
/// # Errors
/// The file could not be read.
pub fn mappings() -> std::io::Result<Vec<Mapping>> {
    read("/proc/self/maps")
}

/// The current mappings of process `pid` (as another process sees them),
/// in address order.
///
/// # Errors
/// The file could not be read.
pub fn mappings_of(pid: u32) -> std::io::Result<Vec<Mapping>> {
    read(&format!("/proc/{pid}/maps"))
}

fn read(path: &str) -> std::io::Result<Vec<Mapping>> {
    let f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    for line in BufReader::new(f).lines() {
        if let Some(m) = parse_line(&line?) {
            out.push(m);
        }
    }
    Ok(out)
}

/// One line of a `maps` file: `start-end perms offset major:minor inode
/// path` (the path may be absent, hold spaces, or end in ` (deleted)`):
/// five fields cut at whitespace, then the rest of the line is the path.
fn parse_line(line: &str) -> Option<Mapping> {
    let mut rest = line;
    let mut field = || {
        let t = rest.trim_start();
        let end = t.find(char::is_whitespace).unwrap_or(t.len());
        let (f, r) = t.split_at(end);
        rest = r;
        f
    };
    let (a, b) = field().split_once('-')?;
    let (start, end) = (
        usize::from_str_radix(a, 16).ok()?,
        usize::from_str_radix(b, 16).ok()?,
    );
    let perms = field();
    let offset = u64::from_str_radix(field(), 16).unwrap_or(0);
    let dev = field()
        .split_once(':')
        .and_then(|(a, b)| {
            Some((
                u32::from_str_radix(a, 16).ok()?,
                u32::from_str_radix(b, 16).ok()?,
            ))
        })
        .unwrap_or((0, 0));
    let inode = field().parse().unwrap_or(0);
    let p = perms.as_bytes();
    Some(Mapping {
        start,
        end,
        read: p.first() == Some(&b'r'),
        write: p.get(1) == Some(&b'w'),
        exec: p.get(2) == Some(&b'x'),
        perms: perms.to_string(),
        offset,
        dev,
        inode,
        // The padding before the path goes; the path keeps every space of
        // its own, trailing ones included.
        name: rest.trim_start().to_string(),
    })
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

/// The page-aligned start of a free range of `len` bytes wholly within
/// `lo..hi` (both page-aligned), as close to `near` as the gaps between
/// `maps` (in address order) allow. The one "find a free place near X" of
/// the workspace: relays, stubs and test modules all use it.
pub fn free_near(
    maps: &[Mapping],
    near: usize,
    len: usize,
    (lo, hi): (usize, usize),
    page: usize,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut prev_end = 0usize;
    let dist = |a: usize| a.abs_diff(near);
    for (start, end) in maps
        .iter()
        .map(|m| (m.start, m.end))
        .chain([(usize::MAX, usize::MAX)])
    {
        let (gap_lo, gap_hi) = (prev_end.max(lo), start.min(hi));
        prev_end = prev_end.max(end);
        if gap_hi <= gap_lo || gap_hi - gap_lo < len {
            continue;
        }
        // The place in this gap closest to `near`.
        let cand = if near < gap_lo {
            gap_lo
        } else if near + len > gap_hi {
            (gap_hi - len) & !(page - 1)
        } else {
            near & !(page - 1)
        };
        if cand >= gap_lo && cand + len <= gap_hi && best.is_none_or(|b| dist(cand) < dist(b)) {
            best = Some(cand);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(start: usize, end: usize) -> Mapping {
        Mapping {
            start,
            end,
            read: true,
            write: false,
            exec: false,
            perms: "r--p".into(),
            offset: 0,
            dev: (0, 0),
            inode: 0,
            name: String::new(),
        }
    }

    #[test]
    fn parses_every_field() {
        let m = parse_line(
            "7f12a000-7f12c000 r-xp 00003000 fd:01 1234567                    /opt/my lib/libx.so (deleted)",
        )
        .unwrap();
        assert_eq!(
            (m.start, m.end, m.exec, m.write),
            (0x7f12a000, 0x7f12c000, true, false)
        );
        assert_eq!((m.offset, m.dev, m.inode), (0x3000, (0xfd, 1), 1234567));
        assert_eq!(m.name, "/opt/my lib/libx.so (deleted)");
        let anon = parse_line("7ffd0000-7ffd1000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!((anon.inode, anon.name.as_str()), (0, ""));
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn a_path_keeps_its_spaces_and_only_the_padding_goes() {
        // Five fixed fields, then the kernel's padding, then the path as it
        // is: inner runs of spaces and trailing spaces are the path's own.
        let m = parse_line("1000-2000 r--p 00000000 08:02 42         /tmp/a  b /c ").unwrap();
        assert_eq!(m.name, "/tmp/a  b /c ");
        let m = parse_line("1000-2000 r--p 00000000 08:02 42 /x").unwrap();
        assert_eq!(m.name, "/x");
        // An anonymous mapping, with or without the kernel's trailing pad.
        for line in [
            "1000-2000 rw-p 00000000 00:00 0",
            "1000-2000 rw-p 00000000 00:00 0      ",
        ] {
            assert_eq!(parse_line(line).unwrap().name, "");
        }
    }

    #[test]
    fn free_near_takes_the_closest_gap_that_fits() {
        let maps = [
            m(0x10000, 0x20000),
            m(0x21000, 0x40000),
            m(0x50000, 0x60000),
        ];
        let w = (0x1000, 0x100000);
        // The one-page hole right after the first mapping is closest.
        assert_eq!(free_near(&maps, 0x20800, 0x1000, w, 0x1000), Some(0x20000));
        // Two pages do not fit there: the end of the gap below the first
        // mapping is closer than the gap at 0x40000.
        assert_eq!(free_near(&maps, 0x20800, 0x2000, w, 0x1000), Some(0xe000));
        assert_eq!(free_near(&maps, 0x3f000, 0x2000, w, 0x1000), Some(0x40000));
        // Inside a gap: the page of `near` itself.
        assert_eq!(free_near(&maps, 0x45123, 0x1000, w, 0x1000), Some(0x45000));
        // Nothing fits inside a window that only covers mappings.
        assert_eq!(
            free_near(&maps, 0x30000, 0x1000, (0x21000, 0x40000), 0x1000),
            None
        );
    }
}
