//! Helpers for the certificate-auth scenarios that the shared harness
//! (`tests/e2e/support.rs`) does not have: exact Tyk error bodies, key and certificate
//! management calls, direct store access, a strictly single-connection client and a
//! second gateway sharing the first one's store (a cluster sharing Redis).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use certgate::pki::{self, Issued};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use crate::support::*;

pub const DISALLOWED: &str = "Access to this API has been disallowed";
pub const CERT_REQUIRED: &str = "Client certificate required";
pub const CERT_EXPIRED: &str = "Certificate has expired";
pub const KEY_INACTIVE: &str = "Key is inactive, please renew";
pub const KEY_EXPIRED: &str = "Key has expired, please renew";
pub const CLIENT_TLS_REQUIRED: &str = "Client TLS certificate is required";
pub const TLS_NOT_ENABLED: &str = "TLS not enabled";

/// Tyk's data-plane error body (`templates/error.json`): exactly these bytes.
pub fn tyk_body(msg: &str) -> String {
    format!("{{\n    \"error\": \"{msg}\"\n}}")
}

/// `Certificate with SHA256 <hex> not allowed` for the presented leaf.
pub fn not_allowed(cert: &Issued) -> String {
    format!("Certificate with SHA256 {} not allowed", cert.sha256_hex())
}

/// The certificate ID Tyk derives for `cert` uploaded under `org` (§2.1).
pub fn cert_id(org: &str, cert: &Issued) -> String {
    format!("{org}{}", cert.sha256_hex())
}

/// Asserts a refusal: status, exact Tyk body bytes, JSON content type and generator.
pub async fn expect_refused(r: reqwest::Response, status: u16, msg: &str) {
    let got = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let generator = r
        .headers()
        .get("x-generator")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let body = r.text().await.unwrap();
    assert_eq!((got, body.as_str()), (status, tyk_body(msg).as_str()));
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert_eq!(generator.as_deref(), Some("tyk.io"));
}

/// Asserts a request reached the upstream (the echo answers JSON with the method).
pub async fn expect_ok(r: reqwest::Response) {
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "body: {body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["method"], "GET", "not the upstream's echo: {body}");
}

/// Asserts a Gateway API error `{"status":"error","message":<msg>}` (Go encoder + LF).
pub fn expect_api_error(r: (u16, Value), status: u16, msg: &str) {
    assert_eq!(
        r,
        (status, json!({"status": "error", "message": msg})),
        "Gateway API answer"
    );
}

/// GET `url` with an optional `Authorization` token.
pub async fn get(c: &reqwest::Client, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut r = c.get(url);
    if let Some(t) = token {
        r = r.header("authorization", t);
    }
    r.send().await.unwrap()
}

/// A URL on the gateway without a host name: no SNI, `Host: 127.0.0.1:<port>`.
pub fn ip_url(gw: &Gw, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", gw.addr.port())
}

/// A URL on the gateway for `host` (SNI = Host = `host`; the harness resolves it).
pub fn host_url(gw: &Gw, host: &str, path: &str) -> String {
    let scheme = if gw.tls { "https" } else { "http" };
    format!("{scheme}://{host}:{}{path}", gw.addr.port())
}

/// Rebuilds the snapshot (allow lists are resolved then) and waits for it.
pub async fn reload(gw: &Gw) {
    let r = admin(gw)
        .get(gw.url("/tyk/reload?block=true"))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A self-signed client certificate that expired a day ago (not uploadable).
pub fn expired_cert() -> Issued {
    let now = OffsetDateTime::now_utc();
    pki::self_signed_client("expired", now - Duration::days(30), now - Duration::days(1)).unwrap()
}

/// `POST /tyk/keys/create` that must succeed; returns the key.
pub async fn create_key(gw: &Gw, body: &Value) -> String {
    let (status, v) = create_key_raw(gw, body).await;
    assert_eq!(status, 200, "create failed: {v}");
    assert_eq!(v["action"], "added");
    v["key"].as_str().unwrap().to_owned()
}

/// A session for `api` with `mtls_static_certificate_bindings`.
pub fn session_with_bindings(api: &str, certificate: Option<&str>, bindings: &[&str]) -> Value {
    let mut s = session(api, certificate);
    s["mtls_static_certificate_bindings"] = json!(bindings);
    s
}

async fn admin_call(
    gw: &Gw,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut r = admin(gw)
        .request(method, gw.url(path))
        .header("x-tyk-authorization", SECRET);
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, json_of(r).await)
}

/// `PUT /tyk/keys/{key}`.
pub async fn put_key(gw: &Gw, key: &str, body: &Value) -> (u16, Value) {
    admin_call(
        gw,
        reqwest::Method::PUT,
        &format!("/tyk/keys/{key}"),
        Some(body),
    )
    .await
}

/// `POST /tyk/keys/{key}` (custom key name).
pub async fn post_custom_key(gw: &Gw, name: &str, body: &Value) -> (u16, Value) {
    admin_call(
        gw,
        reqwest::Method::POST,
        &format!("/tyk/keys/{name}"),
        Some(body),
    )
    .await
}

/// `GET /tyk/keys/{key}`.
pub async fn get_key(gw: &Gw, key: &str) -> (u16, Value) {
    admin_call(gw, reqwest::Method::GET, &format!("/tyk/keys/{key}"), None).await
}

/// `DELETE /tyk/keys/{key}` that must succeed.
pub async fn delete_key(gw: &Gw, key: &str) {
    let (status, v) = admin_call(
        gw,
        reqwest::Method::DELETE,
        &format!("/tyk/keys/{key}"),
        None,
    )
    .await;
    assert_eq!((status, &v["action"]), (200, &json!("deleted")), "{v}");
}

/// `DELETE /tyk/certs/{id}?org_id=<org>` (always 200 `removed`).
pub async fn delete_cert(gw: &Gw, id: &str, org: &str) {
    let (status, v) = admin_call(
        gw,
        reqwest::Method::DELETE,
        &format!("/tyk/certs/{id}?org_id={org}"),
        None,
    )
    .await;
    assert_eq!(
        (status, v),
        (200, json!({"status": "ok", "message": "removed"}))
    );
}

/// The store key of the session named `token` on this gateway.
pub fn store_key(gw: &Gw, token: &str) -> String {
    certgate::pipeline::session_store_key(&gw.gateway().config, token)
}

/// Reads a session straight from the store (what Tyk's tests read from Redis).
pub async fn stored_session(gw: &Gw, token: &str) -> Option<Value> {
    let raw = gw
        .gateway()
        .store
        .get(&store_key(gw, token))
        .await
        .unwrap()?;
    Some(serde_json::from_str(&raw).unwrap())
}

/// Writes a session straight into the store (Tyk's test helper `CreateSession`).
pub async fn write_session(gw: &Gw, token: &str, s: &Value) {
    gw.gateway()
        .store
        .set(&store_key(gw, token), &s.to_string(), None)
        .await
        .unwrap();
}

/// One TLS connection and one HTTP/1.1 stream on it: every request goes over the same
/// connection, or fails.
pub struct OneConn {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
    _conn: tokio::task::JoinHandle<()>,
}

impl OneConn {
    pub async fn open(gw: &Gw, identity: Option<&Issued>) -> Self {
        let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let cfg = tls_client_config(identity, &[b"http/1.1"]);
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Self {
            send,
            authority: format!("localhost:{}", gw.addr.port()),
            _conn: task,
        }
    }

    /// GET `path` on this connection; (status, body).
    pub async fn get(&mut self, path: &str, token: Option<&str>) -> (u16, String) {
        assert!(!self.send.is_closed(), "the connection was closed");
        self.send.ready().await.expect("connection still usable");
        let mut b = http::Request::get(path).header("host", &self.authority);
        if let Some(t) = token {
            b = b.header("authorization", t);
        }
        let resp = self
            .send
            .send_request(b.body(Full::new(Bytes::new())).unwrap())
            .await
            .expect("request on the same connection");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// Another gateway node sharing `gw`'s store (a cluster sharing Redis), with the
/// first node's configuration changed at `sets` (dotted paths).
pub struct Sibling {
    pub addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for Sibling {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

impl Sibling {
    pub async fn start(first: &Gw, sets: &[(&str, Value)]) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = first.dir.path();
        let mut conf: Value =
            serde_json::from_slice(&std::fs::read(dir.join("tyk.conf")).unwrap()).unwrap();
        for (path, v) in sets {
            let mut cur = &mut conf;
            let parts: Vec<&str> = path.split('.').collect();
            for p in &parts[..parts.len() - 1] {
                if cur.get(*p).is_none() {
                    cur[*p] = json!({});
                }
                cur = &mut cur[*p];
            }
            cur[*parts.last().unwrap()] = v.clone();
        }
        let path = dir.join(format!(
            "sibling-{}.conf",
            N.fetch_add(1, Ordering::Relaxed)
        ));
        write(&path, &conf);
        let cfg = certgate::config::Config::load(&path, &HashMap::<String, String>::new()).unwrap();
        let cfg = Arc::new(cfg);
        let store = first.gateway().store.clone();
        let gw = certgate::gateway::Gateway::new(cfg.clone(), store)
            .await
            .unwrap();
        let listener = certgate::server::bind(&cfg.listen_addr()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(certgate::server::serve(
            gw.clone(),
            listener,
            certgate::server::Role::Gateway,
            rx,
            Arc::new(certgate::server::Drain::default()),
        ));
        Sibling {
            addr,
            shutdown,
            _task: task,
        }
    }

    /// An HTTPS client for this node presenting `identity`.
    pub fn client(&self, identity: Option<&Issued>) -> reqwest::Client {
        reqwest::Client::builder()
            .resolve("localhost", self.addr)
            .timeout(std::time::Duration::from_secs(20))
            .http1_only()
            .use_preconfigured_tls(tls_client_config(identity, &[b"http/1.1"]))
            .build()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }
}
