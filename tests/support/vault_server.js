// A stand-in for Azure Key Vault's data plane over HTTPS, for the test suite and the benchmark
// (Node, so that the benchmark measures kv-notify and not the stand-in: thousands of requests a
// second on one core).
//
// Serves several vaults on one port, told apart by the Host header (kv-a.localhost, ...):
//   GET /{secrets|keys|certificates}?api-version=&maxresults=N[&$skiptoken=K]  pages of items
//       (id or kid, attributes with epoch-second enabled/exp/nbf/created/updated, tags, managed),
//       never values; nextLink is absolute and null on the last page.
//   GET /{kind}/{name}/versions?...   pages of an object's versions (ids with the version): the
//       current one (`version`, default a digest of the name) and any `older` ones.
//   GET /certificates/{name}          the current version's bundle: id with the version,
//       attributes, a placeholder public `cer` and the policy (AutoRenew or EmailContacts).
// A vault listed in `listOnly` grants `list` alone, as an access policy can: a certificate's
// bundle gets 403 (AccessDenied).
// Like Key Vault, a request without a bearer token gets 401 with the challenge the official
// clients start with; a token for another resource (its `aud`) gets 401 too. Any other path,
// in particular a secret's value (/secrets/{name}[/{version}]), gets 403 and is logged as a
// violation.
//
// The vaults' contents are read from STATE (JSON, reloaded when it changes):
//   {"vaults": {"kv-a": {"secrets": [{"name", "version", "older", "exp", "nbf", "enabled",
//                                     "managed", "tags"}],
//                        "keys": [...], "certificates": [{..., "autoRenew": true}]}},
//    "deny": {"kv-b": "ForbiddenByRbac"},                      // 403 with that inner error code
//    "listOnly": ["kv-c"],
//    "throttle": {"kv-a": {"count": 3, "retryAfter": 1}}}      // the next 3 requests get 429
// The host management.localhost stands in for Azure Resource Manager (tokens for
// https://management.localhost:PORT/):
//   GET /subscriptions/{id}/providers/Microsoft.KeyVault/vaults?api-version=…  the vaults of
//       `subscriptions[id]` (2 a page, nextLink absolute), each with its tags and vaultUri
//       (https://NAME.localhost:PORT/); a subscription given as a string gets 403 with that code.
//   {"subscriptions": {"0000…0001": [{"name": "kv-a", "tags": {"owner": "ann@contoso.com"}}],
//                      "0000…0002": "AuthorizationFailed"}}
// Each request is appended to LOG as "VAULT GET PATH STATUS"; the count of TLS connections
// opened is in LOG.connections.
//
// usage: node vault_server.js PORT CERT KEY STATE LOG RESOURCE [LATENCY_MS] [LIMIT_PER_10S]

"use strict";
const crypto = require("crypto");
const fs = require("fs");
const https = require("https");

const [PORT, CERT, KEY, STATE_FILE, LOG_FILE, RESOURCE] = process.argv.slice(2, 8);
const LATENCY = Number(process.argv[8] || 0);
const LIMIT = Number(process.argv[9] || 0);
const KINDS = new Set(["secrets", "keys", "certificates"]);

let state = { mtime: null, data: {}, throttle: {} };
const windows = new Map();
// Kept open: one write per request, not an open and a close (readers see every line at once).
const log = fs.openSync(LOG_FILE, "a");

function load() {
  const mtime = fs.statSync(STATE_FILE).mtimeMs;
  if (state.mtime !== mtime) {
    const data = JSON.parse(fs.readFileSync(STATE_FILE, "utf8"));
    // Objects by vault, kind and name, for the reads of one object.
    const byName = new Map();
    for (const [vault, contents] of Object.entries(data.vaults || {})) {
      for (const kind of KINDS) {
        for (const obj of contents[kind] || []) {
          const key = `${vault}/${kind}/${obj.name}`;
          if (!byName.has(key)) byName.set(key, obj);
        }
      }
    }
    state = { mtime, data, byName, throttle: JSON.parse(JSON.stringify(data.throttle || {})) };
  }
  return state.data;
}

// A token's audience, decoded once per token (a sweep sends the same one thousands of times).
const audiences = new Map();
function audience(header) {
  if (!header || !header.startsWith("Bearer ")) return null;
  if (!audiences.has(header)) {
    let aud = null;
    try {
      aud = JSON.parse(Buffer.from(header.slice(7).split(".")[1], "base64url").toString()).aud;
    } catch {}
    audiences.set(header, aud);
  }
  return audiences.get(header);
}

const versionOf = (obj) => obj.version || crypto.createHash("md5").update(obj.name).digest("hex");

function versions(obj) {
  const older = (obj.older || []).map((v, n) => ({ name: obj.name, version: v, created: 1600000000 + n }));
  return [...older, { ...obj, version: versionOf(obj) }];
}

function item(vault, kind, obj, withVersion) {
  let url = `https://${vault}.localhost:${PORT}/${kind}/${obj.name}`;
  if (withVersion) url += `/${versionOf(obj)}`;
  const created = obj.created || 1700000000;
  const attributes = { enabled: obj.enabled !== false, created, updated: created, recoveryLevel: "Recoverable+Purgeable" };
  for (const field of ["exp", "nbf"]) if (obj[field] != null) attributes[field] = obj[field];
  const out = { attributes, tags: obj.tags || {} };
  out[kind === "keys" ? "kid" : "id"] = url;
  if (obj.managed) out.managed = true;
  if (kind === "certificates") out.x5t = "fLi3U52HunIVNXubkEnf8tP6Wbo";
  return out;
}

function page(vault, kind, objects, query, path, withVersion) {
  const size = Math.min(Number(query.get("maxresults") || 25), 25);
  const start = Number(query.get("$skiptoken") || 0);
  const value = objects.slice(start, start + size).map((o) => item(vault, kind, o, withVersion));
  const following = start + size;
  const nextLink = following < objects.length
    ? `https://${vault}.localhost:${PORT}/${path}?api-version=7.5&$skiptoken=${following}&maxresults=${size}`
    : null;
  return { value, nextLink };
}

function overLimit(vault) {
  const now = Date.now();
  const window = windows.get(vault) || [];
  while (window.length && now - window[0] > 10000) window.shift();
  windows.set(vault, window);
  if (window.length >= LIMIT) return true;
  window.push(now);
  return false;
}

const error = (code, message, inner) => ({ error: { code, message, ...(inner ? { innererror: { code: inner } } : {}) } });

function resourceManager(req) {
  if (audience(req.headers.authorization) !== `https://management.localhost:${PORT}`) {
    return [401, error("InvalidAuthenticationToken", "The access token is invalid."), {}];
  }
  const url = new URL(req.url, "https://x");
  const match = url.pathname.match(/^\/subscriptions\/([^/]+)\/providers\/Microsoft\.KeyVault\/vaults$/i);
  if (!match || !url.searchParams.get("api-version")) {
    fs.appendFileSync(`${LOG_FILE}.violations`, `management GET ${req.url}\n`);
    return [404, error("InvalidResourceType", "not served by the test Resource Manager"), {}];
  }
  const id = match[1];
  const vaults = (load().subscriptions || {})[id];
  if (vaults === undefined) return [404, error("SubscriptionNotFound", `The subscription '${id}' could not be found.`), {}];
  if (typeof vaults === "string") {
    return [403, error(vaults, `The client does not have authorization to perform action 'Microsoft.KeyVault/vaults/read' over scope '/subscriptions/${id}'.`), {}];
  }
  const start = Number(url.searchParams.get("$skipToken") || 0);
  const value = vaults.slice(start, start + 2).map((v) => ({
    id: `/subscriptions/${id}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/${v.name}`,
    name: v.name,
    type: "Microsoft.KeyVault/vaults",
    location: "westeurope",
    tags: v.tags || {},
    properties: { vaultUri: `https://${v.name}.localhost:${PORT}/`, tenantId: "tenant", enableRbacAuthorization: true },
  }));
  const nextLink = start + 2 < vaults.length
    ? `https://management.localhost:${PORT}${url.pathname}?api-version=2023-07-01&$skipToken=${start + 2}`
    : undefined;
  return [200, nextLink ? { value, nextLink } : { value }, {}];
}

function answer(vault, req) {
  if (vault === "management") return resourceManager(req);
  if (audience(req.headers.authorization) !== RESOURCE) {
    const challenge = `Bearer authorization="https://login.microsoftonline.com/tenant", resource="${RESOURCE}"`;
    return [401, error("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."), { "WWW-Authenticate": challenge }];
  }
  const data = load();
  if (LIMIT && overLimit(vault)) return [429, error("Throttled", "Rate limit exceeded"), {}];
  const throttle = state.throttle[vault];
  if (throttle && throttle.count > 0) {
    throttle.count -= 1;
    const headers = throttle.retryAfter != null ? { "Retry-After": String(throttle.retryAfter) } : {};
    return [429, error("Throttled", "Too many requests"), headers];
  }
  if (data.deny && data.deny[vault]) {
    const code = data.deny[vault];
    return [403, error("Forbidden", `Caller is not authorized (${code})`, code), {}];
  }
  const contents = (data.vaults || {})[vault];
  if (!contents) return [404, error("VaultNotFound", "no such vault"), {}];
  const url = new URL(req.url, "https://x");
  const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 1 && KINDS.has(parts[0])) {
    return [200, page(vault, parts[0], contents[parts[0]] || [], url.searchParams, parts[0], false), {}];
  }
  if (parts.length === 3 && KINDS.has(parts[0]) && parts[2] === "versions") {
    const obj = state.byName.get(`${vault}/${parts[0]}/${parts[1]}`);
    if (!obj) return [404, error("NotFound", "no such object"), {}];
    return [200, page(vault, parts[0], versions(obj), url.searchParams, `${parts[0]}/${parts[1]}/versions`, true), {}];
  }
  if (parts.length === 2 && parts[0] === "certificates") {
    if ((data.listOnly || []).includes(vault)) {
      return [403, error("Forbidden", `The caller does not have certificates get permission on key vault '${vault}'`, "AccessDenied"), {}];
    }
    const cert = state.byName.get(`${vault}/certificates/${parts[1]}`);
    if (!cert) return [404, error("CertificateNotFound", "no such certificate"), {}];
    const policy = {
      id: `https://${vault}.localhost:${PORT}/certificates/${parts[1]}/policy`,
      issuer: { name: "Self" },
      lifetime_actions: [{ trigger: { lifetime_percentage: 80 }, action: { action_type: cert.autoRenew ? "AutoRenew" : "EmailContacts" } }],
    };
    return [200, { ...item(vault, "certificates", cert, true), cer: "MIIBszCCAVmgAwIBAgIU", policy }, {}];
  }
  fs.appendFileSync(`${LOG_FILE}.violations`, `${vault} GET ${req.url}\n`);
  return [403, error("Forbidden", "not served by the test vault"), {}];
}

const server = https.createServer({ cert: fs.readFileSync(CERT), key: fs.readFileSync(KEY) }, (req, res) => {
  const vault = (req.headers.host || "").split(":")[0].replace(/\.localhost$/, "");
  const [status, body, headers] = answer(vault, req);
  const data = Buffer.from(JSON.stringify(body));
  setTimeout(() => {
    fs.writeSync(log, `${vault} GET ${req.url} ${status}\n`);
    res.writeHead(status, { ...headers, "Content-Type": "application/json; charset=utf-8", "Content-Length": data.length });
    res.end(data);
  }, LATENCY);
});
server.keepAliveTimeout = 60000;
// TLS connections opened, in LOG.connections (for the benchmark).
let connections = 0;
server.on("secureConnection", () => fs.writeFileSync(`${LOG_FILE}.connections`, String(++connections)));
server.listen(Number(PORT), "127.0.0.1", () => console.log("ready"));
// An orderly exit, so that `node --cpu-prof` writes its profile.
process.on("SIGTERM", () => process.exit(0));
