"use strict";
// The issue list's search syntax in a real browser: a query typed into the search box lists exactly the
// issues it names, a negated term and a tag work, and a query that cannot be read shows why.
//
// Run: SPLAT_BIN=<path to splat> node --test tests/ui/search.test.js

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { startSplat, openBrowser, stop, sendItem, eventually, eventId } = require("./harness");

let splat;
let page;

function error(type, value, extra) {
  return {
    platform: "python", level: "error", timestamp: Date.now() / 1000,
    exception: { values: [{ type, value, stacktrace: { frames: [{ function: "handle", filename: "app.py", lineno: 1, in_app: true }] } }] },
    ...extra,
  };
}

before(async () => {
  splat = await startSplat();
  await sendItem(splat, eventId(1), error("KeyError", "basket timeout", {
    environment: "production", release: "1.4.2", user: { id: "42", email: "x@y.z" }, tags: { browser: "Firefox" } }));
  await sendItem(splat, eventId(2), error("ValueError", "bad quantity", {
    environment: "production", level: "warning", tags: { browser: "Chrome" } }));
  await sendItem(splat, eventId(3), error("TypeError", "connection reset", {
    environment: "staging", level: "info", tags: { browser: "Firefox" } }));
  await eventually(splat, "three issues", async () => {
    const html = await (await fetch(`${splat.base}/projects/default/issues?status=all`)).text();
    return (html.match(/class="issue-row /g) || []).length === 3;
  });
  page = await openBrowser(splat);
});

after(async () => { if (splat) await stop(splat); });

async function search(query) {
  await page.goto(`${splat.base}/projects/default/issues`);
  const box = page.getByRole("searchbox", { name: "Search issues" });
  await box.fill(query);
  await box.press("Enter");
  await page.waitForURL(/[?&]q=/);
  await page.locator("#issue-list").waitFor();
}

async function titles() {
  return (await page.locator("#issue-list .issue-row").allInnerTexts())
    .map((t) => /(KeyError|ValueError|TypeError)/.exec(t)?.[1])
    .sort();
}

test("a typed query lists exactly the issues it names", async () => {
  await search("is:unresolved level:error environment:production release:1.4.2 user.email:x@y.z browser:Firefox timeout");
  assert.deepEqual(await titles(), ["KeyError"]);
  await search("!level:info browser:[Firefox, Chrome]");
  assert.deepEqual(await titles(), ["KeyError", "ValueError"]);
  await search("browser:Firefox !KeyError");
  assert.deepEqual(await titles(), ["TypeError"]);
  // The query stays in the box for the next edit.
  assert.equal(await page.getByRole("searchbox", { name: "Search issues" }).inputValue(), "browser:Firefox !KeyError");
});

test("a query that cannot be read says why", async () => {
  await search("level:loud timeout");
  const alert = page.getByRole("alert");
  assert.match(await alert.innerText(), /`level:loud` is not a level; use one of fatal, error/);
  assert.deepEqual(await titles(), []);
  await search('browser:"Firefox');
  assert.match(await page.getByRole("alert").innerText(), /a quote is not closed/);
  assert.deepEqual(splat.errors, []);
});
