"""The dashboard, driven in Debian's chromium by Playwright, against the local stack that
scripts/browser.sh starts and seeds (its base URL in ASYNCJOB_API)."""

import json
import os
import pathlib
import re
import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import sync_playwright

API = os.environ["ASYNCJOB_API"]
ARTIFACTS = pathlib.Path(os.environ.get("ASYNCJOB_ARTIFACTS", "target/browser"))
CHROMIUM = "/usr/bin/chromium"
# The machine's network is closed: without these, chromium's background services try to
# call out at every start and log the refusals.
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
DESKTOP = {"width": 1280, "height": 800}
FAILED_LOAD = re.compile(r"^Failed to load resource: the server responded with a status of \d+")


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body


# Every emulator fault of the run, for its summary.
EMULATOR_FAULTS = []


def emulator_fault(status, content_type):
    """Whether an answer is the local Lambda emulator's own failure, which the function never
    saw through: a 5xx in plain text, a type the service never answers in. The stack starts
    every function before it is announced, so none comes of a cold start; but cargo lambda
    watch (1.9.2) now and then loses a function's answer of more than some kilobytes (the
    dashboard's script, a page of jobs) when requests to one function come together: up to
    one such answer in 40, idle or busy (docs/design.md, "The local stack")."""
    return status >= 500 and (content_type or "").startswith("text/plain")


def call(path, method="GET", headers=None):
    """One API call, as the page would make it, for the tests to compare against. A call
    that gets no answer in 10 s, or an answer the emulator made up, is sent again, twice
    at most. The service's own answers are never retried."""
    request = urllib.request.Request(f"{API}/{path}", method=method, headers=headers or {})
    for attempt in range(3):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, headers, text = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, text = error.code, error.headers, error.read()
        except TimeoutError:
            if attempt == 2:
                raise
            continue
        if emulator_fault(status, headers.get("content-type")) and attempt < 2:
            EMULATOR_FAULTS.append(f"{method} {API}/{path}: {status} (sent again)")
            continue
        return Answer(status, headers, json.loads(text) if text else None)


def parts(parameters):
    """A Parameters resource's (or a part's) values by name."""
    found = {}
    for part in parameters:
        value = next((v for k, v in part.items() if k.startswith("value")), None)
        found[part["name"]] = value if value is not None else part.get("part")
    return found


def migrations():
    return parts(call("$data-migration").body["parameter"])


def wait_until(check, seconds=120, every=0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"not so after {seconds} s: {check.__doc__ or check}")


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Console:
    """What went wrong on the page: errors it logged, and API answers of 400 or more. An
    answer the test provokes (a 429, the 404 of a job it cancelled) is named by the test
    with `expect_answers`; anything else fails it. The emulator's own failures
    (`emulator_fault`) are kept apart and listed at the end of the run: the page retries
    its reads, and the test then checks what it shows; a page whose own file failed is
    loaded again."""

    def __init__(self):
        self.errors = []
        self.emulator = []
        self.expected_statuses = set()

    def expect_answers(self, *statuses):
        self.expected_statuses.update(statuses)

    def logged(self, message):
        # Chromium logs every answer of 400 or more as a failed load; those are checked
        # below, with their URL.
        if message.type == "error" and not FAILED_LOAD.match(message.text):
            self.errors.append(message.text)

    def answered(self, response):
        if response.status < 400 or response.status in self.expected_statuses:
            return
        content_type = response.headers.get("content-type")
        answer = f"{response.request.method} {response.url}: {response.status} ({content_type})"
        if emulator_fault(response.status, content_type):
            self.emulator.append(answer)
        else:
            self.errors.append(answer)

    def page_file_faults(self):
        """How many times one of the dashboard's own files got an emulator fault: the page
        never ran as it is."""
        return sum(1 for answer in self.emulator if re.search(r" http://[^/]+/ui(/|\?|:)", answer))


@pytest.fixture
def console():
    return Console()


def pytest_terminal_summary(terminalreporter):
    """Says how often the emulator failed, and where, however the run went."""
    if EMULATOR_FAULTS:
        terminalreporter.write_line(f"the local Lambda emulator failed {len(EMULATOR_FAULTS)} answers:")
        for fault in EMULATOR_FAULTS:
            terminalreporter.write_line(f"  {fault}")


def pytest_configure(config):
    config.addinivalue_line("markers", "viewport(width, height): the window's size (default 1280x800)")


@pytest.fixture
def page(request, browser, console):
    """The dashboard, loaded; at the end, no error it logged went unexpected."""
    marker = request.node.get_closest_marker("viewport")
    context = browser.new_context(viewport=marker.kwargs if marker else DESKTOP)
    page = context.new_page()
    page.on("console", console.logged)
    page.on("response", console.answered)
    page.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    for _ in range(3):
        faults = console.page_file_faults()
        page.goto(f"{API}/ui")
        if console.page_file_faults() == faults:
            break
    yield page
    settle(page)
    context.close()
    EMULATOR_FAULTS.extend(console.emulator)
    assert console.errors == [], "the page logged errors or got unexpected answers"


def settle(page):
    """Lets the page's calls in flight finish before it goes away: the local Lambda emulator
    can drop the next invocation of a function whose caller hung up mid-call."""
    page.wait_for_load_state("networkidle")


@pytest.fixture(scope="session")
def migrated():
    """The data at the newest version, so the seeded jobs are indexed and listed. The kick-off
    tests get there from the page; run alone, a test that needs it gets there by the API."""
    newest = migrations()["newestVersion"]
    if migrations()["dataVersion"] < newest:
        call(f"$data-migration?dataVersion={newest}", method="POST", headers={"Prefer": "respond-async"})

        def reached():
            """the data reached the newest version"""
            return migrations()["dataVersion"] == newest and "running" not in migrations()

        wait_until(reached)
    return newest
