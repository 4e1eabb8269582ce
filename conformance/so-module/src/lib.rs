//! A module for the conformance suite, built as a shared object and loaded
//! with `dlopen`. For each implementation it declares the test program's
//! key `ADD` (exported by the program as `static_call_key_<impl>_ADD`), has
//! two call sites of it and one in init text, and an init function that
//! calls the init site and fails on request (environment variable
//! `STATIC_CALL_TEST_MODULE_INIT_FAIL=1`), first calling the program's
//! test hook on request (`STATIC_CALL_TEST_MODULE_INIT_HOOK=1`).

/// Calls the loading program's `static_call_test_hook_module_init`, if it
/// exports one (the conformance suite does, to make the engine fail while
/// this module's failed init is undone), with one of this module's
/// functions (`fn() -> u64`).
fn call_program_hook(module_fn: usize) {
    // SAFETY: looks a symbol of the process up by name.
    let f = unsafe {
        libc::dlsym(
            libc::RTLD_DEFAULT,
            c"static_call_test_hook_module_init".as_ptr(),
        )
    };
    if !f.is_null() {
        // SAFETY: the suite defines it as `extern "C" fn(usize)`.
        let f: extern "C" fn(usize) = unsafe { std::mem::transmute(f) };
        f(module_fn);
    }
}

macro_rules! module_for {
    ($(($m:ident, $krate:path, $name:literal))*) => {$(
        pub mod $m {
            use std::sync::atomic::{AtomicU64, Ordering};

            use $krate as sc;

            sc::declare_static_call!(
                #[link_name = concat!("static_call_key_", stringify!($m), "_ADD")]
                pub static ADD: extern "C" fn(u64) -> u64;
            );

            /// One call site of `ADD`.
            #[unsafe(export_name = concat!("so_", stringify!($m), "_call_add"))]
            pub extern "C" fn call_add(x: u64) -> u64 {
                sc::static_call!(ADD(x))
            }

            /// A second call site of `ADD`.
            #[unsafe(export_name = concat!("so_", stringify!($m), "_call_add_2"))]
            pub extern "C" fn call_add_2(x: u64) -> u64 {
                sc::static_call!(ADD(x)).wrapping_add(0)
            }

            sc::init_text! {
                fn init_site(x: u64) -> u64 {
                    sc::static_call!(ADD(x))
                }
            }

            static INIT_RESULT: AtomicU64 = AtomicU64::new(0);

            /// What the init site returned for 2 during module init.
            #[unsafe(export_name = concat!("so_", stringify!($m), "_init_result"))]
            pub extern "C" fn init_result() -> u64 {
                INIT_RESULT.load(Ordering::SeqCst)
            }

            extern "C" fn module_init() -> i32 {
                INIT_RESULT.store(init_site(2), Ordering::SeqCst);
                if std::env::var_os("STATIC_CALL_TEST_MODULE_INIT_HOOK").is_some() {
                    crate::call_program_hook(init_result as *const () as usize);
                }
                if std::env::var_os("STATIC_CALL_TEST_MODULE_INIT_FAIL").is_some() {
                    1
                } else {
                    0
                }
            }

            sc::module!(init = module_init);
        }
    )*};
}

static_call_implementations::implementations!(module_for);

/// From a new thread of this shared object's own code, asks libc to block
/// `SIGTRAP` (and `SIGUSR2`), and returns that thread's blocked mask as the
/// kernel has it (raw `rt_sigprocmask`): shows whose `pthread_sigmask` a
/// shared object's calls reach (this object links its own copy of the
/// static-call library).
#[unsafe(no_mangle)]
pub extern "C" fn so_block_sigtrap_mask() -> u64 {
    std::thread::spawn(|| {
        // SAFETY: blocks two signals in this short-lived thread, then
        // reads its mask with the raw system call.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTRAP);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            let mut old = 0u64;
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                std::ptr::null::<u64>(),
                &mut old,
                8u64,
            );
            old
        }
    })
    .join()
    .unwrap_or(0)
}
