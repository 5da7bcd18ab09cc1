# A local stack of a test run's own, sourced by the scripts that need one:
#   source scripts/stack.sh ENGINE_PORT API_PORT
# builds and starts scripts/dev.sh on those ports with a throw-away database, waits until
# it announces the API (once every function has answered a request), and stops it and
# deletes the database when the calling script exits. Its functions never reload midway.
# It sets $api (the API's base URL) and $stack_log.

stack_data="$(mktemp -d)"
export ASYNCJOB_ENGINE_ADDRESS="127.0.0.1:$1"
export ASYNCJOB_API_PORT="$2"
export ASYNCJOB_ENGINE_DATABASE="$stack_data/dynamodb.sqlite"
export ASYNCJOB_DEV_RELOAD=no
api="http://127.0.0.1:$ASYNCJOB_API_PORT"
stack_log="$stack_data/stack.log"

# Built first, in the open: the stack's binaries need other features than the tests' build.
./scripts/dev.sh build
./scripts/dev.sh > "$stack_log" 2>&1 &
stack_pid=$!
stop_stack() {
    kill "$stack_pid" 2>/dev/null || true
    wait "$stack_pid" 2>/dev/null || true
    rm -rf "$stack_data"
}
trap stop_stack EXIT

until grep -q "^dev: the API answers on $api" "$stack_log"; do
    if ! kill -0 "$stack_pid" 2>/dev/null; then
        cat "$stack_log"
        echo "stack: scripts/dev.sh stopped before the API was ready" >&2
        exit 1
    fi
    sleep 0.2
done
