//! Proof before measurement: each benchmark decodes its own sites with
//! iced-x86 and checks that they hold the form its name claims.
//!
//! * an implementation: its site, decoded by its design
//!   ([`Design::decode_site`], the site's `site_len` bytes from its label,
//!   and for a [`SiteShape::CallThunk`] design the 7 bytes of its load of
//!   the key before it), holds what the design says: `call <target>` or a
//!   5-byte NOP for none where updates patch sites (inline-patch); `call
//!   <trampoline>`, whose slot holds `jmp <target>` (`ret` for none)
//!   (trampoline); `mov rax, [rip + <key>]` then `call <thunk>` (indirect);
//!   `mov rax, [rip + <key>]; call rax`, [`Form::CallVia`] the key
//!   (plain-indirect). A site that loads the key must load it inside the
//!   loop, after its head, as the indirect controls must;
//! * direct: the loop calls the target with `call rel32`, and nothing else;
//!   its A/A copy likewise, and it is a distinct function with the same
//!   instructions;
//! * call-mem-indirect: `call qword ptr [rip + slot]`; lfence: `mov reg,
//!   [rip + slot]; lfence; call reg`;
//! * function pointer, `dyn Trait`, `Option<fn>`: one indirect `call` per
//!   call, each either `call qword ptr [mem]` or a `call reg` whose
//!   register is loaded from memory (not a stack slot) inside the loop,
//!   after the loop's head: a pointer loaded once before the loop and
//!   called from a register (a devirtualised or hoisted control) fails.
//!
//! * a peer ([`crate::peers::prove`]): a static-keys site through the
//!   crate's jump table, a PLT call with its stub, a GOT call with its slot.
//!
//! Every site must lie inside the loop the benchmark runs, and there must
//! be exactly as many as the scenario says. Any mismatch is an error, and
//! the benchmark binaries stop on it rather than measure.

use iced_x86::{Code, Instruction};
use static_call_bundle::SiteDump;
use static_call_core::insn::Form;
use static_call_core::{Design, RawKey, Registry, SiteShape};

use crate::subjects::{CallScenario, Implementation, LoopFn, Subject};
use crate::symbols::Symbols;

pub use static_call_decode::{hex, read_code};

/// Decodes `bytes` at `ip` (the workspace's one decoder,
/// [`static_call_decode::decode`], which the conformance suite and `sctool
/// check` use too).
pub fn decode(bytes: &[u8], ip: usize) -> Vec<Instruction> {
    static_call_decode::decode(bytes, ip as u64)
}

/// One instruction in Intel syntax, with the symbol a branch goes to
/// ([`static_call_decode::format_insn`], named from this program's
/// symbols).
pub fn format_insn(i: &Instruction) -> String {
    static_call_decode::format_insn(i, |t| {
        Symbols::get().ok().and_then(|s| s.describe(t as usize))
    })
}

/// A decoded site for the bundle: its bytes, their instructions, and the
/// form the proof found.
pub fn dump(
    subject: &str,
    key: &str,
    phase: &str,
    place: &str,
    addr: usize,
    bytes: &[u8],
    form: &str,
) -> SiteDump {
    SiteDump {
        subject: subject.into(),
        key: key.into(),
        phase: phase.into(),
        place: place.into(),
        addr: addr as u64,
        bytes: hex(bytes),
        asm: decode(bytes, addr).iter().map(format_insn).collect(),
        form: form.into(),
    }
}

/// The symbol at `addr` (with an offset), or the address.
pub fn name_of(addr: usize) -> String {
    Symbols::get()
        .ok()
        .and_then(|s| s.describe(addr))
        .unwrap_or_else(|| format!("{addr:#x}"))
}
mod controls;
mod forms;
mod loops;

use controls::prove_control;
pub use forms::{check_site, site_code, site_start, thunk_holds_its_description};
use loops::load_in_loop;
pub use loops::loop_around;

fn key_of(imp: &Implementation, scenario: &str) -> (&'static RawKey, &'static str, Option<usize>) {
    use static_call_bundle::scenario as s;
    match scenario {
        s::CALL_HOT_1 => (
            imp.hot1.raw(),
            "HOT1",
            Some(crate::targets::add1 as *const () as usize),
        ),
        s::CALL_HOT_6 => (
            imp.hot6.raw(),
            "HOT6",
            Some(crate::targets::add6 as *const () as usize),
        ),
        s::CALL_MANY => (
            imp.many.raw(),
            "MANY",
            Some(crate::targets::add1 as *const () as usize),
        ),
        s::CALL_COND_SOME => (
            imp.cond_some.raw(),
            "COND_SOME",
            Some(crate::peers::tick as *const () as usize),
        ),
        _ => (imp.cond.raw(), "COND", None),
    }
}

/// Proves that a subject's loop for `sc` measures what its name says.
/// Returns the decoded first site (and trampoline) for the bundle.
///
/// # Errors
/// The form found, where and what was expected.
pub fn prove(s: &Subject, sc: &CallScenario) -> Result<Vec<SiteDump>, String> {
    let copies = (sc.copies)(&s.loops);
    if copies.is_empty() {
        return Err(format!("{} has no {} loop", s.name, sc.id));
    }
    let mut out = Vec::new();
    for (k, &f) in copies.iter().enumerate() {
        let d = prove_copy(s, sc, f, k, copies.len())?;
        if k == 0 {
            out = d;
        }
    }
    Ok(out)
}

/// [`prove`] for copy `k` (of `n`) of the subject's loop: the loop holds
/// its share of the key's sites (all of them when `n` is 1), each the form
/// the implementation's name says; a control's loop is proved as such.
fn prove_copy(
    s: &Subject,
    sc: &CallScenario,
    f: LoopFn,
    k: usize,
    n: usize,
) -> Result<Vec<SiteDump>, String> {
    let syms = Symbols::get()?;
    let lp = syms
        .containing(f as *const () as usize)
        .ok_or_else(|| format!("{} {}: no symbol for the loop function", s.name, sc.id))?;
    let phase = format!("benchmark {}", sc.id);
    match s.imp {
        Some(imp) => {
            let (key, key_name, want_target) = key_of(imp, sc.id);
            prove_key_loop(&KeyLoop {
                subject: s.name,
                scenario: sc.id,
                registry: imp.registry,
                key,
                key_name,
                want_target,
                loop_fn: f,
                calls_per_unit: sc.calls_per_unit,
                copy: k,
                copies: n,
            })
        }
        None if s.kind == static_call_bundle::SubjectKind::Peer => {
            crate::peers::prove(s, sc, lp.addr, lp.size, &lp.name, &phase)
        }
        None => prove_control(s, sc, k, lp.addr, lp.size, &lp.name, &phase),
    }
}

/// One loop over the sites of one key, as [`prove_key_loop`] proves it.
#[derive(Debug, Clone, Copy)]
pub struct KeyLoop<'a> {
    /// The subject's name, for messages and dumps.
    pub subject: &'a str,
    /// The scenario's id.
    pub scenario: &'a str,
    /// The key's registry (its design says what a site holds).
    pub registry: &'static Registry,
    /// The key.
    pub key: &'static RawKey,
    /// Its name, for messages and dumps.
    pub key_name: &'a str,
    /// The function the key must target (`None`: a none target).
    pub want_target: Option<usize>,
    /// The loop function, which must hold the key's sites.
    pub loop_fn: LoopFn,
    /// The key's sites in one copy of the loop.
    pub calls_per_unit: u64,
    /// Which copy of the loop this is.
    pub copy: usize,
    /// How many copies of the loop hold the key's sites.
    pub copies: usize,
}

/// Proves a loop over an implementation's key: the key has
/// `calls_per_unit × copies` recorded sites, this copy of the loop holds
/// `calls_per_unit` of them, each holds what the registry's design says
/// for the key's target (a site that loads the key loads it inside the
/// loop), and the key targets `want_target`. Works for any implementation
/// crate, on the list or not (see [`mod@crate::outside`]). Returns the
/// decoded first site (and trampoline).
///
/// # Errors
/// The form found, where and what was expected.
pub fn prove_key_loop(l: &KeyLoop<'_>) -> Result<Vec<SiteDump>, String> {
    let (name, id, key, key_name) = (l.subject, l.scenario, l.key, l.key_name);
    let syms = Symbols::get()?;
    let lp = syms
        .containing(l.loop_fn as *const () as usize)
        .ok_or_else(|| format!("{name} {id}: no symbol for the loop function"))?;
    let phase = format!("benchmark {id}");
    let n = l.copies;
    let all = l.registry.sites_of(key);
    if all.len() as u64 != l.calls_per_unit * n as u64 {
        return Err(format!(
            "{name} {id}: key {key_name} has {} recorded sites, expected {} ({n} cop{} of the loop)",
            all.len(),
            l.calls_per_unit * n as u64,
            if n == 1 { "y" } else { "ies" }
        ));
    }
    let sites: Vec<_> = all
        .iter()
        .copied()
        .filter(|&(site, _)| (lp.addr..lp.addr + lp.size).contains(&site))
        .collect();
    if sites.len() as u64 != l.calls_per_unit {
        return Err(format!(
            "{name} {id}: copy {} of the loop, `{}`, holds {} sites of {key_name}, expected {}",
            l.copy,
            lp.name,
            sites.len(),
            l.calls_per_unit
        ));
    }
    // SAFETY: the loop function's own bytes, per the symbol table.
    let loop_insns = decode(&unsafe { read_code(lp.addr, lp.size) }, lp.addr);
    let mut out = Vec::new();
    for (i, &(site, _)) in sites.iter().enumerate() {
        // SAFETY: a recorded site of `key` in this program.
        let d = unsafe { check_site(name, key_name, &phase, l.registry, key, site)? };
        key_loaded_in_loop(l.registry.design(), &loop_insns, site)
            .map_err(|e| format!("{name} {id}: site {site:#x} of {key_name}: {e}"))?;
        if i == 0 {
            out.extend(d);
        }
    }
    // The target the sites reach must be the scenario's body.
    let t = key.target_addr();
    if let (Some(t), Some(w)) = (t, l.want_target) {
        let (tn, wn) = (name_of(t), name_of(w));
        if t != w && tn != wn {
            return Err(format!(
                "{name} {id}: key {key_name} targets {tn}, expected {wn}"
            ));
        }
    } else if t.is_some() != l.want_target.is_some() {
        return Err(format!("{name} {id}: key {key_name} target {t:?}"));
    }
    Ok(out)
}

/// For a design whose sites load the key (a thunk's `mov rax, [key]`
/// before the label, or `mov rax, [key]; call rax` at it): the load must
/// lie inside the loop around the site's call, after its head, so that
/// every call loads the key (the rule the indirect controls follow).
/// `insns`: the loop function, decoded.
///
/// # Errors
/// The load or the call not found, or not inside one loop.
fn key_loaded_in_loop(design: &Design, insns: &[Instruction], site: usize) -> Result<(), String> {
    let (load_ip, call_ip) = match design.site {
        SiteShape::CallThunk => (site - 7, site),
        SiteShape::LoadCallRax => (site, site + 7),
        SiteShape::CallTrampoline => return Ok(()),
    };
    let find = |ip: usize, what: &str| {
        insns
            .iter()
            .position(|i| i.ip() as usize == ip)
            .ok_or_else(|| {
                format!("no instruction of the loop function starts at the {what} {ip:#x}")
            })
    };
    let (load, call) = (find(load_ip, "key's load")?, find(call_ip, "call")?);
    let (head, _) = loop_around(insns, call)
        .ok_or_else(|| format!("`{}` is not inside a loop", format_insn(&insns[call])))?;
    if load < head {
        return Err(format!(
            "the key's load `{}` at {load_ip:#x} lies before the loop's head at {:#x}: it is not made at every call",
            format_insn(&insns[load]),
            insns[head].ip()
        ));
    }
    Ok(())
}

/// For the report's "sites, decoded": the site of `HOT1` and its
/// trampoline before and after an update to `add2`, checked, then the key
/// is set back to `add1` and checked again.
///
/// # Errors
/// A failed update or an unexpected form.
pub fn dump_update(s: &Subject, imp: &Implementation) -> Result<Vec<SiteDump>, String> {
    let key = imp.hot1.raw();
    let sites = imp.registry.sites_of(key);
    let &(site, _) = sites
        .first()
        .ok_or_else(|| format!("{}: HOT1 has no site", s.name))?;
    let registry = imp.registry;
    // SAFETY: `site` is a recorded site of `key` in this program.
    let mut out = unsafe {
        check_site(
            s.name,
            "HOT1",
            "before update (target add1)",
            registry,
            key,
            site,
        )?
    };
    imp.hot1
        .update(crate::targets::add2)
        .map_err(|e| format!("{}: {e}", s.name))?;
    // SAFETY: as above.
    out.extend(unsafe {
        check_site(
            s.name,
            "HOT1",
            "after update (target add2)",
            registry,
            key,
            site,
        )?
    });
    imp.hot1
        .update(crate::targets::add1)
        .map_err(|e| format!("{}: {e}", s.name))?;
    // SAFETY: as above.
    unsafe { check_site(s.name, "HOT1", "restored", registry, key, site)? };
    Ok(out)
}

/// Proves that the `LONE` key of an implementation has exactly one site,
/// in [`Implementation::call_lone`], holding the form for its current
/// target (the update benchmarks rewrite it).
///
/// # Errors
/// The form found, where and what was expected.
pub fn prove_lone(s: &Subject, imp: &Implementation) -> Result<Vec<SiteDump>, String> {
    let key = imp.lone.raw();
    let sites = imp.registry.sites_of(key);
    let [(site, _)] = sites[..] else {
        return Err(format!(
            "{}: key LONE has {} sites, expected 1",
            s.name,
            sites.len()
        ));
    };
    let f = Symbols::get()?
        .containing(imp.call_lone as *const () as usize)
        .ok_or_else(|| format!("{}: no symbol for call_lone", s.name))?;
    if !(f.addr..f.addr + f.size).contains(&site) {
        return Err(format!(
            "{}: the site of LONE lies outside `{}`",
            s.name, f.name
        ));
    }
    // SAFETY: the one recorded site of `key` in this program.
    unsafe { check_site(s.name, "LONE", "update benchmark", imp.registry, key, site) }
}

/// Proves every (subject, call scenario) pair and collects the dumps.
///
/// # Errors
/// The first mismatch.
pub fn prove_all() -> Result<Vec<SiteDump>, String> {
    let mut out = Vec::new();
    for s in crate::subjects::SUBJECTS {
        for sc in &crate::subjects::CALL_SCENARIOS {
            if (sc.pick)(&s.loops).is_some() {
                out.extend(prove(s, sc)?);
            }
        }
    }
    Ok(out)
}
