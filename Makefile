# The front door: `make dev` runs the service locally, `make test` checks everything.

CARGO_LAMBDA_VERSION := 1.9.2
VENV := .venv

.PHONY: dev seed test fmt lint unit tools

## Serve the whole API on http://127.0.0.1:9000 with its engine on 127.0.0.1:8000.
dev: tools
	./scripts/dev.sh

## With `make dev` running: add SEED_JOBS (default 20000) finished jobs in an older layout,
## so that a data migration has real work to show.
seed:
	set -a && . local/dev.env && set +a && cargo run --quiet --bin dev-seed

## Formatting, lints, unit and integration tests.
test: fmt lint unit

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo nextest run --workspace

## Project-local tools, pinned: cargo-lambda from PyPI in .venv.
tools: $(VENV)/bin/cargo-lambda

$(VENV)/bin/cargo-lambda:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet cargo-lambda==$(CARGO_LAMBDA_VERSION)
