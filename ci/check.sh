#!/usr/bin/env bash
# Everything CI checks, in order. Installs what a fresh machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
# The report's browser test loads the page in headless Chromium.
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== installing: ${need_apt[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi
for c in rustfmt clippy; do
    if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$c"
    fi
done
# The callgrind runner of the benchmarks, at the library's version (the
# report's main command would install it too; doing it here keeps the
# install's output apart).
gungraun=0.20.0
if ! gungraun-runner --version 2>/dev/null | grep -q " $gungraun"; then
    echo "== installing gungraun-runner $gungraun"
    cargo install gungraun-runner --version "=$gungraun" --locked
fi

echo "== machine"
uname -srm
grep -m1 "model name" /proc/cpuinfo || true
echo "spectre_v2: $(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 2>/dev/null || echo unknown)"
valgrind --version
gungraun-runner --version

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet

echo "== cargo publish --dry-run: the library crates package and build on their own (no upload)"
# --workspace selects every crate not marked `publish = false`: the engine
# and the implementation crates, with no list here to keep.
# In a target directory of its own, made fresh: cargo verifies each crate
# against the others through a local registry under the target directory,
# and reuses a registry's extracted sources by the registry's path, so a
# fixed path would verify against the crates of an earlier checkout at the
# same version (seen: an earlier clone's static-call-core, without
# `implementation_crate!`).
publish_dir=$(mktemp -d)
cargo publish --dry-run --locked --allow-dirty --workspace --target-dir "$publish_dir"
rm -rf "$publish_dir"

echo "== the main job, quick: benchmarks (quick mode), the conformance matrix (release), the report"
cargo run --release -p static-call-report -- --quick

echo "== regressions of the quick run against the committed bundle of this machine and mode"
# The baseline is picked among the committed bundles: the one whose machine
# (CPU model, logical CPUs, vendor, family/model/stepping) and mode match
# the quick run's; failing it past a threshold exits 3 and fails CI. With
# only another mode of this machine committed the comparison is
# report-only; with no bundle of this machine it says so. Seconds: it reads
# bundles, no benchmark runs.
# Thresholds: instruction counts are exact, so any increase fails
# (instructions=0). Wall time: 50%. On the 2-vCPU VM of
# results/amd-epyc-zen3-2cpu-vm, the two halves of one run's samples (same code,
# same machine, minutes apart) compared this way regress by up to 1.48x
# (update/busy, 100 sites; 1.32x update/threads-busy the other way round):
# 2 figures fail at 10%, 1 or 2 at 25%, none at 50%. So this VM's wall times
# can only catch gross regressions (a lost fast path, a syscall per call);
# small ones are the instruction counts' to catch.
cargo run --release -p static-call-report -- --from target/results/bench.json \
    --baseline-among results/*/bench.json --fail-on-regression wall=50%,instructions=0 \
    --out target/report/baseline.html

echo "== the report from the committed bundles (the README's second form)"
cargo run --release -p static-call-report -- --from results/*/bench.json --out target/report/committed.html

echo "== cargo test --workspace (the README's test command)"
cargo test --workspace

echo "== sctool check: the static-call tables of the built binaries"
bash ci/sctool.sh

# The conformance matrix is the suite's result; repeat its count last: the
# whole list's matrix, as the last unfiltered run of the workspace's suite
# wrote it (the debug one of `cargo test --workspace`; serde's pretty JSON
# puts each outcome on a line of its own).
json=target/results/conformance.json
if [ -f "$json" ]; then
    p=$(grep -c '"outcome": "pass"' "$json" || true)
    f=$(grep -c '"outcome": "fail"' "$json" || true)
    s=$(grep -c '"outcome": "skip"' "$json" || true)
    echo "conformance: $p passed, $f failed, $s skipped"
fi
