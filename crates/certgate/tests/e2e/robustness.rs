//! Hostile clients: slow headers, TLS garbage, malformed HTTP.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test]
async fn slow_header_client_is_dropped_without_slowing_others() {
    let up = upstream().await;
    let gw = gateway()
        .plain_http()
        .set("http_server_options.read_header_timeout", json!(1))
        .api(classic_api("a", "/a/", &up.url()))
        .start()
        .await;
    let mut slow = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET /a/x HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    // Meanwhile other clients are served promptly.
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let r = client(&gw, None).get(gw.url("/a/x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut buf))
        .await
        .expect("the slow client must be dropped within the header timeout");
    assert!(matches!(n, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).contains("408"));
    gw.stop().await;
}

#[tokio::test]
async fn idle_tls_handshake_is_dropped() {
    let gw = gateway()
        .set("http_server_options.read_header_timeout", json!(1))
        .start()
        .await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "connection must be closed: {r:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn tls_garbage_closes_the_connection() {
    let up = upstream().await;
    let gw = gateway()
        .api(classic_api("a", "/a/", &up.url()))
        .start()
        .await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "connection must be closed");
    assert!(!String::from_utf8_lossy(&buf).contains("200"));
    // The gateway still serves.
    assert_eq!(
        client(&gw, None)
            .get(gw.url("/a/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    gw.stop().await;
}

#[tokio::test]
async fn malformed_http_gets_4xx() {
    let up = upstream().await;
    let gw = gateway()
        .plain_http()
        .api(classic_api("a", "/a/", &up.url()))
        .start()
        .await;
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /a/x HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    ] {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(raw).await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    }
    // Oversized headers.
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let big = format!(
        "GET /a/x HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    gw.stop().await;
}
