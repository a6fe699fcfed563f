"use strict";
// Source maps in a real browser (issue 18): an app bundled and minified by esbuild, debug ids injected
// and its maps uploaded by the real sentry-cli, runs in Debian's chromium under @sentry/browser and
// throws through three functions; the event page then names the original files, functions and lines,
// with the minified stack behind a <details> toggle. Screenshots go to tests/output/screenshots/.
//
// Run: SPLAT_BIN=<path to splat> node --test tests/ui/maps.test.js

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { ROOT, SHOTS, SPLAT_BIN, startSplat, openBrowser, stop, eventually } = require("./harness");

const MAPS = path.join(ROOT, "tests/sdk/maps");
const BIN = path.join(MAPS, "node_modules/.bin");

let splat;
let site;
let page;

/// The minified bundle, its map uploaded with debug ids, served with a page on a port of its own.
async function buildAndUpload() {
  const dist = path.join(splat.workdir, "dist");
  execFileSync(path.join(BIN, "esbuild"), [path.join(MAPS, "browser/app.js"), "--bundle", "--minify",
    "--sourcemap", "--format=iife", `--outfile=${path.join(dist, "app.js")}`], { cwd: MAPS });
  fs.writeFileSync(path.join(dist, "index.html"), "<!doctype html><title>shop</title><script src=\"app.js\"></script>\n");
  const token = /sntryu_[0-9a-f]{64}/.exec(execFileSync(SPLAT_BIN,
    ["--data-dir", path.join(splat.workdir, "data"), "token", "create", "CI"]).toString())[0];
  const env = { ...process.env, SENTRY_URL: splat.base, SENTRY_AUTH_TOKEN: token, SENTRY_ORG: "splat", SENTRY_PROJECT: "default" };
  execFileSync(path.join(BIN, "sentry-cli"), ["sourcemaps", "inject", dist], { env });
  execFileSync(path.join(BIN, "sentry-cli"), ["sourcemaps", "upload", dist], { env });
  site = http.createServer((req, res) => {
    const file = path.join(dist, new URL(req.url, "http://x").pathname.replace(/^\/$/, "/index.html"));
    if (!file.startsWith(dist) || !fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { "content-type": file.endsWith(".html") ? "text/html" : "text/javascript" });
    res.end(fs.readFileSync(file));
  });
  await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  splat = await startSplat();
  await buildAndUpload();
  page = await openBrowser(splat);
});

after(async () => {
  if (site) site.close();
  if (splat) await stop(splat);
});

test("a minified browser error is shown with its original files, functions and context", async () => {
  await page.goto(`http://127.0.0.1:${site.address().port}/?dsn=${encodeURIComponent(splat.dsn)}`);
  const eventId = await page.waitForFunction(() => window.sentEventId, null, { timeout: 20_000 }).then((h) => h.jsonValue());
  const url = `${splat.base}/projects/default/events/${eventId}`;
  await eventually(splat, `event ${eventId}'s page`, async () => (await page.goto(url)).status() === 200);
  const frames = page.locator("ol.frames").first();
  const text = await frames.innerText();
  for (const name of ["priceOf", "applyQuantity", "checkout"]) assert.match(text, new RegExp(name));
  assert.match(text, /app\/pricing\.js:7:\d+/);
  assert.match(text, /throw new Error\(`no price for \$\{sku\}`\);/);
  // The minified stack is there, closed, and opens without JavaScript's help (a <details>).
  const raw = page.locator("details.raw-frames").first();
  assert.equal(await raw.getAttribute("open"), null);
  await raw.locator("summary").click();
  assert.match(await raw.innerText(), /app\.js:\d+:\d+/);
  await page.screenshot({ path: path.join(SHOTS, "event-sourcemapped.png"), fullPage: true });
});
