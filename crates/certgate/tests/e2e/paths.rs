//! Path traversal through the gateway (issue 11, hole 2): a keyless API at `/public/`
//! and a certificate-auth API at `/secure/` share one upstream whose protected content
//! is at `/private/secret`. The upstream is deliberately lenient (it decodes once,
//! reads `\` as `/`, drops `;` parameters and resolves dot segments), so any raw path
//! the gateway forwards unchanged would reach the protected content. Requests are
//! written by hand over TLS: HTTP clients clean such paths before sending them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const SECRET_BODY: &str = "TOP-SECRET-CONTENT";

/// A lenient upstream: what it received (raw target) and how it read it.
struct Lenient {
    addr: std::net::SocketAddr,
    /// (raw path and query, interpreted path) of every request.
    seen: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Lenient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Lenient {
    fn protected_hits(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, p)| p.starts_with("/private/"))
            .map(|(raw, _)| raw.clone())
            .collect()
    }
}

/// How a permissive backend reads a path: one percent-decoding, `\` as `/`, path
/// parameters dropped, dot segments resolved (clamped at the root).
fn interpret(raw_path: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(raw_path).decode_utf8_lossy();
    let slashed = decoded.replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for seg in slashed.split('/') {
        match seg.split(';').next().unwrap_or("") {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

async fn lenient_upstream() -> Lenient {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let raw = req
                            .uri()
                            .path_and_query()
                            .map_or_else(String::new, |p| p.as_str().to_owned());
                        let path = interpret(req.uri().path());
                        let body = if path.starts_with("/private/") {
                            SECRET_BODY.to_owned()
                        } else {
                            format!("public {raw}")
                        };
                        log.lock().unwrap().push((raw, path));
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                            body,
                        ))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Lenient { addr, seen, task }
}

/// Writes `GET <target> HTTP/1.1` over a new TLS connection (no client certificate);
/// (status, whole response as text).
async fn raw_get(gw: &Gw, target: &str) -> (u16, String) {
    raw_request(gw, target, "").await
}

/// [`raw_get`] with extra header lines (each ending in CRLF).
async fn raw_request(gw: &Gw, target: &str, headers: &str) -> (u16, String) {
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let cfg = tls_client_config(None, &[b"http/1.1"]);
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: localhost:{}\r\n{headers}Connection: close\r\n\r\n",
        gw.addr.port()
    );
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// What the gateway must answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// 400: refused by the normaliser (or by the HTTP parser).
    Refused,
    /// 404: the canonical path belongs to no API (`/private/...`).
    NoApi,
    /// 401: the canonical path is the certificate-auth API.
    CertRequired,
    /// 200 from the public API, with a harmless path.
    Public,
}
use Want::*;

/// Hostile paths, by the published bypass they come from. `{port}` is replaced.
const HOSTILE: &[(&str, Want)] = &[
    // Envoy CVE-2019-9901: dot segments not normalised before routing and RBAC.
    ("/public/../private/secret", NoApi),
    ("/public/./../private/secret", NoApi),
    ("/public/../secure/secret", CertRequired),
    ("/public/x/../../private/secret", NoApi),
    ("/public/../../private/secret", Refused),
    ("/public/../../../../../private/secret", Refused),
    // Traefik CVE-2025-32431 (`/../` in PathPrefix) and GHSA-vrch-868g-9jx5 (the same
    // with percent-encoded dots), Kong before its router normalised paths.
    ("/public/%2e%2e/private/secret", NoApi),
    ("/public/%2E%2e/private/secret", NoApi),
    ("/public/%2E%2E/secure/secret", CertRequired),
    ("/public/%2e%2e/%2e%2e/private/secret", Refused),
    ("/public/./%2e%2e/./private/secret", NoApi),
    // Apache CVE-2021-41773: half-encoded dot segments.
    ("/public/.%2e/private/secret", NoApi),
    ("/public/%2e./private/secret", NoApi),
    // Apache CVE-2021-42013: `%%32%65` (double-encoded dot).
    ("/public/%%32%65%%32%65/private/secret", Refused),
    ("/public/.%%32%65/private/secret", Refused),
    // Envoy CVE-2021-29492 and Traefik GHSA-gm3x-23wp-hc2c: escaped `/` and `\`.
    ("/public/..%2fprivate/secret", Refused),
    ("/public/..%2Fprivate%2Fsecret", Refused),
    ("/public/%2e%2e%2fprivate/secret", Refused),
    ("/public/..%5cprivate/secret", Refused),
    ("/public/..%5Cprivate%5csecret", Refused),
    ("/public/%5c../private/secret", Refused),
    ("/public/..%2fsecure/secret", Refused),
    // Backslash as a separator (IIS, Windows backends; Traefik GHSA-gm3x-23wp-hc2c).
    ("/public/..\\private\\secret", Refused),
    ("/public\\..\\private\\secret", Refused),
    // Repeated slashes (Envoy's merge_slashes hardening): merged before routing.
    ("//private/secret", NoApi),
    ("/public//../private/secret", NoApi),
    ("/public/..//private/secret", NoApi),
    ("//public//..//..//private/secret", Refused),
    // Double encoding (IIS CVE-2001-0333, Apache Shiro CVE-2020-11989): decoded once
    // only, so it stays a literal segment.
    ("/public/%252e%252e/private/secret", Public),
    ("/public/%252e%252e%252fprivate%252fsecret", Public),
    // Overlong UTF-8 (IIS CVE-2000-0884): not UTF-8, refused.
    ("/public/%c0%ae%c0%ae/private/secret", Refused),
    ("/public/%c0%ae%c0%ae%c0%afprivate/secret", Refused),
    ("/public/%e0%80%ae%e0%80%ae/private/secret", Refused),
    ("/public/..%c0%afprivate/secret", Refused),
    ("/public/..%c1%9cprivate/secret", Refused),
    // IIS `%u` escapes: not percent-encoding.
    ("/public/%u002e%u002e/private/secret", Refused),
    ("/public/%uff0e%uff0e/private/secret", Refused),
    // Tomcat/Spring `..;/` (Orange Tsai, "Breaking Parser Logic"; Apache Shiro
    // CVE-2020-1957) and its escaped form (Shiro CVE-2020-13933).
    ("/public/..;/private/secret", Refused),
    ("/public/..;jsessionid=x/private/secret", Refused),
    ("/public/%2e%2e;/private/secret", Refused),
    ("/public/..%3b/private/secret", Refused),
    ("/public/..%3B/secure/secret", Refused),
    ("/public/.;/../private/secret", Refused),
    // NUL (nginx CVE-2013-4547 `name \0.php`; Envoy CVE-2019-9900; Traefik
    // GHSA-gm3x-23wp-hc2c).
    ("/public/%00/../../private/secret", Refused),
    ("/public/..%00/private/secret", Refused),
    ("/public/x%20%00.php/../../private/secret", Refused),
    // nginx alias "off-by-slash": the listen path glued to a dot segment.
    ("/public../private/secret", NoApi),
    // Traefik GHSA-xf64-8mw2-4gr2: the path left after stripping a listen path
    // (`/glued`, no trailing slash) walks out of the target's base path.
    ("/glued../private/secret", Refused),
    ("/glued..;/private/secret", Refused),
    ("/glued./../private/secret", NoApi),
    ("/glued/%2e%2e/%2e%2e/private/secret", Refused),
    // Encoded `?` and `#` (Traefik GHSA-gm3x-23wp-hc2c) stay escaped in one segment.
    ("/public/x%23/../../private/secret", NoApi),
    ("/public/..%3f/../private/secret", Public),
    // Absolute-form request targets (RFC 9112 §3.2.2): the path is normalised too.
    ("https://localhost:{port}/public/../private/secret", NoApi),
    (
        "https://localhost:{port}/public/%2e%2e/private/secret",
        NoApi,
    ),
    (
        "https://localhost:{port}/public/..%2fprivate/secret",
        Refused,
    ),
];

#[tokio::test]
async fn hostile_paths_never_reach_the_protected_path() {
    assert!(HOSTILE.len() >= 40);
    let up = lenient_upstream().await;
    let base = format!("http://{}", up.addr);
    let mut public = classic_api("public", "/public/", &base);
    public["proxy"]["strip_listen_path"] = json!(false);
    let secure = cert_api("secure", "/secure/", &format!("{base}/private/"));
    let glued = classic_api("glued", "/glued", &format!("{base}/pub"));
    let gw = gateway().api(public).api(secure).api(glued).start().await;
    let p = pki();
    let id = upload(&gw, &p.client, "default").await;
    let (st, v) = create_key_raw(&gw, &session("secure", Some(&id))).await;
    assert_eq!(st, 200, "{v}");

    // Controls: the upstream really is lenient, and the registered certificate reaches
    // the protected content through its own API.
    let direct = client(&gw, None)
        .get(format!("{base}/public/x/..%2f..%2fprivate/secret"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(direct, SECRET_BODY);
    let r = client(&gw, Some(&p.client))
        .get(gw.url("/secure/secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), SECRET_BODY);
    assert_eq!(up.protected_hits().len(), 2);
    up.seen.lock().unwrap().clear();

    let port = gw.addr.port().to_string();
    let mut wrong = Vec::new();
    for (target, want) in HOSTILE {
        let target = target.replace("{port}", &port);
        let (status, text) = raw_get(&gw, &target).await;
        if text.contains(SECRET_BODY) {
            wrong.push(format!("{target}: PROTECTED CONTENT SERVED"));
            continue;
        }
        let got = match status {
            400 => Refused,
            404 => NoApi,
            401 => CertRequired,
            200 if text.contains("public /public/") => Public,
            _ => {
                wrong.push(format!("{target}: unexpected answer {text}"));
                continue;
            }
        };
        if got != *want {
            wrong.push(format!("{target}: want {want:?}, got {got:?}: {text}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let hits = up.protected_hits();
    assert!(
        hits.is_empty(),
        "the upstream served /private/ for {hits:?}"
    );
    gw.stop().await;
}

/// The Gateway API is dispatched on the canonical path: an escaped or dotted path
/// reaches the same handler, and a refused one reaches none.
#[tokio::test]
async fn gateway_api_sees_the_canonical_path() {
    let gw = gateway().start().await;
    for target in ["/x/../hello", "/%68ello", "//hello"] {
        let (status, text) = raw_get(&gw, target).await;
        assert_eq!(status, 200, "{target}: {text}");
        assert!(text.contains("\"status\":\"pass\""), "{target}: {text}");
    }
    let (status, text) = raw_get(&gw, "/tyk/apis/..%2f..%2fhello").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("encoded / or \\\\"), "{text}");
    gw.stop().await;
}

/// The upstream receives the canonical path, with the query as sent.
#[tokio::test]
async fn the_upstream_receives_the_canonical_path() {
    let up = lenient_upstream().await;
    let base = format!("http://{}", up.addr);
    let gw = gateway()
        .api(classic_api("a", "/a/", &format!("{base}/base/")))
        .start()
        .await;
    let (status, text) = raw_get(&gw, "/a/%78//y/./z/../w?q=%2e%2e/&r").await;
    assert_eq!(status, 200, "{text}");
    let seen = up.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "/base/x/y/w?q=%2e%2e/&r");
    gw.stop().await;
}

/// The same normalisation over HTTP/2 (`:path` as sent).
#[tokio::test]
async fn h2_paths_are_normalised_too() {
    let up = lenient_upstream().await;
    let base = format!("http://{}", up.addr);
    let mut public = classic_api("public", "/public/", &base);
    public["proxy"]["strip_listen_path"] = json!(false);
    let gw = gateway()
        .set("http_server_options.enable_http2", json!(true))
        .api(public)
        .start()
        .await;
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let cfg = tls_client_config(None, &[b"h2"]);
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let authority = format!("localhost:{}", gw.addr.port());
    for (path, want) in [
        ("/public/../private/secret", 404),
        ("/public/%2e%2e/private/secret", 404),
        ("/public/..%2fprivate/secret", 400),
        ("/public/..;/private/secret", 400),
        ("/public/./x//y", 200),
    ] {
        let req = Request::get(format!("https://{authority}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status().as_u16(), want, "{path}");
    }
    let seen = up.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![("/public/x/y".to_owned(), "/public/x/y".to_owned())]
    );
    gw.stop().await;
}

/// `allowed_urls` are matched against the canonical path, decoded as Tyk matches
/// Go's `r.URL.Path`: a dot segment cannot carry a request out of an allowed prefix.
#[tokio::test]
async fn allowed_urls_see_the_canonical_path() {
    let up = lenient_upstream().await;
    let base = format!("http://{}", up.addr);
    let mut api = token_api("t", "/t/", &base);
    api["proxy"]["strip_listen_path"] = json!(true);
    let gw = gateway().api(api).start().await;
    let (st, v) = create_key_raw(
        &gw,
        &json!({"org_id": "default", "access_rights": {"t": {"api_id": "t", "versions": ["Default"],
        "allowed_urls": [
            {"url": "^/t/public/", "methods": ["GET"]},
            {"url": "^/t/files/a b$", "methods": ["GET"]}
        ]}}}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let auth = format!("Authorization: {}\r\n", v["key"].as_str().unwrap());
    let (st, text) = raw_request(&gw, "/t/public/x", &auth).await;
    assert_eq!(st, 200, "{text}");
    for target in [
        "/t/public/%2e%2e/private/secret",
        "/t/public/../private/secret",
        "/t/public/.%2E/.%2e/t/private/secret",
    ] {
        let (st, text) = raw_request(&gw, target, &auth).await;
        assert!(!text.contains(SECRET_BODY), "{target}: {text}");
        assert_eq!(st, 403, "{target}: {text}");
        assert!(
            text.contains("Access to this resource has been disallowed"),
            "{target}: {text}"
        );
    }
    // Escapes are decoded before matching, as in Tyk.
    let (st, text) = raw_request(&gw, "/t/files/a%20b", &auth).await;
    assert_eq!(st, 200, "{text}");
    assert!(up.protected_hits().is_empty());
    let seen = up.seen.lock().unwrap().clone();
    let raw: Vec<&str> = seen.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(raw, ["/public/x", "/files/a%20b"]);
    gw.stop().await;
}
