"use strict";
// What the newer UI test files share: a fresh `splat serve` on a free port, hand-made events posted as an
// SDK posts them, headless Chromium (Debian's, driven by playwright-core), and polling for the processor.

const assert = require("node:assert/strict");
const { spawn, execFile } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const ROOT = path.resolve(__dirname, "..", "..");
const SHOTS = path.join(ROOT, "tests/output/screenshots");
const SPLAT_BIN = process.env.SPLAT_BIN || path.join(os.homedir(), ".cache/splat-target/debug/splat");
const CACHE = process.env.SPLAT_CACHE_DIR || path.join(os.homedir(), ".cache/splat");
const PYTHON = process.env.SPLAT_PYTHON || path.join(CACHE, "venv/bin/python");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];

/// Starts `splat serve` with a fresh data dir; resolves once it printed its DSN. `env` adds environment
/// variables for the server (e.g. `SPLAT_WEBHOOK_URLS`) to this process's own.
async function startSplat({ env } = {}) {
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), "splat-ui-"));
  const server = spawn(SPLAT_BIN, ["serve", "--bind", "127.0.0.1:0", "--data-dir", path.join(workdir, "data")], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  const splat = { workdir, server, log: "", base: null, dsn: null, context: null, page: null, errors: [] };
  server.stdout.on("data", (chunk) => { splat.log += chunk; });
  server.stderr.on("data", (chunk) => { splat.log += chunk; });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const match = /^DSN: (\S+)$/m.exec(splat.log);
    if (match) {
      splat.dsn = match[1];
      const url = new URL(splat.dsn);
      splat.base = `${url.protocol}//${url.host}`;
      return splat;
    }
    if (server.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`splat serve printed no DSN line:\n${splat.log}`);
}

/// Opens headless Chromium on `splat`; script errors and CSP violations are collected in `splat.errors`.
async function openBrowser(splat) {
  splat.context = await chromium.launchPersistentContext(path.join(splat.workdir, "chromium-profile"), {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 1280, height: 900 },
  });
  splat.page = splat.context.pages()[0] || (await splat.context.newPage());
  splat.page.on("console", (msg) => { if (msg.type() === "error") splat.errors.push(msg.text()); });
  splat.page.on("pageerror", (err) => splat.errors.push(String(err)));
  return splat.page;
}

async function stop(splat) {
  if (splat.context) await splat.context.close();
  if (splat.server.exitCode === null) {
    splat.server.kill("SIGTERM");
    await new Promise((r) => splat.server.once("exit", r));
  }
  fs.rmSync(splat.workdir, { recursive: true, force: true });
}

/// Posts one item (`type`, default an error event) in an envelope to the DSN, as an SDK does.
async function sendItem(splat, eventId, item, type = "event") {
  const url = new URL(splat.dsn);
  const project = url.pathname.replace(/\//g, "");
  const payload = JSON.stringify({ event_id: eventId, ...item });
  const body = `{"event_id":"${eventId}"}\n{"type":"${type}","length":${Buffer.byteLength(payload)}}\n${payload}\n`;
  const response = await fetch(`${splat.base}/api/${project}/envelope/?sentry_key=${url.username}&sentry_version=7`, {
    method: "POST", body,
  });
  assert.equal(response.status, 200, await response.text());
}

/// Polls until `check` returns a truthy value; the processor commits a moment after the SDK's 200.
async function eventually(splat, what, check, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}\n--- splat log (tail) ---\n${splat.log.slice(-3000)}`);
}

/// Runs an SDK client script (`file args…`, with execFile's `options`); resolves to its stdout.
function run(file, args, options = {}) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 60_000, ...options }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(" ")} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/// A 32-hex event id from a small number.
function eventId(n) {
  return n.toString(16).padStart(32, "0");
}

module.exports = { ROOT, SHOTS, SPLAT_BIN, PYTHON, startSplat, openBrowser, stop, sendItem, eventually, eventId, run };
