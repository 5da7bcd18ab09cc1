# The front door: `make dev` runs the service locally, `make test` checks everything.

VENV := .venv
CHECKOV_VENV := .venv-checkov
BROWSER_VENV := .venv-browser
# The binaries template.yaml deploys (a test keeps the two lists equal).
FUNCTIONS := kickoff kickoff-events status control search discovery ui worker

.PHONY: dev seed build bench soak test fmt lint template-lint unit integration contract browser tools

## Serve the whole API on http://127.0.0.1:9000 with its engine on 127.0.0.1:8000.
dev: tools
	./scripts/dev.sh

## With `make dev` running: add SEED_JOBS (default 20000) finished jobs in an older layout,
## so that a data migration has real work to show.
seed:
	set -a && . local/dev.env && set +a && cargo run --quiet --bin dev-seed

## Release bootstraps for AWS (arm64), in target/lambda/<function>/bootstrap.
build: tools
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 \
		$(addprefix --bin ,$(FUNCTIONS))

## Measure (release build, criterion, the driver) and rewrite BENCHMARKS.md.
bench:
	cargo build --release $(addprefix --bin ,$(FUNCTIONS)) --bin dev-seed
	cd bench/node && npm ci --no-audit --no-fund --silent
	cargo bench --profile release -p asyncjob-bench --bench handlers -- --quiet
	cargo run --release --quiet -p asyncjob-bench

## Formatting, lints, the template's linters, unit and integration tests, the API
## contract tested by generated requests, and the dashboard in a real browser.
test: fmt lint template-lint unit integration contract browser

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --workspace --all-targets -- -D warnings

## cfn-lint and checkov on template.yaml.
template-lint: tools
	$(VENV)/bin/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml --file template.yaml --skip-download

## Unit and property tests of every crate (no test targets): no engine, no network.
unit:
	cargo nextest run --workspace -E 'not kind(test)'

## The real handlers, runner and entrypoints against the embedded engine, the randomized
## lifecycle test under injected faults, the template's wiring and the module layout
## (tests/), and the asyncjob command line against the handlers over HTTP (cli/tests/).
## The tests record the DynamoDB actions each function sends; then each function's policy
## in template.yaml is checked against them.
integration:
	rm -rf target/iam-actions
	cargo nextest run --workspace -E 'kind(test)'
	cargo nextest run -p asyncjob-tests --run-ignored only \
		-E 'test(each_function_is_granted_exactly_the_actions_its_code_sends)'

## The lifecycle test over 10,000 schedules (SOAK_SCHEDULES), written to RELIABILITY.md.
soak:
	cargo run --quiet -p asyncjob-tests --bin lifecycle -- \
		--schedules $${SOAK_SCHEDULES:-10000} --report RELIABILITY.md

## schemathesis against a local stack of its own (ports 18000/19000).
contract: tools
	./scripts/contract.sh

## The dashboard in Debian's chromium, driven by Playwright, against a local stack of its own
## (ports 28000/29000); a screenshot is left in target/browser/.
browser: tools $(BROWSER_VENV)/.installed
	./scripts/browser.sh

## Project-local tools, pinned in tools/: cargo-lambda, cfn-lint and schemathesis in .venv,
## checkov in a venv of its own.
tools: $(VENV)/.installed $(CHECKOV_VENV)/.installed

$(VENV)/.installed: tools/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	touch $@

# Playwright drives Debian's chromium (/usr/bin/chromium, installed by .ci/run); it never
# downloads a browser of its own.
$(BROWSER_VENV)/.installed: tools/browser-requirements.txt
	python3 -m venv $(BROWSER_VENV)
	$(BROWSER_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/browser-requirements.txt
	touch $@

$(CHECKOV_VENV)/.installed: tools/checkov-requirements.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/checkov-requirements.txt
	touch $@
