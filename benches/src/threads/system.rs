//! The machine around a measurement: the CPUs this process may run on,
//! pinning to them, and the counters a sample set carries (breakpoint
//! traps, context switches, function-call interrupts).

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: zeroed is a valid cpu_set_t; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above, for this thread.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0
    {
        return vec![0];
    }
    // SAFETY: reading a filled set.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Pins the calling thread to `cpu`; false if the kernel refused.
pub fn pin(cpu: usize) -> bool {
    // SAFETY: a zeroed set with one CPU, applied to this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Lets the calling thread run on every CPU of `cpus` again.
pub fn unpin(cpus: &[usize]) {
    // SAFETY: a set of the allowed CPUs, applied to this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

pub(super) fn thread_ctx_switches() -> u64 {
    // SAFETY: zeroed is a valid rusage; getrusage fills it.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above, for this thread.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut r) };
    (r.ru_nvcsw + r.ru_nivcsw) as u64
}

pub(super) fn call_irqs() -> u64 {
    std::fs::read_to_string("/proc/interrupts")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.trim_start().starts_with("CAL:"))
                .map(|l| {
                    l.split_whitespace()
                        .skip(1)
                        .map_while(|w| w.parse::<u64>().ok())
                        .sum()
                })
        })
        .unwrap_or(0)
}

/// Breakpoint traps the engine has served so far (emulated and restarted).
pub fn traps() -> u64 {
    let s = static_call_core::text::engine_stats();
    s.traps_emulated + s.traps_restarted
}
