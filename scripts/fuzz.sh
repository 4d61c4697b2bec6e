#!/usr/bin/env bash
# Coverage-guided fuzzing of the untrusted-input paths (fuzz/, cargo-fuzz + libFuzzer).
#   scripts/fuzz.sh smoke          build, then fuzz each target for 15 s; fails on any finding
#   scripts/fuzz.sh run SECONDS    fuzz each target for SECONDS; prints executions per target
# Targets: FUZZ_TARGETS="a b" to choose (default: all four). One fuzzing process at a
# time. New corpus entries go to fuzz/corpus/<target> (ignored); the checked-in seeds in
# fuzz/seeds/<target> are only read. Findings land in fuzz/artifacts/<target>/, logs in
# fuzz/artifacts/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
tools="$PWD/target/tools"
export PATH="$tools/bin:$PATH"
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    cargo install --locked --quiet "cargo-fuzz@$CARGO_FUZZ_VERSION" --root "$tools"
fi
# cargo-fuzz passes nightly-only rustc flags (-Zsanitizer=address, sancov passes); the
# stable toolchain accepts them when told it is bootstrapping itself.
export RUSTC_BOOTSTRAP=1
# ASan's default 256 MB quarantine of freed memory would count against -rss_limit_mb.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=32}"

case "${1:-}" in
    smoke) seconds=15 ;;
    run) seconds=${2:?usage: scripts/fuzz.sh run SECONDS} ;;
    *) echo "usage: scripts/fuzz.sh smoke | run SECONDS" >&2; exit 2 ;;
esac
targets=${FUZZ_TARGETS:-subscription input_formats record_match rule_load}

cargo fuzz build
mkdir -p fuzz/artifacts/logs
total=0 failed=()
for target in $targets; do
    mkdir -p "fuzz/corpus/$target"
    log="fuzz/artifacts/logs/$target.log"
    echo "== $target: ${seconds}s"
    status=0
    cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=512 -timeout=10 \
        -dict=fuzz/dicts/json.dict -print_final_stats=1 > "$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$status" -ne 0 ] || [ -z "$runs" ]; then
        failed+=("$target")
        tail -40 "$log"
        echo "== $target: FAILED (exit $status); log $log, inputs in fuzz/artifacts/$target/"
        continue
    fi
    total=$((total + runs))
    echo "== $target: $runs executions ($(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1))"
done
echo "fuzz: $total executions in total"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: findings in: ${failed[*]}" >&2
    exit 1
fi
