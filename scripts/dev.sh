#!/usr/bin/env bash
# The local stack: the embedded engine on 127.0.0.1:8000, every HTTP function behind
# `cargo lambda watch` on 127.0.0.1:9000, and the worker's sweeper every second.
# Ctrl-C stops them all. ASYNCJOB_ENGINE_ADDRESS, ASYNCJOB_API_PORT and
# ASYNCJOB_ENGINE_DATABASE move it elsewhere (the contract tests run a second stack).
# `scripts/dev.sh build` only builds what the stack runs.
set -euo pipefail
cd "$(dirname "$0")/.."

set -a
# shellcheck source=../local/dev.env
source local/dev.env
ASYNCJOB_ENGINE_ADDRESS="${ASYNCJOB_ENGINE_ADDRESS:-127.0.0.1:8000}"
ASYNCJOB_API_PORT="${ASYNCJOB_API_PORT:-9000}"
AWS_ENDPOINT_URL_DYNAMODB="http://$ASYNCJOB_ENGINE_ADDRESS"
set +a
export PATH="$PWD/.venv/bin:$PATH"

# The functions the local router serves, read from its table in Cargo.toml.
mapfile -t functions < <(python3 -c '
import tomllib
router = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["metadata"]["lambda"]["watch"]["router"]
print("\n".join(sorted({route["function"] for route in router})))
')
cargo build --bin dev-engine --bin dev-sweeper "${functions[@]/#/--bin=}"
if [[ "${1:-}" == build ]]; then
    exit 0
fi

pids=()
stop() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM

target/debug/dev-engine &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/${ASYNCJOB_ENGINE_ADDRESS%:*}/${ASYNCJOB_ENGINE_ADDRESS##*:}") 2>/dev/null && break
    sleep 0.1
done

target/debug/dev-sweeper &
pids+=($!)

cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$ASYNCJOB_API_PORT" \
    --env-file local/dev.env --env-var "AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB" &
pids+=($!)
echo "dev: the API answers on http://127.0.0.1:$ASYNCJOB_API_PORT (Ctrl-C stops it)"
wait -n
