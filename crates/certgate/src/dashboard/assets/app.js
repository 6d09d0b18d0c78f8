// certgate Dashboard: a small single-page app over the Gateway API (/dashboard/gw/…, the
// same handlers as /tyk/…) and the Dashboard API subset (/dashboard/api/…, where the
// session cookie, scoped to /dashboard, is sent). No build step, no CDN.
"use strict";

const state = { csrf: null, certs: [], apis: [] };
const main = () => document.getElementById("main");
const ORG = "default";

// ---- helpers --------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function call(method, path, body, type) {
  const headers = {};
  if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
  let payload;
  if (body !== undefined) {
    if (typeof body === "string") {
      payload = body;
      headers["Content-Type"] = type || "text/plain";
    } else {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
  }
  const resp = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = { message: text }; }
  if (resp.status === 401 && state.csrf) {
    state.csrf = null;
    showSignIn("Your session has expired. Sign in again.");
    throw new Error("signed out");
  }
  if (!resp.ok) {
    const msg = (data && (data.message || data.error)) || `HTTP ${resp.status}`;
    const err = new Error(msg);
    err.status = resp.status;
    throw err;
  }
  return data;
}

const gw = (method, path, body, type) => call(method, "/dashboard/gw/" + path, body, type);

function errorBox(id) {
  return el("div", { id, class: "error", role: "alert", hidden: true });
}

function showError(box, message) {
  box.textContent = message;
  box.hidden = false;
  box.focus?.();
}

function confirmDialog(title, text, okLabel) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.returnValue = "cancel";
    dlg.showModal();
  });
}

function fmtDate(unix) {
  if (!unix || unix <= 0) return "never";
  return new Date(unix * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

function setView(name) {
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function page(title, ...children) {
  const m = main();
  m.replaceChildren(el("h1", {}, title), ...children);
  m.focus();
}

// ---- sign-in --------------------------------------------------------------------------

function showSignIn(message) {
  document.getElementById("nav").hidden = true;
  const err = errorBox("signin-error");
  const input = el("input", { id: "secret", type: "password", name: "secret",
    autocomplete: "current-password", required: true });
  const form = el("form", { class: "card signin", onsubmit: async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    try {
      const r = await call("POST", "/dashboard/login", { secret: input.value });
      state.csrf = r.csrf;
      document.getElementById("nav").hidden = false;
      if (!location.hash || location.hash === "#/signin") location.hash = "#/certificates";
      else route();
    } catch (e) {
      showError(err, e.message);
    }
  } },
  el("h1", {}, "Sign in"),
  el("p", { class: "hint" }, "Use the gateway's secret (the `secret` of tyk.conf)."),
  el("label", { for: "secret" }, "Gateway secret"), input, err,
  el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Sign in")));
  main().replaceChildren(form);
  if (message) showError(err, message);
  input.focus();
}

async function signOut() {
  try { await call("POST", "/dashboard/logout"); } catch { /* already gone */ }
  state.csrf = null;
  location.hash = "#/signin";
  showSignIn();
}

// ---- certificates ---------------------------------------------------------------------

async function loadCerts() {
  const r = await call("GET", "/dashboard/api/certs");
  state.certs = r.certs || [];
  return state.certs;
}

async function viewCertificates() {
  setView("certificates");
  const certs = await loadCerts();
  const now = Date.now() / 1000;
  const soon = now + 30 * 86400;
  const list = certs.length === 0
    ? el("p", { class: "empty", id: "certs-empty" },
      "No certificates yet. Upload a client certificate below, then create a key for it on the Keys page.")
    : el("div", { class: "table-wrap" }, el("table", { id: "certs-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Subject CN"), el("th", { class: "opt" }, "Issuer"),
        el("th", {}, "SHA-256 fingerprint"), el("th", {}, "Not after"),
        el("th", { class: "opt" }, "Private key"), el("th", {}, "Used by keys"), el("th", {}, ""))),
      el("tbody", {}, certs.map((c) => {
        const cls = c.not_after < now ? "expired" : c.not_after < soon ? "expiring" : "";
        const badge = cls === "expired" ? el("span", { class: "badge expired" }, "expired")
          : cls === "expiring" ? el("span", { class: "badge expiring" }, "expires within 30 days") : null;
        return el("tr", { class: cls, "data-id": c.id },
          el("td", {}, c.subject_cn || "(none)"),
          el("td", { class: "opt" }, c.issuer_cn || ""),
          el("td", { class: "mono" }, c.fingerprint),
          el("td", {}, fmtDate(c.not_after), " ", badge),
          el("td", { class: "opt" }, c.has_private_key ? "yes" : "no"),
          el("td", { class: "mono" }, c.keys.length ? c.keys.join(", ") : "none"),
          el("td", {}, el("button", { type: "button", class: "danger",
            "aria-label": `Delete certificate ${c.subject_cn || c.id}`,
            onclick: () => deleteCert(c) }, "Delete")));
      }))));
  const err = errorBox("upload-error");
  const pem = el("textarea", { id: "pem", name: "pem",
    placeholder: "-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----" });
  const file = el("input", { id: "pem-file", type: "file", accept: ".pem,.crt,.cer",
    onchange: async () => { if (file.files[0]) pem.value = await file.files[0].text(); } });
  const ok = el("div", { class: "notice", role: "status", hidden: true, id: "upload-ok" });
  const form = el("form", { class: "card", id: "upload-form", onsubmit: async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    if (!pem.value.trim()) return showError(err, "Paste a PEM certificate or pick a file first.");
    try {
      const r = await call("POST", `/dashboard/api/certs?org_id=${ORG}`, pem.value, "application/x-pem-file");
      ok.textContent = `Certificate uploaded: ${r.id}`;
      ok.hidden = false;
      pem.value = "";
      await viewCertificates();
      const notice = document.getElementById("upload-ok");
      notice.textContent = `Certificate uploaded: ${r.id}`;
      notice.hidden = false;
    } catch (e) {
      if (e.message !== "signed out") showError(err, e.message);
    }
  } },
  el("h2", {}, "Upload a certificate"),
  el("label", { for: "pem" }, "Certificate (PEM)"), pem,
  el("label", { for: "pem-file" }, "…or pick a file"), file,
  err, ok,
  el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Upload")));
  page("Certificates", list, form);
}

async function deleteCert(c) {
  const users = c.keys.length;
  const sure = await confirmDialog("Delete this certificate?",
    `Deleting ${c.subject_cn || c.id} revokes every client that authenticates with it` +
    (users ? ` (${users} key${users > 1 ? "s" : ""} use it).` : ".") + " This cannot be undone.",
    "Delete certificate");
  if (!sure) return;
  await gw("DELETE", `certs/${encodeURIComponent(c.id)}?org_id=${encodeURIComponent(c.org_id || ORG)}`);
  await viewCertificates();
}

// ---- APIs -----------------------------------------------------------------------------

async function viewApis() {
  setView("apis");
  const apis = (await gw("GET", "apis")) || [];
  state.apis = apis;
  const list = apis.length === 0
    ? el("p", { class: "empty", id: "apis-empty" },
      "No APIs yet. Create one with the button below; pick Certificate Authentication to let clients in with their certificate alone.")
    : el("div", { class: "table-wrap" }, el("table", { id: "apis-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Listen path"),
        el("th", { class: "opt" }, "Upstream"), el("th", {}, "Authentication"))),
      el("tbody", {}, apis.map((a) => el("tr", {},
        el("td", {}, el("a", { href: `#/apis/${encodeURIComponent(a.api_id)}` }, a.name || a.api_id)),
        el("td", { class: "mono" }, a.proxy?.listen_path || ""),
        el("td", { class: "opt mono" }, a.proxy?.target_url || ""),
        el("td", {}, authLabel(a)))))));
  page("APIs", list, el("div", { class: "actions" },
    el("button", { type: "button", class: "primary", onclick: () => { location.hash = "#/apis/new"; } },
      "Create API")));
}

function authLabel(a) {
  if (a.use_keyless) return "keyless";
  if (a.auth_configs?.authToken?.use_certificate) return "Certificate Authentication";
  return "Auth Token";
}

async function viewDesigner(id) {
  setView("apis");
  const editing = id && id !== "new";
  let doc = null;
  if (editing) doc = await gw("GET", `apis/oas/${encodeURIComponent(id)}`);
  const certs = await loadCerts();
  const x = doc?.["x-tyk-api-gateway"] || {};
  const server = x.server || {};
  const authOn = !!server.authentication?.enabled;
  const certAuth = !!server.authentication?.certificateAuth?.enabled;
  const allow = server.clientCertificates || {};
  const field = (label, name, value, attrs = {}) => [
    el("label", { for: name }, label),
    el("input", { id: name, name, type: "text", value: value ?? "", ...attrs })];

  const authEnabled = el("input", { id: "auth-enabled", type: "checkbox", checked: authOn || !editing });
  const authMode = el("select", { id: "auth-mode", name: "auth-mode" },
    el("option", { value: "certificate", selected: certAuth || !editing }, "Certificate Authentication"),
    el("option", { value: "token", selected: authOn && !certAuth && editing }, "Auth Token"));
  const syncAuth = () => { authMode.disabled = !authEnabled.checked; };
  authEnabled.addEventListener("change", syncAuth);
  syncAuth();
  const allowOn = el("input", { id: "allow-enabled", type: "checkbox", checked: !!allow.enabled });
  const allowList = el("div", { class: "checklist", id: "allow-list", role: "group",
    "aria-label": "Certificates allowed" },
  certs.length === 0 ? el("p", { class: "hint" }, "The certificate store is empty.")
    : certs.map((c) => el("label", { class: "inline" },
      el("input", { type: "checkbox", name: "allow", value: c.id,
        checked: (allow.allowlist || []).includes(c.id) }),
      `${c.subject_cn || "(no CN)"} — ${c.id.slice(0, 24)}…`)));

  const err = errorBox("designer-error");
  const form = el("form", { class: "card", id: "designer", novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const v = (n) => form.querySelector(`[name=${n}]`).value.trim();
    const problems = [];
    if (!v("name")) problems.push("Name is required.");
    if (!v("listen").startsWith("/")) problems.push("Listen path must start with “/”.");
    try { const u = new URL(v("upstream")); if (!/^https?:$/.test(u.protocol)) throw 0; }
    catch { problems.push("Upstream URL must be an http:// or https:// URL."); }
    if (problems.length) return showError(err, problems.join("\n"));
    const apiId = editing ? id : v("name").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") +
      "-" + Math.random().toString(16).slice(2, 8);
    const out = doc ? structuredClone(doc) : {
      openapi: "3.0.3", info: { title: v("name"), version: "1.0.0" }, paths: {} };
    out.info = { ...(out.info || {}), title: v("name") };
    const xo = out["x-tyk-api-gateway"] = out["x-tyk-api-gateway"] || {};
    xo.info = { ...(xo.info || {}), id: apiId, orgId: xo.info?.orgId || ORG, name: v("name"),
      state: { active: true } };
    xo.upstream = { ...(xo.upstream || {}), url: v("upstream") };
    const srv = xo.server = xo.server || {};
    srv.listenPath = { value: v("listen"), strip: form.querySelector("#strip").checked };
    const domain = v("domain");
    if (domain) srv.customDomain = { enabled: true, name: domain }; else delete srv.customDomain;
    if (authEnabled.checked) {
      const cert = authMode.value === "certificate";
      srv.authentication = { ...(srv.authentication || {}), enabled: true,
        certificateAuth: { enabled: cert } };
      if (!cert) {
        srv.authentication.securitySchemes = srv.authentication.securitySchemes ||
          { authToken: { enabled: true } };
        out.components = out.components || {};
        out.components.securitySchemes = out.components.securitySchemes ||
          { authToken: { type: "apiKey", in: "header", name: "Authorization" } };
        out.security = out.security || [{ authToken: [] }];
      }
    } else {
      srv.authentication = { enabled: false };
    }
    const ids = [...form.querySelectorAll("input[name=allow]:checked")].map((i) => i.value);
    if (allowOn.checked && ids.length === 0) return showError(err, "Pick at least one certificate for the allow list, or turn it off.");
    srv.clientCertificates = { enabled: allowOn.checked, allowlist: allowOn.checked ? ids : [] };
    try {
      if (editing) await gw("PUT", `apis/oas/${encodeURIComponent(id)}`, out);
      else await gw("POST", "apis/oas", out);
      await gw("GET", "reload?block=true");
      location.hash = "#/apis";
    } catch (e) {
      if (e.message !== "signed out") showError(err, e.message);
    }
  } },
  el("h2", {}, editing ? `Edit ${x.info?.name || id}` : "New API"),
  field("Name", "name", x.info?.name || doc?.info?.title, { required: true }),
  field("Listen path", "listen", server.listenPath?.value || "/", { required: true }),
  el("label", { class: "inline" }, el("input", { id: "strip", type: "checkbox",
    checked: editing ? !!server.listenPath?.strip : true }), "Strip the listen path before proxying"),
  field("Upstream URL", "upstream", x.upstream?.url || "", { type: "url", required: true,
    placeholder: "http://backend.internal:8080/" }),
  field("Custom domain (optional)", "domain", server.customDomain?.enabled ? server.customDomain.name : ""),
  el("fieldset", { id: "server-section" }, el("legend", {}, "Server"),
    el("label", { class: "inline" }, authEnabled, "Authentication"),
    el("label", { for: "auth-mode" }, "Authentication mode"), authMode,
    el("p", { class: "hint" }, "Certificate Authentication: the client's certificate is its key. " +
      "Turn Authentication off for a keyless API."),
    el("label", { class: "inline" }, allowOn, "Static client certificate allow list"),
    allowList),
  err,
  el("div", { class: "actions" },
    el("button", { type: "submit", class: "primary" }, editing ? "Save" : "Create API"),
    el("button", { type: "button", onclick: () => { location.hash = "#/apis"; } }, "Cancel")));
  page("API Designer", form);
}

// ---- keys -----------------------------------------------------------------------------

async function viewKeys() {
  setView("keys");
  const [keysResp, apis, certs] = await Promise.all([call("GET", "/dashboard/api/keys"), gw("GET", "apis"), loadCerts()]);
  state.apis = apis || [];
  const keys = keysResp.keys || [];
  const list = keys.length === 0
    ? el("p", { class: "empty", id: "keys-empty" },
      "No keys yet. Create one below: choose the APIs, then (for Certificate Authentication) the client certificate.")
    : el("div", { class: "table-wrap" }, el("table", { id: "keys-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "Key"), el("th", {}, "Certificate"),
        el("th", { class: "opt" }, "APIs"), el("th", {}, "Expires"), el("th", {}, ""))),
      el("tbody", {}, keys.map((k) => el("tr", { "data-key": k.key_hash },
        el("td", { class: "mono" }, k.key_hash),
        el("td", { class: "mono" }, k.certificate || "—"),
        el("td", { class: "opt" }, (k.apis || []).join(", ") || "all"),
        el("td", {}, fmtDate(k.expires)),
        el("td", {}, el("button", { type: "button", class: "danger",
          "aria-label": `Revoke key ${k.key_hash}`, onclick: () => revokeKey(k) }, "Revoke")))))));

  const certApis = new Set(state.apis.filter((a) => a.auth_configs?.authToken?.use_certificate && !a.use_keyless)
    .map((a) => a.api_id));
  const apiChecks = el("div", { class: "checklist", role: "group", "aria-label": "APIs", id: "key-apis" },
    state.apis.length === 0 ? el("p", { class: "hint" }, "Create an API first.")
      : state.apis.map((a) => el("label", { class: "inline" },
        el("input", { type: "checkbox", name: "api", value: a.api_id, onchange: () => syncTabs() }),
        `${a.name || a.api_id} (${authLabel(a)})`)));
  const num = (label, name, value, hint) => [el("label", { for: name }, label),
    el("input", { id: name, name, type: "number", value, step: "any" }),
    hint ? el("p", { class: "hint" }, hint) : null];
  const accessPanel = el("div", { class: "tabpanel", id: "panel-access", role: "tabpanel",
    "aria-labelledby": "tab-access" },
  el("p", { class: "hint" }, "APIs this key may call"), apiChecks,
  num("Rate limit: requests", "rate", 1000), num("…per seconds", "per", 60),
  num("Quota: requests per period", "quota_max", -1, "-1 for no quota"),
  num("Quota period (seconds)", "quota_renewal_rate", 3600),
  el("label", { for: "expires" }, "Expires (optional)"),
  el("input", { id: "expires", name: "expires", type: "date" }));
  const certSelect = el("select", { id: "key-cert", name: "certificate" },
    el("option", { value: "" }, certs.length ? "Choose a certificate…" : "The certificate store is empty"),
    certs.map((c) => el("option", { value: c.id }, `${c.subject_cn || "(no CN)"} — ${c.fingerprint.slice(0, 16)}…`)));
  const authPanel = el("div", { class: "tabpanel", id: "panel-auth", role: "tabpanel",
    "aria-labelledby": "tab-auth", hidden: true },
  el("label", { for: "key-cert" }, "Client certificate"), certSelect,
  el("p", { class: "hint" }, "Clients presenting this certificate are authenticated as this key."));
  const tabAccess = el("button", { type: "button", role: "tab", id: "tab-access",
    "aria-selected": "true", "aria-controls": "panel-access", onclick: () => select("access") }, "Access");
  const tabAuth = el("button", { type: "button", role: "tab", id: "tab-auth", hidden: true,
    "aria-selected": "false", "aria-controls": "panel-auth", onclick: () => select("auth") }, "Authentication");
  function select(which) {
    tabAccess.setAttribute("aria-selected", String(which === "access"));
    tabAuth.setAttribute("aria-selected", String(which === "auth"));
    accessPanel.hidden = which !== "access";
    authPanel.hidden = which !== "auth";
  }
  function chosen() { return [...apiChecks.querySelectorAll("input[name=api]:checked")].map((i) => i.value); }
  function syncTabs() {
    const needCert = chosen().some((id) => certApis.has(id));
    tabAuth.hidden = !needCert;
    if (!needCert) select("access");
  }
  const err = errorBox("key-error");
  const ok = el("div", { class: "notice", role: "status", hidden: true, id: "key-ok" });
  const form = el("form", { class: "card", id: "key-form", novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const ids = chosen();
    if (ids.length === 0) return showError(err, "Choose at least one API.");
    const needCert = ids.some((id) => certApis.has(id));
    if (needCert && !certSelect.value) {
      select("auth");
      return showError(err, "A Certificate Authentication API is chosen: pick the client certificate on the Authentication tab.");
    }
    const n = (name) => Number(form.querySelector(`[name=${name}]`).value);
    const expires = form.querySelector("[name=expires]").value;
    const body = { org_id: ORG, rate: n("rate"), per: n("per"), quota_max: n("quota_max"),
      quota_renewal_rate: n("quota_renewal_rate"),
      expires: expires ? Math.floor(Date.parse(expires + "T23:59:59Z") / 1000) : 0,
      access_rights: Object.fromEntries(ids.map((id) => {
        const a = state.apis.find((x) => x.api_id === id);
        return [id, { api_id: id, api_name: a?.name || id, versions: ["Default"] }];
      })) };
    if (needCert) body.certificate = certSelect.value;
    try {
      const r = await call("POST", "/dashboard/api/keys/create", body);
      await viewKeys();
      const notice = document.getElementById("key-ok");
      notice.textContent = `Key created: ${r.key_hash || r.key}`;
      notice.hidden = false;
    } catch (e) {
      if (e.message !== "signed out") showError(err, e.message);
    }
  } },
  el("h2", {}, "Create a key"),
  el("div", { class: "tabs", role: "tablist" }, tabAccess, tabAuth), accessPanel, authPanel,
  err, ok,
  el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Create key")));
  page("Keys", list, form);
}

async function revokeKey(k) {
  const sure = await confirmDialog("Revoke this key?",
    `The key ${k.key_hash} is deleted; its client is refused from now on, on every gateway node.`,
    "Revoke key");
  if (!sure) return;
  await gw("DELETE", `keys/${encodeURIComponent(k.key_hash)}${k.hashed ? "?hashed=true" : ""}`);
  await viewKeys();
}

// ---- routing --------------------------------------------------------------------------

async function route() {
  if (!state.csrf) {
    try {
      const s = await call("GET", "/dashboard/session");
      state.csrf = s.csrf;
    } catch {
      return showSignIn();
    }
  }
  document.getElementById("nav").hidden = false;
  const [, view, id] = (location.hash || "#/certificates").split("/");
  try {
    if (view === "apis" && id) await viewDesigner(decodeURIComponent(id));
    else if (view === "apis") await viewApis();
    else if (view === "keys") await viewKeys();
    else await viewCertificates();
  } catch (e) {
    if (e.message !== "signed out") {
      main().replaceChildren(el("h1", {}, "Something went wrong"), el("p", { class: "error", role: "alert" }, e.message));
    }
  }
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("signout").addEventListener("click", signOut);
  route();
});
