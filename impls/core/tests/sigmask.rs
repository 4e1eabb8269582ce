//! The library's definitions of the mask-setting libc functions take effect
//! for calls made by Rust code and `libc::…` in the same binary: a thread
//! that asks to block `SIGTRAP` keeps it unblocked (read back with the raw
//! system call, which the library does not take).

mod common;

use common::{block_sigtrap_raw, trap_bit};
use static_call_core::signals;

/// This thread's blocked mask as the kernel has it (raw `rt_sigprocmask`).
fn kernel_mask() -> u64 {
    let mut old = 0u64;
    // SAFETY: queries this thread's mask into an 8-byte buffer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            std::ptr::null::<u64>(),
            &mut old,
            8,
        )
    };
    assert_eq!(r, 0);
    old
}

fn set_of(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: zeroed is a valid set; filled with valid signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

#[test]
fn pthread_sigmask_and_sigprocmask_keep_sigtrap() {
    assert!(signals::guard().program, "{:?}", signals::guard());
    std::thread::spawn(|| {
        let set = set_of(&[libc::SIGTRAP, libc::SIGUSR2]);
        // SAFETY: blocks two signals in this thread.
        let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        assert_eq!(r, 0);
        let m = kernel_mask();
        assert_eq!(m & trap_bit(), 0, "SIGTRAP blocked: mask {m:#x}");
        assert_ne!(
            m & (1 << (libc::SIGUSR2 - 1)),
            0,
            "SIGUSR2 not blocked: {m:#x}"
        );
        // SAFETY: sets this thread's mask to all signals.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            assert_eq!(
                libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut()),
                0
            );
        }
        let m = kernel_mask();
        assert_eq!(m & trap_bit(), 0, "SIGTRAP blocked by SIG_SETMASK: {m:#x}");
        assert_ne!(
            m & (1 << (libc::SIGINT - 1)),
            0,
            "SIGINT not blocked: {m:#x}"
        );
    })
    .join()
    .unwrap();
}

static SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);

extern "C" fn record_mask(_: i32) {
    SEEN.store(kernel_mask(), std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn a_full_sa_mask_leaves_sigtrap_out() {
    // SAFETY: a handler for SIGUSR1 with every signal in its mask, then
    // raised on this thread.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = record_mask as *const () as usize;
        libc::sigfillset(&mut act.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &act, std::ptr::null_mut()),
            0
        );
        libc::raise(libc::SIGUSR1);
    }
    let m = SEEN.load(std::sync::atomic::Ordering::SeqCst);
    assert_ne!(m, u64::MAX, "the handler did not run");
    assert_eq!(m & trap_bit(), 0, "SIGTRAP blocked in the handler: {m:#x}");
    assert_ne!(
        m & (1 << (libc::SIGINT - 1)),
        0,
        "SIGINT not blocked in the handler: {m:#x}"
    );
}

#[test]
fn raw_system_call_is_not_taken() {
    std::thread::spawn(|| {
        block_sigtrap_raw();
        assert_ne!(kernel_mask() & trap_bit(), 0, "the raw call was taken");
        let e = static_call_core::text::check_sigtrap_masks();
        assert!(
            matches!(e, Err(static_call_core::Error::TrapBlocked { .. })),
            "{e:?}"
        );
    })
    .join()
    .unwrap();
    assert_eq!(static_call_core::text::check_sigtrap_masks(), Ok(()));
}

#[test]
fn shared_objects_find_these_definitions() {
    // lld exports the definitions (libc defines the same names): a call
    // through the global scope, as a shared library makes, is taken too.
    let g = signals::guard();
    assert!(g.shared_objects, "{g:?}");
    let m = std::thread::spawn(|| {
        // SAFETY: looks pthread_sigmask up as a shared library's PLT would
        // and blocks SIGTRAP through it in this thread.
        unsafe {
            let f = libc::dlsym(libc::RTLD_DEFAULT, c"pthread_sigmask".as_ptr());
            let f: extern "C" fn(i32, *const libc::sigset_t, *mut libc::sigset_t) -> i32 =
                std::mem::transmute(f);
            let set = set_of(&[libc::SIGTRAP]);
            f(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        kernel_mask()
    })
    .join()
    .unwrap();
    assert_eq!(m & trap_bit(), 0, "{m:#x}");
}
