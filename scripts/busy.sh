#!/usr/bin/env bash
# Runs a command with the machine busy: one CPU-bound process per core (BUSY_PROCESSES
# sets another count) for as long as the command runs, stopped when it ends however it
# ends. The tests must pass like this as they pass on an idle machine:
#   scripts/busy.sh make test
set -euo pipefail

if [[ $# == 0 ]]; then
    echo "usage: scripts/busy.sh COMMAND [ARGS...]" >&2
    exit 4
fi

hogs=()
stop_hogs() {
    for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait "${hogs[@]}" 2>/dev/null || true
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM

for _ in $(seq "${BUSY_PROCESSES:-$(nproc)}"); do
    # A shell loop that never sleeps: all of one core, no I/O, nothing to install.
    bash -c 'while :; do :; done' &
    hogs+=($!)
done
echo "busy: ${#hogs[@]} CPU-bound processes beside: $*" >&2

"$@"
