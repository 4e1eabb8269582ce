//! The readable form of a [`Report`]: aligned tables.

use std::fmt::Write as _;

use crate::model::{Key, Report, Severity, Site};

/// Left-aligned columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::from("  ");
        for (c, cell) in r.iter().enumerate() {
            line += cell;
            if c + 1 < r.len() {
                line += &" ".repeat(widths[c] - cell.chars().count() + 2);
            }
        }
        out += line.trim_end();
        out += "\n";
    }
    out
}

fn trampoline_cell(k: &Key) -> (String, String) {
    match &k.trampoline {
        Some(t) => {
            let slot = t
                .slot
                .split_once("    ; ")
                .map_or(t.slot.clone(), |(i, n)| {
                    format!("{} {n}", i.split_whitespace().next().unwrap_or(i))
                });
            let sig = match (t.slot_ok, t.signature_ok, t.back_ref_ok) {
                (true, true, true) => "ok".to_owned(),
                (s, g, b) => [(s, "SLOT"), (g, "SIG"), (b, "BACKREF")]
                    .iter()
                    .filter(|(ok, _)| !ok)
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(","),
            };
            (format!("{:#x}: {slot}", t.addr), sig)
        }
        None if k.external => ("(in the loading program)".into(), "-".into()),
        None if k.implementation.patched() => ("NONE".into(), "-".into()),
        None if k.implementation.design().site == static_call_core::SiteShape::CallThunk => {
            ("(none: calls the design's thunk)".into(), "-".into())
        }
        None => ("(none: calls through the key)".into(), "-".into()),
    }
}

/// One line of the site table.
fn site_row(s: &Site) -> Vec<String> {
    vec![
        format!("{:#x}", s.addr),
        s.place.clone().unwrap_or_else(|| "?".into()),
        s.bytes.clone(),
        s.form.name().to_owned(),
        if s.flags.is_empty() {
            "-".into()
        } else {
            s.flags.join("|")
        },
        if s.init_text { "init" } else { "-" }.into(),
        if s.crosses_cache_line { "crosses" } else { "-" }.into(),
        if s.key_resolves { "ok" } else { "NO" }.into(),
    ]
}

/// Info findings of one check listed before the rest are counted.
const INFO_SHOWN: usize = 3;

const SITE_HEADER: [&str; 8] = [
    "site", "where", "bytes", "form", "flags", "text", "line", "key",
];

/// The report as text: tables, keys, findings and a summary; with `sites`,
/// every site too.
pub fn report(r: &Report, sites: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} ({})", r.file, r.kind);
    if r.tables.is_empty() {
        let _ = writeln!(o, "  no static-call site tables");
    } else {
        let mut rows = vec![vec![
            "implementation".into(),
            "table".into(),
            "entries".into(),
            "init text".into(),
        ]];
        for t in &r.tables {
            rows.push(vec![
                t.implementation.name().into(),
                format!("{} @ {:#x}", t.section, t.addr),
                t.entries.to_string(),
                t.init_text
                    .map_or("-".into(), |(a, b)| format!("{a:#x}..{b:#x}")),
            ]);
        }
        o += &table(&rows);
    }
    if !r.keys.is_empty() {
        let _ = writeln!(o, "keys");
        let mut rows = vec![vec![
            "impl".into(),
            "key".into(),
            "trampoline".into(),
            "check".into(),
            "sites".into(),
            "where".into(),
        ]];
        for k in &r.keys {
            let (t, sig) = trampoline_cell(k);
            let mut places = k
                .places
                .iter()
                .take(2)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if k.places.len() > 2 {
                let _ = write!(places, ", … ({} more)", k.places.len() - 2);
            }
            rows.push(vec![
                k.implementation.name().into(),
                k.name.clone(),
                t,
                sig,
                k.sites.to_string(),
                places,
            ]);
        }
        o += &table(&rows);
    }
    if sites && !r.sites.is_empty() {
        let _ = writeln!(o, "sites");
        let mut rows = vec![
            std::iter::once("impl")
                .chain(std::iter::once("key"))
                .chain(SITE_HEADER)
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        ];
        for s in &r.sites {
            let mut row = vec![s.implementation.name().to_owned(), s.key.clone()];
            row.extend(site_row(s));
            rows.push(row);
        }
        o += &table(&rows);
    }
    if !r.findings.is_empty() {
        let _ = writeln!(o, "findings");
        // Errors and warnings in full; info findings, unless every site is
        // listed, only the first few of each check.
        let mut shown: std::collections::HashMap<_, usize> = Default::default();
        let mut hidden: std::collections::BTreeMap<_, usize> = Default::default();
        for f in &r.findings {
            let n = shown.entry(f.check).or_default();
            if f.severity == Severity::Info && !sites && *n >= INFO_SHOWN {
                *hidden.entry(f.check.name()).or_default() += 1;
                continue;
            }
            *n += 1;
            let _ = writeln!(
                o,
                "  {:<7}  {:<25}  {}",
                f.severity.name(),
                f.check.name(),
                f.message
            );
        }
        for (check, n) in hidden {
            let _ = writeln!(
                o,
                "  info     {check:<25}  … and {n} more (--sites or --json lists every one)"
            );
        }
    }
    o += &summary(r);
    o
}

/// The one-line summary.
pub fn summary(r: &Report) -> String {
    let s = &r.summary;
    let per: Vec<String> = s
        .sites_per_implementation
        .iter()
        .map(|(i, n)| format!("{n} {}", i.name()))
        .collect();
    let verdict = if s.errors == 0 { "OK" } else { "FAILED" };
    format!(
        "summary: {} tables, {} keys, {} sites ({}), {} in init text, {} crossing a cache line; {} errors, {} warnings, {} info: {verdict}\n",
        s.tables,
        s.keys,
        s.sites,
        if per.is_empty() {
            "none".into()
        } else {
            per.join(", ")
        },
        s.init_sites,
        s.cache_line_crossing,
        s.errors,
        s.warnings,
        s.infos
    )
}

/// The decoded sites and trampoline of the keys whose name is `name` (or
/// ends with `::name`). Returns `None` when no key matches.
pub fn key_sites(r: &Report, name: &str) -> Option<String> {
    let matches = |k: &str| k == name || k.ends_with(&format!("::{name}"));
    let keys: Vec<&Key> = r.keys.iter().filter(|k| matches(&k.name)).collect();
    if keys.is_empty() {
        return None;
    }
    let mut o = String::new();
    for k in keys {
        let _ = writeln!(
            o,
            "{} key {}{}: {} sites",
            k.implementation.name(),
            k.name,
            k.addr.map_or(String::new(), |a| format!(" @ {a:#x}")),
            k.sites
        );
        match &k.trampoline {
            Some(t) => {
                let _ = writeln!(
                    o,
                    "  trampoline {:#x} {}\n    bytes      {}\n    slot       {}\n    signature  {} ({})\n    back-ref   {} ({})",
                    t.addr,
                    t.symbol.as_deref().unwrap_or("?"),
                    t.bytes,
                    t.slot,
                    t.signature,
                    if t.signature_ok { "ok" } else { "WRONG" },
                    t.back_ref.map_or("-".into(), |b| format!("{b:#x}")),
                    if t.back_ref_ok { "ok" } else { "WRONG" },
                );
            }
            None => {
                let (t, _) = trampoline_cell(k);
                let _ = writeln!(o, "  trampoline {t}");
            }
        }
        for s in r.sites.iter().filter(|s| {
            s.implementation == k.implementation && s.key == k.name && s.key_addr == k.addr
        }) {
            let _ = writeln!(
                o,
                "  site {:#x} {}\n    bytes      {}\n    insn       {}\n    form       {}{}\n    flags      {}{}{}",
                s.addr,
                s.place.as_deref().unwrap_or("?"),
                s.bytes,
                s.insn,
                s.form.name(),
                if s.expected {
                    " (expected)"
                } else {
                    " (NOT the expected form)"
                },
                if s.flags.is_empty() {
                    "-".into()
                } else {
                    s.flags.join("|")
                },
                if s.init_text { ", in init text" } else { "" },
                if s.crosses_cache_line {
                    ", crosses a cache line"
                } else {
                    ""
                },
            );
        }
    }
    let errs: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error && f.message.contains(name))
        .collect();
    for f in errs {
        let _ = writeln!(o, "  error {}: {}", f.check.name(), f.message);
    }
    Some(o)
}
