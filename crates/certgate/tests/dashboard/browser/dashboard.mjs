// The dashboard flows in Debian's Chromium (never a downloaded browser), driven by
// playwright-core. Started by tests/dashboard/main.rs, which provides a running certgate
// (GW_URL, GW_SECRET), an upstream (UPSTREAM_URL) and a client certificate (CLIENT_CERT,
// CLIENT_KEY, trusted CA in CA_CERT). Exits non-zero on the first failed check.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import https from "node:https";
import path from "node:path";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const GW = env("GW_URL");
const SECRET = env("GW_SECRET");
const UPSTREAM = env("UPSTREAM_URL");
const CERT = fs.readFileSync(env("CLIENT_CERT"), "utf8");
const KEY = fs.readFileSync(env("CLIENT_KEY"), "utf8");
const CA = fs.readFileSync(env("CA_CERT"), "utf8");
const SHOTS = env("SCREENSHOT_DIR");

// A real mTLS request with the client certificate alone (what `curl --cert --key` does).
function mtlsGet(urlPath) {
  return new Promise((resolve, reject) => {
    const u = new URL(urlPath, GW);
    const req = https.request({ host: u.hostname, port: u.port, path: u.pathname, method: "GET",
      cert: CERT, key: KEY, ca: CA, servername: "localhost", agent: false }, (res) => {
      let body = "";
      res.on("data", (c) => { body += c; });
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  console.log(`screenshot ${name}.png`);
}

const step = (name) => console.log(`--- ${name}`);

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => { console.error("page error:", e.message); process.exitCode = 1; });

  step("unauthenticated dashboard calls are refused");
  const anon = await page.request.post(`${GW}/api/keys/create`, { data: {} });
  assert.equal(anon.status(), 403);

  step("sign in (wrong secret, then the right one)");
  await page.goto(`${GW}/dashboard/`);
  await page.getByLabel("Gateway secret").fill("not-the-secret");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "Wrong secret" }).waitFor();
  await shot(page, "signin");
  await page.getByLabel("Gateway secret").fill(SECRET);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Certificates" }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "certgate_dashboard");
  assert.ok(session, "session cookie set");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  assert.equal(session.path, "/dashboard", "the session cookie is scoped to the dashboard");
  assert.ok(session.expires > Date.now() / 1000, "cookie has an expiry");
  // A state-changing call with the cookie but without the CSRF token is refused.
  const forged = await page.request.post(`${GW}/dashboard/gw/reload/group`);
  assert.equal(forged.status(), 403);
  assert.match(await forged.text(), /CSRF/);

  step("an expired certificate is highlighted; delete it (with the revocation warning)");
  const expiredRow = page.locator("#certs-table tbody tr", { hasText: "expired-client" });
  await expiredRow.waitFor();
  assert.match(await expiredRow.getAttribute("class"), /expired/);
  assert.match(await expiredRow.textContent(), /expired/);
  await page.getByRole("button", { name: "Delete certificate expired-client" }).click();
  const warning = await page.locator("#confirm-text").textContent();
  assert.match(warning, /revokes every client/);
  await page.getByRole("button", { name: "Delete certificate", exact: true }).click();
  await page.locator("#certs-empty").waitFor();

  step("empty state, then upload a bad PEM");
  await page.getByLabel("Certificate (PEM)").fill("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
  await page.getByRole("button", { name: "Upload" }).click();
  const badPem = page.locator("#upload-error");
  await badPem.waitFor({ state: "visible" });
  const badText = await badPem.textContent();
  assert.match(badText, /base64|PEM|certificate/i, `error shown as the API gives it: ${badText}`);
  await shot(page, "bad-pem");

  step("upload the client certificate");
  await page.getByLabel("Certificate (PEM)").fill(CERT);
  await page.getByRole("button", { name: "Upload" }).click();
  await page.locator("#upload-ok").waitFor({ state: "visible" });
  const row = page.locator("#certs-table tbody tr");
  assert.equal(await row.count(), 1);
  assert.match(await row.first().textContent(), /client-1/);
  await shot(page, "certificates");

  step("create a Certificate Authentication API in the designer");
  await page.getByRole("link", { name: "APIs" }).click();
  await page.locator("#apis-empty").waitFor();
  await page.getByRole("button", { name: "Create API" }).click();
  await page.getByRole("heading", { name: "API Designer" }).waitFor();
  // Validation messages come first.
  await page.getByRole("button", { name: "Create API" }).click();
  await page.locator("#designer-error").filter({ hasText: "Name is required" }).waitFor();
  await page.getByLabel("Name", { exact: true }).fill("Orders");
  await page.getByLabel("Listen path", { exact: true }).fill("/orders/");
  await page.getByLabel("Upstream URL", { exact: true }).fill(UPSTREAM);
  await page.getByLabel("Authentication", { exact: true }).check();
  await page.getByLabel("Authentication mode").selectOption({ label: "Certificate Authentication" });
  await shot(page, "designer");
  await page.getByRole("button", { name: "Create API" }).click();
  await page.locator("#apis-table").waitFor();
  assert.match(await page.locator("#apis-table").textContent(), /Orders.*Certificate Authentication/s);
  await shot(page, "apis");

  step("edit the API: the designer loads what was saved, and saves a change");
  await page.getByRole("link", { name: "Orders" }).click();
  await page.getByRole("heading", { name: "Edit Orders" }).waitFor();
  assert.equal(await page.getByLabel("Listen path", { exact: true }).inputValue(), "/orders/");
  assert.equal(await page.getByLabel("Authentication mode").inputValue(), "certificate");
  await page.getByLabel("Name", { exact: true }).fill("Orders API");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#apis-table").filter({ hasText: "Orders API" }).waitFor();

  step("create a key for the certificate (Authentication tab)");
  await page.getByRole("link", { name: "Keys" }).click();
  await page.locator("#keys-empty").waitFor();
  await page.getByLabel(/Orders API/).check();
  const authTab = page.getByRole("tab", { name: "Authentication" });
  await authTab.waitFor({ state: "visible" });
  await page.getByRole("button", { name: "Create key" }).click();
  await page.locator("#key-error").filter({ hasText: "pick the client certificate" }).waitFor();
  await page.getByLabel("Client certificate").selectOption({ index: 1 });
  await shot(page, "keys-auth-tab");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.locator("#key-ok").waitFor({ state: "visible" });
  assert.equal(await page.locator("#keys-table tbody tr").count(), 1);
  await shot(page, "keys");

  step("a real mTLS client call succeeds");
  const ok = await mtlsGet("/orders/hello");
  assert.equal(ok.status, 200, `mTLS call: ${ok.status} ${ok.body}`);

  step("revoke the key in the UI; the call is refused");
  await page.getByRole("button", { name: /Revoke key/ }).click();
  await page.getByRole("button", { name: "Revoke key" }).last().click();
  await page.locator("#keys-empty").waitFor();
  const refused = await mtlsGet("/orders/hello");
  assert.ok([401, 403].includes(refused.status), `after revoke: ${refused.status} ${refused.body}`);

  step("the certificate page shows the certificate is no longer used; narrow window");
  await page.setViewportSize({ width: 420, height: 900 });
  await page.getByRole("link", { name: "Certificates" }).click();
  await page.locator("#certs-table").waitFor();
  assert.match(await page.locator("#certs-table").textContent(), /none/);
  await shot(page, "certificates-narrow");

  step("an API called from the signed-in browser never sees the session or the secret");
  const admin = { "x-tyk-authorization": SECRET };
  const openApi = { api_id: "open", org_id: "default", name: "Open", use_keyless: true,
    proxy: { listen_path: "/open/", strip_listen_path: true, target_url: UPSTREAM },
    version_data: { not_versioned: true, versions: { Default: { name: "Default" } } } };
  assert.equal((await page.request.post(`${GW}/tyk/apis`, { headers: admin, data: openApi })).status(), 200);
  assert.equal((await page.request.get(`${GW}/tyk/reload?block=true`, { headers: admin })).status(), 200);
  // The page's own call: the browser decides which cookies go along.
  const fromPage = await page.evaluate(async (secret) => {
    const r = await fetch("/open/echo", { credentials: "same-origin",
      headers: { "X-Tyk-Authorization": secret } });
    return { status: r.status, body: await r.json() };
  }, SECRET);
  assert.equal(fromPage.status, 200);
  // A replayed cookie and the secret header, sent on purpose, are stripped as well.
  const replayed = await page.request.get(`${GW}/open/echo`, { headers: { ...admin,
    cookie: `theme=dark; certgate_dashboard=${session.value}` } });
  assert.equal(replayed.status(), 200);
  for (const seen of [fromPage.body.headers, (await replayed.json()).headers]) {
    assert.equal(seen["x-tyk-authorization"], undefined, `secret reached the upstream: ${JSON.stringify(seen)}`);
    assert.doesNotMatch(seen.cookie ?? "", /certgate_dashboard/, `session reached the upstream: ${JSON.stringify(seen)}`);
  }
  assert.equal((await replayed.json()).headers.cookie, "theme=dark");

  step("sign out");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("Gateway secret").waitFor();
  const after = await page.request.get(`${GW}/dashboard/gw/apis`);
  assert.equal(after.status(), 401);
  console.log("ALL FLOWS PASSED");
} catch (e) {
  // Leave the page as the browser showed it, for the failure report.
  for (const ctx of browser.contexts()) {
    for (const p of ctx.pages()) await p.screenshot({ path: path.join(SHOTS, "failure.png"), fullPage: true });
  }
  throw e;
} finally {
  await browser.close();
}
