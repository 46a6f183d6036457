// ui-browser.mjs FIXTURE.json: the browser half of t-ui.py. Headless
// Chromium (Debian's) driven by playwright-core loads every page of /ui/
// against the test stack, checks what it shows against the API, clicks the
// buttons and checks their effect through the API, and saves a screenshot
// of every page. Every request of the browser must go to 127.0.0.1.
// Exits 1 on the first failed check, naming it.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const fx = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { chromium } = createRequire(path.join(fx.npm_dir, "node_modules", "_"))("playwright-core");

// --- small helpers -----------------------------------------------------------

class Failed extends Error {}
const check = (cond, msg) => { if (!cond) throw new Failed(msg); };
const step = (s) => console.log(`-- ${s}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Failed(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await sleep(150);
  }
}

async function api(method, p, { base = fx.url, token = null, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}
async function get(p, opts) {
  const r = await api("GET", p, opts);
  check(r.status === 200, `GET ${p}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
const statusOf = async (id) => (await get(`/tasks/${id}`)).status;

// --- the browser ---------------------------------------------------------------

// A fresh profile (Playwright passes it as --user-data-dir).
const profile = fs.mkdtempSync(path.join(fx.shots, "profile-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: fx.chromium,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 860 },
  timezoneId: "Europe/Paris",
});
const requests = [];
const offHost = [];
await context.route("**/*", (route) => {
  const u = new URL(route.request().url());
  if (u.hostname !== "127.0.0.1") { offHost.push(u.href); return route.abort(); }
  requests.push({ at: Date.now(), method: route.request().method(), url: u });
  return route.continue();
});
const page = context.pages()[0] || await context.newPage();
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(e.message));
page.on("dialog", (d) => d.dismiss()); // no native dialogs are expected

const ui = (hash, base = fx.url) => page.goto(`${base}/ui/#${hash}`);
const shot = (name) => page.screenshot({ path: path.join(fx.shots, `${name}.png`) });
const count = (since, pred) => requests.filter((r) => r.at >= since && pred(r)).length;
const rowIds = (table) => page.$$eval(`${table} tbody tr`, (trs) => trs.map((tr) => tr.dataset.key));

async function rowsMatch(table, apiPath, what) {
  const want = (await get(apiPath)).map((t) => t.id || t.batch_id);
  const got = await waitFor(async () => {
    const ids = await rowIds(table);
    return JSON.stringify(ids) === JSON.stringify(want) ? ids : null;
  }, 10000, `${what}: the rows of ${apiPath} (${want.length})`);
  return got;
}

async function confirmDialog(accept) {
  const dlg = page.locator("dialog[open]");
  await dlg.waitFor({ timeout: 5000 });
  if (accept) await dlg.locator("button.danger").click();
  else await page.keyboard.press("Escape");
  await dlg.waitFor({ state: "detached", timeout: 5000 });
}

// --- the pages ------------------------------------------------------------------

async function tasksList() {
  step("tasks list: rows, times and every filter against GET /tasks");
  await ui(`/tasks?kind=${fx.kind}`);
  await rowsMatch("#tasks-table", `/tasks?kind=${fx.kind}`, "kind filter");
  const first = (await get(`/tasks?kind=${fx.kind}`))[0];
  const title = await page.locator("#tasks-table tbody tr").first().locator("time").first().getAttribute("title");
  check(title === `UTC: ${first.created_at}`, `the time's hover should be its UTC value, got ${title}`);
  const badge = await page.locator("#tasks-table tbody tr").first().locator(".status").innerText();
  check(badge.includes(first.status), `the status badge is labeled (${badge} vs ${first.status})`);

  await page.selectOption("select[name=status]", "Waiting");
  await page.click("form.filters button[type=submit]");
  await waitFor(() => page.url().includes("status=Waiting"), 5000, "the status filter in the URL");
  await rowsMatch("#tasks-table", `/tasks?kind=${fx.kind}&status=Waiting`, "status filter");

  const meta = encodeURIComponent(JSON.stringify({ tenant_id: fx.tenant }));
  await page.fill("input[name=metadata]", JSON.stringify({ tenant_id: fx.tenant }));
  await page.selectOption("select[name=status]", "");
  await page.click("form.filters button[type=submit]");
  await rowsMatch("#tasks-table", `/tasks?kind=${fx.kind}&metadata=${meta}`, "metadata filter");
  await shot("tasks-list");

  for (const q of [`name=${encodeURIComponent("pause me")}`, `batch_id=${fx.small_batch}`, `timeout=120&kind=${fx.kind}`]) {
    await ui(`/tasks?${q}`);
    await rowsMatch("#tasks-table", `/tasks?${q}`, q);
  }

  step("tasks list: server paging, one page at a time");
  const since = Date.now();
  await ui(`/tasks?kind=${fx.big_kind}&page_size=20`);
  await rowsMatch("#tasks-table", `/tasks?kind=${fx.big_kind}&page_size=20`, "page 1");
  await page.click("[data-action=next-page]");
  await rowsMatch("#tasks-table", `/tasks?kind=${fx.big_kind}&page=1&page_size=20`, "page 2");
  await page.fill(".pager input.page-input", "40");
  await page.click(".pager form button[type=submit]");
  await rowsMatch("#tasks-table", `/tasks?kind=${fx.big_kind}&page=39&page_size=20`, "page 40");
  const listCalls = requests.filter((r) => r.at >= since && r.url.pathname === "/tasks");
  check(listCalls.every((r) => Number(r.url.searchParams.get("page_size")) <= 100),
    "every list request asks for one page of at most 100");

  step("tasks list: live refresh, one request per 5 s");
  const t0 = Date.now();
  await sleep(11000);
  const n = count(t0, (r) => r.url.pathname === "/tasks");
  check(n >= 1 && n <= 3, `11 s on the list made ${n} requests to /tasks (expected 1 to 3)`);

  step("an API error is shown with its details");
  await ui("/tasks?timeout=abc");
  const err = await get("/tasks?timeout=1").then(() => api("GET", "/tasks?timeout=abc"));
  check(err.status === 400 && err.body.details.length, "GET /tasks?timeout=abc is 400 with details");
  const box = await page.locator(".error").first().innerText({ timeout: 10000 });
  check(box.includes("400") && box.includes(err.body.details[0]), `the error box shows the details: ${box}`);
  await shot("error-details");
}

async function taskPage() {
  const id = fx.small["pause-me"];
  step("task page: every field, dependencies, children, history and blockers");
  await ui(`/tasks/${id}`);
  await page.locator("#task-fields").waitFor({ timeout: 10000 });
  const t = await get(`/tasks/${id}`);
  for (const [k, v] of Object.entries(t)) {
    if (k === "actions" || k === "dependencies") continue;
    const dd = page.locator(`#task-fields dd[data-field="${k}"]`);
    check(await dd.count() === 1, `the field ${k} is shown`);
    const text = await dd.innerText();
    if (v === null) check(text.includes("—"), `${k}: null shows a dash, got ${text}`);
    else if (/_at$|last_updated/.test(k)) check(await dd.locator("time").getAttribute("title") === `UTC: ${v}`, `${k}: time with UTC on hover`);
    else if (typeof v !== "object") check(text.includes(String(v)), `${k}: shows ${v}, got ${text}`);
  }
  for (const k of ["max_retries", "retry_count", "next_retry_at", "expected_count"]) check(k in t, `the API task has ${k}`);
  check(await page.locator(`#task-dependencies a[href="#/tasks/${fx.small.root}"]`).count() === 1, "the parent is a link");
  await page.locator(`#task-children a[href="#/tasks/${fx.small.leaf}"]`).waitFor({ timeout: 10000 });
  const hist = await get(`/tasks/${id}/history?page_size=50`);
  await waitFor(async () => (await page.locator("#task-history tbody tr").count()) === hist.length, 5000,
    `${hist.length} history rows`);
  const blockers = await get(`/tasks/${id}/blockers`);
  check(blockers.blockers.some((b) => b.type === "dependency"), "the API names the dependency blocker");
  check(await page.locator("#task-blockers li[data-type=dependency]").count() >= 1, "the page shows the dependency blocker");
  check(await page.locator("#task-actions tbody tr").count() === t.actions.length, "every action is listed");
  await shot("task");

  step("task page: pause from the keyboard, then resume");
  let reached = false;
  for (let i = 0; i < 80 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement?.dataset?.action === "pause");
  }
  check(reached, "the Pause button is reachable with Tab");
  await page.keyboard.press("Enter");
  await waitFor(async () => (await statusOf(id)) === "Paused", 10000, "the task to be Paused");
  await page.locator("#task-buttons [data-action=resume]:not([disabled])").waitFor({ timeout: 10000 });
  await page.click("#task-buttons [data-action=resume]");
  await waitFor(async () => (await statusOf(id)) === "Waiting", 10000, "the task to be Waiting again");

  step("task page: cancel asks first (Escape keeps the task), then cancels");
  const cid = fx.small["cancel-me"];
  await ui(`/tasks/${cid}`);
  await page.locator("#task-buttons [data-action=cancel]").click();
  await shot("confirm-cancel");
  await confirmDialog(false);
  await sleep(500);
  check(await statusOf(cid) === "Waiting", "a dismissed confirmation changes nothing");
  await page.locator("#task-buttons [data-action=cancel]").click();
  await confirmDialog(true);
  await waitFor(async () => (await statusOf(cid)) === "Canceled", 10000, "the task to be Canceled");
  await waitFor(async () => ["Failure", "Canceled"].includes(await statusOf(fx.small.leaf)), 10000,
    "the leaf (requires cancel-me's success) to end");

  step("task page: retry with downstream re-arms the leaf");
  await page.locator("#task-buttons [data-action=retry]:not([disabled])").waitFor({ timeout: 10000 });
  await page.click("#task-buttons [data-action=retry]");
  await page.check("#retry-downstream");
  await confirmDialog(true);
  await waitFor(async () => (await statusOf(cid)) === "Waiting", 10000, "cancel-me to wait again");
  await waitFor(async () => (await statusOf(fx.small.leaf)) === "Waiting", 10000, "the leaf to be re-armed");
  const events = (await get(`/tasks/${cid}/history?page_size=100`)).map((e) => e.event);
  check(events.includes("rerun"), `the history has the rerun: ${events}`);

  step("task page: an unknown task shows the API's 404");
  await ui("/tasks/00000000-0000-4000-8000-000000000000");
  const box = await page.locator(".error").first().innerText({ timeout: 10000 });
  check(box.includes("404") && box.includes("task not found"), `the 404 is shown: ${box}`);
}

async function batchesList() {
  step("batches list: filters against GET /batches");
  await ui(`/batches?requester=${fx.requester}`);
  await rowsMatch("#batches-table", `/batches?requester=${fx.requester}`, "requester filter");
  await page.fill("input[name=kind]", fx.kind + "-stop");
  await page.click("form.filters button[type=submit]");
  await rowsMatch("#batches-table", `/batches?requester=${fx.requester}&kind=${fx.kind}-stop`, "kind filter");
  await ui(`/batches?requester=${fx.requester}`);
  await rowsMatch("#batches-table", `/batches?requester=${fx.requester}`, "requester filter");
  await shot("batches");
}

async function nodeStatuses() {
  return page.$$eval("svg.dag a.node-link", (as) => Object.fromEntries(as.map((a) => [a.dataset.taskId, a.dataset.status])));
}

async function batchPages() {
  step("batch page: the small batch's DAG shows each task's status");
  await ui(`/batches/${fx.small_batch}`);
  await page.locator("svg.dag").waitFor({ timeout: 15000 });
  const dag = await get(`/batches/${fx.small_batch}/dag`);
  const shown = await waitFor(async () => {
    const s = await nodeStatuses();
    return dag.tasks.every((t) => s[t.id] === t.status) ? s : null;
  }, 10000, "the statuses of the DAG");
  check(Object.keys(shown).length === dag.tasks.length, `one node per task (${Object.keys(shown).length})`);
  check(await page.locator("svg.dag polyline").count() === dag.links.length, "one arrow per link");
  await shot("batch");

  // The draw time is printed, not checked (tests check behaviour; the
  // figure is measured by `make bench`, phase ui).
  step(`batch page: ${fx.big_kind}: 1,000 tasks drawn, every node and arrow`);
  const times = [];
  for (let i = 0; i < 2; i++) {
    await ui("/tasks?page_size=20");
    await page.locator("#tasks-table").waitFor();
    const t0 = Date.now();
    await ui(`/batches/${fx.big_batch}`);
    await waitFor(async () => (await page.locator("#dag-box[data-draw-ms]").count()) === 1, 30000, "the big DAG");
    const wall = Date.now() - t0;
    const drawn = Number(await page.getAttribute("#dag-box", "data-draw-ms"));
    const fetched = await page.getAttribute("#dag-box", "data-fetch-ms");
    const laidOut = await page.getAttribute("#dag-box", "data-layout-ms");
    times.push({ wall, drawn });
    console.log(`big DAG ${i === 0 ? "first" : "second"} load: drawn ${drawn} ms after the page asked for it ` +
      `(API answers ${fetched} ms, layout ${laidOut} ms), ${wall} ms from navigation`);
  }
  check(await page.locator("svg.dag a.node-link").count() === 1000, "1,000 nodes");
  await shot("batch-big");

  step("batch page: live refresh changes a status in place, one request per 5 s");
  await page.evaluate(() => { document.querySelector("svg.dag").dataset.mark = "same"; });
  const since = Date.now();
  const r = await api("PATCH", `/tasks/${fx.big_running}`, { body: { status: "Success" } });
  check(r.status === 200, `PATCH Success: ${r.status}`);
  await waitFor(async () => (await nodeStatuses())[fx.big_running] === "Success", 12000, "the node to show Success");
  check(await page.locator("svg.dag[data-mark=same]").count() === 1, "the drawing was updated, not redrawn");
  await sleep(Math.max(0, 11000 - (Date.now() - since)));
  const n = count(since, (q) => q.url.pathname.startsWith(`/batches/${fx.big_batch}`));
  check(n >= 1 && n <= 3, `11 s on the batch page made ${n} requests (expected 1 to 3)`);

  step("batch page: the table view");
  await ui(`/batches/${fx.big_batch}?view=table`);
  await waitFor(async () => (await page.locator("#batch-table tbody tr").count()) === 200, 10000, "200 rows");
  await shot("batch-table");

  step("batch page: pause and resume as the server allows");
  const probe = await api("GET", `/batches/${fx.small_batch}/pause`);
  await ui(`/batches/${fx.small_batch}`);
  await page.locator("#batch-buttons").waitFor();
  const pauseDisabled = await page.locator("#batch-buttons [data-action=pause]").isDisabled();
  if (probe.status === 404) {
    check(pauseDisabled, "batch pause is disabled when the server lacks it");
    check((await page.locator("#batch-buttons").innerText()).includes("not available on this server"), "and says so");
  } else {
    check(!pauseDisabled, `the server has batch pause (GET answered ${probe.status}): the button works`);
    check(await page.locator("#batch-buttons [data-action=resume]").isDisabled(), "a running batch: Resume disabled");
    await page.click("#batch-buttons [data-action=pause]");
    await waitFor(async () => (await get(`/batches/${fx.small_batch}`)).paused === true, 10000, "the batch to be paused");
    await page.locator("#batch-buttons [data-action=pause][disabled]").waitFor({ timeout: 5000 });
    await page.click("#batch-buttons [data-action=resume]");
    await waitFor(async () => (await get(`/batches/${fx.small_batch}`)).paused === false, 10000, "the batch to be resumed");
  }

  step("batch page: stop, confirmed, cancels every task that had not ended");
  await ui(`/batches/${fx.stop_batch}`);
  await page.locator("svg.dag").waitFor({ timeout: 15000 });
  await page.click("#batch-buttons [data-action=stop]");
  await confirmDialog(true);
  await waitFor(async () => Object.values(fx.stop).every((id) => id) &&
    (await Promise.all(Object.values(fx.stop).map(statusOf))).every((s) => s === "Canceled"), 10000, "every task Canceled");
  await waitFor(async () => Object.values(await nodeStatuses()).every((s) => s === "Canceled"), 12000, "the drawing to show it");
}

async function deleteRestore() {
  const id = fx.stop.b;
  step("task page: delete an ended task (confirmed; Escape keeps it), then restore it");
  await waitFor(async () => (await statusOf(id)) === "Canceled", 10000, "the stopped task to be Canceled");
  await ui(`/tasks/${id}`);
  await page.locator("#task-buttons [data-action=delete]:not([disabled])").waitFor({ timeout: 10000 });
  await page.click("#task-buttons [data-action=delete]");
  await confirmDialog(false);
  await sleep(300);
  check((await get(`/tasks/${id}`)).deleted_at === null, "a dismissed confirmation deletes nothing");
  await page.click("#task-buttons [data-action=delete]");
  await shot("confirm-delete");
  await confirmDialog(true);
  await waitFor(async () => (await get(`/tasks/${id}`)).deleted_at !== null, 10000, "the task to be deleted");
  await page.locator("#task-buttons [data-action=restore]").waitFor({ timeout: 10000 });
  await page.click("#task-buttons [data-action=restore]");
  await confirmDialog(true);
  await waitFor(async () => (await get(`/tasks/${id}`)).deleted_at === null, 10000, "the task to be restored");
}

async function templatePages() {
  for (const [id, p, body, change, changed] of [
    ["rules", "/rules", { type: "Concurrency", max_concurrency: 2, matcher: { kind: fx.kind, status: "Running", fields: [] } },
      (v) => { v.max_concurrency = 5; }, (t) => t.max_concurrency === 5],
    ["action-templates", "/action-templates", { kind: "Webhook", params: { url: "http://127.0.0.1:9/ui", verb: "Post" } },
      (v) => { v.params.verb = "Put"; }, (t) => t.params.verb === "Put"]]) {
    const name = `${fx.kind}-${id}`;
    step(`${p}: one made through the API is listed; Edit changes it (PUT), Delete (confirmed) removes it`);
    const put = await api("PUT", `${p}/${name}`, { body });
    check(put.status === 201, `PUT ${p}/${name}: ${put.status} ${JSON.stringify(put.body)}`);
    await ui(p);
    const row = page.locator(`#${id}-table tr[data-key="${name}"]`);
    await row.waitFor({ timeout: 10000 });
    await row.locator("[data-action=edit]").click();
    const area = page.locator("dialog[open] textarea");
    const v = JSON.parse(await area.inputValue());
    check(!("name" in v) && !("tasks_using" in v), `the editor holds the body only: ${JSON.stringify(v)}`);
    change(v);
    await area.fill(JSON.stringify(v));
    await page.locator("dialog[open] button", { hasText: "Save" }).click();
    await waitFor(async () => changed(await get(`${p}/${name}`)), 10000, `${name} edited`);
    await shot(`${id}-edited`);
    await row.locator("[data-action=delete]").click();
    await confirmDialog(true);
    await waitFor(async () => (await api("GET", `${p}/${name}`)).status === 404, 10000, `${name} deleted`);
  }
}

async function deadLetters() {
  step("dead letters: the entry is listed; replay, confirmed, queues it again");
  await ui("/dead-letters");
  const row = page.locator(`#dead-letters-table [data-action=replay][data-id="${fx.dead_letter}"]`);
  await row.waitFor({ timeout: 10000 });
  await shot("dead-letters");
  await row.click();
  await confirmDialog(true);
  await waitFor(async () => !(await get("/dead-letters?page_size=100")).some((d) => d.id === fx.dead_letter),
    20000, "the replayed entry to leave the list");
}

async function schedulesPage() {
  const name = fx.schedule;
  const path = `/schedules/${encodeURIComponent(name)}`;
  const row = () => page.locator(`#schedules-table tbody tr[data-key="${name}"]`);
  const button = (action) => row().locator(`[data-action=${action}]`);

  step("schedules: the row shows the schedule's next fire times in the browser's zone");
  await ui("/schedules?page_size=200");
  await row().waitFor({ timeout: 10000 });
  const s = await get(path);
  const hovers = await row().locator("li time").evaluateAll((ts) => ts.map((t) => t.getAttribute("title")));
  check(JSON.stringify(hovers) === JSON.stringify(s.next_fire_times.slice(0, 3).map((t) => `UTC: ${t}`)),
    `the first three next fire times, UTC on hover: ${hovers} vs ${s.next_fire_times}`);
  check((await row().innerText()).includes("Asia/Tokyo"), "the time zone is shown");
  await shot("schedules");

  step("schedules: pause and resume, checked through the API (only the one that applies is enabled)");
  check(await button("resume").isDisabled() && !(await button("pause").isDisabled()),
    "a running schedule: Pause enabled, Resume disabled");
  await button("pause").click();
  await waitFor(async () => (await get(path)).paused === true, 10000, "the schedule to be paused");
  await waitFor(async () => (await row().innerText()).includes("paused"), 8000, "the row to say paused");
  check(await button("pause").isDisabled(), "a paused schedule: Pause disabled");
  await button("resume").click();
  await waitFor(async () => (await get(path)).paused === false, 10000, "the schedule to be resumed");

  step("schedules: trigger now, confirmed, makes a batch of the schedule");
  await button("trigger").click();
  await confirmDialog(true);
  const fired = await waitFor(async () => (await get(path)).last_batch_id, 10000, "the triggered batch");
  const batch = await get(`/batches/${fired}`);
  check(batch.total === 1 && batch.schedule_id === s.id, `a batch of the schedule with its one task: ${JSON.stringify(batch).slice(0, 300)}`);
  await waitFor(async () => (await row().locator(`a[href*="${fired}"]`).count()) === 1, 8000,
    "the row to link the last batch");

  step("schedules: edit the cron in the JSON editor");
  await button("edit").click();
  const editor = page.locator("dialog[open] textarea");
  await editor.waitFor({ timeout: 5000 });
  const body = JSON.parse(await editor.inputValue());
  check(body.cron === "0 3 * * *" && !("name" in body), `the editor holds the editable fields: ${JSON.stringify(body).slice(0, 200)}`);
  body.cron = "30 4 * * 1-5";
  await editor.fill(JSON.stringify(body));
  await page.locator("dialog[open] button", { hasText: "Save" }).click();
  await waitFor(async () => (await get(path)).cron === "30 4 * * 1-5", 10000, "the new cron");

  step("schedules: create one from JSON, then delete it, confirmed");
  const created = `${name}-new`;
  await page.click("[data-action=create]");
  await editor.waitFor({ timeout: 5000 });
  const template = JSON.parse(await editor.inputValue());
  check(template.cron && Array.isArray(template.tasks), "the create editor starts from a template");
  template.name = created;
  template.paused = true;
  template.tasks[0].on_start.params.url = fx.hold_url;
  await editor.fill(JSON.stringify(template));
  await page.locator("dialog[open] button", { hasText: "Save" }).click();
  const made = await waitFor(async () => {
    const r = await api("GET", `/schedules/${encodeURIComponent(created)}`);
    return r.status === 200 ? r.body : null;
  }, 10000, "the created schedule");
  check(made.paused === true && made.cron === template.cron, `created as written: ${JSON.stringify(made).slice(0, 200)}`);
  const newRow = page.locator(`#schedules-table tbody tr[data-key="${created}"]`);
  await newRow.waitFor({ timeout: 10000 });
  await newRow.locator("[data-action=delete]").click();
  await confirmDialog(true);
  await waitFor(async () => (await api("GET", `/schedules/${encodeURIComponent(created)}`)).status === 404,
    10000, "the deleted schedule to be gone");
  await newRow.waitFor({ state: "detached", timeout: 10000 });
}

async function optionalPages() {
  for (const [id, p] of [["groups", "/groups"], ["rules", "/rules"], ["action-templates", "/action-templates"]]) {
    step(`${p}: a page either way (the server has it or says 404)`);
    const probe = await api("GET", `${p}?page_size=1`);
    await ui(p);
    if (probe.status === 404) {
      const text = await page.locator("#not-available").innerText({ timeout: 10000 });
      check(text.includes("not available on this server"), `${p}: says it is not available: ${text}`);
      await waitFor(async () => (await page.locator(`#nav a[data-page=${id}].unavailable`).count()) === 1, 5000,
        `the ${id} navigation entry marked n/a`);
    } else {
      await page.locator(`#${id}-table`).waitFor({ timeout: 10000 });
    }
    await shot(id);
  }
}

async function groupsPage() {
  const g = fx.group;
  const gp = `/groups/${encodeURIComponent(g)}`;
  step(`groups: "${g}" listed with its counts; pause, resume, cancel (confirmed)`);
  await ui("/groups");
  const row = page.locator(`#groups-table tbody tr[data-key="${g}"]`);
  await row.waitFor({ timeout: 10000 });
  const want = await get(gp);
  const text = await row.innerText();
  check(text.includes(String(want.total)), `the group's row shows its total ${want.total}: ${text}`);
  check(await row.locator("[data-action=resume]").isDisabled(), "a running group: Resume disabled");
  await row.locator("[data-action=pause]").click();
  await waitFor(async () => (await get(gp)).paused === true, 10000, "the group to be paused");
  await waitFor(async () => (await row.innerText()).includes("paused"), 10000, "the row to say paused");
  await shot("groups-paused");
  check(await row.locator("[data-action=pause]").isDisabled(), "a paused group: Pause disabled");
  await row.locator("[data-action=resume]").click();
  await waitFor(async () => (await get(gp)).paused === false, 10000, "the group to be resumed");
  await row.locator("[data-action=cancel]").click();
  await confirmDialog(true);
  await waitFor(async () => {
    const st = await Promise.all(fx.group_tasks.map(async (id) => (await get(`/tasks/${id}`)).status));
    return st.every((s) => s === "Canceled");
  }, 10000, "every task of the group to be Canceled");
  const after = await get(gp);
  check(after.by_status.Canceled === fx.group_tasks.length, `the group after cancel: ${JSON.stringify(after)}`);
}

async function tokens() {
  step("API tokens on: asks for a token on 401, keeps it in sessionStorage, shows 403");
  await ui("/tasks?page_size=20", fx.side_url);
  const reason = await page.locator(".token-reason").innerText({ timeout: 10000 });
  check(reason.includes("401"), `the token prompt says 401: ${reason}`);
  const box = await page.locator("main .error").first().innerText();
  check(box.includes("401"), `the list shows the 401: ${box}`);
  await shot("auth-401");
  await page.fill("#token-input", fx.read_token);
  await page.click(".token-form button[type=submit]");
  await rowsMatch("#tasks-table", "/tasks?page_size=20", "with the read token");
  check(await page.evaluate(() => sessionStorage.getItem("taskrunner.apiToken")) === fx.read_token, "kept in sessionStorage");
  await ui(`/tasks/${fx.auth_task}`, fx.side_url);
  await page.locator("#task-buttons [data-action=pause]:not([disabled])").waitFor({ timeout: 10000 });
  await page.click("#task-buttons [data-action=pause]");
  const forbidden = await page.locator(".action-result .error").innerText({ timeout: 10000 });
  check(forbidden.includes("403"), `a read token's pause shows 403: ${forbidden}`);
  check(await statusOf(fx.auth_task) === "Waiting", "nothing changed");
  await shot("auth-403");
  await page.click("#token-toggle");
  await page.fill("#token-input", fx.write_token);
  await page.click(".token-form button[type=submit]");
  await page.locator("#task-buttons [data-action=pause]:not([disabled])").waitFor({ timeout: 10000 });
  await page.click("#task-buttons [data-action=pause]");
  await waitFor(async () => (await statusOf(fx.auth_task)) === "Paused", 10000, "the write token's pause");
}

// --- run -----------------------------------------------------------------------

let code = 0;
try {
  await tasksList();
  await taskPage();
  await batchesList();
  await batchPages();
  await deleteRestore();
  await deadLetters();
  await schedulesPage();
  await optionalPages();
  await groupsPage();
  await templatePages();
  await tokens();
  check(offHost.length === 0, `requests left this host: ${offHost.slice(0, 5)}`);
  check(pageErrors.length === 0, `errors in the page: ${pageErrors.slice(0, 5)}`);
  console.log(`ui-browser: every check passed; screenshots in ${fx.shots}`);
} catch (e) {
  code = 1;
  console.error(`FAIL: ui-browser: ${e instanceof Failed ? e.message : e.stack}`);
  await page.screenshot({ path: path.join(fx.shots, "failure.png") }).catch(() => {});
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
