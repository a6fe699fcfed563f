"use strict";
// Alert rules and mutes in a real browser (Debian's chromium driven by playwright-core): `splat serve` with
// two webhook destinations, each a local HTTP server recording what it is sent. The project's alert rule is
// edited and saved on the settings page, the test-alert button sends to the chosen destination only, an
// issue's alerts are muted from its page (and its next regression sends nothing), then unmuted.
//
// Run: SPLAT_BIN=<path to splat> SPLAT_PYTHON=<venv python> node --test tests/ui/alerts.test.js

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn, execFile } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
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
let receiver;
let context;
let page;
const posts = [];
const browserErrors = [];

function run(file, args) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function eventually(what, check, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}\n--- splat log (tail) ---\n${serverLog.slice(-3000)}`);
}

/// Two destinations on one local server: a Slack-shaped one and Splat's JSON; each post is kept.
function startReceiver() {
  return new Promise((resolve) => {
    receiver = http.createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => { body += chunk; });
      req.on("end", () => {
        posts.push({ path: req.url, body: JSON.parse(body) });
        res.writeHead(200, { "content-length": "2" }).end("ok");
      });
    });
    receiver.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${receiver.address().port}`));
  });
}

async function startSplat(hooks) {
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "splat-ui-alerts-"));
  server = spawn(SPLAT_BIN, ["serve", "--bind", "127.0.0.1:0", "--data-dir", path.join(workdir, "data")], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, SPLAT_WEBHOOK_URLS: `slack:${hooks}/slack, ${hooks}/json` },
  });
  server.stdout.on("data", (chunk) => { serverLog += chunk; });
  server.stderr.on("data", (chunk) => { serverLog += chunk; });
  const match = await eventually("the DSN line", () => /^DSN: (\S+)$/m.exec(serverLog));
  dsn = match[1];
  const url = new URL(dsn);
  base = `${url.protocol}//${url.host}`;
}

/// One error from the real Python SDK (the suite's client script).
async function sendError() {
  await run(PYTHON, [path.join(ROOT, "tests/sdk/python_client.py"), dsn, "error"]);
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  await startSplat(await startReceiver());
  context = await chromium.launchPersistentContext(path.join(workdir, "chromium-profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] || (await context.newPage());
  page.on("console", (msg) => { if (msg.type() === "error") browserErrors.push(msg.text()); });
  page.on("pageerror", (err) => browserErrors.push(String(err)));
});

after(async () => {
  if (context) await context.close();
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
  }
  if (receiver) receiver.close();
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

test("the alert rule is edited and saved, and the test alert goes to the chosen destination", async () => {
  await page.goto(`${base}/projects/default/settings`);
  const section = page.locator("#alerts");
  // Today's behaviour by default: every kind, every level, every destination.
  for (const kind of ["kind_new", "kind_regressed", "kind_burst"]) {
    assert.ok(await section.locator(`input[name=${kind}]`).isChecked(), kind);
  }
  assert.equal(await section.locator("select[name=min_level]").inputValue(), "debug");
  assert.ok(await section.locator("input[name=destination][value='*']").isChecked());

  await section.locator("input[name=kind_burst]").uncheck();
  await section.locator("select[name=min_level]").selectOption("error");
  await section.locator("input[name=environments]").fill("production, staging");
  await section.locator("input[name=destination][value='*']").uncheck();
  await section.locator("input[name=destination][value=slack]").check();
  await section.getByRole("button", { name: "Save alert rules" }).click();
  await page.waitForURL(`${base}/projects/default/settings#alerts`);

  // Saved: the page shows the rule as it was set.
  assert.ok(!(await section.locator("input[name=kind_burst]").isChecked()));
  assert.ok(await section.locator("input[name=kind_new]").isChecked());
  assert.equal(await section.locator("select[name=min_level]").inputValue(), "error");
  assert.equal(await section.locator("input[name=environments]").inputValue(), "production, staging");
  assert.ok(await section.locator("input[name=destination][value=slack]").isChecked());
  assert.ok(!(await section.locator("input[name=destination][value=webhook]").isChecked()));

  await section.getByRole("button", { name: "Send a test alert" }).click();
  await page.waitForURL(/alert_test=1/);
  assert.match(await page.locator("#alert-test-result").innerText(), /taken by 1 destination/);
  assert.deepEqual(posts.map((p) => p.path), ["/slack"]);
  assert.match(posts[0].body.text, /Test alert from Splat/);
  await page.locator("#alerts").screenshot({ path: path.join(SHOTS, "alert-rules.png") });
});

test("an issue's alerts are muted from its page, and its regression sends nothing", async () => {
  // Back to every destination and level, so the only thing holding an alert back is the mute.
  await page.goto(`${base}/projects/default/settings`);
  const section = page.locator("#alerts");
  await section.locator("select[name=min_level]").selectOption("debug");
  await section.locator("input[name=environments]").fill("");
  await section.locator("input[name=destination][value='*']").check();
  await section.getByRole("button", { name: "Save alert rules" }).click();
  await page.waitForURL(`${base}/projects/default/settings#alerts`);

  posts.length = 0;
  await sendError();
  await eventually("the new issue's alert on both destinations", () => posts.length >= 2);
  await page.goto(`${base}/projects/default/issues`);
  await page.getByRole("link", { name: /ZeroDivisionError/ }).click();
  await page.waitForURL(/\/projects\/default\/issues\/\d+$/);
  const issueUrl = page.url();

  await page.getByRole("button", { name: "Mute alerts" }).click();
  await page.waitForURL(issueUrl);
  assert.match(await page.locator("[data-muted]").innerText(), /alerts muted/);
  await page.locator(".page-head").screenshot({ path: path.join(SHOTS, "issue-muted.png") });

  await page.locator(".page-head .actions button", { hasText: /^Resolve$/ }).click();
  await page.waitForURL(issueUrl);
  await sendError();
  await eventually("the muted regression", () => serverLog.includes("the issue's alerts are muted"));
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(posts.length, 2, "nothing was sent about the muted issue");

  await page.getByRole("button", { name: "Unmute alerts" }).click();
  await page.waitForURL(issueUrl);
  assert.ok(await page.getByRole("button", { name: "Mute alerts" }).isVisible());
  assert.deepEqual(browserErrors, []);
});
