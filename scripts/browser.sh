#!/usr/bin/env bash
# The dashboard in a real browser: pytest drives Debian's chromium through Playwright
# (tests/browser/) against a local stack of its own (ports 28000/29000, a throw-away
# database) seeded with finished jobs. Screenshots and the stack's log are left in
# target/browser/.
set -euo pipefail
cd "$(dirname "$0")/.."

# Small migration pages and a write budget: each migration of the 3000 seeded jobs takes
# 20 s at least, however fast the machine, long enough to watch the progress bar move
# through several polls and to cancel a migration midway.
export ASYNCJOB_MIGRATION_PAGE_SIZE=25
export ASYNCJOB_MIGRATION_ITEMS_PER_SECOND=150
# shellcheck source=stack.sh
source scripts/stack.sh 28000 29000

(
    set -a
    # shellcheck source=../local/dev.env
    source local/dev.env
    set +a
    AWS_ENDPOINT_URL_DYNAMODB="http://$ASYNCJOB_ENGINE_ADDRESS" SEED_JOBS=3000 \
        cargo run --quiet --bin dev-seed
)

mkdir -p target/browser
status=0
ASYNCJOB_API="$api" ASYNCJOB_ARTIFACTS=target/browser \
    .venv-browser/bin/pytest tests/browser -q -p no:cacheprovider || status=$?
cp "$stack_log" target/browser/stack.log
if [[ $status != 0 ]]; then
    tail -50 "$stack_log"
    echo "browser: the stack's whole log is in target/browser/stack.log"
fi
exit $status
