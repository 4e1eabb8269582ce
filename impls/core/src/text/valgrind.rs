//! Valgrind client requests, issued with the fixed "magic" instruction
//! sequence (a no-op when the program runs natively).

const DISCARD_TRANSLATIONS: u64 = 0x1002;
const RUNNING_ON_VALGRIND: u64 = 0x1001;

fn request(args: &[u64; 6], default: u64) -> u64 {
    let result: u64;
    // SAFETY: the four rotations of rdi add up to 128 bits (a no-op) and
    // `xchg rbx, rbx` is a no-op natively; under valgrind the sequence is
    // recognised and the request read from the array `rax` points to. The
    // array is live for the duration of the asm block.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") default => result,
            inout("rdi") 0u64 => _,
            options(nostack)
        );
    }
    result
}

/// Tells valgrind to drop its translations of `addr..addr + len`.
pub(crate) fn discard_translations(addr: usize, len: usize) {
    request(&[DISCARD_TRANSLATIONS, addr as u64, len as u64, 0, 0, 0], 0);
}

/// Whether the program runs under valgrind.
pub fn running_on_valgrind() -> bool {
    request(&[RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0], 0) != 0
}

/// Under valgrind, lets the program's other threads run. Valgrind runs
/// one thread at a time and, with its default scheduler, hands the CPU
/// over only at a blocking system call or after a long time slice, which
/// the same thread often wins again: a thread updating keys in a loop kept
/// the threads calling them from running at all. Each update ends with
/// this (natively it is one client request, a few instructions). A
/// `sched_yield` is not enough (the yielding thread won the CPU back
/// after about half of the updates); a sleep of a microsecond (in
/// practice the kernel's timer slack, some 50 µs) lets a waiting thread
/// take its slice every time.
pub fn let_others_run() {
    if running_on_valgrind() {
        std::thread::sleep(std::time::Duration::from_micros(1));
    }
}
