#!/usr/bin/env bash
# `sctool check` over the project's built binaries: the conformance test
# binaries (debug and release), the test shared object, the README's
# minimal plugin and the benchmark binaries. Fails on any error finding.
# Also checks that the `crafted` binary, whose tables hold one deliberately
# wrong site per implementation, is refused (exit 1). Run it after the
# binaries are built (ci/check.sh does, after `cargo test --workspace`).
set -euo pipefail
cd "$(dirname "$0")/.."
tgt=${CARGO_TARGET_DIR:-target}

cargo build --quiet -p sctool
sctool=$tgt/debug/sctool

# The newest executable file matching a glob in a folder (cargo keeps old
# hashes around).
newest() {
    find "$1" -maxdepth 1 -type f -executable -name "$2" ! -name '*.d' -printf '%T@ %p\n' 2>/dev/null \
        | sort -n | tail -1 | cut -d' ' -f2- || true
}

files=()
missing=()
want() {
    local f
    f=$(newest "$1" "$2")
    if [ -n "$f" ]; then files+=("$f"); else missing+=("$1/$2"); fi
}
want "$tgt/debug/deps" 'conformance-*'
want "$tgt/release/deps" 'conformance-*'
want "$tgt/modules/debug" 'libstatic_call_test_module.so'
want "$tgt/modules/release" 'libstatic_call_test_minimal.so'
want "$tgt/release/deps" 'criterion-*'
want "$tgt/release/deps" 'callgrind-*'
want "$tgt/release/deps" 'perf-*'
if [ ${#missing[@]} -gt 0 ]; then
    echo "sctool: not built: ${missing[*]}"
    if [ "${CI:-}" = true ]; then exit 1; fi
fi

for f in "${files[@]}"; do
    # The summary line of each file; the whole report when it fails.
    if out=$("$sctool" check "$f"); then
        echo "$f: $(tail -1 <<<"$out")"
    else
        echo "$out"
        echo "sctool check failed on $f"
        exit 1
    fi
done

crafted=$(newest "$tgt/debug" crafted)
if [ -n "$crafted" ]; then
    set +e
    "$sctool" check "$crafted" >/dev/null
    rc=$?
    set -e
    if [ "$rc" != 1 ]; then
        echo "sctool check $crafted: exit $rc, expected 1 (its tables hold deliberately wrong sites)"
        exit 1
    fi
    echo "$crafted: refused as expected (exit 1)"
fi
