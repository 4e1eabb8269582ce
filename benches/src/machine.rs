//! What machine a run was made on.

use static_call_bundle::{Machine, MachineDetails};

fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    s.lines().next().map(|l| l.trim().to_owned())
}

/// The CPU model from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// `sysname release` from `uname`.
pub fn kernel() -> String {
    let mut u = std::mem::MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: `uname` fills the struct.
    if unsafe { libc::uname(u.as_mut_ptr()) } != 0 {
        return "unknown".into();
    }
    // SAFETY: filled above; the fields are NUL-terminated.
    let u = unsafe { u.assume_init() };
    let field = |f: &[libc::c_char]| {
        // SAFETY: NUL-terminated within the array.
        unsafe { std::ffi::CStr::from_ptr(f.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    format!("{} {}", field(&u.sysname), field(&u.release))
}

/// The kernel's `spectre_v2` line.
pub fn spectre_v2() -> String {
    std::fs::read_to_string("/sys/devices/system/cpu/vulnerabilities/spectre_v2")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// The build of this binary: its commit, with `-dirty.<fingerprint>`
/// when the sources differed from it (tracked changes or untracked files),
/// embedded at build time (`build.rs`; `STATIC_CALL_COMMIT` where there is
/// no git). Never the work tree's state at run time, which may have moved
/// since the binary was built.
pub fn commit() -> String {
    env!("STATIC_CALL_BUILD_COMMIT").to_owned()
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("unknown ({path}: {e})"))
}

fn cpuinfo_field(info: &str, name: &str) -> String {
    info.lines()
        .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
        .and_then(|l| l.split_once(':'))
        .map_or_else(
            || format!("unknown (no `{name}`)"),
            |(_, v)| v.trim().to_owned(),
        )
}

/// The CPU flags that bear on indirect calls and their mitigations.
pub const FLAGS_OF_INTEREST: &[&str] = &[
    "hypervisor",
    "ibrs_enhanced",
    "ibrs",
    "ibpb",
    "stibp",
    "ssbd",
    "retpoline",
    "retpoline_amd",
    "retpoline_lfence",
    "ibt",
    "rsb_ctxsw",
    "use_ibpb",
    "amd_ibpb",
    "amd_ibrs",
    "amd_stibp",
    "autoibrs",
    "spec_ctrl",
    "arch_capabilities",
    "md_clear",
];

/// `prctl(PR_GET_SPECULATION_CTRL, PR_SPEC_INDIRECT_BRANCH)`, decoded.
pub fn indirect_branch_spec_ctrl() -> String {
    // SAFETY: a query; no pointers are passed.
    let r = unsafe {
        libc::prctl(
            libc::PR_GET_SPECULATION_CTRL,
            libc::PR_SPEC_INDIRECT_BRANCH,
            0,
            0,
            0,
        )
    };
    if r < 0 {
        return format!("unavailable: {}", std::io::Error::last_os_error());
    }
    let r = r as libc::c_ulong;
    let mut v = Vec::new();
    for (bit, name) in [
        (libc::PR_SPEC_PRCTL, "prctl"),
        (libc::PR_SPEC_ENABLE, "enable"),
        (libc::PR_SPEC_DISABLE, "disable"),
        (libc::PR_SPEC_FORCE_DISABLE, "force-disable"),
        (libc::PR_SPEC_DISABLE_NOEXEC, "disable-noexec"),
    ] {
        if r & bit as libc::c_ulong != 0 {
            v.push(name);
        }
    }
    if v.is_empty() {
        format!("{r:#x} (not affected / no control)")
    } else {
        format!("{r:#x} ({})", v.join(", "))
    }
}

/// The CPUs this process may run on.
pub fn affinity() -> Vec<u32> {
    let mut set = std::mem::MaybeUninit::<libc::cpu_set_t>::zeroed();
    // SAFETY: `set` is a zeroed cpu_set_t of the size passed.
    let r = unsafe {
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set.as_mut_ptr())
    };
    if r != 0 {
        return Vec::new();
    }
    // SAFETY: filled by the kernel above.
    let set = unsafe { set.assume_init() };
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .map(|i| i as u32)
        .collect()
}

/// What it takes to reproduce a run; `settings` describes the benchmark
/// settings.
pub fn details(settings: String) -> MachineDetails {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo_field(&info, "flags");
    let flags: Vec<&str> = flags.split_whitespace().collect();
    let mut vulnerabilities = Vec::new();
    if let Ok(d) = std::fs::read_dir("/sys/devices/system/cpu/vulnerabilities") {
        for e in d.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let v = std::fs::read_to_string(e.path())
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|e| format!("unreadable: {e}"));
            vulnerabilities.push((name, v));
        }
    }
    vulnerabilities.sort();
    let turbo = if std::path::Path::new("/sys/devices/system/cpu/intel_pstate/no_turbo").exists() {
        format!(
            "intel_pstate no_turbo = {}",
            read_trim("/sys/devices/system/cpu/intel_pstate/no_turbo")
        )
    } else {
        format!(
            "cpufreq boost = {}",
            read_trim("/sys/devices/system/cpu/cpufreq/boost")
        )
    };
    MachineDetails {
        cpu_vendor: cpuinfo_field(&info, "vendor_id"),
        cpu_family_model_stepping: format!(
            "family {}, model {}, stepping {}",
            cpuinfo_field(&info, "cpu family"),
            cpuinfo_field(&info, "model"),
            cpuinfo_field(&info, "stepping")
        ),
        microcode: cpuinfo_field(&info, "microcode"),
        flags_of_interest: FLAGS_OF_INTEREST
            .iter()
            .filter(|f| flags.contains(f))
            .map(|f| (*f).to_owned())
            .collect(),
        vulnerabilities,
        kernel_cmdline: read_trim("/proc/cmdline"),
        governor: read_trim("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        turbo,
        smt: read_trim("/sys/devices/system/cpu/smt/control"),
        affinity: affinity(),
        build_profile: env!("STATIC_CALL_BUILD_PROFILE").to_owned(),
        rustflags: env!("STATIC_CALL_BUILD_RUSTFLAGS").to_owned(),
        settings,
        indirect_branch_spec_ctrl: indirect_branch_spec_ctrl(),
    }
}

/// How the engine writes and synchronises.
pub fn engine() -> String {
    let vg = if static_call_core::running_on_valgrind() {
        " (under valgrind)"
    } else {
        ""
    };
    match static_call_core::text::engine_info() {
        Ok(i) => format!(
            "writes: {}; core sync: {}{vg}",
            if i.proc_mem {
                "pwrite to /proc/self/mem"
            } else {
                "mprotect window (fallback)"
            },
            if i.membarrier {
                "membarrier(SYNC_CORE)"
            } else {
                "mprotect TLB shootdown (fallback)"
            }
        ),
        Err(e) => format!("unavailable: {e}"),
    }
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Now, RFC 3339 UTC.
pub fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, m, d) = civil(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The machine this process runs on.
pub fn this_machine() -> Machine {
    let cpu_model = cpu_model();
    let logical_cpus = std::thread::available_parallelism().map_or(0, |n| n.get() as u32);
    let label = std::env::var("STATIC_CALL_MACHINE_LABEL")
        .ok()
        .filter(|l| !l.trim().is_empty())
        .unwrap_or_else(|| format!("{cpu_model}, {logical_cpus} CPUs"));
    Machine {
        label,
        cpu_model,
        logical_cpus,
        kernel: kernel(),
        spectre_v2: spectre_v2(),
        rustc: env!("STATIC_CALL_BUILD_RUSTC").to_owned(),
        commit: commit(),
        date: now(),
        engine: engine(),
        valgrind: first_line("valgrind", &["--version"]),
        details: Some(details(crate::settings())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil(0), (1970, 1, 1));
        assert_eq!(super::civil(20_418), (2025, 11, 26));
        assert_eq!(super::civil(11_016), (2000, 2, 29));
    }
}
