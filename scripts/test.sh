#!/usr/bin/env bash
# trailwatch test command: ./scripts/test.sh [extra args for `cargo test`]
#
# What it does, in order:
#   1. Creates (or reuses) a Python venv at .venv/ and installs
#      scripts/requirements-test.txt into it (moto, cargo-lambda, aws-sam-cli,
#      cfn-lint). A stamp file holding the requirements hash makes reruns fast;
#      edit the requirements file and the next run reinstalls.
#   2. Starts `moto_server` on 127.0.0.1 on a free port and stops it on exit.
#   3. Exports for the tests:
#        AWS_ENDPOINT_URL / TRAILWATCH_MOTO_ENDPOINT = http://127.0.0.1:PORT
#        AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
#        AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
#        PATH=.venv/bin:$PATH   (so `cargo lambda`, `sam`, `cfn-lint` resolve)
#      Rust tests that need moto should skip, and say why, when
#      TRAILWATCH_MOTO_ENDPOINT is unset (plain `cargo test`).
#      Also: AWS_CONFIG_FILE/AWS_SHARED_CREDENTIALS_FILE=/dev/null, AWS_PROFILE
#      and session tokens unset (a developer's real AWS setup never leaks in),
#      AWS_EC2_METADATA_DISABLED=true, NO_PROXY for 127.0.0.1, SAM_CLI_TELEMETRY=0.
#   4. cargo fmt --check; cargo clippy --all-targets -- -D warnings;
#      cargo test --doc (only when no extra args were given);
#      cargo test --all-targets --no-fail-fast "$@".
#   5. sam validate --lint and cfn-lint on template.yaml, when it exists.
#   6. Prints a summary; exits non-zero if any step failed.
#   On exit (also on Ctrl-C), stops moto and ends any process the tests left
#   running (found by the TRAILWATCH_TEST_RUN marker in their environment).
#
# Environment knobs:
#   TRAILWATCH_SKIP_CARGO=1   skip every cargo step (checks only the venv, moto
#                             and the template steps).
#   TRAILWATCH_PYTHON=...     interpreter used to create .venv (default: python3,
#                             must be >= 3.10).
#   TRAILWATCH_KEEP_LOGS=1    keep the moto log directory even on success.
#   TRAILWATCH_TEST_TIMEOUT=N cap each `cargo test` step at N seconds (0 = no
#                             cap). Default: 3000 when CI=true (CI's whole run
#                             has 90 minutes), no cap otherwise (a cap would
#                             put cargo outside the terminal's Ctrl-C).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
REQ="$SCRIPT_DIR/requirements-test.txt"
STAMP="$VENV/.trailwatch-requirements.sha256"
PYTHON="${TRAILWATCH_PYTHON:-python3}"
REGION="us-east-1"

MOTO_PID=""
WORK_DIR=""
OVERALL_FAILED=0

log() { printf '==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup ---
stop_moto() {
    [ -n "$MOTO_PID" ] || return 0
    if kill -0 "$MOTO_PID" 2>/dev/null; then
        kill -TERM "$MOTO_PID" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$MOTO_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$MOTO_PID" 2>/dev/null || true
    fi
    wait "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=""
}

# shellcheck disable=SC2329  # invoked from cleanup
reap_strays() {
    # Every process the steps start inherits TRAILWATCH_TEST_RUN; any that is
    # still alive now was leaked (e.g. a `cargo lambda watch` a test did not
    # stop). End them so a run leaves nothing behind. Linux (/proc) only.
    [ -n "${TRAILWATCH_TEST_RUN:-}" ] && [ -d /proc ] && [ -x "$VENV/bin/python" ] || return 0
    "$VENV/bin/python" - "$TRAILWATCH_TEST_RUN" "$$" <<'PY' || true
import os, signal, sys, time
marker = ("TRAILWATCH_TEST_RUN=" + sys.argv[1]).encode()
skip = {os.getpid(), int(sys.argv[2])}
found = {}
for entry in os.listdir("/proc"):
    if not entry.isdigit() or int(entry) in skip:
        continue
    try:
        with open(f"/proc/{entry}/environ", "rb") as f:
            if marker not in f.read().split(b"\0"):
                continue
        with open(f"/proc/{entry}/cmdline", "rb") as f:
            found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")[:160]
    except OSError:
        continue
if not found:
    sys.exit(0)
print(f"WARNING: ending {len(found)} process(es) left running by the tests:", file=sys.stderr)
for pid, cmd in sorted(found.items()):
    print(f"  {pid} {cmd}", file=sys.stderr)
for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0)):
    for pid in list(found):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            found.pop(pid)
    deadline = time.time() + wait
    while found and time.time() < deadline:
        time.sleep(0.1)
        for pid in list(found):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                found.pop(pid)
PY
}

# shellcheck disable=SC2329  # invoked through the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    reap_strays
    stop_moto
    if [ -n "$WORK_DIR" ] && [ -d "$WORK_DIR" ]; then
        if [ "$rc" -eq 0 ] && [ "${TRAILWATCH_KEEP_LOGS:-0}" != "1" ]; then
            rm -rf "$WORK_DIR"
        else
            printf 'Logs kept in %s\n' "$WORK_DIR" >&2
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/trailwatch-test.XXXXXX")"

# ------------------------------------------------------------------- venv ---
req_hash() {
    # Hash of the requirements file plus the interpreter version, so a new
    # Python (or new pins) triggers a reinstall.
    "$VENV/bin/python" -c 'import hashlib, sys
h = hashlib.sha256(open(sys.argv[1], "rb").read())
h.update(sys.version.encode())
print(h.hexdigest())' "$REQ"
}

venv_usable() {
    # A venv is not relocatable: its scripts' shebangs hold the absolute path.
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null || return 1
    [ -f "$VENV/bin/pip" ] || return 1
    # (pip writes a two-line /bin/sh shebang when the path has spaces.)
    head -n2 "$VENV/bin/pip" | grep -qF "$VENV/bin/python" || return 1
}

setup_venv() {
    [ -f "$REQ" ] || die "missing $REQ"
    if ! venv_usable; then
        command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; install Python >= 3.10 or set TRAILWATCH_PYTHON"
        "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
            || die "$("$PYTHON" --version 2>&1) is too old; the test tools need Python >= 3.10 (set TRAILWATCH_PYTHON)"
        log "creating Python venv at .venv/ with $("$PYTHON" --version 2>&1)"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV" || die "python -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
    fi

    local want have=""
    want="$(req_hash)"
    [ -f "$STAMP" ] && have="$(cat "$STAMP")"
    local tool missing=0
    for tool in moto_server cargo-lambda sam cfn-lint; do
        [ -x "$VENV/bin/$tool" ] || missing=1
    done
    if [ "$want" = "$have" ] && [ "$missing" -eq 0 ]; then
        log "reusing .venv/ (requirements unchanged)"
        return 0
    fi

    log "installing scripts/requirements-test.txt into .venv/ (first run takes a few minutes)"
    local start=$SECONDS
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ" \
        || die "pip install -r scripts/requirements-test.txt failed"
    printf '%s\n' "$want" > "$STAMP"
    log "installed test tools in $((SECONDS - start))s"
}

# ------------------------------------------------------------------- moto ---
free_port() {
    "$VENV/bin/python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

moto_answers() {
    # One HTTP probe of moto's own API; proxies bypassed on purpose.
    "$VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(sys.argv[1] + "/moto-api/", timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
}

start_moto() {
    local attempt port url i
    local log_file="$WORK_DIR/moto_server.log"
    for attempt in 1 2 3; do
        port="$(free_port)"
        url="http://127.0.0.1:$port"
        # The wrapper asks Linux to SIGTERM moto if this script dies without
        # running its trap (e.g. SIGKILL), so no moto_server is left behind.
        TRAILWATCH_PARENT_PID=$$ "$VENV/bin/python" -c '
import os, signal, sys
try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != int(os.environ.pop("TRAILWATCH_PARENT_PID")):
    sys.exit(1)
from moto.server import main
sys.argv[0] = "moto_server"
sys.exit(main())
' -H 127.0.0.1 -p "$port" >>"$log_file" 2>&1 &
        MOTO_PID=$!
        for i in $(seq 1 300); do # up to ~30 s
            kill -0 "$MOTO_PID" 2>/dev/null || break
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && moto_answers "$url"; then
                MOTO_URL="$url"
                log "moto_server ready at $MOTO_URL (pid $MOTO_PID)"
                return 0
            fi
            sleep 0.1
        done
        log "moto_server did not come up on port $port (attempt $attempt)"
        stop_moto
    done
    echo "---- last lines of $log_file ----" >&2
    tail -n 40 "$log_file" >&2 || true
    die "could not start moto_server"
}

# ------------------------------------------------------------------ steps ---
STEP_NAMES=()
STEP_STATUS=()
STEP_SECS=()
STEP_NOTES=()

run_step() {
    local name=$1
    shift
    printf '\n==> [%s] %s\n' "$name" "$*"
    local start=$SECONDS rc=0
    "$@" || rc=$?
    STEP_NAMES+=("$name")
    STEP_SECS+=("$((SECONDS - start))s")
    if [ "$rc" -eq 0 ]; then
        STEP_STATUS+=("PASS")
        STEP_NOTES+=("")
    else
        STEP_STATUS+=("FAIL")
        STEP_NOTES+=("exit code $rc")
        OVERALL_FAILED=1
        printf '==> [%s] FAILED with exit code %s\n' "$name" "$rc"
    fi
}

skip_step() {
    STEP_NAMES+=("$1")
    STEP_SECS+=("-")
    STEP_STATUS+=("SKIP")
    STEP_NOTES+=("$2")
}

print_summary() {
    local i n=${#STEP_NAMES[@]} failed=0
    printf '\n================ trailwatch test summary ================\n'
    for ((i = 0; i < n; i++)); do
        printf '  %-4s  %-20s %6s  %s\n' "${STEP_STATUS[$i]}" "${STEP_NAMES[$i]}" "${STEP_SECS[$i]}" "${STEP_NOTES[$i]}"
        if [ "${STEP_STATUS[$i]}" = "FAIL" ]; then failed=$((failed + 1)); fi
    done
    printf '==========================================================\n'
    if [ "$OVERALL_FAILED" -ne 0 ]; then
        printf 'RESULT: FAILED (%d of %d steps failed)\n' "$failed" "$n"
    else
        printf 'RESULT: OK (every step that ran succeeded)\n'
    fi
}

TEST_TIMEOUT="${TRAILWATCH_TEST_TIMEOUT:-}"
if [ -z "$TEST_TIMEOUT" ] && [ "${CI:-}" = "true" ]; then
    TEST_TIMEOUT=3000
fi

# shellcheck disable=SC2329  # invoked through run_step
capped() {
    # Runs "$@" under `timeout` when a cap is set; 124 means it was hit.
    if [ -n "$TEST_TIMEOUT" ] && [ "$TEST_TIMEOUT" != "0" ]; then
        local rc=0
        timeout --kill-after=30 "$TEST_TIMEOUT" "$@" || rc=$?
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            printf '==> timed out after %ss (TRAILWATCH_TEST_TIMEOUT); a test hangs\n' "$TEST_TIMEOUT"
        fi
        return "$rc"
    fi
    "$@"
}

# ------------------------------------------------------------------- main ---
TOTAL_START=$SECONDS
setup_venv

MOTO_URL=""
start_moto

export AWS_ENDPOINT_URL="$MOTO_URL"
export TRAILWATCH_MOTO_ENDPOINT="$MOTO_URL"
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION="$REGION"
export AWS_DEFAULT_REGION="$REGION"
# Never let a developer's real AWS setup leak into the tests.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true
# Local endpoints must never go through an HTTP proxy.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export PATH="$VENV/bin:$PATH"
export SAM_CLI_TELEMETRY=0
# Marks every process started from here on, so cleanup can find leftovers.
TRAILWATCH_TEST_RUN="$$-$RANDOM$RANDOM"
export TRAILWATCH_TEST_RUN

log "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=$AWS_REGION (test credentials)"

if [ "${TRAILWATCH_SKIP_CARGO:-0}" = "1" ]; then
    skip_step "cargo fmt" "TRAILWATCH_SKIP_CARGO=1"
    skip_step "cargo clippy" "TRAILWATCH_SKIP_CARGO=1"
    skip_step "cargo test" "TRAILWATCH_SKIP_CARGO=1"
else
    run_step "cargo fmt" cargo fmt --check
    run_step "cargo clippy" cargo clippy --all-targets -- -D warnings
    # `--all-targets` leaves out doctests; run them first so the last test
    # output of the run is the main suite's.
    if [ "$#" -eq 0 ]; then
        run_step "cargo test --doc" capped cargo test --doc
    fi
    run_step "cargo test" capped cargo test --all-targets --no-fail-fast "$@"
fi

if [ -f "$ROOT/template.yaml" ]; then
    run_step "sam validate --lint" sam validate --lint --template "$ROOT/template.yaml" --region "$REGION"
    run_step "cfn-lint" cfn-lint "$ROOT/template.yaml"
else
    skip_step "sam validate --lint" "no template.yaml"
    skip_step "cfn-lint" "no template.yaml"
fi

if ! kill -0 "$MOTO_PID" 2>/dev/null; then
    printf 'WARNING: moto_server exited during the run; see %s/moto_server.log\n' "$WORK_DIR" >&2
    OVERALL_FAILED=1
fi

print_summary
printf 'Total time: %ss\n' "$((SECONDS - TOTAL_START))"
if [ "$OVERALL_FAILED" -ne 0 ]; then
    # Keep moto's log for a failed run (the EXIT trap reports where it is).
    exit 1
fi
exit 0
