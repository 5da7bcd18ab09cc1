"""What an operator sees and does on the dashboard, checked against what the API says.

The tests run in file order on one seeded stack, as an operator's session would: a
migration watched and cancelled, one run to completion, then the (now indexed) seeded jobs
looked through. Each can also run alone: what it needs first, it sets up by the API."""

import base64
import json

import pytest
from playwright.sync_api import expect

from conftest import API, ARTIFACTS, call, migrations, parts, settle, wait_until

STATUSES = ["accepted", "error", "completed", "cancelled"]
PHONE = {"width": 390, "height": 844}


def kick_off(page, version):
    page.get_by_label("Bring the data to version").select_option(str(version))
    page.get_by_role("button", name="Kick off migration").click()


def running_job():
    """the API reports a running migration"""
    running = migrations().get("running")
    return parts(running)["job"] if running else None


def job_card(page, job_id):
    return page.get_by_role("region", name="Running").get_by_role("listitem", name=f"Job {job_id}")


def jobs_table(page):
    return page.get_by_role("table", name="Jobs", exact=True)


def listed_ids(page):
    expect(jobs_table(page).get_by_role("row").nth(1)).to_be_visible()
    return jobs_table(page).locator("tbody tr td:first-child").all_inner_texts()


def api_ids(query):
    bundle = call(f"AsyncJob?{query}").body
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])], bundle


def progress_value(bar):
    return bar.evaluate("bar => bar.hasAttribute('value') ? bar.value : null")


def unsigned_token(claims):
    """A token the local stack reads without checking a signature (docs/api.md)."""
    encode = lambda part: base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
    return f"{encode({'alg': 'none'})}.{encode(claims)}.unsigned"


def test_a_running_migration_is_followed_refused_for_another_version_and_cancelled(page, console):
    # The refused kick-off, and the cancelled job's status URL once the page polls it.
    console.expect_answers(429, 404)
    newest = migrations()["newestVersion"]
    assert running_job() is None and migrations()["dataVersion"] < newest, "runs on fresh data"

    kick_off(page, newest)
    job_id = wait_until(running_job)
    expect(page.get_by_role("status")).to_have_text(
        f"Kicked off the migration to data version {newest}: job {job_id}."
    )
    card = job_card(page, job_id)
    expect(card.get_by_role("progressbar")).to_be_visible()
    expect(card).to_contain_text(f"Migration to data version {newest}")

    kick_off(page, 1)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(f"Not started: the data migration to version {newest} is still running")
    expect(alert).to_contain_text(job_id)
    expect(alert).to_contain_text("can start once that one has finished or been cancelled")

    # A hidden tab does not poll; shown again, it does at once.
    status_url = lambda request: f"/job/{job_id}/status" in request.url
    polls = []
    page.on("request", lambda request: status_url(request) and polls.append(request))
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    page.wait_for_timeout(500)
    polls.clear()
    page.wait_for_timeout(3000)
    assert polls == [], "a hidden tab polled the status URL"
    with page.expect_request(status_url, timeout=5000) as poll:
        page.evaluate("""() => {
            Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
            document.dispatchEvent(new Event("visibilitychange"));
        }""")
    assert poll.value.headers.get("if-none-match", "").startswith('W/"'), "polls send the ETag they hold"

    # Paused from the card: the API holds the job, and the card says who paused it.
    card.get_by_role("button", name="Pause job").click()
    expect(page.get_by_role("status")).to_have_text(f"Job {job_id} was paused: it stops at its next checkpoint.")
    expect(card).to_contain_text("paused by local since")
    assert any(p["name"] == "paused" for p in call(f"AsyncJob/{job_id}").body["output"]["parameter"])
    card.get_by_role("button", name="Resume job").click()
    expect(page.get_by_role("status")).to_have_text(f"Job {job_id} was resumed.")
    expect(card.get_by_role("button", name="Pause job")).to_be_visible()
    expect(card).not_to_contain_text("paused by")
    assert not any(p["name"] == "paused" for p in call(f"AsyncJob/{job_id}").body["output"]["parameter"])

    card.get_by_role("button", name="Cancel job").click()
    dialog = page.get_by_role("dialog", name="Cancel this job?")
    expect(dialog).to_contain_text(job_id)
    dialog.get_by_role("button", name="Yes, cancel the job").click()
    expect(page.get_by_role("status")).to_have_text(f"Job {job_id} was cancelled.")
    assert call(f"AsyncJob/{job_id}").body["status"] == "cancelled"
    expect(card).to_contain_text("Cancelled")
    expect(card.get_by_role("button", name="Cancel job")).to_have_count(0)

    page.get_by_role("group", name="Filter by status").get_by_role("button", name="cancelled").click()
    row = jobs_table(page).get_by_role("row").filter(has_text=job_id)
    expect(row).to_contain_text("cancelled")


def test_a_migration_kicked_off_from_the_page_runs_to_completion(page):
    newest = migrations()["newestVersion"]
    assert migrations()["dataVersion"] < newest, "runs before the data is migrated"

    kick_off(page, newest)
    job_id = wait_until(running_job)
    card = job_card(page, job_id)
    bar = card.get_by_role("progressbar")
    seen = []
    pictured = []

    def completed():
        """the page shows the job completed"""
        seen.append(progress_value(bar))
        if not pictured and (seen[-1] or 0) > 0.3:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=ARTIFACTS / "dashboard-running.png")
            pictured.append(True)
        return "Completed" in card.inner_text()

    wait_until(completed, seconds=180, every=0.25)
    expect(card).to_contain_text(f"Completed: the data is at version {newest}.")
    shown = [value for value in seen if value is not None]
    assert len(set(shown)) >= 3, f"the bar did not move: {seen}"
    assert shown == sorted(shown), f"the bar went backwards: {shown}"
    assert progress_value(bar) == 1
    expect(page.get_by_text(f"Data version: {newest} (newest: {newest})")).to_be_visible()
    assert call(f"AsyncJob/{job_id}").body["status"] == "completed"


def test_the_counts_and_the_jobs_listed_match_the_api(migrated, page):
    by_status = page.get_by_role("table", name="Jobs by status")
    for status in STATUSES:
        total = call(f"AsyncJob?status={status}&_total=accurate&_count=1").body["total"]
        row = by_status.get_by_role("row").filter(has=page.get_by_role("rowheader", name=status, exact=True))
        expect(row.get_by_role("cell")).to_have_text(str(total))
    total = call("AsyncJob?type=data-migration&_total=accurate&_count=1").body["total"]
    assert total > 2000, "the seeded jobs are indexed"
    by_type = page.get_by_role("table", name="Jobs by type")
    expect(by_type.get_by_role("row").filter(has_text="data-migration").get_by_role("cell")).to_have_text(str(total))

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)

    first, bundle = api_ids("_count=20")
    assert listed_ids(page) == first
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    second, _ = api_ids(next_url.split("?", 1)[1])
    page.get_by_role("button", name="Next page").click()
    expect(jobs_table(page).locator("tbody tr").first).to_contain_text(second[0])
    assert listed_ids(page) == second
    page.get_by_role("button", name="Previous page").click()
    expect(jobs_table(page).locator("tbody tr").first).to_contain_text(first[0])

    filters = page.get_by_role("group", name="Filter by status")
    filters.get_by_role("button", name="error").click()
    expect(filters.get_by_role("button", name="error")).to_have_attribute("aria-pressed", "true")
    errors, _ = api_ids("status=error&_count=20")
    expect(jobs_table(page).locator("tbody tr").first).to_contain_text(errors[0])
    assert listed_ids(page) == errors
    statuses = jobs_table(page).locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert set(statuses) == {"error"}

    page.get_by_label("Type", exact=True).select_option("data-migration")
    both, _ = api_ids("status=error&type=data-migration&_count=20")
    assert listed_ids(page) == both


def test_a_failed_job_shows_its_operation_outcome(migrated, page, console):
    failed = call("AsyncJob?status=error&_count=1").body["entry"][0]["resource"]
    outcome = next(p["resource"] for p in failed["output"]["parameter"] if p["name"] == "outcome")
    # The status URL answers a failed job with the same OperationOutcome.
    assert call(f"job/{failed['id']}/status").status == 500
    assert call(f"job/{failed['id']}/status").body == outcome

    page.get_by_role("group", name="Filter by status").get_by_role("button", name="error").click()
    jobs_table(page).get_by_role("button", name=failed["id"]).click()
    details = page.get_by_role("region", name="Job details")
    expect(details).to_be_visible()
    expect(details).to_contain_text("Why it failed")
    expect(details.get_by_role("listitem")).to_contain_text(outcome["issue"][0]["diagnostics"])
    expect(details).to_contain_text(f"Data version{failed['dataVersion']}")
    page.get_by_role("button", name="Close details").click()
    expect(details).to_be_hidden()


def test_a_completed_job_shows_each_migration_applied(migrated, page):
    completed = call("AsyncJob?status=completed&type=data-migration&_count=50").body["entry"]
    job = next(e["resource"] for e in completed if any(p["name"] == "migration" for p in e["resource"]["output"]["parameter"]))
    page.get_by_role("group", name="Filter by status").get_by_role("button", name="completed").click()
    jobs_table(page).get_by_role("button", name=job["id"]).click()
    applied = page.get_by_role("table", name="Migrations applied")
    reports = [parts(p["part"]) for p in job["output"]["parameter"] if p["name"] == "migration"]
    expect(applied.locator("tbody tr")).to_have_count(len(reports))
    for row, report in zip(applied.locator("tbody tr").all(), reports):
        cells = row.get_by_role("cell").all_inner_texts()
        assert cells[:5] == [str(report[k]) for k in ("version", "name", "itemsScanned", "itemsChanged", "itemsSkipped")]


def test_a_repeat_kick_off_is_explained(migrated, page):
    page.get_by_label("Bring the data to version").select_option(str(migrated))
    page.get_by_role("button", name="Kick off migration").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Nothing new was started: no new job was started: the data migration to version {migrated} is completed already"
    )
    assert running_job() is None


def test_a_missing_scope_and_a_bad_token_are_explained(migrated, page, console):
    console.expect_answers(401, 403)
    page.get_by_text("Token", exact=True).click()
    page.get_by_label("Bearer token").fill(unsigned_token({"sub": "viewer", "scope": "asyncjob/read"}))
    page.get_by_role("button", name="Use token").click()
    expect(page.get_by_role("status")).to_have_text("Token saved for this tab.")
    kick_off(page, migrated)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("your token is not allowed to (403)")
    expect(alert).to_contain_text('this request needs the scope "asyncjob/admin"')

    page.get_by_label("Bearer token").fill("not a token")
    page.get_by_role("button", name="Use token").click()
    expect(alert).to_contain_text("you need to sign in (401)")
    # The token lives in this tab only.
    assert page.evaluate("sessionStorage.getItem('asyncjob.token')") == "not a token"
    assert page.evaluate("localStorage.length") == 0
    page.get_by_role("button", name="Forget token").click()
    expect(page.get_by_role("status")).to_have_text("Token forgotten.")


def test_a_token_from_a_sign_in_redirect_is_taken_from_the_fragment(migrated, page):
    token = unsigned_token({"sub": "operator", "scope": "asyncjob/admin"})
    # A fresh load, as a redirect back from a sign-in page is.
    settle(page)
    page.goto("about:blank")
    page.goto(f"{API}/ui#access_token={token}&token_type=Bearer")
    expect(page.get_by_text("A token is in use for this tab.")).to_be_attached()
    assert page.evaluate("location.hash") == "", "the token is taken out of the address bar"
    assert page.evaluate("sessionStorage.getItem('asyncjob.token')") == token


@pytest.mark.viewport(**PHONE)
def test_the_page_fits_a_phone(migrated, page):
    expect(jobs_table(page).locator("tbody tr").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide"
    for name in ["Kick off migration", "Next page"]:
        button = page.get_by_role("button", name=name)
        button.scroll_into_view_if_needed()
        expect(button).to_be_in_viewport()
