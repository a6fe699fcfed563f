"use strict";
// The logs UI in a real browser (Debian's chromium driven by playwright-core): `splat serve` receives
// structured logs from the real Python SDK (inside a transaction, beside an error) and then, while the logs
// page is open, from the real Node SDK. Checks the logs page's level, text and trace filters, the live
// arrival of new lines, the lines of the trace on the event page and the transaction page, and that a log
// line's trace link leads to its transaction.
//
// Run: SPLAT_BIN=<path to splat> SPLAT_PYTHON=<venv python> node --test tests/ui/logs.test.js

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { ROOT, SHOTS, PYTHON, startSplat, openBrowser, stop, eventually, run: runScript } = require("./harness");

let splat;
let base;
let dsn;
let page;
let python;

/// The client scripts print what they sent as JSON on their last line.
async function run(file, args, options) {
  return JSON.parse((await runScript(file, args, options)).trim().split("\n").pop());
}

async function bodies() {
  return page.locator("[data-log-body]").allInnerTexts();
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  splat = await startSplat();
  ({ base, dsn } = splat);
  python = await run(PYTHON, [path.join(ROOT, "tests/sdk/python_logs_client.py"), dsn]);
  await eventually(splat, "the Python SDK's log lines", async () => {
    const html = await (await fetch(`${base}/projects/default/logs`)).text();
    return (html.match(/data-log-line/g) || []).length >= 4;
  });
  page = await openBrowser(splat);
});

after(async () => { if (splat) await stop(splat); });

test("the logs page lists the lines newest first and filters by level, text and trace", async () => {
  await page.goto(`${base}/projects/default/logs`);
  assert.equal(await page.locator("nav[aria-label=Project] a[aria-current=page]").innerText(), "Logs");
  assert.deepEqual(await bodies(), [
    "after the transaction",
    "Order 17 failed",
    "Stock low for A-17",
    "User 42 checked out 3 items",
  ]);
  // Attributes show beside the body; the SDK's own sentry.* attributes do not.
  const first = page.locator("[data-log-line]").filter({ hasText: "User 42" });
  assert.match(await first.innerText(), /cart\.total\s*19\.5/);
  assert.doesNotMatch(await first.innerText(), /sentry\.sdk/);
  await page.screenshot({ path: path.join(SHOTS, "logs.png"), fullPage: true });

  await page.selectOption("select[name=level]", "warn");
  await page.waitForURL(/level=warn/);
  assert.deepEqual(await bodies(), ["Order 17 failed", "Stock low for A-17"]);
  assert.deepEqual(await page.locator("[data-log-level]").allInnerTexts(), ["error", "warn"]);

  await page.goto(`${base}/projects/default/logs`);
  await page.fill("input[name=q]", "north");
  await page.press("input[name=q]", "Enter");
  await page.waitForURL(/q=north/);
  assert.deepEqual(await bodies(), ["User 42 checked out 3 items"]);

  await page.goto(`${base}/projects/default/logs?trace=${python.trace_id}`);
  assert.equal((await bodies()).length, 3);
});

test("a line sent while the page is open appears without a reload", async () => {
  await page.goto(`${base}/projects/default/logs`);
  await run("node", ["logs_client.js", dsn], { cwd: path.join(ROOT, "tests/sdk/node") });
  await page.locator("[data-log-body]", { hasText: "Queue billing is slow" }).waitFor({ timeout: 20_000 });
  assert.equal((await bodies()).length, 6);
});

test("the event page shows the lines of its trace, and a line's trace link opens the transaction", async () => {
  await page.goto(`${base}/projects/default/events/${python.error}`);
  const section = page.locator("#trace-logs");
  assert.deepEqual(await section.locator("[data-log-body]").allInnerTexts(), [
    "User 42 checked out 3 items",
    "Stock low for A-17",
    "Order 17 failed",
  ]);
  await page.screenshot({ path: path.join(SHOTS, "event-logs.png"), fullPage: true });

  await section.locator("[data-log-trace]").first().click();
  await page.waitForURL(/\/transactions\/\d+$/);
  assert.match(await page.locator("h1").innerText(), /sdk-test\/logs/);
  const lines = page.locator("#trace-logs [data-log-body]");
  assert.equal(await lines.count(), 3);
  assert.deepEqual(splat.errors, []);
});
