"use strict";
// Data scrubbing in a real browser (Debian's chromium driven by playwright-core): the project settings page
// shows the scrubbing card with the defaults on and IP addresses off; an event sent with a password, a
// Cookie header and an IP address shows neither secret (the IP is kept) and a processing note naming the
// fields; then IP scrubbing, an additional sensitive field and a safe field are saved from the page, and
// the next event loses its IP address and that field, and keeps the safe one. A screenshot of the card goes to tests/output/screenshots/.
//
// Run: SPLAT_BIN=<path to splat> node --test tests/ui/scrub.test.js

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { SHOTS, startSplat, openBrowser, stop, sendItem, eventually } = require("./harness");

let splat;
let base;
let page;

/// An error event with a password and a Cookie header (`secret`), a theme, an auth mode and the user's IP
/// address, posted as an SDK would; returns its page's URL once it exists.
async function sendEvent(secret, theme) {
  const eventId = crypto.randomUUID().replace(/-/g, "");
  await sendItem(splat, eventId, {
    platform: "python", level: "error", timestamp: Date.now() / 1000,
    exception: { values: [{ type: "LoginError", value: "login failed" }] },
    request: { url: "https://shop.example/login", method: "POST",
      headers: { Cookie: `sessionid=${secret}`, Accept: "text/html" } },
    extra: { password: secret, theme, auth_mode: "oauth-gold" },
    user: { id: "42", ip_address: "203.0.113.9" },
  });
  const eventUrl = `${base}/projects/default/events/${eventId}`;
  await eventually(splat, `event ${eventId}`, async () => (await fetch(eventUrl)).status === 200);
  return eventUrl;
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  splat = await startSplat();
  base = splat.base;
  page = await openBrowser(splat);
});

after(async () => { if (splat) await stop(splat); });

test("scrubbing is on by default and its settings are saved from the project settings page", async () => {
  await page.goto(`${base}/projects/default/settings`);
  const card = page.locator("#scrubbing");
  assert.ok(await card.locator("input[name=defaults]").isChecked(), "the default scrubbers are on");
  assert.ok(!(await card.locator("input[name=ip_addresses]").isChecked()), "IP addresses are kept by default");

  const first = crypto.randomBytes(6).toString("hex");
  await page.goto(await sendEvent(first, "dark-one"));
  let html = await page.content();
  assert.ok(!html.includes(first), "no password or cookie is shown");
  assert.ok(!html.includes("oauth-gold"), "auth_mode holds `auth`: scrubbed by default");
  assert.ok(html.includes("dark-one") && html.includes("203.0.113.9"), "the theme and the IP address are kept");
  const notes = await page.locator("[data-processing-note]").allInnerTexts();
  assert.ok(notes.some((n) => n.includes("extra.password") && n.includes("request.headers.Cookie")), notes.join("\n"));

  await page.goto(`${base}/projects/default/settings`);
  await card.locator("input[name=ip_addresses]").check();
  await card.locator("textarea[name=sensitive_fields]").fill("theme");
  await card.locator("textarea[name=safe_fields]").fill("extra.auth_mode");
  await card.getByRole("button", { name: "Save scrubbing" }).click();
  await page.waitForURL(/\/projects\/default\/settings#scrubbing$/);
  assert.ok(await card.locator("input[name=ip_addresses]").isChecked());
  assert.equal(await card.locator("textarea[name=sensitive_fields]").inputValue(), "theme");
  assert.equal(await card.locator("textarea[name=safe_fields]").inputValue(), "extra.auth_mode");
  await card.scrollIntoViewIfNeeded();
  await card.screenshot({ path: path.join(SHOTS, "settings-scrubbing.png") });

  const second = crypto.randomBytes(6).toString("hex");
  await page.goto(await sendEvent(second, "dark-two"));
  html = await page.content();
  assert.ok(!html.includes(second) && !html.includes("dark-two"), "the theme is now scrubbed too");
  assert.ok(!html.includes("203.0.113.9"), "and the IP address");
  assert.ok(html.includes("oauth-gold"), "a safe field stays");
  const after = await page.locator("[data-processing-note]").allInnerTexts();
  assert.ok(after.some((n) => n.includes("the project's sensitive fields") && n.includes("extra.theme")), after.join("\n"));
  assert.ok(after.some((n) => n.includes("IP address field")), after.join("\n"));
  assert.deepEqual(splat.errors, []);

  // A list longer than the limit is refused with a reason, and nothing is saved.
  await page.goto(`${base}/projects/default/settings`);
  await card.locator("textarea[name=safe_fields]").fill(Array.from({ length: 101 }, (_, i) => `f${i}`).join("\n"));
  await card.getByRole("button", { name: "Save scrubbing" }).click();
  assert.match(await page.locator("body").innerText(), /safe fields: at most 100 fields/);
  await page.goto(`${base}/projects/default/settings`);
  assert.equal(await card.locator("textarea[name=safe_fields]").inputValue(), "extra.auth_mode");
});
