#!/usr/bin/env bash
# Runs every benchmark and prints one table; see bench/README.md.
#   1. stage benches (divan): cargo bench --bench pipeline, which also writes the batches
#      to target/bench-batches/;
#   2. whole process on those batches: `trailwatch scan` (release) against
#      bench/python_baseline.py, after checking both give the same alerts, timed by hyperfine
#      (scan reads inputs on every CPU; the pack is also timed on one, `--jobs 1`);
#   3. the same at issue #9's scale: the corpus 30 times over as 30 days, written by the
#      stage benches to target/bench-batches-x30/ (only from the real corpus).
#
#   scripts/bench.sh            full run (100 samples per stage, 10 runs per process)
#   scripts/bench.sh --quick    fast run (10 samples, 3 runs)
#
# The corpus is $TRAILWATCH_CORPUS (default ../shared/corpus); without it the stage benches
# use tests/fixtures/events. Exits 1 when Rust and Python disagree on the alerts.
set -euo pipefail
cd "$(dirname "$0")/.."

samples=100 runs=10
case "${1-}" in
  "") ;;
  --quick) samples=10 runs=3 ;;
  *) echo "usage: scripts/bench.sh [--quick]" >&2; exit 2 ;;
esac
target=${CARGO_TARGET_DIR:-target}
out=$target/bench-results
mkdir -p "$out"
rm -f "$out/process.json" "$out/process-x30.json"

echo "== release build and stage benches"
cargo build --release --quiet --bin trailwatch
cargo bench --quiet --bench pipeline -- --sample-count "$samples" --color never | tee "$out/stages.txt"

# The interpreter itself (not a pyenv shim), without site-packages: the baseline is stdlib only.
python=("$(python3 -c 'import sys; print(sys.executable)')" -I -S)
# The three rules bench/python_baseline.py translates by hand.
three=(--rules rules/cloudtrail-change-failed.yml --rules rules/cloudtrail-logging-changed.yml
       --rules rules/console-login-without-mfa.yml)

# same_alerts NAME MANIFEST BATCH...: Rust (3 rules) and Python alerts, as (rule, eventID)
# pairs with their counts, must be equal; writes $out/{rust,python}-alerts$NAME.jsonl.
same_alerts() {
  local name=$1 manifest=$2; shift 2
  "$target/release/trailwatch" scan "${three[@]}" --format json "$@" >"$out/rust-alerts$name.jsonl"
  "${python[@]}" bench/python_baseline.py --manifest "$manifest" --format json "$@" >"$out/python-alerts$name.jsonl"
  python3 - "$out/rust-alerts$name.jsonl" "$out/python-alerts$name.jsonl" <<'PY'
import collections, json, sys
def alerts(path):
    return collections.Counter((a["rule"], a["event_id"]) for a in map(json.loads, open(path)))
rust, python = alerts(sys.argv[1]), alerts(sys.argv[2])
per_rule = lambda c: dict(sorted(collections.Counter(rule for rule, _ in c.elements()).items()))
print(f"alerts per rule: Rust {per_rule(rust)}, Python {per_rule(python)}")
if rust != python:
    sys.exit(f"ALERT MISMATCH between Rust and Python: only Rust {rust - python}, only Python {python - rust}")
PY
}

# timed JSON MANIFEST BATCH...: the four rows, hyperfine medians exported to JSON. hyperfine
# -N splits each command line on spaces (no shell); the x30 set's 240 paths make it ~12 KB,
# far below Linux's 128 KiB limit on one argument.
timed() {
  local export=$1 manifest=$2; shift 2
  local files="$*"
  hyperfine -N --style basic --warmup 1 --runs "$runs" --export-json "$export" \
    -n "rust, 3 rules" "$target/release/trailwatch scan ${three[*]} --format email $files" \
    -n "python, 3 rules" "${python[*]} bench/python_baseline.py --manifest $manifest --format email $files" \
    -n "rust, built-in rules" "$target/release/trailwatch scan --format email $files" \
    -n "rust, built-in rules, one thread" "$target/release/trailwatch scan --jobs 1 --format email $files"
}

echo "== whole process, same batches"
batches=("$target"/bench-batches/batch-*.json)
manifest=$target/bench-batches/manifest.json
same_alerts "" "$manifest" "${batches[@]}"
if command -v hyperfine >/dev/null; then
  timed "$out/process.json" "$manifest" "${batches[@]}"
else
  echo "whole process: SKIPPED: hyperfine not installed (apt-get install hyperfine)"
fi

echo "== whole process at the issue's scale: the corpus 30 times over"
manifest_x30=$target/bench-batches-x30/manifest.json
if [[ ! -f $manifest_x30 ]]; then
  echo "whole process x30: SKIPPED: no $manifest_x30 (the stage benches write it from the corpus only)"
else
  batches_x30=("$target"/bench-batches-x30/batch-*.json)
  same_alerts -x30 "$manifest_x30" "${batches_x30[@]}"
  if command -v hyperfine >/dev/null; then
    timed "$out/process-x30.json" "$manifest_x30" "${batches_x30[@]}"
  else
    echo "whole process x30: SKIPPED: hyperfine not installed (apt-get install hyperfine)"
  fi
fi

python3 - "$out/stages.txt" "$out/process.json" "$manifest" "$out/process-x30.json" "$manifest_x30" <<'PY'
import json, os, re, sys
events = json.load(open(sys.argv[3]))["events"]
unit = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
scale = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}
stages, name = {}, None   # divan's tree: a bench line (times), then its throughput line
for line in open(sys.argv[1], encoding="utf-8"):
    if m := re.search(r"[├╰]─ (\w+)", line):
        name = m.group(1)
        times = re.findall(r"([\d.]+) (ns|µs|us|ms|s)\b", line)
        if len(times) == 4:  # fastest, slowest, median, mean
            stages[name] = {"s": float(times[2][0]) * unit[times[2][1]]}
    elif name in stages and len(rates := re.findall(r"([\d.]+) ([KMG]?)item/s", line)) == 4:
        stages[name]["eps"] = float(rates[2][0]) * scale[rates[2][1]]
decode = stages["a_decode_only"]["eps"]
print(f"\n== summary: {events} events; stage figures are divan medians")
print(f"{'stage':<34} {'events/s':>12} {'/ decode':>9} {'share of a':>11}")
parts = ("envelope_base64", "gunzip", "subscription_json", "record_parse")
for key in ("a_decode_only", *parts, "a_no_rules", "b_builtin_rules", "c_sigmahq_rules", "d_builtin_and_sigmahq"):
    eps = stages[key]["eps"]
    ratio = f"{'':>9} {decode / eps:>11.0%}" if key in parts else f"{eps / decode:>8.2f}x"
    print(f"{key:<34} {eps:>12,.0f} {ratio}")
print(f"{'rule_compile_builtin (YAML)':<34} {stages['rule_compile_builtin']['s'] * 1e3:>9.2f} ms")
print(f"{'rule_load_bundle (the layer)':<34} {stages['rule_load_bundle']['s'] * 1e3:>9.2f} ms")
def process(path, events, title):
    results = {r["command"]: r for r in json.load(open(path))["results"]}
    python = results["python, 3 rules"]["median"]
    print(f"\n{title:<34} {'events/s':>12} {'Rust/Python':>12}")
    for label, r in results.items():
        print(f"{label:<34} {events / r['median']:>12,.0f} {python / r['median']:>11.2f}x")
if os.path.exists(sys.argv[2]):
    process(sys.argv[2], events, "whole process (hyperfine median)")
if os.path.exists(sys.argv[4]):
    x30 = json.load(open(sys.argv[5]))
    print(f"\n== whole process at the issue's scale: {x30['events']:,} events in {x30['batches']} batches")
    process(sys.argv[4], x30["events"], "x30 set (hyperfine median)")
PY
