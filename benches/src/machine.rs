//! What machine a run was made on.

use static_call_bundle::Machine;

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

/// The commit of the work tree (with `-dirty` for local changes), or the
/// one the binary was built from when git or the checkout is not there.
pub fn commit() -> String {
    let root = crate::workspace_root();
    let root = root.to_string_lossy();
    match first_line("git", &["-C", &root, "rev-parse", "--short=12", "HEAD"]) {
        Some(c) => {
            let dirty = std::process::Command::new("git")
                .args(["-C", &root, "status", "--porcelain", "--untracked-files=no"])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty());
            if dirty { format!("{c}-dirty") } else { c }
        }
        None => format!("{} (built from)", env!("STATIC_CALL_BUILD_COMMIT")),
    }
}

/// How the engine writes and synchronises.
pub fn engine() -> String {
    let vg = if static_call_core::running_on_valgrind() {
        " (under valgrind)"
    } else {
        ""
    };
    match static_call_inline_patch::engine_info() {
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
