#!/bin/bash
# Benchmarks and the conformance matrix on a machine without cargo (the
# 16-CPU bundle in results/intel-xeon-16cpu/ came from this), from binaries
# built here and carried in devcarry/ (ignored by git):
#
#   cargo bench -p static-call-bench --no-run
#   cargo test --release -p static-call-conformance --no-run
#   mkdir -p devcarry/target/modules/{debug,release} devcarry/target/release
#   strip --strip-debug -o devcarry/criterion   target/release/deps/criterion-<hash>
#   strip --strip-debug -o devcarry/perf        target/release/deps/perf-<hash>
#   strip --strip-debug -o devcarry/conformance target/release/deps/conformance-<hash>
#   cp target/modules/debug/*.so   devcarry/target/modules/debug/
#   cp target/modules/release/*.so devcarry/target/modules/release/
#   cp target/release/crafted devcarry/target/release/
#
# (stripping debug info keeps the symbol table the benchmarks' proofs read).
# Then, on the other machine, from the repository root: `bash ci/device-run.sh`
# with OUT set to a folder for the results.
set -x
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=$PWD/devcarry/target
: "${OUT:?set OUT to a folder for the results}"
nproc; grep -m1 "model name" /proc/cpuinfo; cat /sys/devices/system/cpu/vulnerabilities/spectre_v2; uname -r
# The conformance binary names the crafted binary by its build path
# (where that is not this checkout's, `corrupt_site` fails there).
timeout 330 ./devcarry/criterion --bench > "$OUT/criterion.log" 2>&1; echo "criterion rc=$?"
timeout 30 ./devcarry/perf --bench > "$OUT/perf.log" 2>&1; echo "perf rc=$?"
cp devcarry/target/results/bench.json "$OUT/" 2>/dev/null
STATIC_CALL_THREADS=12 STATIC_CALL_SOAK=3 timeout 150 ./devcarry/conformance > "$OUT/conformance.log" 2>&1
echo "conformance rc=$?"
cp devcarry/target/results/conformance.json "$OUT/" 2>/dev/null
tail -5 "$OUT/criterion.log"; grep -E "passed,|^fail" "$OUT/conformance.log" | head -20
