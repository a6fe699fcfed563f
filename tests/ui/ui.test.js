"use strict";
// The web UI in a real browser: Debian's chromium driven by playwright-core.
//
// Starts `splat serve` on a free port with a fresh data dir, sends real errors from the Python and Node
// SDK clients of tests/sdk, then loads the issues list, opens an issue, resolves it, checks it moved to the
// Resolved tab, sends the same error again and sees the issue reopened as regressed, opens an event page, watches a new error arrive without a reload, and switches the theme;
// then sends transactions, finds the slowest endpoint on the Performance page, opens it and one of its
// requests, and checks the span waterfall and the N+1 worklist; finally checks in two cron jobs over HTTP and
// finds them on the Monitors page; last, manages keys on the settings page (add, disable, rotate).
// Screenshots of every page type, light and dark, go to tests/output/screenshots/.
//
// Run: SPLAT_BIN=<path to splat> node --test tests/ui/ui.test.js

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn, execFile } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const ROOT = path.resolve(__dirname, "..", "..");
const SPLAT_BIN = process.env.SPLAT_BIN || path.join(os.homedir(), ".cache/splat-target/debug/splat");
const CACHE = process.env.SPLAT_CACHE_DIR || path.join(os.homedir(), ".cache/splat");
const PYTHON = process.env.SPLAT_PYTHON || path.join(CACHE, "venv/bin/python");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const SHOTS = path.join(ROOT, "tests/output/screenshots");
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

let workdir;
let server;
let serverLog = "";
let base;
let dsn;
let context;
let page;
const browserErrors = [];

function run(file, args, options = {}) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 60_000, ...options }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function startSplat() {
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "splat-ui-"));
  server = spawn(SPLAT_BIN, ["serve", "--bind", "127.0.0.1:0", "--data-dir", path.join(workdir, "data")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout.on("data", (chunk) => { serverLog += chunk; });
  server.stderr.on("data", (chunk) => { serverLog += chunk; });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const match = /^DSN: (\S+)$/m.exec(serverLog);
    if (match) {
      dsn = match[1];
      const url = new URL(dsn);
      base = `${url.protocol}//${url.host}`;
      return;
    }
    if (server.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`splat serve printed no DSN line:\n${serverLog}`);
}

/// Polls until `check` returns a truthy value; the processor commits a moment after the SDK's 200.
async function eventually(what, check, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}\n--- splat log (tail) ---\n${serverLog.slice(-3000)}`);
}

async function sendPythonErrors() {
  await run(PYTHON, [path.join(ROOT, "tests/sdk/python_client.py"), dsn, "error", "message"]);
}

async function sendNodeError(scenario) {
  await run("node", ["client.js", dsn, scenario], { cwd: path.join(ROOT, "tests/sdk/node") });
}

/// A hand-made event with everything the event page has a section for (the SDK clients above send the
/// real thing, but without breadcrumbs, a request or a user), posted as an envelope like an SDK would.
const RICH_EVENT_ID = "0123456789abcdef0123456789abcdef";
async function sendRichEvent() {
  const url = new URL(dsn);
  const project = url.pathname.replace(/\//g, "");
  const event = {
    event_id: RICH_EVENT_ID, platform: "python", level: "error", timestamp: Date.now() / 1000,
    release: "shop@2.0.0", environment: "production", server_name: "web-1", transaction: "/checkout",
    exception: { values: [{ type: "CheckoutError", value: "cart 7 has no price", module: "shop.errors",
      mechanism: { type: "django", handled: false },
      stacktrace: { frames: [
        { filename: "django/core/handlers.py", function: "get_response", lineno: 47, in_app: false,
          context_line: "response = wrapped(request)" },
        { filename: "shop/views.py", function: "checkout", lineno: 88, in_app: true,
          pre_context: ["def checkout(request):", "    cart = load_cart(request)"],
          context_line: "    total = price(cart['sku'])", post_context: ["    return render(total)"],
          vars: { cart: { id: 7, items: 3 }, request: "<WSGIRequest: POST '/checkout'>" } },
      ] } }] },
    breadcrumbs: { values: [
      { timestamp: Date.now() / 1000 - 2, category: "query", message: "SELECT * FROM carts WHERE id = 7" },
      { timestamp: Date.now() / 1000 - 1, category: "http", level: "warning", data: { url: "/api/price", status_code: 502 } },
    ] },
    request: { url: "https://shop.example/checkout", method: "POST", query_string: "coupon=SPRING",
      headers: { "User-Agent": "Mozilla/5.0", Accept: "text/html" } },
    user: { id: "42", email: "ada@example.com" },
    tags: { browser: "Firefox 130", region: "eu-west-1" },
    contexts: { os: { name: "Linux", version: "6.1" }, runtime: { name: "CPython", version: "3.12.1" } },
    sdk: { name: "sentry.python.django", version: "2.19.0" },
  };
  const payload = JSON.stringify(event);
  const body = `{"event_id":"${RICH_EVENT_ID}"}\n{"type":"event","length":${Buffer.byteLength(payload)}}\n${payload}\n`;
  const response = await fetch(`${base}/api/${project}/envelope/?sentry_key=${url.username}&sentry_version=7`, {
    method: "POST", body,
  });
  assert.equal(response.status, 200, await response.text());
}

async function issueCount() {
  const html = await (await fetch(`${base}/projects/default/issues?status=all`)).text();
  return (html.match(/class="issue-row /g) || []).length;
}

async function shoot(name) {
  await page.emulateMedia({ colorScheme: "light" });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  await page.emulateMedia({ colorScheme: "dark" });
  await page.screenshot({ path: path.join(SHOTS, `${name}-dark.png`), fullPage: true });
  await page.emulateMedia({ colorScheme: "light" });
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  await startSplat();
  await sendPythonErrors();
  await sendNodeError("error");
  await eventually("three issues", async () => (await issueCount()) >= 3);
  context = await chromium.launchPersistentContext(path.join(workdir, "chromium-profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 900 },
    colorScheme: "light",
  });
  page = context.pages()[0] || (await context.newPage());
  // A CSP violation or a script error shows up here; the pages must have none.
  page.on("console", (msg) => { if (msg.type() === "error") browserErrors.push(msg.text()); });
  page.on("pageerror", (err) => browserErrors.push(String(err)));
});

after(async () => {
  if (context) await context.close();
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
  }
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

test("the projects list and dashboard show the project, its DSN and its errors", async () => {
  await page.goto(`${base}/`);
  await assert.doesNotReject(page.getByRole("link", { name: "default" }).first().waitFor());
  const dsnValue = await page.locator(".dsn input").first().inputValue();
  assert.equal(dsnValue, dsn);
  // The copy button is an enhancement: hidden without JavaScript, shown with it.
  assert.ok(await page.locator("button.copy").first().isVisible());
  await shoot("projects");

  await page.getByRole("link", { name: "default" }).first().click();
  await page.waitForURL(`${base}/projects/default`);
  assert.match(await page.locator(".stat").first().innerText(), /Open issues\s*3/i);
  assert.ok(await page.locator("svg.spark.large rect.bar").count() >= 1, "the 24 h sparkline has a bar");
  assert.match(await page.locator("[data-queue-pill]").innerText(), /Queue\s*\d+/);
  await shoot("dashboard");

  await page.getByRole("link", { name: "Settings" }).click();
  await page.waitForURL(`${base}/projects/default/settings`);
  assert.equal(await page.locator("input[name=name]").inputValue(), "default");
  await shoot("settings");
});

test("an issue is opened from the list, resolved, and moves to the Resolved tab", async () => {
  await page.goto(`${base}/projects/default/issues`);
  const openTab = page.locator(".tabs a[aria-current=page]");
  assert.match(await openTab.innerText(), /Open\s*3/);
  assert.equal(await page.locator(".issue-row").count(), 3);
  await shoot("issues-list");

  await page.getByRole("link", { name: /ZeroDivisionError/ }).click();
  await page.waitForURL(/\/projects\/default\/issues\/\d+$/);
  const issueUrl = page.url();
  assert.match(await page.locator("h1").innerText(), /ZeroDivisionError: division by zero/);
  // The latest event's stack trace: innermost first, the in-app frame open with its source line.
  const firstFrame = page.locator("ol.frames > li").first();
  assert.match(await firstFrame.getAttribute("class"), /in-app/);
  assert.match(await firstFrame.locator("li.current code").innerText(), /1 \/ 0/);
  assert.ok(await page.locator(".tag-group").count() >= 2, "tag distribution");
  await shoot("issue");

  await page.locator(".page-head .actions button", { hasText: /^Resolve$/ }).click();
  await page.waitForURL(issueUrl);
  assert.equal(await page.locator(".page-head .badge.status").innerText(), "Resolved");
  assert.ok(await page.locator(".page-head .actions button", { hasText: "Reopen" }).isVisible());

  await page.goto(`${base}/projects/default/issues`);
  assert.match(await page.locator(".tabs a[aria-current=page]").innerText(), /Open\s*2/);
  assert.equal(await page.getByRole("link", { name: /ZeroDivisionError/ }).count(), 0);
  await page.locator(".tabs a", { hasText: "Resolved" }).click();
  await page.waitForURL(/status=resolved/);
  assert.match(await page.locator(".tabs a[aria-current=page]").innerText(), /Resolved\s*1/);
  assert.equal(await page.getByRole("link", { name: /ZeroDivisionError/ }).count(), 1);
  await shoot("issues-resolved");
});

test("the resolved issue happens again and is back under Open, marked regressed", async () => {
  await run(PYTHON, [path.join(ROOT, "tests/sdk/python_client.py"), dsn, "error"]);
  await eventually("the ZeroDivisionError back under Open", async () => {
    await page.goto(`${base}/projects/default/issues`);
    return (await page.getByRole("link", { name: /ZeroDivisionError/ }).count()) === 1;
  });
  await page.getByRole("link", { name: /ZeroDivisionError/ }).click();
  await page.waitForURL(/\/projects\/default\/issues\/\d+$/);
  assert.equal(await page.locator(".page-head .badge.status").getAttribute("data-status"), "open");
  assert.ok(await page.locator(".page-head .badge.bad", { hasText: "regressed" }).isVisible());
  await shoot("issue-regressed");
});

test("an event page shows the exception, stack trace, context and raw JSON", async () => {
  await page.goto(`${base}/projects/default/issues?status=all`);
  await page.getByRole("link", { name: /node sdk boom/ }).click();
  await page.waitForURL(/\/issues\/\d+$/);
  await page.locator(".shown-event a.mono").first().click();
  await page.waitForURL(/\/projects\/default\/events\/[0-9a-f]{32}$/);
  assert.match(await page.locator("h1").innerText(), /node sdk boom/);
  assert.ok(await page.locator("ol.frames > li").count() >= 1);
  for (const heading of ["Exception", "Raw JSON", "SDK"]) {
    assert.ok(await page.getByRole("heading", { name: heading }).count() >= 1, `section ${heading}`);
  }
  assert.match(await page.locator(".facts-list").innerText(), /sdk-test/);
  await shoot("event");
});

test("an event with breadcrumbs, a request, a user and tags shows each of them", async () => {
  await sendRichEvent();
  const eventUrl = `${base}/projects/default/events/${RICH_EVENT_ID}`;
  await eventually("the rich event", async () => (await fetch(eventUrl)).status === 200);
  await page.goto(eventUrl);
  for (const heading of ["Breadcrumbs", "Request", "User", "Tags", "Contexts"]) {
    assert.ok(await page.getByRole("heading", { name: heading }).count() >= 1, `section ${heading}`);
  }
  assert.match(await page.locator(".breadcrumbs").innerText(), /SELECT \* FROM carts/);
  assert.match(await page.locator(".request-line").innerText(), /POST\s+https:\/\/shop\.example\/checkout/);
  assert.match(await page.locator("table.vars").first().innerText(), /cart\s+\{"id":7,"items":3\}/);
  await shoot("event-rich");
  // Its issue page, with a tag distribution and the deploy marker of release shop@2.0.0.
  await page.getByRole("link", { name: "View issue" }).click();
  await page.waitForURL(/\/issues\/\d+$/);
  assert.ok(await page.locator("svg.spark line.deploy").count() >= 1, "a deploy marker");
  await shoot("issue-rich");
  // Back to the open list for the next test: the live check counts rows from here.
  await page.goto(`${base}/projects/default/issues`);
});

test("a new error appears in the open list without a reload", async () => {
  await page.goto(`${base}/projects/default/issues`);
  const before = await page.locator(".issue-row").count();
  await page.evaluate(() => { window.__notReloaded = true; });
  await sendNodeError("large");
  await page.getByRole("link", { name: /node sdk large/ }).waitFor({ timeout: 30_000 });
  assert.equal(await page.locator(".issue-row").count(), before + 1);
  assert.equal(await page.evaluate(() => window.__notReloaded), true, "the page was updated in place");
});

test("the theme toggle switches light and dark without a reload", async () => {
  await page.goto(`${base}/projects/default`);
  const theme = () => page.evaluate(() => document.documentElement.dataset.theme);
  assert.equal(await theme(), "auto");
  await page.locator("[data-theme-toggle]").click();
  assert.equal(await theme(), "light");
  await page.locator("[data-theme-toggle]").click();
  assert.equal(await theme(), "dark");
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, "rgb(15, 17, 21)");
  // The server renders the chosen theme on the next load (the cookie), so there is no flash.
  await page.reload();
  assert.equal(await theme(), "dark");
  await page.locator("[data-theme-toggle]").click();
  assert.equal(await theme(), "auto");
});

/// A hand-made transaction of `ms` milliseconds with a small span tree (db, http, a nested render),
/// posted as an envelope like the Python SDK sends it.
async function sendTransaction(n, name, ms) {
  const url = new URL(dsn);
  const project = url.pathname.replace(/\//g, "");
  const eventId = n.toString(16).padStart(32, "0");
  const root = n.toString(16).padStart(16, "0");
  const trace = `${"ab".repeat(8)}${root}`;
  const start = Date.now() / 1000 - 60 - (n % 256);
  const span = (id, parent, op, description, from, to) => ({
    span_id: id, parent_span_id: parent, trace_id: trace, op, description,
    start_timestamp: start + from / 1000, timestamp: start + to / 1000,
  });
  const tx = {
    type: "transaction", transaction: name, platform: "python", environment: "production", release: "shop@2.0.0",
    start_timestamp: start, timestamp: start + ms / 1000, server_name: "web-1",
    request: { method: "GET", url: `https://shop.example${name.split(" ")[1] || "/"}` },
    contexts: { trace: { trace_id: trace, span_id: root, op: "http.server" }, response: { status_code: ms > 1000 ? 500 : 200 } },
    spans: [
      span("e000000000000001", root, "db", "SELECT * FROM reports WHERE id = 7", ms * 0.05, ms * 0.3),
      span("e000000000000002", root, "http.client", "GET https://api.example/rates", ms * 0.35, ms * 0.7),
      span("e000000000000003", "e000000000000002", "template.render", "report.html", ms * 0.4, ms * 0.6),
    ],
  };
  const payload = JSON.stringify(tx);
  const body = `{"event_id":"${eventId}"}\n{"type":"transaction","length":${Buffer.byteLength(payload)}}\n${payload}\n`;
  const response = await fetch(`${base}/api/${project}/envelope/?sentry_key=${url.username}&sentry_version=7`, {
    method: "POST", body,
  });
  assert.equal(response.status, 200, await response.text());
}

test("performance: the slowest endpoint is found, opened, and one of its requests shows its waterfall", async () => {
  // A real Python SDK transaction (with an N+1), plus a slow and a fast endpoint.
  await run(PYTHON, [path.join(ROOT, "tests/sdk/python_client.py"), dsn, "transaction"]);
  for (let n = 1; n <= 3; n++) await sendTransaction(0x7000 + n, "GET /reports/export", 1200 + n * 100);
  for (let n = 1; n <= 5; n++) await sendTransaction(0x7100 + n, "GET /health-check", 15 + n);
  await eventually("three endpoints on the performance page", async () => {
    const html = await (await fetch(`${base}/projects/default/performance`)).text();
    return (html.match(/class="endpoint-row"/g) || []).length >= 3;
  });

  await page.goto(`${base}/projects/default`);
  assert.ok(await page.locator("#top-endpoints .endpoint-row").count() >= 3, "the dashboard's top endpoints");
  assert.match(await page.locator("#error-rate").innerText(), /%/);
  await shoot("dashboard-performance");
  await page.locator("nav.pills a", { hasText: "Performance" }).click();
  await page.waitForURL(`${base}/projects/default/performance`);
  assert.equal(await page.locator("nav.pills a[aria-current=page]").innerText(), "Performance");
  assert.match(await page.locator(".perf-cards").innerText(), /P95/);
  assert.ok(await page.locator(".endpoint-row svg.spark.trend").count() >= 3, "p95 trend sparklines");
  assert.ok(await page.locator(".badge.n1").count() >= 1, "the SDK transaction's N+1 badge");
  await shoot("performance");

  // The slowest endpoint by p95, clicked by name.
  const rows = await page.locator("#top-endpoints .endpoint-row").evaluateAll((trs) =>
    trs.map((tr) => ({ name: tr.dataset.endpoint, p95: Number(tr.dataset.p95Ms) })));
  const slowest = rows.reduce((a, b) => (b.p95 > a.p95 ? b : a));
  assert.equal(slowest.name, "GET /reports/export");
  await page.locator("#top-endpoints .endpoint-row a", { hasText: slowest.name }).click();
  await page.waitForURL(/\/performance\/endpoint\?name=/);
  assert.equal(await page.locator("h1").innerText(), "GET /reports/export");
  assert.ok(await page.locator("svg.series polyline.p95").count() >= 1, "the latency chart");
  assert.equal(await page.locator(".transaction-row").count(), 3);
  await shoot("performance-endpoint");

  await page.locator(".small-tabs a", { hasText: "Slowest" }).click();
  await page.waitForURL(/sort=slowest/);
  assert.match(await page.locator(".transaction-row .dur").first().innerText(), /1\.50 s/);
  await page.locator(".transaction-row a.mono").first().click();
  await page.waitForURL(/\/projects\/default\/transactions\/\d+$/);
  assert.match(await page.locator("h1").innerText(), /GET \/reports\/export/);
  const spans = page.locator("#waterfall .span-row");
  assert.equal(await spans.count(), 4, "the root and its three spans");
  assert.deepEqual(await spans.evaluateAll((trs) => trs.map((tr) => tr.dataset.depth)), ["0", "1", "1", "2"]);
  const bar = await page.locator("#waterfall .span-row.op-view rect.span-bar").boundingBox();
  assert.ok(bar && bar.width > 10, "the render bar is drawn");
  assert.ok(await page.locator("#waterfall .span-row.op-db").count() === 1);
  await shoot("transaction");

  // The SDK's transaction: its N+1 on the worklist and its query analysis.
  await page.goto(`${base}/projects/default/performance/n-plus-one`);
  assert.ok(await page.locator(".n1-list .endpoint-row").count() >= 1);
  await shoot("performance-n-plus-one");
  await page.locator("a[data-example]").first().click();
  await page.waitForURL(/\/transactions\/\d+$/);
  assert.ok(await page.locator("#query-analysis tr.n1-row").count() >= 1, "the N+1 pattern is highlighted");
  assert.ok(await page.locator("#waterfall .span-row").count() >= 5);
  await shoot("transaction-n-plus-one");
});

test("cron monitors: check-ins over the HTTP endpoint show on the Monitors page with their state and schedule", async () => {
  const url = new URL(dsn);
  const project = url.pathname.replace(/\//g, "");
  const cron = (slug, query, body) => fetch(`${base}/api/${project}/cron/${slug}/${url.username}/?${query}`,
    body ? { method: "POST", body: JSON.stringify(body) } : {});
  const nightly = { monitor_config: { schedule: { type: "crontab", value: "0 3 * * *" }, timezone: "Europe/Berlin" } };
  let r = await cron("nightly-backup", "status=ok&duration=42", nightly);
  assert.equal(r.status, 202, await r.text());
  r = await cron("sync-invoices", "status=in_progress", { monitor_config: { schedule: { type: "interval", value: 10, unit: "minute" } } });
  assert.equal(r.status, 202);
  const { id } = await r.json();
  assert.equal((await cron("sync-invoices", `status=error&check_in_id=${id}`)).status, 202);
  await eventually("both monitors, one failed", async () => {
    const html = await (await fetch(`${base}/projects/default/monitors`)).text();
    return (html.match(/class="monitor-row"/g) || []).length === 2 && html.includes('data-state="failed"');
  });

  await page.goto(`${base}/projects/default`);
  await page.locator("nav.pills a", { hasText: "Monitors" }).click();
  await page.waitForURL(`${base}/projects/default/monitors`);
  assert.equal(await page.locator("nav.pills a[aria-current=page]").innerText(), "Monitors");
  const backup = page.locator('tr[data-monitor="nightly-backup"]');
  assert.equal(await backup.locator("[data-monitor-state]").innerText(), "ok");
  assert.match(await backup.innerText(), /0 3 \* \* \* \(Europe\/Berlin\)/);
  assert.match(await backup.innerText(), /42 s/);
  const sync = page.locator('tr[data-monitor="sync-invoices"]');
  assert.equal(await sync.locator("[data-monitor-state]").innerText(), "failed");
  assert.match(await sync.innerText(), /every 10 minutes/);
  await shoot("monitors");
});

test("a page on another name rebound to this machine gets the refusal page and deletes nothing", async () => {
  // DNS rebinding, as the browser lives it: evil.example resolves to 127.0.0.1, so its pages are same-origin
  // with whatever listens there and the browser sends Host: evil.example.
  const port = new URL(base).port;
  const rebound = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS, "--host-resolver-rules=MAP evil.example 127.0.0.1"],
  });
  try {
    const evilPage = await rebound.newPage();
    const response = await evilPage.goto(`http://evil.example:${port}/projects/default/settings`);
    assert.equal(response.status(), 421);
    assert.equal(await evilPage.locator("h1").innerText(), "Unknown host name");
    assert.match(await evilPage.locator("body").innerText(), /SPLAT_ALLOWED_HOSTS/);
    assert.doesNotMatch(await evilPage.content(), /DSN|csrf/);
    await evilPage.screenshot({ path: path.join(SHOTS, "refused-host.png") });
    // The attacker's script, same-origin now, tries the delete form.
    const status = await evilPage.evaluate(async () => (await fetch("/projects/default/delete", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "confirm=default",
    })).status);
    assert.equal(status, 421);
  } finally {
    await rebound.close();
  }
  assert.equal((await fetch(`${base}/projects/default`)).status, 200, "the project is still there");
});

test("keys: a key is added, disabled after a confirmation step, and the default key rotated", async () => {
  const url = new URL(dsn);
  const project = url.pathname.replace(/\//g, "");
  const send = (key) => fetch(`${base}/api/${project}/envelope/?sentry_key=${key}&sentry_version=7`, {
    method: "POST", body: '{}\n{"type":"event"}\n{"message":"key check"}\n',
  });
  const keyBlock = (label) => page.locator(".key").filter({ has: page.locator("h3", { hasText: new RegExp(`^${label}\\b`) }) });

  await page.goto(`${base}/projects/default/settings`);
  assert.equal(await page.locator(".key").count(), 1);
  await page.locator("#add-key input[name=label]").fill("ci");
  await page.locator("#add-key button").click();
  await page.waitForURL(/\/projects\/default\/settings#key-/);
  const ci = keyBlock("ci");
  assert.equal(await ci.locator(".badge").innerText(), "enabled");
  const ciKey = await ci.getAttribute("data-key");

  // Disabling asks first, on a page of its own (no JavaScript needed), and cancelling changes nothing.
  await ci.locator("button[data-action=disable]").click();
  assert.match(await page.locator("h1").innerText(), /Disable key .ci.\?/);
  await shoot("key-disable-confirm");
  await page.getByRole("link", { name: "Cancel" }).click();
  assert.equal(await keyBlock("ci").locator(".badge").innerText(), "enabled");
  await keyBlock("ci").locator("button[data-action=disable]").click();
  await page.locator("button[data-confirm=disable]").click();
  await page.waitForURL(/\/projects\/default\/settings#key-/);
  assert.equal(await keyBlock("ci").locator(".badge").innerText(), "disabled");
  assert.equal(await keyBlock("ci").getAttribute("data-enabled"), "false");
  // Never used before, so not in ingest's key cache: refused at once.
  assert.equal((await send(ciKey)).status, 403);

  // Rotating the default key: a new enabled key with the same label; the old one is disabled.
  await keyBlock("Default").locator("button[data-action=rotate]").click();
  assert.match(await page.locator("h1").innerText(), /Rotate key .Default.\?/);
  await page.locator("button[data-confirm=rotate]").click();
  await page.waitForURL(/\/projects\/default\/settings#key-/);
  const defaults = keyBlock("Default");
  assert.equal(await defaults.count(), 2);
  assert.deepEqual(await defaults.locator(".badge").allInnerTexts(), ["disabled", "enabled"]);
  const newKey = await defaults.nth(1).getAttribute("data-key");
  assert.notEqual(newKey, url.username);
  assert.equal(await defaults.nth(1).locator(".dsn input").first().inputValue(), dsn.replace(url.username, newKey));
  assert.equal((await send(newKey)).status, 200);

  // A project quota is saved from the same page and shown again.
  await page.locator("#limits input[name=limit_error]").fill("500");
  await page.locator("#limits button").click();
  await page.waitForURL(/#limits$/);
  assert.equal(await page.locator("#limits input[name=limit_error]").inputValue(), "500");
  await shoot("settings-keys");
});

test("no page logged a script error or a CSP violation", () => {
  assert.deepEqual(browserErrors, []);
});
