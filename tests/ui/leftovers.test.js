"use strict";
// The seed's leftovers in a real browser: from an error event, its trace id leads to the transaction of
// that trace, which lists the error back; an event and then an issue are deleted through their
// confirmation pages (plain forms with the CSRF token), and are gone from every page after.
//
// Run: SPLAT_BIN=<path to splat> node --test tests/ui/leftovers.test.js

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { startSplat, openBrowser, stop, sendItem, eventually, eventId } = require("./harness");

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
let splat;
let page;

function checkoutError(extra = {}) {
  return {
    platform: "python", level: "error", timestamp: Date.now() / 1000, fingerprint: ["checkout"],
    exception: { values: [{ type: "CheckoutError", value: "cart has no price" }] }, ...extra,
  };
}

before(async () => {
  splat = await startSplat();
  const now = Date.now() / 1000;
  await sendItem(splat, eventId(1), {
    type: "transaction", transaction: "POST /checkout", start_timestamp: now - 0.3, timestamp: now,
    contexts: { trace: { trace_id: TRACE, span_id: "a1b2c3d4e5f60718", op: "http.server" } }, spans: [],
  }, "transaction");
  await sendItem(splat, eventId(2), checkoutError({ contexts: { trace: { trace_id: TRACE, span_id: "a1b2c3d4e5f60719" } } }));
  await sendItem(splat, eventId(3), checkoutError());
  await sendItem(splat, eventId(4), { level: "warning", message: "disk almost full", timestamp: now });
  await eventually(splat, "two issues", async () => {
    const html = await (await fetch(`${splat.base}/projects/default/issues?status=all`)).text();
    return (html.match(/class="issue-row /g) || []).length === 2;
  });
  page = await openBrowser(splat);
});

after(async () => { if (splat) await stop(splat); });

test("an event's trace id leads to its transaction, which lists the event back", async () => {
  await page.goto(`${splat.base}/projects/default/events/${eventId(2)}`);
  await page.getByRole("link", { name: TRACE }).click();
  await page.waitForURL(/\/projects\/default\/transactions\/\d+$/);
  assert.match(await page.locator("h1").innerText(), /POST \/checkout/);
  await page.locator("#trace-errors").getByRole("link", { name: eventId(2) }).click();
  await page.waitForURL(`${splat.base}/projects/default/events/${eventId(2)}`);
  // An event without a trace offers no transaction.
  await page.goto(`${splat.base}/projects/default/events/${eventId(3)}`);
  assert.equal(await page.locator("#event-transaction").count(), 0);
});

test("an event is deleted after a confirmation, and is gone", async () => {
  await page.goto(`${splat.base}/projects/default/events/${eventId(3)}`);
  await page.locator("#delete-event").click();
  await page.waitForURL(/\/events\/0+3\/delete$/);
  assert.match(await page.locator("h1").innerText(), /Delete this event\?/);
  await page.locator("#confirm-delete").click();
  await page.waitForURL(/\/projects\/default\/issues\/\d+$/);
  assert.match(await page.locator("#issue-stats").innerText(), /Events\s*1\b/i);
  assert.equal(await page.locator(`a[href$="/events/${eventId(3)}"]`).count(), 0);
  const gone = await page.goto(`${splat.base}/projects/default/events/${eventId(3)}`);
  assert.equal(gone.status(), 404);
  // That 404 was the point; the console's report of it is not a page error.
  splat.errors.length = 0;
});

test("an issue is deleted after a confirmation, and is gone from the list", async () => {
  await page.goto(`${splat.base}/projects/default/issues?status=all`);
  await page.getByRole("link", { name: "disk almost full" }).click();
  await page.locator("#delete-issue").click();
  assert.match(await page.locator("h1").innerText(), /Delete this issue\?/);
  // Cancel first: nothing changes.
  await page.getByRole("link", { name: "Cancel" }).click();
  await page.waitForURL(/\/issues\/\d+$/);
  await page.locator("#delete-issue").click();
  await page.locator("#confirm-delete").click();
  await page.waitForURL(/\/projects\/default\/issues$/);
  const rows = await page.locator("#issue-list .issue-row").allInnerTexts();
  assert.equal(rows.length, 1);
  assert.match(rows[0], /CheckoutError/);
  assert.deepEqual(splat.errors, []);
});
