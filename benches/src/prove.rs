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

/// The form a site of `key` must hold in a design, and how the proof
/// names it: what [`Design::decode_site`] must return for it.
fn expected_form(
    registry: &Registry,
    key_name: &str,
    key: &RawKey,
) -> Result<(Form, String), String> {
    let design = registry.design();
    let target = key.target_addr();
    Ok(match design.site {
        // A design that patches its sites: `call target`, or the NOP for
        // none.
        _ if design.patches_sites => match target {
            Some(t) => (Form::Call(t), format!("call {}", name_of(t))),
            None => (Form::Nop, "5-byte NOP (target none)".into()),
        },
        SiteShape::CallTrampoline => {
            let tramp = key.trampoline().ok_or_else(|| {
                format!("{key_name}: a trampoline design's key without a trampoline")
            })?;
            (Form::Call(tramp), format!("call {}", name_of(tramp)))
        }
        SiteShape::CallThunk => {
            let thunk = registry
                .thunk()
                .ok_or_else(|| format!("{key_name}: a thunk design's registry without a thunk"))?;
            thunk_holds_its_description(design, thunk)?;
            (
                Form::Call(thunk),
                format!("mov rax, [{key_name}]; call {}", name_of(thunk)),
            )
        }
        SiteShape::LoadCallRax => (
            Form::CallVia(key.addr()),
            format!("mov rax, [{key_name}]; call rax (plain indirect call, no retpoline)"),
        ),
    })
}

/// The registry's thunk at `thunk` holds the code its design describes
/// ([`Design::thunk`]), which `sctool` and generated modules go by.
///
/// # Errors
/// The bytes found and those described.
pub fn thunk_holds_its_description(design: &Design, thunk: usize) -> Result<(), String> {
    // SAFETY: the registry's thunk, live code of this program, at least as
    // long as its description says.
    let got = unsafe { read_code(thunk, design.thunk.len()) };
    if design.thunk.is_empty() || got != design.thunk {
        return Err(format!(
            "{}: the thunk at {thunk:#x} ({}) holds {}, its description says {}",
            design.name,
            name_of(thunk),
            hex(&got),
            hex(design.thunk)
        ));
    }
    Ok(())
}

/// Where the bytes of a site of `design` start, from its label: 7 bytes
/// before it for a [`SiteShape::CallThunk`] site (its load of the key),
/// else at it.
pub fn site_start(design: &Design, site: usize) -> usize {
    match design.site {
        SiteShape::CallThunk => site - 7,
        _ => site,
    }
}

/// The code of a site of `design` in the main program: where it starts
/// ([`site_start`]) and its bytes, up to the end of its slot
/// ([`Design::site_len`]).
///
/// # Safety
/// `site` is a live site of a key of `design` in this program.
pub unsafe fn site_code(design: &Design, site: usize) -> (usize, Vec<u8>) {
    let start = site_start(design, site);
    let len = site - start + design.site_len(false);
    // SAFETY: the site's bytes, live code as the caller promises.
    (start, unsafe { read_code(start, len) })
}

/// Checks one site of `key` against its registry's design (decoded with
/// [`Design::decode_site`]) and returns what it saw (the generated
/// scenarios' sites too: [`crate::gencode`]).
///
/// # Errors
/// The form found, where and what was expected.
///
/// # Safety
/// `site` is a live call site of `key` in this program.
pub unsafe fn check_site(
    subject: &str,
    key_name: &str,
    phase: &str,
    registry: &Registry,
    key: &RawKey,
    site: usize,
) -> Result<Vec<SiteDump>, String> {
    let design = registry.design();
    // SAFETY: a live site of this program (and, for a thunk design, its
    // load of the key before it).
    let (start, bytes) = unsafe { site_code(design, site) };
    let insns = decode(&bytes, start);
    let shown = || insns.iter().map(format_insn).collect::<Vec<_>>().join("; ");
    let target = key.target_addr();
    let (want, form) = expected_form(registry, key_name, key)?;
    let got = design.decode_site(site, &bytes[site - start..], false);
    if got != Some(want) {
        return Err(format!(
            "{subject} {key_name}: site {site:#x} holds `{}` ({got:x?} as {} decodes it, hex), expected `{form}` ({want:x?})",
            shown(),
            design.name,
        ));
    }
    if design.site == SiteShape::CallThunk {
        // The thunk's site loads the key itself into `rax` right before.
        let m = &insns[0];
        let load_ok = m.code() == Code::Mov_r64_rm64
            && m.is_ip_rel_memory_operand()
            && m.ip_rel_memory_address() as usize == key.addr()
            && m.op0_register() == iced_x86::Register::RAX
            && m.next_ip() as usize == site;
        if !load_ok {
            return Err(format!(
                "{subject} {key_name}: site {site:#x} holds `{}`, expected `mov rax, [rip+{:#x}]` before the call (`{form}`)",
                shown(),
                key.addr()
            ));
        }
    }
    let mut out = vec![dump(subject, key_name, phase, "site", start, &bytes, &form)];
    if let Some(tramp) = key.trampoline() {
        // SAFETY: the trampoline is live code of this program.
        let tb = unsafe { read_code(tramp, 5) };
        let ti = decode(&tb, tramp);
        let (ok, tform) = match target {
            Some(t) => (
                ti[0].code() == Code::Jmp_rel32_64 && ti[0].near_branch_target() as usize == t,
                format!("jmp {}", name_of(t)),
            ),
            None => (
                ti[0].mnemonic() == iced_x86::Mnemonic::Ret,
                "ret (target none)".into(),
            ),
        };
        if !ok {
            return Err(format!(
                "{subject} {key_name}: trampoline {tramp:#x} holds `{}`, expected `{tform}`",
                format_insn(&ti[0])
            ));
        }
        out.push(dump(
            subject,
            key_name,
            phase,
            "trampoline",
            tramp,
            &tb,
            &tform,
        ));
    }
    Ok(out)
}

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

/// The innermost loop of `insns` that contains the instruction at index
/// `at`: the span `[start, end]` of indices from a backward branch's target
/// to the branch.
pub fn loop_around(insns: &[Instruction], at: usize) -> Option<(usize, usize)> {
    let ip = insns[at].ip();
    let mut best: Option<(usize, usize)> = None;
    for (j, b) in insns.iter().enumerate() {
        let is_branch = b.op_count() == 1
            && b.op0_kind() == iced_x86::OpKind::NearBranch64
            && b.mnemonic() != iced_x86::Mnemonic::Call;
        if !is_branch || b.near_branch_target() == 0 {
            continue;
        }
        let t = b.near_branch_target();
        if t <= ip && ip < b.ip() {
            let Some(start) = insns.iter().position(|i| i.ip() == t) else {
                continue;
            };
            if best.is_none_or(|(s, e)| e - s > j - start) {
                best = Some((start, j));
            }
        }
    }
    best
}

/// The 64-bit register a 64- or 32-bit general register is part of.
fn full(r: iced_x86::Register) -> iced_x86::Register {
    use iced_x86::Register as R;
    const PAIRS: [(R, R); 16] = [
        (R::RAX, R::EAX),
        (R::RCX, R::ECX),
        (R::RDX, R::EDX),
        (R::RBX, R::EBX),
        (R::RSP, R::ESP),
        (R::RBP, R::EBP),
        (R::RSI, R::ESI),
        (R::RDI, R::EDI),
        (R::R8, R::R8D),
        (R::R9, R::R9D),
        (R::R10, R::R10D),
        (R::R11, R::R11D),
        (R::R12, R::R12D),
        (R::R13, R::R13D),
        (R::R14, R::R14D),
        (R::R15, R::R15D),
    ];
    PAIRS
        .iter()
        .find(|(q, d)| *q == r || *d == r)
        .map_or(r, |(q, _)| *q)
}

/// Registers a call clobbers (the C ABI's caller-saved registers).
fn caller_saved(r: iced_x86::Register) -> bool {
    use iced_x86::Register as R;
    matches!(
        r,
        R::RAX | R::RCX | R::RDX | R::RSI | R::RDI | R::R8 | R::R9 | R::R10 | R::R11
    )
}

/// Whether `i` writes register `r` (its first operand, for the instructions
/// a compiler puts between a load and a call; compares and tests only read).
fn writes(i: &Instruction, r: iced_x86::Register) -> bool {
    use iced_x86::Mnemonic as M;
    i.op_count() > 0
        && i.op0_kind() == iced_x86::OpKind::Register
        && full(i.op0_register()) == r
        && !matches!(i.mnemonic(), M::Cmp | M::Test | M::Bt | M::Push)
}

/// The load that makes the indirect call at index `at` indirect: the call
/// itself when it is `call qword ptr [mem]`, else the `mov reg, [mem]` that
/// last wrote the called register, which must lie inside the loop around
/// the call (after its head, with no call in between that clobbers it).
/// Stack slots do not count: a spilled copy of a pointer loaded once
/// before the loop is the pointer hoisted out of the loop.
///
/// Returns the index of the load.
///
/// # Errors
/// What the loop does instead.
fn load_in_loop(insns: &[Instruction], at: usize) -> Result<usize, String> {
    use iced_x86::Register as R;
    let call = &insns[at];
    let (start, _) = loop_around(insns, at)
        .ok_or_else(|| format!("`{}` is not inside a loop", format_insn(call)))?;
    let from_memory = |i: &Instruction, op: u32| {
        i.op_kind(op) == iced_x86::OpKind::Memory && !matches!(i.memory_base(), R::RSP | R::RBP)
    };
    if call.op0_kind() == iced_x86::OpKind::Memory {
        return if from_memory(call, 0) {
            Ok(at)
        } else {
            Err(format!(
                "`{}` calls through a stack slot, not the pointer's memory",
                format_insn(call)
            ))
        };
    }
    let mut reg = full(call.op0_register());
    for j in (start..at).rev() {
        let i = &insns[j];
        if i.mnemonic() == iced_x86::Mnemonic::Call && caller_saved(reg) {
            return Err(format!(
                "`{}` calls {reg:?}, which the call at {:#x} clobbers before it is loaded",
                format_insn(call),
                i.ip()
            ));
        }
        if !writes(i, reg) {
            continue;
        }
        if i.mnemonic() == iced_x86::Mnemonic::Mov && i.op_count() == 2 {
            if from_memory(i, 1) {
                return Ok(j);
            }
            if i.op1_kind() == iced_x86::OpKind::Register {
                // A register copy: follow the source.
                reg = full(i.op1_register());
                continue;
            }
        }
        return Err(format!(
            "`{}` calls a register last written by `{}` at {:#x}, not by a load from memory",
            format_insn(call),
            format_insn(i),
            i.ip()
        ));
    }
    Err(format!(
        "`{}` at {:#x} calls a register that is not loaded inside the loop (the load was hoisted out of it: the call is not an indirect call through memory at every call)",
        format_insn(call),
        call.ip()
    ))
}

fn prove_control(
    s: &Subject,
    sc: &CallScenario,
    copy: usize,
    addr: usize,
    size: usize,
    name: &str,
    phase: &str,
) -> Result<Vec<SiteDump>, String> {
    use static_call_bundle::control;
    // SAFETY: the loop function's own bytes, per the symbol table.
    let bytes = unsafe { read_code(addr, size) };
    let insns = decode(&bytes, addr);
    let calls: Vec<usize> = insns
        .iter()
        .enumerate()
        .filter(|(_, i)| i.mnemonic() == iced_x86::Mnemonic::Call)
        .map(|(k, _)| k)
        .collect();
    let six = sc.id == static_call_bundle::scenario::CALL_HOT_6;
    let body = if six {
        crate::targets::add6 as *const () as usize
    } else {
        crate::targets::add1 as *const () as usize
    };
    let slot = if six {
        crate::subjects::slots::SIX.as_ptr() as usize
    } else {
        crate::subjects::slots::ONE.as_ptr() as usize
    };
    let direct_to_body = |i: &Instruction| {
        i.code() == Code::Call_rel32_64 && {
            let t = i.near_branch_target() as usize;
            t == body || name_of(t) == name_of(body)
        }
    };
    let context = |what: String| {
        format!(
            "{} {}: the loop `{name}`: {what} (calls: {})",
            s.name,
            sc.id,
            calls
                .iter()
                .take(3)
                .map(|&k| format_insn(&insns[k]))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    if calls.len() as u64 != sc.calls_per_unit {
        return Err(context(format!(
            "makes {} calls, expected {}",
            calls.len(),
            sc.calls_per_unit
        )));
    }
    // The first instruction of the dump: the call, or the load before it.
    let mut first = calls[0];
    let aa_of_option_fn =
        s.name == control::DIRECT_AA && crate::subjects::reference(sc) == control::OPTION_FN;
    let form = match s.name {
        control::DIRECT | control::DIRECT_AA if !aa_of_option_fn => {
            if let Some(&k) = calls.iter().find(|&&k| !direct_to_body(&insns[k])) {
                return Err(context(format!(
                    "`{}` is not `call {}`",
                    format_insn(&insns[k]),
                    name_of(body)
                )));
            }
            if s.name == control::DIRECT_AA {
                aa_is_a_copy(sc, copy, addr, &insns).map_err(context)?;
            }
            format!("call {}", name_of(body))
        }
        control::CALL_MEM_INDIRECT => {
            for &k in &calls {
                let i = &insns[k];
                if !(i.code() == Code::Call_rm64
                    && i.is_ip_rel_memory_operand()
                    && i.ip_rel_memory_address() as usize == slot)
                {
                    return Err(context(format!(
                        "`{}` is not `call qword ptr [rip + {slot:#x}]`",
                        format_insn(i)
                    )));
                }
            }
            "call qword ptr [rip + slot] (indirect call through memory)".into()
        }
        control::LFENCE_INDIRECT => {
            for &k in &calls {
                let i = &insns[k];
                let fence = k
                    .checked_sub(1)
                    .is_some_and(|p| insns[p].mnemonic() == iced_x86::Mnemonic::Lfence);
                let load = k.checked_sub(2).map(|p| &insns[p]).is_some_and(|m| {
                    m.code() == Code::Mov_r64_rm64
                        && m.is_ip_rel_memory_operand()
                        && m.ip_rel_memory_address() as usize == slot
                        && i.op0_kind() == iced_x86::OpKind::Register
                        && m.op0_register() == i.op0_register()
                });
                if !(fence && load) {
                    return Err(context(format!(
                        "`{}` is not preceded by `mov reg, [rip + {slot:#x}]; lfence`",
                        format_insn(i)
                    )));
                }
            }
            first = calls[0] - 2;
            "mov rax, [rip + slot]; lfence; call rax (AMD-style lfence retpoline)".into()
        }
        control::FN_POINTER | control::DYN_TRAIT | control::OPTION_FN | control::DIRECT_AA => {
            for (n, &k) in calls.iter().enumerate() {
                let i = &insns[k];
                if i.code() != Code::Call_rm64 {
                    return Err(context(format!(
                        "`{}` is not an indirect call",
                        format_insn(i)
                    )));
                }
                let load = load_in_loop(&insns, k).map_err(context)?;
                if n == 0 {
                    first = load;
                }
            }
            if aa_of_option_fn {
                aa_is_a_copy(sc, copy, addr, &insns).map_err(context)?;
            }
            if s.name == control::FN_POINTER {
                "the pointer loaded from memory in the loop, then called (plain indirect call)"
                    .into()
            } else {
                "the target loaded from memory (vtable slot or pointer) in the loop, then called"
                    .into()
            }
        }
        other => return Err(format!("no proof written for control {other}")),
    };
    let (from, to) = (
        insns[first].ip() as usize,
        insns[calls[0]].next_ip() as usize,
    );
    let b = &bytes[from - addr..to - addr];
    Ok(vec![dump(s.name, name, phase, "loop", from, b, &form)])
}

/// The A/A loop must be a distinct function (not merged with the
/// scenario's reference loop: the direct call's, or the `Option<fn>` one's)
/// with the same instructions as that loop.
fn aa_is_a_copy(
    sc: &CallScenario,
    copy: usize,
    addr: usize,
    insns: &[Instruction],
) -> Result<(), String> {
    let reference = crate::subjects::reference(sc);
    let direct = crate::subjects::SUBJECTS
        .iter()
        .find(|s| s.name == reference)
        .and_then(|s| (sc.copies)(&s.loops).get(copy).copied())
        .ok_or_else(|| format!("no {reference} loop (copy {copy}) to compare with"))?;
    let d = Symbols::get()?
        .containing(direct as *const () as usize)
        .ok_or_else(|| format!("no symbol for the {reference} loop"))?;
    if d.addr == addr {
        return Err(format!(
            "the A/A loop is the {reference} loop itself (the two were merged)"
        ));
    }
    // SAFETY: the direct loop's own bytes, per the symbol table.
    let db = unsafe { read_code(d.addr, d.size) };
    let di = decode(&db, d.addr);
    let codes = |v: &[Instruction]| v.iter().map(|i| i.code()).collect::<Vec<_>>();
    if codes(&di) != codes(insns) {
        return Err(format!(
            "the A/A loop's {} instructions differ from the {reference} loop's {}",
            insns.len(),
            di.len()
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
