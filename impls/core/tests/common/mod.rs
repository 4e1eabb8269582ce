//! Helpers shared by the signal-mask test binaries.

/// `SIGTRAP`'s bit in a kernel signal mask.
pub fn trap_bit() -> u64 {
    1 << (libc::SIGTRAP - 1)
}

/// Blocks `SIGTRAP` in the calling thread with the raw `rt_sigprocmask`
/// system call, which the library's libc definitions do not see; panics if
/// the call fails.
pub fn block_sigtrap_raw() {
    let set = trap_bit();
    // SAFETY: blocks SIGTRAP in this thread; the set is an 8-byte mask.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            &set,
            std::ptr::null_mut::<u64>(),
            8,
        )
    };
    assert_eq!(r, 0);
}
