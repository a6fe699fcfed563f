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

let workdir;
let server;
let serverLog = "";
let base;
let dsn;
let browser;
let page;
let python;
const browserErrors = [];

function run(file, args, options = {}) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 60_000, ...options }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split("\n").pop()));
    });
  });
}

async function startSplat() {
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "splat-ui-logs-"));
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

async function bodies() {
  return page.locator("[data-log-body]").allInnerTexts();
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  await startSplat();
  python = await run(PYTHON, [path.join(ROOT, "tests/sdk/python_logs_client.py"), dsn]);
  await eventually("the Python SDK's log lines", async () => {
    const html = await (await fetch(`${base}/projects/default/logs`)).text();
    return (html.match(/data-log-line/g) || []).length >= 4;
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (msg) => { if (msg.type() === "error") browserErrors.push(msg.text()); });
  page.on("pageerror", (err) => browserErrors.push(String(err)));
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
  }
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

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
  assert.deepEqual(browserErrors, []);
});
