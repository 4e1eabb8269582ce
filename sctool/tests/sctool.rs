//! `sctool` over real binaries of this workspace, broken copies of them,
//! and garbage.
//!
//! This test binary is itself a project binary: it defines keys with all
//! three implementations (sites in ordinary and in init text), runs their
//! `init()`, and compares the registries' `stats()` with what `sctool`
//! reads from the same file on disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use static_call_core::SiteShape;

extern "C" fn add1(x: u64) -> u64 {
    x + 1
}

macro_rules! keys_for {
    ($(($m:ident, $krate:path, $name:literal))*) => {$(
        mod $m {
            use $krate as sc;
            sc::define_static_call!(
                pub static ADD: extern "C" fn(u64) -> u64 = super::add1;
            );
            sc::define_static_call!(
                pub static HOOK: extern "C" fn(u64) = None;
            );

            #[inline(never)]
            pub fn call(x: u64) -> u64 {
                sc::static_call!(ADD(x))
            }

            #[inline(never)]
            pub fn call_twice(x: u64) -> u64 {
                sc::static_call!(ADD(x)).wrapping_add(sc::static_call!(ADD(x)))
            }

            #[inline(never)]
            pub fn hook(x: u64) {
                sc::static_call_cond!(HOOK(x));
            }

            sc::init_text! {
                pub fn setup(x: u64) -> u64 {
                    sc::static_call!(ADD(x))
                }
            }

            pub fn run() -> sc::Stats {
                assert_eq!(call(1) + call_twice(1) + setup(1), 2 + 4 + 2);
                hook(1);
                sc::init().expect("init");
                assert_eq!(call(1), 2);
                sc::stats()
            }
        }
    )*

        /// Every implementation of the list: its name and its `run()`.
        fn listed() -> Vec<(&'static str, static_call_core::Stats)> {
            vec![$(($name, $m::run())),*]
        }
    };
}
// Keys of every implementation on the one list.
static_call_implementations::implementations!(keys_for);

/// The design sctool knows by `name`.
fn design(name: &str) -> &'static static_call_core::Design {
    sctool::Implementation::all()
        .into_iter()
        .find(|i| i.name() == name)
        .unwrap_or_else(|| panic!("sctool does not know {name}"))
        .design()
}

const SCTOOL: &str = env!("CARGO_BIN_EXE_sctool");

fn sctool(args: &[&str]) -> Output {
    Command::new(SCTOOL)
        .args(args)
        .output()
        .expect("running sctool")
}

fn code(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("sctool killed by a signal: {:?}", o.status))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `sctool check --json FILE`: the exit status and the file's report.
fn check_json(file: &Path) -> (i32, Value) {
    let o = sctool(&["check", "--json", file.to_str().expect("utf-8 path")]);
    let c = code(&o);
    assert!(
        c == 0 || c == 1,
        "{}: exit {c}\n{}",
        file.display(),
        text(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    (c, v[0].clone())
}

fn me() -> PathBuf {
    std::env::current_exe().expect("current_exe")
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sctool");
    std::fs::create_dir_all(&d).expect("scratch dir");
    d.join(name)
}

fn checks(report: &Value, severity: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| format!("{}: {}", f["check"].as_str().unwrap_or(""), f["message"]))
        .collect()
}

#[test]
fn this_binary_is_clean_and_counts_match_the_registries() {
    let stats = listed();
    let (c, r) = check_json(&me());
    assert_eq!(c, 0, "errors: {:?}", checks(&r, "error"));
    assert!(checks(&r, "error").is_empty());
    for (imp, s) in &stats {
        let got = r["summary"]["sites_per_implementation"][imp]
            .as_u64()
            .unwrap_or(0);
        assert_eq!(got as usize, s.sites, "{imp}: sctool vs stats()");
        // Our own keys: ADD has 4 sites (call, call_twice ×2, setup), one
        // of them in init text; HOOK has 1.
        let key = |name: &str| {
            r["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .find(|k| {
                    k["implementation"] == *imp && k["name"].as_str().unwrap_or("").ends_with(name)
                })
                .cloned()
                .unwrap_or_else(|| panic!("{imp} key {name} missing"))
        };
        let add = key(&format!("{}::ADD", imp.replace('-', "_")));
        assert_eq!(add["sites"], 4, "{add}");
        assert_eq!(key(&format!("{}::HOOK", imp.replace('-', "_")))["sites"], 1);
        let init = r["sites"]
            .as_array()
            .expect("sites")
            .iter()
            .filter(|s| s["implementation"] == *imp && s["init_text"] == true)
            .count();
        assert!(init >= 1, "{imp}: no site in init text found");
        assert_eq!(init, s.init, "{imp}: init sites vs stats()");
        if design(imp).trampoline {
            let t = &add["trampoline"];
            assert_eq!(
                (&t["slot_ok"], &t["signature_ok"], &t["back_ref_ok"]),
                (&Value::Bool(true), &Value::Bool(true), &Value::Bool(true)),
                "{t}"
            );
        }
    }
    // The readable form ends with the summary line.
    let o = sctool(&["check", me().to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    let out = text(&o.stdout);
    let tables = format!("\nsummary: {} tables,", stats.len());
    assert!(out.contains(&tables), "{out}");
    assert!(out.trim_end().ends_with(": OK"), "{out}");
}

#[test]
fn sites_prints_one_key() {
    let o = sctool(&["sites", me().to_str().unwrap(), "--key", "trampoline::ADD"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("trampoline key sctool::trampoline::ADD"),
        "{out}"
    );
    assert!(out.contains("signature  0f b9 cc (ok)"), "{out}");
    assert_eq!(out.matches("\n  site ").count(), 4, "{out}");
    assert!(
        out.contains("form       call trampoline (expected)"),
        "{out}"
    );
    let o = sctool(&["sites", me().to_str().unwrap(), "--key", "NO_SUCH_KEY"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("no key named"));
}

/// The test shared object of the conformance suite: keys of the loading
/// program through key slots, sites calling near stubs.
#[test]
fn the_test_shared_object_is_clean() {
    let so = static_call_conformance::scenarios::build_shared_object().expect("build the .so");
    let (c, r) = check_json(&so);
    assert_eq!(c, 0, "errors: {:?}", checks(&r, "error"));
    let n = sctool::Implementation::all().len();
    assert_eq!(r["summary"]["sites"], 3 * n, "{}", r["summary"]);
    for k in r["keys"].as_array().expect("keys") {
        assert_eq!(k["external"], true, "{k}");
        assert_eq!(k["sites"], 3, "{k}");
    }
    for s in r["sites"].as_array().expect("sites") {
        let want = match design(s["implementation"].as_str().expect("name")).site {
            SiteShape::CallThunk => "call-thunk",
            SiteShape::LoadCallRax => "call-through-key",
            SiteShape::CallTrampoline => "call-near-stub",
        };
        assert_eq!(s["form"], want, "{s}");
        assert!(s["flags"].as_array().unwrap().contains(&"KEYREF".into()));
    }
}

/// Other binaries of the workspace that cargo has already built next to
/// this test (the conformance test binary, benchmark binaries): checked
/// when present, named when absent (CI runs `sctool check` over them
/// explicitly).
#[test]
fn workspace_binaries_found_are_clean() {
    let deps = me().parent().expect("deps dir").to_path_buf();
    let mut seen = Vec::new();
    for prefix in ["conformance-", "static_call_bench-", "criterion-", "perf-"] {
        let newest = std::fs::read_dir(&deps)
            .expect("deps dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                n.starts_with(prefix) && !n.contains('.')
            })
            .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok());
        let Some(p) = newest else {
            eprintln!("skip: no {prefix}* binary in {}", deps.display());
            continue;
        };
        let (c, r) = check_json(&p);
        assert_eq!(c, 0, "{}: {:?}", p.display(), checks(&r, "error"));
        seen.push(p);
    }
    eprintln!("checked: {seen:?}");
}

// ---------------------------------------------------------------- broken copies

/// A copy of this binary with `edit` applied to its bytes.
fn broken_copy(
    name: &str,
    edit: impl FnOnce(&sctool::elf::Image<'_>, &sctool::Report, &mut Vec<u8>),
) -> PathBuf {
    let data = std::fs::read(me()).expect("read self");
    let img = sctool::elf::Image::parse("self", &data).expect("parse self");
    let report = sctool::check("self", &img);
    let mut copy = data.clone();
    edit(&img, &report, &mut copy);
    assert_ne!(copy, data, "{name}: the edit changed nothing");
    let p = scratch(name);
    std::fs::write(&p, &copy).expect("write copy");
    p
}

fn our_key<'r>(r: &'r sctool::Report, imp: &str) -> &'r sctool::Key {
    r.keys
        .iter()
        .find(|k| {
            k.implementation.name() == imp
                && k.name == format!("sctool::{}::ADD", imp.replace('-', "_"))
        })
        .expect("our key")
}

fn put(copy: &mut [u8], img: &sctool::elf::Image<'_>, addr: u64, bytes: &[u8]) {
    let off = img.file_offset(addr).expect("file offset") as usize;
    copy[off..off + bytes.len()].copy_from_slice(bytes);
}

/// Runs `sctool check` on a broken copy: exit 1 and a finding of `check`
/// at error severity whose message contains `needle`.
fn expect_finding(p: &Path, check: &str, needle: &str) {
    let (c, r) = check_json(p);
    let errs = checks(&r, "error");
    assert_eq!(c, 1, "{}: exit {c}, errors {errs:?}", p.display());
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{check}:")) && e.contains(needle)),
        "{}: no {check} finding mentioning {needle:?} in {errs:?}",
        p.display()
    );
}

/// A site table of a design sctool does not know (this binary's
/// plain-indirect table under another name) is an error naming it: its
/// sites are unverified.
#[test]
fn an_unknown_site_table_is_an_error() {
    let p = broken_copy("unknown-table", |_, _, copy| {
        let name = b"static_call_sites_plain\0";
        let mut n = 0;
        for i in 1..copy.len() - name.len() {
            // The section name itself (after a NUL in .shstrtab), not the
            // `__start_`/`__stop_` symbols that end with it.
            if copy[i - 1] == 0 && copy[i..i + name.len()] == name[..] {
                copy[i + name.len() - 2] = b'x';
                n += 1;
            }
        }
        assert!(n >= 1, "no section name found");
    });
    expect_finding(&p, "unknown-table", "static_call_sites_plaix");
    let o = sctool(&["check", p.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(text(&o.stdout).contains("static_call_sites_plaix"));
}

/// A design described through `static_call_core::Design` (plain-indirect)
/// is checked like the built-in ones: a site that loads another pointer
/// than its key's is an error.
#[test]
fn a_plain_indirect_site_that_loads_elsewhere() {
    let mut site = 0;
    let p = broken_copy("plain-elsewhere", |img, r, copy| {
        let s = r
            .sites
            .iter()
            .find(|s| {
                s.key.ends_with("plain_indirect::ADD") && s.form == sctool::SiteForm::CallThroughKey
            })
            .expect("a plain-indirect site");
        site = s.addr;
        let b = img.bytes(s.addr, 7).expect("site bytes");
        let d = i32::from_le_bytes(b[3..7].try_into().unwrap()).wrapping_add(8);
        put(copy, img, s.addr + 3, &d.to_le_bytes());
    });
    expect_finding(&p, "unexpected-site", &format!("{site:#x}"));
}

#[test]
fn a_site_entry_pointing_outside_text() {
    let mut site = 0;
    let p = broken_copy("entry-outside", |img, r, copy| {
        let s = r
            .sites
            .iter()
            .find(|s| s.key.ends_with("trampoline::ADD"))
            .unwrap();
        // Point the site field at the entry itself (data, not text).
        put(copy, img, s.entry, &0i32.to_le_bytes());
        site = s.entry;
    });
    expect_finding(&p, "site-outside-text", &format!("site {site:#x}"));
}

#[test]
fn a_duplicate_site_entry() {
    let mut site = 0;
    let p = broken_copy("entry-duplicate", |img, r, copy| {
        let t = r
            .tables
            .iter()
            .find(|t| t.implementation.name() == "inline-patch")
            .unwrap();
        let first = r.sites.iter().find(|s| s.entry == t.addr).unwrap();
        // Entry 1 names entry 0's site (fields are relative to the entry).
        let rel = (first.addr as i64 - (t.addr + 8) as i64) as i32;
        put(copy, img, t.addr + 8, &rel.to_le_bytes());
        site = first.addr;
    });
    expect_finding(&p, "duplicate-entry", &format!("site {site:#x}"));
}

#[test]
fn a_key_field_that_names_no_key() {
    let mut entry = 0;
    let p = broken_copy("entry-key", |img, r, copy| {
        let s = r
            .sites
            .iter()
            .find(|s| s.key.ends_with("indirect::ADD"))
            .unwrap();
        // Point the key field at the site (text) instead.
        let rel = (s.addr as i64 - s.entry as i64) as i32;
        put(copy, img, s.entry + 4, &rel.to_le_bytes());
        entry = s.entry;
    });
    expect_finding(&p, "unresolved-key", &format!("entry {entry:#x}"));
}

#[test]
fn a_site_whose_bytes_are_not_a_call() {
    let mut site = 0;
    let p = broken_copy("site-bytes", |img, r, copy| {
        let s = r
            .sites
            .iter()
            .find(|s| s.key.ends_with("inline_patch::ADD"))
            .unwrap();
        put(copy, img, s.addr, &[0x0f, 0x1f, 0x44, 0x00, 0x00]);
        site = s.addr;
    });
    expect_finding(&p, "unexpected-site", &format!("site {site:#x}"));
}

#[test]
fn an_indirect_site_that_calls_elsewhere() {
    let mut site = 0;
    let p = broken_copy("site-indirect", |img, r, copy| {
        let s = r
            .sites
            .iter()
            .find(|s| s.key.ends_with("indirect::ADD"))
            .unwrap();
        // `call` the next instruction instead of the design's thunk.
        put(copy, img, s.addr, &[0xe8, 0, 0, 0, 0]);
        site = s.addr;
    });
    expect_finding(&p, "unexpected-site", &format!("site {site:#x}"));
}

#[test]
fn a_trampoline_signature_corrupted() {
    let mut t = 0;
    let p = broken_copy("tramp-signature", |img, r, copy| {
        t = our_key(r, "trampoline").trampoline.as_ref().unwrap().addr;
        put(copy, img, t + 5, &[0x90, 0x90, 0x90]);
    });
    expect_finding(&p, "trampoline-signature", &format!("({t:#x})"));
}

#[test]
fn a_trampoline_back_reference_corrupted() {
    let mut t = 0;
    let p = broken_copy("tramp-backref", |img, r, copy| {
        t = our_key(r, "inline-patch").trampoline.as_ref().unwrap().addr;
        put(copy, img, t + 8, &0i32.to_le_bytes());
    });
    expect_finding(&p, "trampoline-back-reference", &format!("({t:#x})"));
}

#[test]
fn a_trampoline_slot_corrupted() {
    let mut t = 0;
    let p = broken_copy("tramp-slot", |img, r, copy| {
        t = our_key(r, "trampoline").trampoline.as_ref().unwrap().addr;
        put(copy, img, t, &[0x90; 5]);
    });
    expect_finding(&p, "trampoline-slot", &format!("({t:#x})"));
}

#[test]
fn a_key_without_a_trampoline() {
    let mut key = 0;
    let p = broken_copy("key-no-tramp", |img, r, copy| {
        key = our_key(r, "trampoline").addr.unwrap();
        // The key's trampoline field is filled by an R_X86_64_RELATIVE
        // relocation: make its addend 0 (a null trampoline).
        let (off, size) = img.section_file_range(".rela.dyn").expect(".rela.dyn");
        let rela = &mut copy[off as usize..(off + size) as usize];
        let e = rela
            .chunks_exact_mut(24)
            .find(|e| u64::from_le_bytes(e[..8].try_into().unwrap()) == key + 8)
            .expect("relocation of the trampoline field");
        e[16..24].copy_from_slice(&0u64.to_le_bytes());
    });
    expect_finding(&p, "key-without-trampoline", &format!("({key:#x})"));
}

// ---------------------------------------------------------------- garbage

/// A small seeded PRNG (xorshift64*): reproducible inputs, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Runs `sctool check` on `bytes`: exit 2 with a message, or (`lenient`)
/// any of 0, 1, 2 — never a panic or a signal.
fn run_on(name: &str, bytes: &[u8], lenient: bool) -> i32 {
    let p = scratch(name);
    std::fs::write(&p, bytes).expect("write input");
    let o = sctool(&["check", p.to_str().unwrap()]);
    let c = code(&o);
    let err = text(&o.stderr);
    assert!(!err.contains("panicked"), "{name}: {err}");
    if lenient {
        assert!((0..=2).contains(&c), "{name}: exit {c}: {err}");
    } else {
        assert_eq!(c, 2, "{name}: exit {c}: {err}");
    }
    if c == 2 {
        assert!(
            err.starts_with("sctool: ") && err.contains(p.to_str().unwrap()),
            "{name}: {err:?}"
        );
    }
    c
}

#[test]
fn unreadable_inputs_exit_2_with_a_message() {
    let o = sctool(&["check", "/nonexistent/sctool-input"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("cannot read"));
    run_on("empty", b"", false);
    run_on("text", b"hello, world\n", false);
    run_on("magic-only", b"\x7fELF", false);
    // A directory.
    let o = sctool(&["check", env!("CARGO_TARGET_TMPDIR")]);
    assert_eq!(code(&o), 2);
}

#[test]
fn random_and_truncated_inputs_never_panic() {
    let elf = std::fs::read(me()).expect("read self");
    let mut rng = Rng(0x5c7_0013);
    // In process, many: the library refuses every one with an error.
    for i in 0..2000 {
        let n = rng.below(4096) as usize;
        let mut b: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 && b.len() >= 4 {
            b[..4].copy_from_slice(b"\x7fELF");
        }
        assert!(
            sctool::elf::Image::parse("random", &b).is_err(),
            "random input {i}"
        );
        let cut = rng.below(elf.len() as u64) as usize;
        assert!(
            sctool::elf::Image::parse("truncated", &elf[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    // As a process, some of each: exit 2 and a message.
    for i in 0..8 {
        let n = 1 + rng.below(1 << 16) as usize;
        let b: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        run_on(&format!("random-{i}"), &b, false);
        let cut = rng.below(elf.len() as u64) as usize;
        run_on(&format!("truncated-{i}"), &elf[..cut], false);
    }
}

#[test]
fn mutated_elf_files_never_panic() {
    let elf = std::fs::read(me()).expect("read self");
    let mut rng = Rng(0xe1f);
    let img = sctool::elf::Image::parse("self", &elf).expect("parse self");
    // Mutations aimed where the tool reads: headers, section headers, the
    // site tables, relocations, trampolines.
    let mut hot: Vec<(u64, u64)> = vec![(0, 64)];
    let shoff = u64::from_le_bytes(elf[0x28..0x30].try_into().unwrap());
    hot.push((shoff, elf.len() as u64 - shoff));
    for s in [
        "static_call_sites_inline",
        "static_call_sites_tramp",
        "static_call_sites_indirect",
        ".rela.dyn",
    ] {
        if let Some(r) = img.section_file_range(s) {
            hot.push(r);
        }
    }
    for i in 0..48 {
        let mut b = elf.clone();
        let (start, len) = hot[rng.below(hot.len() as u64) as usize];
        for _ in 0..1 + rng.below(8) {
            let at = (start + rng.below(len)) as usize;
            if at < b.len() {
                b[at] = rng.next() as u8;
            }
        }
        // In process: never a panic (an error or a report).
        if let Ok(img) = sctool::elf::Image::parse("mutated", &b) {
            let _ = sctool::check("mutated", &img);
        }
        if i % 8 == 0 {
            run_on(&format!("mutated-{i}"), &b, true);
        }
    }
}

#[test]
fn non_x86_64_elf_files_exit_2() {
    let mut b = std::fs::read(me()).expect("read self");
    // e_machine = EM_AARCH64.
    b[0x12..0x14].copy_from_slice(&183u16.to_le_bytes());
    run_on("aarch64", &b, false);
    let o = sctool(&["check", scratch("aarch64").to_str().unwrap()]);
    assert!(
        text(&o.stderr).contains("not x86-64"),
        "{}",
        text(&o.stderr)
    );
    // ELFCLASS32 (the headers no longer parse as 32-bit ones).
    let mut b = std::fs::read(me()).expect("read self");
    b[4] = 1;
    run_on("class32", &b, false);
}

/// Section headers of the site tables made hostile: huge sizes, addresses
/// at the top of the address space, a table turned into `.bss`.
#[test]
fn hostile_table_section_headers() {
    let elf = std::fs::read(me()).expect("read self");
    let img = sctool::elf::Image::parse("self", &elf).expect("parse self");
    let shoff = u64::from_le_bytes(elf[0x28..0x30].try_into().unwrap()) as usize;
    let shnum = u16::from_le_bytes(elf[0x3c..0x3e].try_into().unwrap()) as usize;
    let table = img
        .section("static_call_sites_inline")
        .expect("table")
        .clone();
    let hdr = (0..shnum)
        .map(|i| shoff + i * 64)
        .find(|&h| {
            u64::from_le_bytes(elf[h + 0x10..h + 0x18].try_into().unwrap()) == table.addr
                && u64::from_le_bytes(elf[h + 0x20..h + 0x28].try_into().unwrap()) == table.size
        })
        .expect("the table's section header");
    let edits: [(&str, usize, u64); 4] = [
        ("huge-size", 0x20, 1 << 60),
        ("top-address", 0x10, u64::MAX - 4),
        ("nobits", 0x04, 8),
        ("odd-size", 0x20, table.size - 3),
    ];
    for (name, field, value) in edits {
        let mut b = elf.clone();
        let at = hdr + field;
        if field == 0x04 {
            b[at..at + 4].copy_from_slice(&(value as u32).to_le_bytes());
            // …and a size no file could hold.
            b[hdr + 0x20..hdr + 0x28].copy_from_slice(&(1u64 << 60).to_le_bytes());
        } else {
            b[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        if let Ok(img) = sctool::elf::Image::parse(name, &b) {
            let _ = sctool::check(name, &img);
        }
        let c = run_on(&format!("hostile-{name}"), &b, true);
        assert_ne!(c, 0, "{name}: a hostile table passed");
    }
}
