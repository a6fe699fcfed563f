"use strict";
// Alert rules and mutes in a real browser (Debian's chromium driven by playwright-core): `splat serve` with
// two webhook destinations, each a local HTTP server recording what it is sent. The project's alert rule is
// edited and saved on the settings page, the test-alert button sends to the chosen destination only, an
// issue's alerts are muted from its page (and its next regression sends nothing), then unmuted.
//
// Run: SPLAT_BIN=<path to splat> SPLAT_PYTHON=<venv python> node --test tests/ui/alerts.test.js

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { ROOT, SHOTS, PYTHON, startSplat, openBrowser, stop, eventually, run } = require("./harness");

let splat;
let base;
let dsn;
let receiver;
let page;
const posts = [];

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

/// One error from the real Python SDK (the suite's client script).
async function sendError() {
  await run(PYTHON, [path.join(ROOT, "tests/sdk/python_client.py"), dsn, "error"]);
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  const hooks = await startReceiver();
  splat = await startSplat({ env: { SPLAT_WEBHOOK_URLS: `slack:${hooks}/slack, ${hooks}/json` } });
  ({ base, dsn } = splat);
  page = await openBrowser(splat);
});

after(async () => {
  if (splat) await stop(splat);
  if (receiver) receiver.close();
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
  await eventually(splat, "the new issue's alert on both destinations", () => posts.length >= 2);
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
  await eventually(splat, "the muted regression", () => splat.log.includes("the issue's alerts are muted"));
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(posts.length, 2, "nothing was sent about the muted issue");

  await page.getByRole("button", { name: "Unmute alerts" }).click();
  await page.waitForURL(issueUrl);
  assert.ok(await page.getByRole("button", { name: "Mute alerts" }).isVisible());
  assert.deepEqual(splat.errors, []);
});
