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

# The functions the local router serves, read from its table in Cargo.toml, each with the
# first request its table routes to it: "function METHOD /path", path parameters filled in.
mapfile -t probes < <(python3 -c '
import tomllib
router = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["metadata"]["lambda"]["watch"]["router"]
first = {}
for route in router:
    path = route["path"].replace("{id}", "00000000-0000-7000-8000-000000000000").replace("{asset}", "app.js")
    first.setdefault(route["function"], (route["methods"][0], path))
for function in sorted(first):
    print(function, *first[function])
')
(( ${#probes[@]} > 0 )) || { echo "dev: no functions in the router of Cargo.toml" >&2; exit 1; }
functions=("${probes[@]%% *}")
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

# A test stack (scripts/stack.sh) never reloads a function midway through its tests.
watch_flags=()
[[ "${ASYNCJOB_DEV_RELOAD:-yes}" == no ]] && watch_flags+=(--ignore-changes)
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$ASYNCJOB_API_PORT" \
    "${watch_flags[@]}" \
    --env-file local/dev.env --env-var "AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB" &
watch_pid=$!
pids+=("$watch_pid")

# cargo lambda watch starts a function with `cargo run` on its first request, and fails a
# request that comes while cargo waits for a build lock held elsewhere. So every function
# answers one real request first, one after the other, before the API is announced: a
# request that reaches the function is answered below 500 (these write nothing: a kick-off
# without `Prefer: respond-async`, a cancel of an unknown job). Anything else is tried
# again, for up to 10 minutes, which is time for a cold build on a busy machine.
api="http://127.0.0.1:$ASYNCJOB_API_PORT"
for probe in "${probes[@]}"; do
    read -r function method path <<< "$probe"
    deadline=$((SECONDS + 600))
    until status="$(curl -s -o /dev/null -w '%{http_code}' --max-time 120 -X "$method" "$api$path")" \
        && [[ "$status" -ge 200 && "$status" -lt 500 ]]; do
        if ! kill -0 "$watch_pid" 2>/dev/null; then
            echo "dev: cargo lambda watch stopped before $function answered" >&2
            exit 1
        fi
        if (( SECONDS > deadline )); then
            echo "dev: the function $function never answered $method $path (last: $status)" >&2
            exit 1
        fi
        sleep 0.2
    done
done
echo "dev: the API answers on $api (Ctrl-C stops it)"
wait -n
