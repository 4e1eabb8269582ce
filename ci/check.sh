#!/usr/bin/env bash
# Everything CI checks, in order. Installs what a fresh machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== installing: ${need_apt[*]}"
    if [ "$(id -u)" = 0 ]; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
    else
        sudo apt-get update -q
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
    fi
fi
for c in rustfmt clippy; do
    if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$c"
    fi
done

echo "== machine"
uname -srm
echo "spectre_v2: $(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 2>/dev/null || echo unknown)"
valgrind --version

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet

echo "== cargo test --workspace (the README's test command)"
cargo test --workspace

echo "== the conformance matrix again, optimised"
cargo test --release -p static-call-conformance --test conformance

# The conformance matrix is the suite's result; repeat its count last.
json=target/results/conformance.json
if [ -f "$json" ]; then
    p=$(grep -c '"outcome": "pass"' "$json" || true)
    f=$(grep -c '"outcome": "fail"' "$json" || true)
    s=$(grep -c '"outcome": "skip"' "$json" || true)
    echo "conformance: $p passed, $f failed, $s skipped"
fi
