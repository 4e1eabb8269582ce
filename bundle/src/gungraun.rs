//! The gungraun (callgrind runner) version policy: which runner the
//! callgrind benchmarks are built against and how a runner's version line
//! is recognised. Kept apart from the bundle's schema.

/// The gungraun runner (`gungraun-runner`) version the callgrind
/// benchmarks are built against; the runner must match it exactly.
pub const GUNGRAUN_VERSION: &str = "0.20.0";

/// Whether a `gungraun-runner --version` line names [`GUNGRAUN_VERSION`]
/// (with or without a leading `v`).
pub fn is_wanted_gungraun(line: &str) -> bool {
    line.split_whitespace()
        .any(|w| w.trim_start_matches('v') == GUNGRAUN_VERSION)
}
