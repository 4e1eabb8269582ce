//! The two shapes of generated code: a chain of stubs ([`chain`]) and a
//! loop over noise ([`looped`]), and the noise itself ([`trash`],
//! [`polluters`]).

use super::*;

// ------------------------------------------------------------- chains

/// Bytes per stub of a chain (a cache line each).
pub const STUB: usize = 64;

/// A chain of `n` stubs ([`chain`]): `extern "C" fn(x) -> x + n`.
#[derive(Debug)]
pub struct Chain {
    /// The code (and module).
    pub code: Generated,
    /// The entry.
    pub entry: usize,
    /// The stubs.
    pub n: usize,
}

impl Chain {
    /// One pass: `n` calls, returns `x + n`.
    pub fn run(&self, x: u64) -> u64 {
        // SAFETY: the entry of a chain generated as an `extern "C"
        // fn(u64) -> u64` (checked by `prove_chain` before any
        // measurement), mapped while `self` lives.
        let f: extern "C" fn(u64) -> u64 = unsafe { std::mem::transmute(self.entry) };
        f(x)
    }
}

/// Offsets in a chain's code: the entry, the exit, the first stub.
pub(super) const CHAIN_EXIT: usize = 64;
pub(super) const CHAIN_STUBS: usize = 128;

/// Generates a chain of `order.len()` stubs of `s`'s site: stub `order[i]`
/// is the `i`-th visited. `order` must be a permutation of `0..n`.
///
/// # Errors
/// As [`generate`].
pub fn chain(s: &GenSubject, order: &[usize]) -> Result<Chain, String> {
    chain_near(s, order, add1_addr())
}

/// Bytes of code a chain of `n` stubs takes ([`chain`]), before rounding
/// to pages.
pub fn chain_len(n: usize) -> usize {
    CHAIN_STUBS + n * STUB
}

/// [`chain`], mapped as close to `near` as the address space allows
/// ([`generate_near`]).
///
/// # Errors
/// As [`generate`].
pub fn chain_near(s: &GenSubject, order: &[usize], near: usize) -> Result<Chain, String> {
    let n = order.len();
    let len = chain_len(n);
    let stub = |base: usize, j: usize| base + CHAIN_STUBS + j * STUB;
    let code = generate_near(
        &format!("{} chain of {n}", s.name),
        len,
        near,
        registry_of(s.site),
        |base| {
            let mut b = vec![0xcc_u8; len];
            let mut entries = Vec::new();
            let mut put =
                |off: usize, bytes: &[u8]| b[off..off + bytes.len()].copy_from_slice(bytes);
            let first = stub(base, *order.first().ok_or("an empty chain")?);
            put(0, &[0x48, 0x83, 0xec, 0x08]); // sub rsp, 8
            put(4, &branch(0xe9, base + 4, first, "jmp first stub")?);
            put(
                CHAIN_EXIT,
                &[0x48, 0x89, 0xf8, 0x48, 0x83, 0xc4, 0x08, 0xc3],
            ); // mov rax, rdi; add rsp, 8; ret
            for (i, &j) in order.iter().enumerate() {
                let at = stub(base, j);
                let next = order
                    .get(i + 1)
                    .map_or(base + CHAIN_EXIT, |&k| stub(base, k));
                let site = site_code(s.site, at)?;
                let off = at - base;
                put(off, &site.bytes);
                let tail = off + site.bytes.len();
                put(tail, &MOV_RDI_RAX);
                put(
                    tail + 3,
                    &branch(0xe9, base + tail + 3, next, "jmp next stub")?,
                );
                entries.extend(site.entry);
            }
            Ok((b, entries))
        },
    )?;
    Ok(Chain {
        entry: code.addr(),
        code,
        n,
    })
}

// -------------------------------------------------------------- loops

/// A loop ([`looped`]): `extern "C" fn(x, n, ticks: *mut u64) -> x + n`,
/// each of the `n` iterations calling the noise, then the subject's one
/// site between two fenced reads of the time-stamp counter, whose
/// differences it adds up into `*ticks`.
#[derive(Debug)]
pub struct Looped {
    /// The code (and module).
    pub code: Generated,
    /// Where the site lies.
    pub site: usize,
    /// The loop's head (`call noise`).
    pub head: usize,
}

impl Looped {
    /// `n` iterations from `x`: returns `x + n` and the time-stamp-counter
    /// ticks spent in the timed windows around the site.
    pub fn run(&self, x: u64, n: u64) -> (u64, u64) {
        // SAFETY: generated as an `extern "C" fn(u64, u64, *mut u64) ->
        // u64` (checked by `prove_loop` before any measurement), mapped
        // while `self` lives; it writes `*ticks` once and otherwise only
        // the noise's state, which its [`Noise`] keeps alive.
        let f: extern "C" fn(u64, u64, *mut u64) -> u64 =
            unsafe { std::mem::transmute(self.code.addr()) };
        let mut ticks = 0u64;
        let r = f(x, n, &mut ticks);
        (r, ticks)
    }
}

const LOOP_HEAD: usize = 64;
/// `lfence; rdtsc; shl rdx, 32; or rax, rdx`: the time-stamp counter in
/// `rax`, read after every earlier instruction has completed.
const READ_TSC: [u8; 12] = [
    0x0f, 0xae, 0xe8, 0x0f, 0x31, 0x48, 0xc1, 0xe2, 0x20, 0x48, 0x09, 0xd0,
];

/// Generates `s`'s loop around `noise`: saves `rbx`, `rbp`, `r12`–`r15`
/// and `rdx` (the ticks' address); `r13` = n, `r14` = x, `r15` = the
/// noise's state, `r12` = its cursor (state word 0), `rbp` = 0; then `n`
/// times: `call noise`; read the counter (fenced), `lfence`, keep it in
/// `rbx`; `mov rdi, r14; <site>; mov r14, rax`; read the counter again
/// (fenced) and add the difference to `rbp`. Then stores the cursor back,
/// `rbp` into the ticks, and returns `r14`.
///
/// # Errors
/// As [`generate`].
pub fn looped(s: &GenSubject, noise: &Noise) -> Result<Looped, String> {
    let len = 4096;
    let state = noise.state.as_ptr() as u64;
    let noise_at = noise.code.addr();
    let mut site_at = 0;
    let code = generate(
        &format!("{} loop", s.name),
        len,
        registry_of(s.site),
        |base| {
            let mut b = vec![0xcc_u8; len];
            let mut p = Vec::new();
            // push rbx, rbp, r12-r15, rdx (7 pushes: the stack is 16-byte
            // aligned for the calls)
            p.extend_from_slice(&[
                0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57, 0x52,
            ]);
            p.extend_from_slice(&[0x49, 0x89, 0xf5, 0x49, 0x89, 0xfe]); // mov r13, rsi; mov r14, rdi
            p.extend_from_slice(&[0x49, 0xbf]); // mov r15, imm64
            p.extend_from_slice(&state.to_le_bytes());
            p.extend_from_slice(&[0x4d, 0x8b, 0x27, 0x31, 0xed]); // mov r12, [r15]; xor ebp, ebp
            let j = p.len();
            p.extend_from_slice(&branch(0xe9, base + j, base + LOOP_HEAD, "jmp head")?);
            b[..p.len()].copy_from_slice(&p);
            let head = base + LOOP_HEAD;
            let mut l = branch(0xe8, head, noise_at, "call noise")?;
            l.extend_from_slice(&READ_TSC);
            l.extend_from_slice(&[0x0f, 0xae, 0xe8, 0x48, 0x89, 0xc3]); // lfence; mov rbx, rax
            l.extend_from_slice(&[0x4c, 0x89, 0xf7]); // mov rdi, r14
            site_at = head + l.len();
            let site = site_code(s.site, site_at)?;
            l.extend_from_slice(&site.bytes);
            l.extend_from_slice(&[0x49, 0x89, 0xc6]); // mov r14, rax
            l.extend_from_slice(&READ_TSC);
            l.extend_from_slice(&[0x48, 0x29, 0xd8, 0x48, 0x01, 0xc5]); // sub rax, rbx; add rbp, rax
            l.extend_from_slice(&[0x49, 0xff, 0xcd]); // dec r13
            let jnz_at = head + l.len();
            l.extend_from_slice(&[0x0f, 0x85]);
            l.extend_from_slice(&rel32(jnz_at + 6, head, "jnz head")?);
            l.extend_from_slice(&[0x4d, 0x89, 0x27, 0x5a, 0x48, 0x89, 0x2a]); // mov [r15], r12; pop rdx; mov [rdx], rbp
            l.extend_from_slice(&[0x4c, 0x89, 0xf0]); // mov rax, r14
            l.extend_from_slice(&[
                0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3,
            ]); // pops; ret
            b[LOOP_HEAD..LOOP_HEAD + l.len()].copy_from_slice(&l);
            Ok((b, site.entry.into_iter().collect()))
        },
    )?;
    Ok(Looped {
        head: code.addr() + LOOP_HEAD,
        site: site_at,
        code,
    })
}

/// The code every subject's loop calls between two calls of its site,
/// and the data it reads: state word 0 is the cursor (the loop keeps it
/// in `r12`), the rest the noise's own table.
#[derive(Debug)]
pub struct Noise {
    /// The code (`ret` at its end).
    pub code: Generated,
    /// The state the loops point `r15` at.
    pub state: Vec<u64>,
    /// Indirect jumps per call.
    pub jumps: usize,
    /// Indirect jump sites in the code.
    pub sites: usize,
}

/// Trash pads (each its own indirect jump) and the length of the random
/// sequence of their addresses (a power of two).
pub const TRASH_PADS: usize = 256;
const TRASH_SEQUENCE: usize = 1 << 16;
const TRASH_PAD: usize = 32;

/// The trash: `jumps` indirect jumps per call, each to a random one of
/// [`TRASH_PADS`] pads (a random sequence of 65,536 pad addresses, walked
/// on from call to call), each pad with its own `jmp`: `mov ecx, jumps;
/// jmp [r15 + 8 + r12*8]`; pad: `inc r12; and r12, 65535; dec ecx; jz out;
/// jmp [r15 + 8 + r12*8]`; out: `ret`.
///
/// # Errors
/// As [`generate`].
pub fn trash(jumps: u32, seed: u64) -> Result<Noise, String> {
    let pads0 = 64;
    let out = pads0 + TRASH_PADS * TRASH_PAD;
    let len = out + 64;
    let jmp_seq = [0x43, 0xff, 0x64, 0xe7, 0x08]; // jmp [r15 + r12*8 + 8]
    let mut pads = Vec::new();
    let code = generate("trash", len, None, |base| {
        let mut b = vec![0xcc_u8; len];
        b[..5].copy_from_slice(&[0xb9, 0, 0, 0, 0]);
        b[1..5].copy_from_slice(&jumps.to_le_bytes()); // mov ecx, jumps
        b[5..10].copy_from_slice(&jmp_seq);
        for m in 0..TRASH_PADS {
            let at = pads0 + m * TRASH_PAD;
            let mut p = vec![0x49, 0xff, 0xc4, 0x49, 0x81, 0xe4]; // inc r12; and r12, imm32
            p.extend_from_slice(&((TRASH_SEQUENCE - 1) as u32).to_le_bytes());
            p.extend_from_slice(&[0xff, 0xc9, 0x0f, 0x84]); // dec ecx; jz out
            p.extend_from_slice(&rel32(base + at + p.len() + 4, base + out, "jz out")?);
            p.extend_from_slice(&jmp_seq);
            b[at..at + p.len()].copy_from_slice(&p);
            pads.push(base + at);
        }
        b[out] = 0xc3;
        Ok((b, Vec::new()))
    })?;
    let mut rng = crate::rounds::Rng::new(seed);
    let mut state = vec![0u64];
    state.extend((0..TRASH_SEQUENCE).map(|_| pads[rng.below(pads.len())] as u64));
    Ok(Noise {
        code,
        state,
        jumps: jumps as usize,
        sites: TRASH_PADS + 1,
    })
}

/// Tables of the polluters' targets, taken in turn (period 4).
pub const POLLUTER_PHASES: usize = 4;
const POLLUTER_BLOCK: usize = 16;

/// `p` polluters: `mov rbx, [r15 + 8 + r12*8]; inc r12; and r12, 3`
/// (this call's table of targets, one of [`POLLUTER_PHASES`] in turn),
/// then `p` indirect jumps, each its own site: `jmp [rbx]`, then in block
/// `k` (16 bytes each) `nop; jmp [rbx + 8k]`, the last block `nop; ret`.
/// Jump `k` goes to block `k + 1`, at its `nop` or one byte further, as
/// the phase's table says: each polluter's target changes from call to
/// call in its own random pattern of period 4 (never constant).
///
/// # Errors
/// As [`generate`].
pub fn polluters(p: usize, seed: u64) -> Result<Noise, String> {
    let blocks0 = 64;
    let len = blocks0 + (p + 1) * POLLUTER_BLOCK;
    let mut block = Vec::new();
    let code = generate(&format!("{p} polluters"), len, None, |base| {
        let mut b = vec![0xcc_u8; len];
        let head = [
            0x4b, 0x8b, 0x5c, 0xe7, 0x08, 0x49, 0xff, 0xc4, 0x49, 0x83, 0xe4,
        ];
        b[..head.len()].copy_from_slice(&head);
        b[head.len()] = (POLLUTER_PHASES - 1) as u8;
        let j = head.len() + 1;
        if p == 0 {
            b[j] = 0xc3;
        } else {
            b[j..j + 2].copy_from_slice(&[0xff, 0x23]); // jmp [rbx]
        }
        for k in 1..=p {
            let at = blocks0 + (k - 1) * POLLUTER_BLOCK;
            block.push(base + at);
            b[at] = 0x90;
            if k == p {
                b[at + 1] = 0xc3;
            } else {
                let disp = u32::try_from(8 * k).map_err(|_| "too many polluters")?;
                b[at + 1..at + 3].copy_from_slice(&[0xff, 0xa3]); // jmp [rbx + disp32]
                b[at + 3..at + 7].copy_from_slice(&disp.to_le_bytes());
            }
        }
        Ok((b, Vec::new()))
    })?;
    let mut rng = crate::rounds::Rng::new(seed);
    // Per polluter, a pattern of 4 bits that is neither 0000 nor 1111.
    let patterns: Vec<usize> = (0..p).map(|_| 1 + rng.below(14)).collect();
    let mut tables: Vec<u64> = Vec::with_capacity(POLLUTER_PHASES * p);
    for t in 0..POLLUTER_PHASES {
        for (k, &pat) in patterns.iter().enumerate() {
            tables.push((block[k] + ((pat >> t) & 1)) as u64);
        }
    }
    let mut state = vec![0u64; 1 + POLLUTER_PHASES];
    let mut noise = Noise {
        code,
        state: Vec::new(),
        jumps: p,
        sites: p,
    };
    // The tables live after the header in the same vector, so that the
    // header's pointers stay valid as long as the state does.
    state.extend_from_slice(&tables);
    let data = state.as_ptr() as usize;
    for t in 0..POLLUTER_PHASES {
        state[1 + t] = (data + 8 * (1 + POLLUTER_PHASES + t * p)) as u64;
    }
    noise.state = state;
    Ok(noise)
}
