"use strict";
// UI sign-in with OpenID Connect, against a real provider (oidc_provider.mjs: the certified `oidc-provider`
// package) in Debian's chromium driven by playwright-core.
//
// Starts the provider, then `splat serve` with OIDC configured (allowed: the domain example.com with its
// subdomains, and the single address solo@other.test). Checks that ingest, /mcp and /_health answer without
// a session; that a page sends the browser to the provider and, once signed in there, back to that page;
// that the session cookie is HttpOnly and SameSite=Lax and a tampered or forged one is refused; that
// signing out deletes it; that users outside the allowlist (or with an unverified email) are refused; and
// that a half-configured `splat serve` refuses its UI with a 500 naming the missing variable while ingest
// keeps working.
//
// Run: SPLAT_BIN=<path to splat> node --test tests/ui/oidc.test.js

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const ROOT = path.resolve(__dirname, "..", "..");
const SPLAT_BIN = process.env.SPLAT_BIN || path.join(os.homedir(), ".cache/splat-target/debug/splat");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const SHOTS = path.join(ROOT, "tests/output/screenshots");
const CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];
const CLIENT_SECRET = "splat-test-client-secret";

const children = [];
let workdir;
let issuer;
let base;
let dsn;
let browser;

/// Starts a process and waits for a line matching `ready`; returns the match and the process.
async function start(file, args, env, ready, cwd) {
  const child = spawn(file, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  child.log = "";
  child.stdout.on("data", (chunk) => { child.log += chunk; });
  child.stderr.on("data", (chunk) => { child.log += chunk; });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const match = ready.exec(child.log);
    if (match) return { child, match };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${file} did not print ${ready}:\n${child.log}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startSplat(name, port, env) {
  const dataDir = path.join(workdir, name);
  const { child, match } = await start(SPLAT_BIN, ["serve", "--bind", `127.0.0.1:${port}`, "--data-dir", dataDir],
    env, /^DSN: (\S+)$[\s\S]*UI sign-in.*$/m);
  return { child, dsn: match[1], base: `http://127.0.0.1:${port}` };
}

/// Posts one error event as an SDK would; returns the HTTP status.
async function sendEnvelope(toDsn) {
  const url = new URL(toDsn);
  const project = url.pathname.replace(/\//g, "");
  const eventId = "a".repeat(32);
  const payload = JSON.stringify({ event_id: eventId, message: "signed-in test", level: "error" });
  const body = `{"event_id":"${eventId}"}\n{"type":"event","length":${Buffer.byteLength(payload)}}\n${payload}\n`;
  const response = await fetch(`${url.protocol}//${url.host}/api/${project}/envelope/?sentry_key=${url.username}`,
    { method: "POST", body });
  return response.status;
}

/// A page of the UI fetched without following redirects, with the given cookie header.
function fetchUi(pathname, cookie) {
  return fetch(`${base}${pathname}`, { redirect: "manual", headers: cookie ? { cookie } : {} });
}

/// Opens `pathname` in a fresh browser context and signs in at the provider's login form as `login`.
/// Returns the context, its page and the status of the last response from /auth/callback.
async function signIn(pathname, login, at = { base, issuer }) {
  const { base, issuer } = at;
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  let callbackStatus;
  page.on("response", (r) => { if (r.url().startsWith(`${base}/auth/callback`)) callbackStatus = r.status(); });
  await page.goto(`${base}${pathname}`);
  await page.waitForURL((u) => u.href.startsWith(issuer));
  await page.locator("input[name=login]").fill(login);
  await page.locator("input[name=password]").fill("any password");
  await page.locator("button[type=submit]").click();
  await page.waitForURL((u) => u.href.startsWith(base));
  await page.waitForLoadState("load");
  return { context, page, callbackStatus: () => callbackStatus };
}

async function cookieNamed(context, name, at = base) {
  return (await context.cookies(at)).find((c) => c.name === name);
}

/// A provider and a `splat serve` signing in with it. The provider must know Splat's redirect URI before
/// it starts, so Splat's port is chosen first.
async function startPair(name, providerEnv = {}) {
  const port = await freePort();
  const provider = await start("node", ["oidc_provider.mjs"],
    { REDIRECT_URI: `http://127.0.0.1:${port}/auth/callback`, ...providerEnv }, /^ISSUER (\S+)$/m, __dirname);
  const splat = await startSplat(name, port, {
    OIDC_DISCOVERY_URL: provider.match[1],
    OIDC_CLIENT_ID: "splat",
    OIDC_CLIENT_SECRET: CLIENT_SECRET,
    SPLAT_ALLOWED_DOMAINS: "example.com",
    SPLAT_ALLOWED_USERS: "solo@other.test",
  });
  return { issuer: provider.match[1], provider: provider.child, ...splat };
}

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "splat-oidc-"));
  const pair = await startPair("data");
  ({ issuer, base, dsn } = pair);
  assert.match(pair.child.log, /UI sign-in: OpenID Connect via http:\/\/127\.0\.0\.1/);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
});

after(async () => {
  if (browser) await browser.close();
  for (const child of children) {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  }
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

test("ingest, /mcp and /_health answer without a session; UI pages send the browser to sign in", async () => {
  assert.equal(await sendEnvelope(dsn), 200);
  const health = await fetchUi("/_health");
  assert.equal(health.status, 200);
  assert.equal((await health.json()).status, "ok");
  // /mcp has its own bearer token (unset here: refused as such), never the sign-in redirect.
  const mcp = await fetch(`${base}/mcp`, { method: "POST", redirect: "manual",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} }) });
  assert.equal(mcp.status, 401);
  assert.equal(mcp.headers.get("location"), null);
  for (const page of ["/", "/projects/default/issues?status=open", "/no-such-page"]) {
    const response = await fetchUi(page);
    assert.equal(response.status, 303, page);
    assert.equal(response.headers.get("location"), `/login/start?next=${encodeURIComponent(page)}`);
  }
  const post = await fetch(`${base}/projects`, { method: "POST", redirect: "manual", body: "name=x",
    headers: { "content-type": "application/x-www-form-urlencoded" } });
  assert.equal(post.status, 401, "a state change without a session is refused, not redirected");
});

test("an allowed user signs in at the provider, lands on the page asked for, and signs out", async () => {
  const { context, page } = await signIn("/projects/default/issues", "ada@eu.example.com");
  assert.equal(new URL(page.url()).pathname, "/projects/default/issues");
  assert.equal(await page.locator("h1").innerText(), "Issues");
  assert.equal(await page.locator("[data-user]").innerText(), "ada@eu.example.com");
  await page.screenshot({ path: path.join(SHOTS, "signed-in.png") });
  const session = await cookieNamed(context, "splat_session");
  assert.ok(session, "the session cookie is set");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Lax");
  assert.ok(session.expires > Date.now() / 1000 + 11 * 3600, "the session lasts 12 hours");
  assert.equal(await cookieNamed(context, "splat_oidc"), undefined, "the flow cookie is gone");

  // The cookie alone is the session: genuine → the page; changed in any way → sign in again.
  const genuine = `splat_session=${session.value}`;
  assert.equal((await fetchUi("/", genuine)).status, 200);
  const [payload, tag] = session.value.split(".");
  const claims = JSON.parse(Buffer.from(payload, "base64url"));
  const forge = (v) => `splat_session=${Buffer.from(JSON.stringify(v)).toString("base64url")}.${tag}`;
  const tampered = [
    forge({ ...claims, v: { ...claims.v, email: "mallory@example.com" } }),
    forge({ ...claims, exp: claims.exp + 86_400 * 365 }),
    `splat_session=${payload}.${tag.slice(0, -2)}${tag.endsWith("AA") ? "BA" : "AA"}`,
    "splat_session=garbage",
  ];
  for (const cookie of tampered) {
    const response = await fetchUi("/", cookie);
    assert.equal(response.status, 303, cookie);
    assert.match(response.headers.get("location"), /^\/login\/start/);
    assert.match(response.headers.get("set-cookie"), /splat_session=; Path=\/; Max-Age=0/, "the bad cookie is dropped");
  }

  await page.locator("[data-sign-out]").click();
  await page.waitForURL(`${base}/login?signed_out=1`);
  assert.match(await page.locator("[data-login-message]").innerText(), /signed out/i);
  await page.screenshot({ path: path.join(SHOTS, "login-signed-out.png") });
  assert.equal(await cookieNamed(context, "splat_session"), undefined, "signing out deletes the session cookie");
  assert.equal((await fetchUi("/")).status, 303);
  await context.close();
});

test("users outside the allowlist, or with an unverified email, are refused", async () => {
  for (const login of ["eve@evil.test", "eve@notexample.com", "unverified@example.com", "silent@example.com"]) {
    const { context, page, callbackStatus } = await signIn("/", login);
    assert.equal(new URL(page.url()).pathname, "/auth/callback", login);
    assert.equal(callbackStatus(), 403, login);
    assert.match(await page.locator("[data-login-message]").innerText(), new RegExp(`${login} may not use this Splat`));
    assert.equal(await cookieNamed(context, "splat_session"), undefined, login);
    if (login === "eve@evil.test") await page.screenshot({ path: path.join(SHOTS, "login-refused.png") });
    await context.close();
  }
  // An address listed on its own is allowed although its domain is not.
  const { context, page } = await signIn("/", "solo@other.test");
  assert.equal(await page.locator("h1").innerText(), "Projects");
  assert.equal(await page.locator("[data-user]").innerText(), "solo@other.test");
  await context.close();
});

test("a provider that keeps the email out of the ID token: Splat reads it from userinfo", async () => {
  const pair = await startPair("conform", { CONFORM_ID_TOKEN_CLAIMS: "1" });
  const { context, page } = await signIn("/", "ada@example.com", pair);
  assert.equal(await page.locator("[data-user]").innerText(), "ada@example.com");
  assert.ok(await cookieNamed(context, "splat_session", pair.base));
  await context.close();
  const refused = await signIn("/", "eve@evil.test", pair);
  assert.equal(refused.callbackStatus(), 403);
  await refused.context.close();
  pair.child.kill("SIGTERM");
  pair.provider.kill("SIGTERM");
});

test("a callback that does not match the sign-in this browser started is refused", async () => {
  const started = await fetchUi("/login/start?next=/");
  assert.equal(started.status, 303);
  const flow = started.headers.get("set-cookie").match(/splat_oidc=([^;]+)/)[1];
  const wrongState = await fetchUi("/auth/callback?code=abc&state=not-the-state", `splat_oidc=${flow}`);
  assert.equal(wrongState.status, 400);
  const noFlow = await fetchUi(`/auth/callback?code=abc&state=${new URL(started.headers.get("location")).searchParams.get("state")}`);
  assert.equal(noFlow.status, 400);
  assert.doesNotMatch(noFlow.headers.get("set-cookie") || "", /splat_session=[^;]/, "no session is set");
});

test("half-configured sign-in refuses the UI with a 500 naming what is missing; ingest stays open", async () => {
  const half = await startSplat("half", await freePort(), { OIDC_CLIENT_ID: "splat", SPLAT_ALLOWED_DOMAINS: "example.com" });
  assert.match(half.child.log, /UI sign-in is misconfigured.*OIDC_DISCOVERY_URL, OIDC_CLIENT_SECRET are not set/);
  const page = await fetch(`${half.base}/`, { redirect: "manual" });
  assert.equal(page.status, 500);
  const html = await page.text();
  assert.match(html, /OIDC_DISCOVERY_URL, OIDC_CLIENT_SECRET are not set/);
  assert.equal((await fetch(`${half.base}/_health`)).status, 200);
  assert.equal(await sendEnvelope(half.dsn), 200);
  half.child.kill("SIGTERM");
});
