#!/usr/bin/env bash
# Runs the pipeline benchmark and the Python baseline on the same batches, then prints
# events/s for both and Rust(b1)/Python. See bench/README.md.
#
#   scripts/bench.sh            full run (release build, 3 warm-up + 21 timed passes each)
#   scripts/bench.sh --quick    fast run
#
# Exits 0 with a message when ../shared/corpus is absent; exits 1 when Python's alert
# counts differ from Rust's, or when a step fails. The 4x goal is reported, not enforced.
set -euo pipefail

cd "$(dirname "$0")/.."
quick=()
for arg in "$@"; do
  case "$arg" in
    --quick) quick=(--quick) ;;
    *) echo "usage: scripts/bench.sh [--quick]" >&2; exit 2 ;;
  esac
done

if [ ! -d ../shared/corpus/bulk ] || [ ! -d ../shared/corpus/sigma/rules ]; then
  echo "bench: SKIPPED: ../shared/corpus (bulk/*.jsonl.gz, sigma/rules/) not found next to the repo"
  exit 0
fi
command -v python3 >/dev/null || { echo "bench: python3 not found" >&2; exit 1; }

target_dir="${CARGO_TARGET_DIR:-target}"
rm -f "$target_dir/bench-results/rust.json" "$target_dir/bench-results/python.json"

echo "== building and running the Rust bench (cargo bench compiles with the release profile)"
cargo bench --bench pipeline -- "${quick[@]}" --target-dir "$target_dir"
echo
echo "== running the Python baseline on the same payloads"
python_status=0
python3 bench/python_baseline.py "${quick[@]}" \
  --batches "$target_dir/bench-batches" --json "$target_dir/bench-results/python.json" || python_status=$?
echo

summary_status=0
python3 - "$target_dir/bench-results/rust.json" "$target_dir/bench-results/python.json" <<'PY' || summary_status=$?
import json, sys
rust = json.load(open(sys.argv[1]))
py = json.load(open(sys.argv[2]))
n = rust["events"]
print(f"== summary: {n} CloudTrail events, {rust['batches']} subscription payloads, "
      f"median of {rust['iterations']} Rust / {py['iterations']} Python passes")
print(f"{'':32} {'events/s':>12} {'vs Python b1':>13} {'best pass':>12} {'vs Python b1':>13}")
print(f"{'':32} {'(median)':>12} {'':>13} {'events/s':>12}")
pb1 = py["builtin"]["events_per_s"]
pb1_best = n / py["builtin"]["min_s"]
rows = [
    ("Rust  a  decode only", rust["decode"]),
    ("Rust  b1 full, built-in rules", rust["builtin"]),
    ("Rust  b2 full, SigmaHQ rules", rust["sigmahq"]),
    ("Rust  b3 full, built-in+SigmaHQ", rust["combined"]),
    ("Python a  decode only", py["decode"]),
    ("Python b1 full, built-in rules", py["builtin"]),
]
for label, row in rows:
    rate, best = row["events_per_s"], n / row["min_s"]
    print(f"{label:<32} {rate:>12,.0f} {rate / pb1:>12.2f}x {best:>12,.0f} {best / pb1_best:>12.2f}x")
ratio = rust["builtin"]["events_per_s"] / pb1
ratio_best = (n / rust["builtin"]["min_s"]) / pb1_best
decode_ratio = rust["decode"]["events_per_s"] / py["decode"]["events_per_s"]
print()
print(f"Rust(b1)/Python(b1) = {ratio:.2f}x on medians, {ratio_best:.2f}x on best passes"
      f"   (decode only, medians: Rust(a)/Python(a) = {decode_ratio:.2f}x)")
print()
print(f"{'decode stage (cumulative, median ms)':<36} {'Rust':>8} {'Python':>8} {'Py/Rust':>8}")
for r, p in zip(rust["decode_stages"], py["decode_stages"]):
    rs, ps = r["median_s"] * 1e3, p["median_s"] * 1e3
    print(f"{r['stage']:<36} {rs:>8.2f} {ps:>8.2f} {ps / rs:>7.2f}x")
print()
r_counts = {k: v for k, v in rust["builtin"]["alerts_per_rule"].items() if v}
same = r_counts == py["builtin"]["alerts_per_rule"]
print(f"alerts per pass: Rust b1 {rust['builtin']['alerts']}, Python {py['builtin']['alerts']} "
      f"-> per-rule counts {'match' if same else 'DIFFER'}: {r_counts}")
print(f"rendered per pass (subject + body + JSON): Rust b1 {rust['builtin']['rendered_bytes']:,} bytes, "
      f"Python {py['builtin']['rendered_chars']:,} characters")
print(f"goal Rust >= 4x Python (medians): {'met' if ratio >= 4 else 'NOT met'} ({ratio:.2f}x)")
sys.exit(0 if same else 1)
PY
exit $(( python_status != 0 ? python_status : summary_status ))
