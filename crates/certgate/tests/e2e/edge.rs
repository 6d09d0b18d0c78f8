//! Holes at the edge (issue 11): clients that stall their request bodies, dashboard
//! sign-in guessing, and credentials or identity headers a client tries to hand to the
//! upstream.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// The declared size of a body that never comes.
const BIG: usize = 4 * 1024 * 1024;
/// Polling bound for "the server reacted" (far above the 1 s deadlines configured).
const LIMIT: Duration = Duration::from_secs(20);

fn stalled_head(path: &str) -> String {
    stalled_head_with(path, "")
}

fn stalled_head_with(path: &str, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {BIG}\r\n{extra}\r\n"
    )
}

/// A gateway with 1 s body deadlines, a long grace period and a patient upstream
/// timeout, so only the body deadline can end a stalled request.
fn stall_gateway(up: &Upstream) -> GwBuilder {
    gateway()
        .set("http_server_options.certgate_body_read_timeout", json!(1))
        .set("graceful_shutdown_timeout_duration", json!(120))
        .set("proxy_default_timeout", json!(300))
        .api(classic_api("a", "/a/", &up.url()))
}

/// Reads until the server closes the connection; what it sent before closing.
async fn until_closed<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let r = tokio::time::timeout(LIMIT, s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    assert!(r.is_ok(), "connection still open after {LIMIT:?}: {text}");
    text
}

/// Reads a response head (the connection may stay open).
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    assert!(
        tokio::time::timeout(LIMIT, read).await.is_ok(),
        "no answer within {LIMIT:?}"
    );
    String::from_utf8_lossy(&buf).into_owned()
}

async fn tls_connect(gw: &Gw, alpn: &[&[u8]]) -> tokio_rustls::client::TlsStream<TcpStream> {
    let cfg = Arc::new(tls_client_config(None, alpn));
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .unwrap()
}

async fn stall<S: AsyncWrite + Unpin>(s: &mut S, path: &str) {
    s.write_all(stalled_head(path).as_bytes()).await.unwrap();
    s.write_all(b"{\"secret\":").await.unwrap();
    s.flush().await.unwrap();
}

#[tokio::test]
async fn stalled_bodies_are_answered_408_and_closed_on_plain_http() {
    let up = upstream().await;
    let gw = stall_gateway(&up).plain_http().start().await;
    let mut conns = Vec::new();
    for path in [
        "/dashboard/login",
        "/a/upload",
        "/dashboard/login",
        "/a/x",
        "/dashboard/login",
    ] {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        stall(&mut s, path).await;
        conns.push(s);
    }
    for s in &mut conns {
        let text = until_closed(s).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn stalled_bodies_are_answered_408_and_closed_over_tls() {
    let up = upstream().await;
    let gw = stall_gateway(&up).start().await;
    // The Gateway API call carries the secret: its body is read after the check.
    let secret = format!("X-Tyk-Authorization: {SECRET}\r\n");
    for (path, extra) in [
        ("/dashboard/login", ""),
        ("/a/upload", ""),
        ("/tyk/apis", secret.as_str()),
    ] {
        let mut s = tls_connect(&gw, &[b"http/1.1"]).await;
        s.write_all(stalled_head_with(path, extra).as_bytes())
            .await
            .unwrap();
        s.write_all(b"{").await.unwrap();
        s.flush().await.unwrap();
        let text = until_closed(&mut s).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{path}: {text}");
    }
    gw.stop().await;
}

/// A request body that never sends anything.
struct Stall;

impl http_body::Body for Stall {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
}

/// Sends stalled requests over one h2 connection; each must be answered 408.
async fn h2_stalls<T>(io: T)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(io),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for path in ["/dashboard/login", "/a/upload"] {
        let req = http::Request::post(format!("http://localhost{path}"))
            .header("content-length", BIG.to_string())
            .body(Stall)
            .unwrap();
        let resp = tokio::time::timeout(LIMIT, sender.send_request(req))
            .await
            .expect("answered within the polling bound")
            .unwrap();
        assert_eq!(resp.status(), 408, "{path}");
    }
}

#[tokio::test]
async fn stalled_bodies_are_answered_408_over_h2() {
    let up = upstream().await;
    let gw = stall_gateway(&up)
        .set("http_server_options.enable_http2", json!(true))
        .start()
        .await;
    let tls = tls_connect(&gw, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    h2_stalls(tls).await;
    gw.stop().await;
}

#[tokio::test]
async fn stalled_bodies_are_answered_408_over_h2c() {
    let up = upstream().await;
    let gw = stall_gateway(&up)
        .plain_http()
        .set("http_server_options.enable_http2", json!(true))
        .start()
        .await;
    h2_stalls(TcpStream::connect(gw.addr).await.unwrap()).await;
    gw.stop().await;
}

#[tokio::test]
async fn a_body_trickled_below_the_minimum_rate_is_cut_off() {
    let up = upstream().await;
    let gw = stall_gateway(&up)
        .plain_http()
        .set("http_server_options.certgate_min_body_rate", json!(200))
        .start()
        .await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(stalled_head("/a/upload").as_bytes())
        .await
        .unwrap();
    // One byte every 100 ms: never 1 s between reads, but far below 200 bytes/s.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut buf = [0u8; 256];
    let cut = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trickling client was not cut off within {LIMIT:?}"
        );
        tick.tick().await;
        if s.write_all(b"x").await.is_err() {
            break String::new();
        }
        match tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
            Ok(Ok(n)) => break String::from_utf8_lossy(&buf[..n]).into_owned(),
            Ok(Err(_)) => break String::new(),
            Err(_) => {}
        }
    };
    assert!(cut.is_empty() || cut.starts_with("HTTP/1.1 408"), "{cut}");
    gw.stop().await;
}

#[tokio::test]
async fn stalled_clients_do_not_hold_graceful_shutdown() {
    let up = upstream().await;
    // 5 s between reads: time to see all five open before their deadline passes.
    let gw = stall_gateway(&up)
        .plain_http()
        .set("http_server_options.certgate_body_read_timeout", json!(5))
        .start()
        .await;
    let mut conns = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        stall(&mut s, "/dashboard/login").await;
        conns.push(s);
    }
    // The requests are in flight (the gateway is reading their bodies) when the
    // shutdown starts; the 120 s grace period must not be spent waiting for them.
    let running = gw.running.as_ref().unwrap();
    assert!(
        eventually(LIMIT, || async { running.open_connections() == 5 }).await,
        "the stalled connections are open"
    );
    assert!(
        tokio::time::timeout(LIMIT, gw.stop()).await.is_ok(),
        "shutdown waited for clients that send nothing"
    );
    for s in &mut conns {
        until_closed(s).await;
    }
}

#[tokio::test]
async fn a_client_that_does_not_read_its_response_is_closed() {
    let up = upstream().await;
    let gw = stall_gateway(&up)
        .plain_http()
        .set("http_server_options.write_timeout", json!(1))
        .start()
        .await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    // Far more than the socket buffers hold; the client never reads a byte.
    s.write_all(b"GET /a/big?n=67108864 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // The response has started (one read), then the client stops reading.
    let mut first = [0u8; 16];
    let n = tokio::time::timeout(LIMIT, s.read(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    let running = gw.running.as_ref().unwrap();
    assert_eq!(running.open_connections(), 1);
    assert!(
        eventually(LIMIT, || async { running.open_connections() == 0 }).await,
        "a connection whose writes make no progress stays open"
    );
    drop(s);
    gw.stop().await;
}

#[tokio::test]
async fn refused_admin_requests_are_answered_before_the_body_is_read() {
    // The default body deadlines (60 s between reads): an answer within the polling
    // bound cannot have waited for the body.
    let gw = gateway().plain_http().start().await;
    for (path, status) in [
        ("/tyk/apis", "403"),
        ("/tyk/keys/create", "403"),
        ("/api/keys/create", "403"),
        ("/dashboard/api/keys/create", "403"),
        ("/dashboard/gw/apis", "401"),
    ] {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        stall(&mut s, path).await;
        let head = read_head(&mut s).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {head}"
        );
    }
    gw.stop().await;
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .timeout(LIMIT)
        .use_preconfigured_tls(tls_client_config(None, &[b"http/1.1"]))
        .build()
        .unwrap()
}

async fn sign_in(c: &reqwest::Client, gw: &Gw, secret: &str) -> reqwest::Response {
    c.post(gw.url("/dashboard/login"))
        .json(&json!({ "secret": secret }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn repeated_sign_ins_from_one_address_are_limited() {
    let gw = gateway().plain_http().start().await;
    let c = client_from("127.0.0.1");
    for _ in 0..certgate::dashboard::SIGN_IN_ATTEMPTS {
        assert_eq!(sign_in(&c, &gw, "guess").await.status(), 401);
    }
    let r = sign_in(&c, &gw, "guess").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    // Even the right secret waits for the window to end.
    assert_eq!(sign_in(&c, &gw, SECRET).await.status(), 429);
    // Refused before the body is read: a stalled sign-in is answered at once.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    stall(&mut s, "/dashboard/login").await;
    assert!(read_head(&mut s).await.starts_with("HTTP/1.1 429"));
    // Another address is not affected.
    let other = client_from("127.0.0.2");
    assert_eq!(sign_in(&other, &gw, SECRET).await.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn the_session_cookie_is_scoped_to_the_dashboard() {
    let gw = gateway().plain_http().start().await;
    let c = client_from("127.0.0.1");
    let r = sign_in(&c, &gw, SECRET).await;
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Path=/dashboard;"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    // The UI's Dashboard API calls work under /dashboard/api/ with the cookie.
    let keys = c
        .get(gw.url("/dashboard/api/keys"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), 200);
    gw.stop().await;
}

async fn upstream_headers(gw: &Gw, extra: &[(&str, &str)]) -> serde_json::Map<String, Value> {
    let mut req = client(gw, None).get(gw.url("/a/echo"));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    json_of(r).await["headers"].as_object().unwrap().clone()
}

const FORGED: &[(&str, &str)] = &[
    ("x-ssl-client-cert", "-----BEGIN CERTIFICATE-----forged"),
    (
        "x-forwarded-client-cert",
        "Hash=forged;Subject=\"CN=admin\"",
    ),
    ("client-cert", ":Zm9yZ2Vk:"),
    ("client-cert-chain", ":Zm9yZ2Vk:"),
    ("x-tyk-authorization", SECRET),
    ("cookie", "theme=dark; certgate_dashboard=stolen; lang=en"),
    ("x-custom", "kept"),
];

#[tokio::test]
async fn client_identity_headers_and_gateway_credentials_never_reach_the_upstream() {
    let up = upstream().await;
    let gw = gateway()
        .api(classic_api("a", "/a/", &up.url()))
        .start()
        .await;
    let seen = upstream_headers(&gw, FORGED).await;
    for (name, _) in &FORGED[..5] {
        assert!(
            seen.get(*name).is_none(),
            "{name} reached the upstream: {seen:?}"
        );
    }
    assert_eq!(seen["cookie"], "theme=dark; lang=en");
    assert_eq!(seen["x-custom"], "kept");
    gw.stop().await;
}

#[tokio::test]
async fn the_identity_header_list_is_configurable() {
    let up = upstream().await;
    let gw = gateway()
        .set("strip_client_identity_headers", json!(["X-My-Identity"]))
        .api(classic_api("a", "/a/", &up.url()))
        .start()
        .await;
    let seen = upstream_headers(
        &gw,
        &[
            ("x-my-identity", "forged"),
            ("x-ssl-client-cert", "passed"),
            ("x-tyk-authorization", SECRET),
            ("cookie", "certgate_dashboard=stolen"),
        ],
    )
    .await;
    assert!(seen.get("x-my-identity").is_none(), "{seen:?}");
    assert_eq!(seen["x-ssl-client-cert"], "passed");
    // The secret and the session are stripped whatever the list says.
    assert!(seen.get("x-tyk-authorization").is_none(), "{seen:?}");
    assert!(seen.get("cookie").is_none(), "{seen:?}");
    gw.stop().await;
}
