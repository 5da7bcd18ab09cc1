// The AsyncJob dashboard. It calls the API it was served from, as the operator, with the
// token kept in this tab's sessionStorage. Nothing from the API is ever parsed as HTML: every
// value reaches the page as text.

const api = new URL(".", location.href); // `/ui` → `/`; `/prod/ui` → `/prod/`
const STATUSES = document.body.dataset.statuses.split(" ");
const TYPES = document.body.dataset.types.split(" ").filter(Boolean);
const TOKEN_KEY = "asyncjob.token";
const PAGE_SIZE = 20;
const REFRESH_MS = 30_000;
const DEFAULT_WAIT_S = 5;

const $ = (id) => document.getElementById(id);

/// An element with attributes (`text` is its text, `on…` a listener) and children.
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

// ---------------------------------------------------------------- talking to the API

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

/// A token handed over by a sign-in redirect (`#access_token=…`) is kept and taken out of
/// the address bar, so it is neither bookmarked nor shared.
function takeTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const handed = fragment.get("access_token");
  if (handed) {
    sessionStorage.setItem(TOKEN_KEY, handed);
    history.replaceState(null, "", location.pathname + location.search);
  }
}

/// One API call. The answer's body is its JSON, or null.
async function send(path, method, headers) {
  const sent = { Accept: "application/fhir+json", ...headers };
  if (token()) sent.Authorization = `Bearer ${token()}`;
  let response;
  try {
    response = await fetch(new URL(path, api), { method, headers: sent, cache: "no-store" });
  } catch (error) {
    return { status: 0, headers: new Headers(), body: null, failure: error.message };
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  return { status: response.status, headers: response.headers, body };
}

/// Whether a read is worth sending again: no answer, the service busy (503 and the like), or
/// a 5xx that is not the service's own (it answers every fault with an OperationOutcome; a
/// gateway or the local emulator may not).
function unanswered(answer) {
  const fault = answer.status >= 500 && !(answer.body && answer.body.resourceType);
  return answer.status === 0 || answer.status === 503 || fault;
}

const READ_RETRIES_MS = [1000, 3000];

/// An API call. Reads that got no real answer are sent again, twice at most; a kick-off or
/// a cancel never is (the operator decides).
async function call(path, { method = "GET", headers = {} } = {}) {
  let answer = await send(path, method, headers);
  for (const wait of method === "GET" ? READ_RETRIES_MS : []) {
    if (!unanswered(answer)) break;
    await new Promise((resolve) => setTimeout(resolve, wait));
    answer = await send(path, method, headers);
  }
  return answer;
}

/// What an OperationOutcome says, its issues joined.
function said(body) {
  const issues = body && body.resourceType === "OperationOutcome" ? body.issue || [] : [];
  return issues.map((issue) => issue.diagnostics || issue.code).filter(Boolean).join("; ");
}

/// A refused or failed call, in words: what was being done, why it did not happen, and what
/// the operator can do about it.
function explain(answer, doing) {
  const reason = said(answer.body);
  switch (answer.status) {
    case 0:
      return `${doing}: the API did not answer (${answer.failure}). Is it running?`;
    case 401:
      $("sign-in").open = true;
      return `${doing}: you need to sign in (401). ${reason ? reason + ". " : ""}` +
        "Paste a bearer token under “Token”.";
    case 403:
      return `${doing}: your token is not allowed to (403). ${reason ? reason + "; " : ""}` +
        "your token lacks that scope: ask for a token that has it.";
    default:
      return `${doing}: the API answered ${answer.status}. ${reason || "It gave no reason."}`;
  }
}

function notify(text) {
  $("problem").textContent = "";
  $("notice").textContent = text;
}

function complain(text) {
  $("notice").textContent = "";
  $("problem").textContent = text;
}

/// Runs an action from a click or a timer; anything unexpected is shown, not thrown.
function guarded(action) {
  return (...args) =>
    Promise.resolve()
      .then(() => action(...args))
      .catch((error) => complain(`Something went wrong in this page: ${error.message}`));
}

// ---------------------------------------------------------------- formatting

const pad = (n) => String(n).padStart(2, "0");

function when(instant) {
  if (!instant) return "";
  const at = new Date(instant);
  if (Number.isNaN(at.getTime())) return instant;
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ` +
    `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
}

function time(instant) {
  return el("time", { datetime: instant, text: when(instant) });
}

function duration(ms) {
  if (ms < 1000) return `${ms} ms`;
  const seconds = ms / 1000;
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/// A Parameters part's value, whatever its `value[x]` type.
function valueOf(parameter) {
  const key = Object.keys(parameter).find((name) => name.startsWith("value"));
  return key ? parameter[key] : undefined;
}

/// The named parts of a parameter (or of a Parameters resource) as an object.
function partsOf(parameters) {
  const found = {};
  for (const part of parameters || []) found[part.name] = valueOf(part);
  return found;
}

function jobIdIn(statusUrl) {
  const match = /\/job\/([^/]+)\/status$/.exec(statusUrl || "");
  return match ? decodeURIComponent(match[1]) : null;
}

// ---------------------------------------------------------------- counts

async function count(query) {
  const answer = await call(`AsyncJob?${query}&_count=1&_total=accurate`);
  if (answer.status !== 200) throw new Refusal(explain(answer, "Counting jobs"));
  return typeof answer.body.total === "number" ? answer.body.total : null;
}

class Refusal extends Error {}

/// The count cells, by query; built once, so a refresh changes numbers, not rows.
const countCells = new Map();

function buildCounts() {
  const rows = (labels, key) => labels.map((label) => {
    const cell = el("td", { text: "…" });
    countCells.set(`${key}=${label}`, cell);
    return el("tr", {}, el("th", { scope: "row", text: label }), cell);
  });
  $("status-counts").replaceChildren(...rows(STATUSES, "status"));
  $("type-counts").replaceChildren(...rows(TYPES, "type"));
}

async function loadCounts() {
  try {
    await Promise.all([...countCells].map(async ([query, cell]) => {
      const total = await count(query);
      cell.textContent = total === null ? "many" : String(total);
      if (total === null) $("counts-note").hidden = false;
    }));
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    complain(error.message);
  }
}

// ---------------------------------------------------------------- the job list

const list = { status: "", type: "", pages: [], next: null };

function firstPage() {
  const query = new URLSearchParams({ _count: PAGE_SIZE });
  if (list.status) query.set("status", list.status);
  if (list.type) query.set("type", list.type);
  return query.toString();
}

function jobRow(job) {
  return el("tr", { "data-job": job.id },
    el("td", {}, el("button", { type: "button", class: "link id", text: job.id, onclick: guarded(() => showDetails(job.id)) })),
    el("td", { text: job.type || "" }),
    el("td", {}, el("span", { class: `status ${job.status}`, text: job.status })),
    el("td", { text: job.dataVersion ?? "" }),
    el("td", {}, time(job.requestTime)),
    el("td", {}, time(job.meta && job.meta.lastUpdated)),
  );
}

async function loadJobs() {
  if (list.pages.length === 0) list.pages.push(firstPage());
  const answer = await call(`AsyncJob?${list.pages[list.pages.length - 1]}`);
  if (answer.status !== 200) return complain(explain(answer, "Listing jobs"));
  const jobs = (answer.body.entry || [])
    .filter((entry) => entry.search && entry.search.mode === "match")
    .map((entry) => entry.resource);
  $("jobs").replaceChildren(...jobs.map(jobRow));
  $("jobs-empty").hidden = jobs.length > 0;
  // The next link's query only: the API may name itself by another host than this page's.
  const next = (answer.body.link || []).find((link) => link.relation === "next");
  list.next = next ? new URL(next.url).search.slice(1) : null;
  $("next-page").disabled = !list.next;
  $("previous-page").disabled = list.pages.length < 2;
  $("first-page").disabled = list.pages.length < 2;
}

function filterJobs(change) {
  Object.assign(list, change, { pages: [] });
  for (const button of $("status-filter").children) {
    button.setAttribute("aria-pressed", String(button.value === list.status));
  }
  return loadJobs();
}

function buildFilters() {
  const choices = [["", "All"], ...STATUSES.map((status) => [status, status])];
  $("status-filter").replaceChildren(...choices.map(([value, label]) =>
    el("button", {
      type: "button", value, text: label, "aria-pressed": String(value === ""),
      onclick: guarded(() => filterJobs({ status: value })),
    })));
  $("type-filter").append(...TYPES.map((type) => el("option", { value: type, text: type })));
  $("type-filter").addEventListener("change", guarded((event) => filterJobs({ type: event.target.value })));
  $("next-page").addEventListener("click", guarded(() => {
    list.pages.push(list.next);
    return loadJobs();
  }));
  $("previous-page").addEventListener("click", guarded(() => {
    list.pages.pop();
    return loadJobs();
  }));
  $("first-page").addEventListener("click", guarded(() => filterJobs({})));
  $("refresh").addEventListener("click", guarded(refresh));
}

// ---------------------------------------------------------------- job details

function field(term, ...description) {
  return [el("dt", { text: term }), el("dd", {}, ...description)];
}

function outcomeList(outcome) {
  return el("ul", { class: "issues" }, ...(outcome.issue || []).map((issue) =>
    el("li", {},
      el("span", { class: `severity ${issue.severity}`, text: issue.severity }), " ",
      el("code", { text: issue.code }), " ",
      el("span", { text: issue.diagnostics || "" }))));
}

function migrationsTable(reports) {
  const headings = ["Version", "Name", "Items scanned", "Items changed", "Items skipped", "Duration"];
  return el("div", { class: "table-scroll" }, el("table", { "aria-label": "Migrations applied" },
    el("thead", {}, el("tr", {}, ...headings.map((text) => el("th", { scope: "col", text })))),
    el("tbody", {}, ...reports.map((report) => el("tr", {},
      el("td", { text: report.version }),
      el("td", { text: report.name }),
      el("td", { text: report.itemsScanned ?? "" }),
      el("td", { text: report.itemsChanged ?? "" }),
      el("td", { text: report.itemsSkipped ?? "" }),
      el("td", { text: report.durationMs === undefined ? "" : duration(report.durationMs) }))))));
}

/// A job's output, part by part: what it reached, each migration applied, where a running
/// job stands, and why a failed one failed.
function outputOf(job) {
  const shown = [];
  const parts = (job.output && job.output.parameter) || [];
  const reports = parts.filter((part) => part.name === "migration").map((part) => partsOf(part.part));
  for (const part of parts) {
    if (part.name === "dataVersion") {
      shown.push(el("p", { text: `Data version reached: ${valueOf(part)}` }));
    } else if (part.name === "progress") {
      const progress = partsOf(part.part);
      shown.push(el("p", { text: `Running migration ${progress.migration} of ${progress.migrations}: ` +
        `${progress.itemsScanned} items scanned, ${progress.itemsPerSecond} items/s` }));
    } else if (part.name === "outcome" && part.resource) {
      shown.push(el("h3", { text: "Why it failed" }), outcomeList(part.resource));
    } else if (part.name !== "migration") {
      shown.push(el("p", { text: `${part.name}: ${JSON.stringify(valueOf(part) ?? part.part ?? part.resource)}` }));
    }
  }
  if (reports.length) shown.push(el("h3", { text: "Migrations applied" }), migrationsTable(reports));
  return shown.length ? [el("h3", { text: "Output" }), ...shown] : [];
}

async function showDetails(id) {
  const answer = await call(`AsyncJob/${encodeURIComponent(id)}`);
  if (answer.status !== 200) return complain(explain(answer, `Reading job ${id}`));
  const job = answer.body;
  $("details-fields").replaceChildren(
    ...field("Job", el("code", { text: job.id })),
    ...field("Status", el("span", { class: `status ${job.status}`, text: job.status })),
    ...field("Type", job.type || ""),
    ...field("Data version", String(job.dataVersion ?? "")),
    ...field("Requested", time(job.requestTime)),
    ...field("Started", job.transactionTime ? time(job.transactionTime) : "not yet"),
    ...field("Last change", time(job.meta.lastUpdated)),
    ...field("Kick-off request", el("code", { text: job.request })),
  );
  $("details-output").replaceChildren(...outputOf(job));
  $("details").hidden = false;
  $("details-heading").focus();
}

// ---------------------------------------------------------------- running jobs

/// The jobs being followed, by id: their card, the ETag last seen, the next poll.
const followed = new Map();
/// Jobs seen to end here: a search may list one as accepted a moment longer (indexes are
/// eventually consistent), and it must not be followed again.
const ended = new Set();

function follow(id, dataVersion) {
  if (followed.has(id) || ended.has(id)) return;
  const bar = el("progress", { max: "1", "aria-label": `Progress of job ${id}` });
  const text = el("p", { class: "progress-text", text: "queued" });
  const cancel = el("button", { type: "button", class: "danger", text: "Cancel job", onclick: () => askToCancel(id) });
  const hold = el("button", { type: "button", text: "Pause job", onclick: guarded(() => pauseOrResume(id)) });
  const heading = el("h3", { text: `Migration to data version ${dataVersion ?? "…"}` });
  const card = el("li", { class: "running-job", "aria-label": `Job ${id}` },
    heading, el("p", {}, el("button", { type: "button", class: "link id", text: id, onclick: guarded(() => showDetails(id)) })),
    bar, text, el("div", { class: "row" }, hold, cancel));
  $("running").append(card);
  $("running-empty").hidden = true;
  const job = { id, card, bar, text, heading, cancel, hold, held: false, etag: null, timer: null, paused: false };
  followed.set(id, job);
  poll(job);
}

/// How far the job is, from its `progress` output: the migrations done and the share of the
/// current one scanned, against the table's estimated size.
function share(progress) {
  if (!progress.migrations) return null;
  const done = Math.max(0, progress.migration - 1);
  const current = progress.itemsEstimated ? Math.min(1, progress.itemsScanned / progress.itemsEstimated) : 0;
  return Math.min(1, (done + current) / progress.migrations);
}

function showProgress(job, body, label) {
  if (body && body.resourceType === "AsyncJob") {
    if (body.dataVersion) job.heading.textContent = `Migration to data version ${body.dataVersion}`;
    const output = (body.output && body.output.parameter) || [];
    job.held = output.some((p) => p.name === "paused");
    job.hold.textContent = job.held ? "Resume job" : "Pause job";
    const part = output.find((p) => p.name === "progress");
    const value = part ? share(partsOf(part.part)) : null;
    if (value === null) job.bar.removeAttribute("value");
    else job.bar.value = value;
  }
  if (label) job.text.textContent = label;
}

function schedule(job, answer) {
  const wait = Number.parseInt(answer.headers.get("Retry-After"), 10);
  const seconds = Number.isFinite(wait) && wait > 0 ? wait : DEFAULT_WAIT_S;
  job.timer = setTimeout(() => poll(job), seconds * 1000);
}

/// Polls the job's status URL as often as its Retry-After asks, sending the ETag it holds;
/// a hidden tab does not poll (it resumes when shown).
const poll = guarded(async (job) => {
  job.timer = null;
  if (document.hidden) {
    job.paused = true;
    return;
  }
  const answer = await call(`job/${encodeURIComponent(job.id)}/status`,
    { headers: job.etag ? { "If-None-Match": job.etag } : {} });
  switch (answer.status) {
    case 202:
      job.etag = answer.headers.get("ETag");
      showProgress(job, answer.body, answer.headers.get("X-Progress"));
      return schedule(job, answer);
    case 304:
      showProgress(job, null, answer.headers.get("X-Progress"));
      return schedule(job, answer);
    case 200:
      return finish(job, "completed", `Completed: the data is at version ${answer.body.dataVersion}.`);
    case 404:
      return finish(job, "cancelled", "Cancelled: this job no longer runs.");
    case 500:
      return finish(job, "error", `Failed: ${said(answer.body)}`);
    default:
      complain(explain(answer, `Following job ${job.id}`));
      return schedule(job, answer);
  }
});

/// The job has ended: its card says how, and everything else is read again.
function finish(job, status, text) {
  clearTimeout(job.timer);
  followed.delete(job.id);
  ended.add(job.id);
  job.card.classList.add(status);
  if (status === "completed") job.bar.value = 1;
  job.text.textContent = text;
  job.hold.remove();
  job.cancel.replaceWith(el("button", { type: "button", text: "Dismiss", onclick: () => dismiss(job.card) }));
  return refresh();
}

function dismiss(card) {
  card.remove();
  $("running-empty").hidden = $("running").children.length > 0;
}

async function loadRunning() {
  const answer = await call(`AsyncJob?status=accepted&_count=${PAGE_SIZE}`);
  if (answer.status !== 200) return;
  for (const entry of answer.body.entry || []) {
    if (entry.search && entry.search.mode === "match") follow(entry.resource.id, entry.resource.dataVersion);
  }
}

document.addEventListener("visibilitychange", guarded(() => {
  if (document.hidden) return;
  for (const job of followed.values()) {
    if (job.paused) {
      job.paused = false;
      poll(job);
    }
  }
  return refresh();
}));

// ---------------------------------------------------------------- kick-off and cancel

async function loadMigrations() {
  const answer = await call("$data-migration");
  if (answer.status !== 200) {
    $("data-version").textContent = "Data version: unknown";
    return complain(explain(answer, "Reading the data migrations"));
  }
  const parts = answer.body.parameter || [];
  const found = partsOf(parts);
  $("data-version").textContent = `Data version: ${found.dataVersion} (newest: ${found.newestVersion})`;
  const migrations = parts.filter((part) => part.name === "migration").map((part) => partsOf(part.part));
  $("migrations").replaceChildren(...migrations.map((migration) => el("tr", {},
    el("td", { text: migration.version }), el("td", {}, el("code", { text: migration.name })),
    el("td", { text: migration.description }))));
  const chosen = $("version").value || String(found.newestVersion);
  $("version").replaceChildren(...migrations.map((migration) => el("option", {
    value: migration.version, text: `${migration.version}: ${migration.name}`,
    selected: String(migration.version) === chosen,
  })));
  const running = parts.find((part) => part.name === "running");
  if (running) {
    const job = partsOf(running.part);
    follow(job.job, job.dataVersion);
  }
}

async function kickOff(event) {
  event.preventDefault();
  const version = $("version").value;
  const button = event.submitter || $("kickoff-form").querySelector("button");
  button.disabled = true;
  try {
    const answer = await call(`$data-migration?dataVersion=${encodeURIComponent(version)}`,
      { method: "POST", headers: { Prefer: "respond-async" } });
    if (answer.status === 202) {
      const id = jobIdIn(answer.headers.get("Content-Location"));
      const repeat = ((answer.body && answer.body.issue) || []).slice(1).map((issue) => issue.diagnostics);
      notify(repeat.length
        ? `Nothing new was started: ${repeat.join("; ")}. Its progress is shown under “Running” while it runs.`
        : `Kicked off the migration to data version ${version}: job ${id}.`);
      if (id) follow(id, Number(version));
      await refresh();
    } else if (answer.status === 429) {
      const wait = answer.headers.get("Retry-After");
      complain(`Not started: ${said(answer.body)}. A migration to another version can start ` +
        `once that one has finished or been cancelled${wait ? ` (try again in about ${wait} s)` : ""}.`);
    } else {
      complain(explain(answer, `Kicking off the migration to version ${version}`));
    }
  } finally {
    button.disabled = false;
  }
}

let cancelling = null;

function askToCancel(id) {
  cancelling = id;
  $("confirm-text").textContent = `Job ${id} stops at its next checkpoint for good (to hold it ` +
    "and go on later, pause it instead); kicking off its version again starts a new job.";
  $("confirm-cancel").showModal();
}

async function cancel(id) {
  const answer = await call(`job/${encodeURIComponent(id)}/status`, { method: "DELETE" });
  const job = followed.get(id);
  switch (answer.status) {
    case 202:
      notify(`Job ${id} was cancelled.`);
      return job ? finish(job, "cancelled", "Cancelled from this page.") : refresh();
    case 404:
      notify(`Job ${id} no longer runs: it was cancelled already.`);
      return refresh();
    case 409:
      complain(`Job ${id} could not be cancelled: ${said(answer.body)}.`);
      return refresh();
    default:
      return complain(explain(answer, `Cancelling job ${id}`));
  }
}

/// Pauses a running job, or resumes a paused one; the card shows the job as the answer has
/// it, and the next poll comes within a second (not after a paused job's longer wait).
async function pauseOrResume(id) {
  const job = followed.get(id);
  if (!job) return;
  const operation = job.held ? "resume" : "pause";
  job.hold.disabled = true;
  try {
    const answer = await call(`AsyncJob/${encodeURIComponent(id)}/$${operation}`, { method: "POST" });
    if (answer.status !== 200) {
      return complain(explain(answer, `${operation === "pause" ? "Pausing" : "Resuming"} job ${id}`));
    }
    notify(operation === "pause"
      ? `Job ${id} was paused: it stops at its next checkpoint.`
      : `Job ${id} was resumed.`);
    if (!followed.has(id)) return;
    showProgress(job, answer.body, operation === "pause" ? heldBy(answer.body) : "resumed: it goes on at the next sweep");
    // A poll in flight schedules the next itself; a waiting one comes sooner.
    if (job.timer) {
      clearTimeout(job.timer);
      job.timer = setTimeout(() => poll(job), 1000);
    }
  } finally {
    job.hold.disabled = false;
  }
}

/// `paused by alice since …`, from a paused job's output.
function heldBy(body) {
  const part = ((body.output && body.output.parameter) || []).find((p) => p.name === "paused");
  const pause = part ? partsOf(part.part) : {};
  return `paused by ${pause.by} since ${pause.since}`;
}

// ---------------------------------------------------------------- the token

function showTokenState() {
  $("token-state").textContent = token()
    ? "A token is in use for this tab."
    : "No token: fine on the local stack; in AWS, paste one here.";
}

function setUpToken() {
  takeTokenFromFragment();
  showTokenState();
  $("token-form").addEventListener("submit", guarded((event) => {
    event.preventDefault();
    const typed = $("token").value.trim().replace(/^Bearer\s+/i, "");
    if (typed) sessionStorage.setItem(TOKEN_KEY, typed);
    $("token").value = "";
    showTokenState();
    notify("Token saved for this tab.");
    return refresh();
  }));
  $("forget-token").addEventListener("click", guarded(() => {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenState();
    notify("Token forgotten.");
    return refresh();
  }));
}

// ---------------------------------------------------------------- start

/// Everything read again. The list is asked for first: counting can take the API seconds.
async function refresh() {
  await Promise.all([loadJobs(), loadMigrations(), loadRunning(), loadCounts()]);
}

setUpToken();
buildCounts();
buildFilters();
$("kickoff-form").addEventListener("submit", guarded(kickOff));
$("keep-job").addEventListener("click", () => $("confirm-cancel").close());
$("confirm-cancel-job").addEventListener("click", guarded(() => {
  $("confirm-cancel").close();
  return cancel(cancelling);
}));
$("close-details").addEventListener("click", () => {
  $("details").hidden = true;
});
setInterval(guarded(() => (document.hidden ? null : refresh())), REFRESH_MS);
guarded(refresh)();
