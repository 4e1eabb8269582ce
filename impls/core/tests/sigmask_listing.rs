//! `check_sigtrap_masks` finds a thread that blocks `SIGTRAP` with the raw
//! system call while other threads exit around it. A test binary of its
//! own: its blocking thread would fail the other binaries' checks that no
//! thread blocks `SIGTRAP`.

mod common;

use common::block_sigtrap_raw;

/// The diagnostic finds a thread that blocks `SIGTRAP` while older threads
/// exit around it: one listing of `/proc/self/task` can stop at a thread
/// that dies under it and miss the threads after it.
#[test]
fn a_blocking_thread_is_found_while_others_exit() {
    use std::sync::mpsc;
    let mut checks = 0;
    let mut missed = Vec::new();
    const DYING: u64 = 100;
    for round in 0..150 {
        // Older threads, listed before the blocking one, that exit one
        // after another, the youngest first, while the diagnostic runs: a
        // listing that stops at the thread just before the blocking one,
        // dying under it, resumes one place too far.
        let dying: Vec<_> = (0..DYING)
            .map(|i| {
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_micros(300 + 20 * (DYING - i)));
                })
            })
            .collect();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let blocker = std::thread::spawn(move || {
            block_sigtrap_raw();
            // SAFETY: gettid has no preconditions.
            ready_tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = done_rx.recv();
        });
        let tid = ready_rx.recv().unwrap();
        while dying.iter().any(|t| !t.is_finished()) {
            checks += 1;
            match static_call_core::text::check_sigtrap_masks() {
                Err(static_call_core::Error::TrapBlocked { tid: t, .. }) if t == tid => {}
                other => missed.push((round, other)),
            }
        }
        done_tx.send(()).unwrap();
        blocker.join().unwrap();
        for t in dying {
            t.join().unwrap();
        }
    }
    assert!(
        missed.is_empty(),
        "{} of {checks} checks missed the thread that blocks SIGTRAP while others exited: {:?}",
        missed.len(),
        &missed[..missed.len().min(3)]
    );
}
