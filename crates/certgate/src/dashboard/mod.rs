//! The Dashboard: a web UI for certificates, APIs and certificate-bound keys at
//! `/dashboard/`, and the Dashboard API subset the seed names (`POST /api/keys/create`,
//! `GET`/`POST /api/certs`, plus `GET /api/keys`), served on the Gateway API listener.
//!
//! - **Assets** are embedded in the binary (`assets/`): one HTML page, one script, one
//!   stylesheet; no CDN and no build step.
//! - **Sign-in** with the gateway `secret` gives an HttpOnly, `SameSite=Strict` session
//!   cookie scoped to `Path=/dashboard` that expires after [`SESSION_TTL`] (`Secure` on TLS
//!   listeners); the proxy strips it from every upstream request. Each session has
//!   a CSRF token, returned by the sign-in and required in `X-CSRF-Token` on every
//!   state-changing request made with the cookie. Signing out forgets the session.
//!   Sign-in attempts are limited per client address ([`SignInLimiter`]), checked
//!   before the body is read.
//! - **Data** goes through the Gateway API's own handlers: the UI calls
//!   `/dashboard/gw/<path>`, which is `/tyk/<path>` authorised by the session instead of
//!   `X-Tyk-Authorization`, so statuses, messages and validation are the Gateway API's.
//! - **Dashboard API** calls are authorised by the session (and CSRF token) or by the
//!   secret in `Authorization` or `X-Tyk-Authorization`, and answer as the Gateway API
//!   does. The UI calls them as `/dashboard/api/…` (where its cookie is sent). On a gateway port shared with APIs, an API whose listen path matches `/api/…`
//!   takes precedence (see `docs/compatibility.md`).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::gateway::Gateway;
pub use crate::limits::signin::{SignInLimiter, SIGN_IN_ATTEMPTS, SIGN_IN_WINDOW};
use crate::reply::{error, json_response, read_body};
use crate::session::SessionState;

/// How long a dashboard sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// The session cookie's name (the proxy strips it from what goes upstream).
pub use crate::proxy::DASHBOARD_COOKIE as COOKIE;
const CSRF_HEADER: &str = "x-csrf-token";

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// True for the UI's paths.
pub fn is_dashboard_path(path: &str) -> bool {
    path == "/dashboard" || path.starts_with("/dashboard/")
}

/// True for the Dashboard API subset.
pub fn is_api_path(path: &str) -> bool {
    matches!(
        path.trim_end_matches('/'),
        "/api/keys/create" | "/api/certs" | "/api/keys"
    )
}

struct DashSession {
    expires: Instant,
    csrf: String,
    /// SHA-256 of the secret it was opened with: a changed secret ends every session.
    secret: [u8; 32],
}

fn sessions() -> &'static Mutex<HashMap<String, DashSession>> {
    static SESSIONS: OnceLock<Mutex<HashMap<String, DashSession>>> = OnceLock::new();
    SESSIONS.get_or_init(Default::default)
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // aws-lc's CSPRNG; failing to read it is not recoverable for a session token.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return String::new();
    }
    hex::encode(bytes)
}

/// The session named by the request's cookie, if live: its CSRF token.
fn session_of(gw: &Gateway, headers: &http::HeaderMap) -> Option<String> {
    let id = cookie(headers, COOKIE)?;
    let mut map = sessions().lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    map.retain(|_, s| s.expires > now);
    let s = map.get(id)?;
    let current = digest(gw.config.secret.as_bytes());
    bool::from(s.secret.ct_eq(&current)).then(|| s.csrf.clone())
}

fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn csrf_ok(headers: &http::HeaderMap, expected: &str) -> bool {
    headers.get(CSRF_HEADER).is_some_and(|v| {
        bool::from(v.as_bytes().ct_eq(expected.as_bytes())) && !expected.is_empty()
    })
}

fn secret_ok(gw: &Gateway, headers: &http::HeaderMap) -> bool {
    !gw.config.secret.is_empty()
        && ["authorization", "x-tyk-authorization"].iter().any(|h| {
            headers
                .get(*h)
                .is_some_and(|v| gw.config.secret_matches(v.as_bytes()))
        })
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// Why a request is not let in.
enum Denied {
    SignIn,
    Csrf,
}

/// Session (plus CSRF token for changes) required.
fn check_session(gw: &Gateway, req: &http::Request<Body>) -> Result<(), Denied> {
    let csrf = session_of(gw, req.headers()).ok_or(Denied::SignIn)?;
    if is_safe(req.method()) || csrf_ok(req.headers(), &csrf) {
        Ok(())
    } else {
        Err(Denied::Csrf)
    }
}

fn denied(d: Denied) -> Response {
    match d {
        Denied::SignIn => error(StatusCode::UNAUTHORIZED, "Sign in to the dashboard first"),
        Denied::Csrf => error(
            StatusCode::FORBIDDEN,
            "Missing or invalid CSRF token (X-CSRF-Token)",
        ),
    }
}

/// The Gateway API's handlers, given by the control plane: the dashboard's calls that
/// change keys and certificates run through them (already authorised by the sign-in).
pub type GatewayApi =
    fn(Arc<Gateway>, http::Request<Body>) -> Pin<Box<dyn Future<Output = Response> + Send>>;

/// Serves one dashboard or Dashboard API request (the control plane has checked the
/// Gateway API mTLS allow list already).
pub async fn handle(
    gw: Arc<Gateway>,
    tls: bool,
    ip: IpAddr,
    req: http::Request<Body>,
    api: GatewayApi,
) -> Response {
    route(gw, tls, ip, req, api).await
}

async fn route(
    gw: Arc<Gateway>,
    tls: bool,
    ip: IpAddr,
    req: http::Request<Body>,
    api: GatewayApi,
) -> Response {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let rest = path.strip_prefix("/dashboard").unwrap_or(&path);
    if is_api_path(rest) {
        return dashboard_api(gw, req, rest.trim_end_matches('/'), api).await;
    }
    match (&method, rest) {
        (&Method::GET, "" | "/" | "/index.html") => asset(INDEX_HTML, "text/html; charset=utf-8"),
        (&Method::GET, "/app.js") => asset(APP_JS, "text/javascript; charset=utf-8"),
        (&Method::GET, "/app.css") => asset(APP_CSS, "text/css; charset=utf-8"),
        (&Method::POST, "/login") => login(&gw, tls, ip, req).await,
        (&Method::POST, "/logout") => logout(&gw, tls, req),
        (&Method::GET, "/session") => match session_of(&gw, req.headers()) {
            Some(csrf) => json_response(StatusCode::OK, &json!({ "csrf": csrf })),
            None => denied(Denied::SignIn),
        },
        (_, r) if r.starts_with("/gw/") => {
            if let Err(d) = check_session(&gw, &req) {
                return denied(d);
            }
            let target = format!("/tyk/{}", &r["/gw/".len()..]);
            forward(gw, req, &target, api).await
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[derive(Deserialize)]
struct Login {
    secret: String,
}

async fn login(gw: &Gateway, tls: bool, ip: IpAddr, req: http::Request<Body>) -> Response {
    if let Err(wait) = gw.sign_ins.attempt(ip) {
        tracing::warn!(%ip, "dashboard sign-in refused: too many attempts");
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts from this address; try again later",
        );
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(wait));
        return r;
    }
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    let Ok(login) = serde_json::from_slice::<Login>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Expected a JSON body {\"secret\": \"…\"}",
        );
    };
    if gw.config.secret.is_empty() || !gw.config.secret_matches(login.secret.as_bytes()) {
        tracing::warn!("dashboard sign-in refused: wrong secret");
        return error(StatusCode::UNAUTHORIZED, "Wrong secret");
    }
    let id = random_hex();
    let csrf = random_hex();
    if id.is_empty() || csrf.is_empty() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "No randomness available");
    }
    sessions().lock().unwrap_or_else(|p| p.into_inner()).insert(
        id.clone(),
        DashSession {
            expires: Instant::now() + SESSION_TTL,
            csrf: csrf.clone(),
            secret: digest(gw.config.secret.as_bytes()),
        },
    );
    let mut r = json_response(StatusCode::OK, &json!({ "status": "ok", "csrf": csrf }));
    set_cookie(&mut r, &id, SESSION_TTL.as_secs(), tls);
    r
}

fn logout(gw: &Gateway, tls: bool, req: http::Request<Body>) -> Response {
    if let Err(d) = check_session(gw, &req) {
        return denied(d);
    }
    if let Some(id) = cookie(req.headers(), COOKIE) {
        sessions()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
    let mut r = json_response(StatusCode::OK, &json!({ "status": "ok" }));
    set_cookie(&mut r, "", 0, tls);
    r
}

fn set_cookie(r: &mut Response, value: &str, max_age: u64, tls: bool) {
    let secure = if tls { "; Secure" } else { "" };
    let v = format!(
        "{COOKIE}={value}; Path=/dashboard; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    if let Ok(v) = HeaderValue::try_from(v) {
        r.headers_mut().insert(http::header::SET_COOKIE, v);
    }
}

/// Runs a Gateway API request at `target` (path, the query kept).
async fn forward(
    gw: Arc<Gateway>,
    mut req: http::Request<Body>,
    target: &str,
    api: GatewayApi,
) -> Response {
    let pq = match req.uri().query() {
        Some(q) => format!("{target}?{q}"),
        None => target.to_owned(),
    };
    match pq.parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return error(StatusCode::BAD_REQUEST, "Invalid path"),
    }
    api(gw, req).await
}

async fn dashboard_api(
    gw: Arc<Gateway>,
    req: http::Request<Body>,
    path: &str,
    api: GatewayApi,
) -> Response {
    if !secret_ok(&gw, req.headers()) {
        if let Err(d) = check_session(&gw, &req) {
            return match d {
                Denied::SignIn => error(
                    StatusCode::FORBIDDEN,
                    "Attempted administrative access with invalid or missing key!",
                ),
                d => denied(d),
            };
        }
    }
    match (req.method().clone(), path) {
        (Method::POST, "/api/keys/create") => forward(gw, req, "/tyk/keys/create", api).await,
        (Method::POST, "/api/certs") => forward(gw, req, "/tyk/certs", api).await,
        (Method::GET, "/api/certs") => list_certs(&gw).await,
        (Method::GET, "/api/keys") => list_keys(&gw).await,
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
    }
}

/// Every session in the store, with its store-key hash.
async fn all_sessions(gw: &Gateway) -> Result<Vec<(String, SessionState)>, Response> {
    let prefix = crate::tokens::SESSION_PREFIX;
    let keys = gw
        .store
        .keys_with_prefix(prefix)
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let values = gw
        .store
        .get_many(&keys)
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let mut out = Vec::with_capacity(keys.len());
    for (key, value) in keys.iter().zip(values) {
        let Some(value) = value else { continue };
        // A record that is not a session (foreign data) is skipped, not an error.
        if let Ok(s) = SessionState::from_json(value.as_bytes()) {
            out.push((key[prefix.len()..].to_owned(), s));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// `GET /api/certs`: every certificate in the store, with the keys that use it.
async fn list_certs(gw: &Gateway) -> Response {
    let ids = match gw.store.keys_with_prefix("cert-raw-").await {
        Ok(keys) => keys,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let sessions = match all_sessions(gw).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let raws = match gw.store.get_many(&ids).await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let mut certs: Vec<Value> = Vec::with_capacity(ids.len());
    for (key, raw) in ids.iter().zip(raws) {
        let id = &key["cert-raw-".len()..];
        let Some(raw) = raw else { continue };
        // Expired entries are listed too (the store's reads refuse them): they are the
        // ones an operator must see.
        let Some(c) = crate::certs::leaf_summary(&raw) else {
            continue;
        };
        let users: Vec<&str> = sessions
            .iter()
            .filter(|(_, s)| s.certificate == id)
            .map(|(k, _)| k.as_str())
            .collect();
        let org = id.strip_suffix(&c.sha256_hex).unwrap_or("");
        certs.push(json!({
            "id": id,
            "org_id": org,
            "subject_cn": c.subject_cn,
            "issuer_cn": c.issuer_cn,
            "fingerprint": c.sha256_hex,
            "not_after": c.not_after,
            "has_private_key": c.has_private_key,
            "keys": users,
        }));
    }
    certs.sort_by(|a, b| a["subject_cn"].as_str().cmp(&b["subject_cn"].as_str()));
    json_response(StatusCode::OK, &json!({ "certs": certs }))
}

/// `GET /api/keys`: every key with its certificate, APIs and expiry.
async fn list_keys(gw: &Gateway) -> Response {
    let sessions = match all_sessions(gw).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let keys: Vec<Value> = sessions
        .iter()
        .map(|(hash, s)| {
            let mut apis: Vec<&str> = s.access_rights.keys().map(String::as_str).collect();
            apis.sort_unstable();
            json!({
                "key_hash": hash,
                "org_id": s.org_id,
                "certificate": s.certificate,
                "apis": apis,
                "expires": s.expires,
                "rate": s.rate,
                "per": s.per,
                "quota_max": s.quota_max,
                // How the Gateway API finds it: by hash (`?hashed=true`) or by name.
                "hashed": gw.config.hash_keys,
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "keys": keys }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_ins_are_counted_per_address_and_ipv6_prefix() {
        let l = SignInLimiter::default();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for i in 0..SIGN_IN_ATTEMPTS {
            // Addresses of one /64 share a budget.
            assert!(l.attempt(ip(&format!("2001:db8::{i:x}"))).is_ok());
        }
        let wait = l.attempt(ip("2001:db8::ffff")).unwrap_err();
        assert!((1..=SIGN_IN_WINDOW.as_secs()).contains(&wait));
        assert!(l.attempt(ip("2001:db8:0:1::1")).is_ok());
        // An IPv4 client counts the same however the socket reports it.
        for _ in 0..SIGN_IN_ATTEMPTS {
            assert!(l.attempt(ip("192.0.2.7")).is_ok());
        }
        assert!(l.attempt(ip("::ffff:192.0.2.7")).is_err());
        assert!(l.attempt(ip("192.0.2.8")).is_ok());
    }
}
