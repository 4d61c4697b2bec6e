#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): ./scripts/test.sh
#   1. .venv with the pinned test tools of scripts/requirements-test.txt (moto server,
#      cargo-lambda, aws-sam-cli, cfn-lint), reinstalled only when that file changes;
#   2. moto on a free 127.0.0.1 port with fake credentials (stopped on exit), each
#      DynamoDB request atomic as in AWS (scripts/moto_server.py); the SDK follows
#      AWS_ENDPOINT_URL, and nothing of a developer's own AWS setup leaks in;
#   3. fmt, clippy and every test with every feature; TRAILWATCH_REQUIRE_AWS_TESTS=1
#      makes the moto and Lambda tests fail, not skip, when they cannot run (plain
#      `cargo test` skips them and says why). Tests end the processes they start;
#   4. each fuzz target for 15 s (scripts/fuzz.sh smoke: cargo-fuzz, libFuzzer);
#   5. sam validate --lint, cfn-lint and checkov (CIS and AWS checks; each skip is
#      justified in the template) on template.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(sha256sum scripts/requirements-test.txt | cut -d' ' -f1)
if [ "$(cat .venv/.requirements 2>/dev/null)" != "$want" ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
    echo "$want" > .venv/.requirements
fi
export PATH="$PWD/.venv/bin:$PATH"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
python3 scripts/moto_server.py -H 127.0.0.1 -p "$port" > target/moto.log 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" TRAILWATCH_MOTO_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
export NO_PROXY=127.0.0.1 SAM_CLI_TELEMETRY=0 TRAILWATCH_REQUIRE_AWS_TESTS=1
unset AWS_PROFILE AWS_SESSION_TOKEN
for _ in $(seq 100); do curl -s -o /dev/null "$AWS_ENDPOINT_URL" && break; sleep 0.2; done

cargo fmt --check
cargo clippy --all-targets --all-features -- -D warnings
cargo test --all-features --no-fail-fast
scripts/fuzz.sh smoke
sam validate --lint --template template.yaml --region us-east-1
cfn-lint template.yaml
# checkov in a venv of its own: its boto3 pin conflicts with aws-sam-cli's.
v=3.3.30
[ "$(.venv-checkov/bin/checkov --version 2>/dev/null)" = "$v" ] \
    || { python3 -m venv .venv-checkov && .venv-checkov/bin/pip install --quiet --disable-pip-version-check "checkov==$v"; }
.venv-checkov/bin/checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download
echo "test.sh: all passed"
