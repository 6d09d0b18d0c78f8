//! Routing and proxying (issue: listen paths, mounts, domains, upstream errors).

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn keyless_api_is_proxied_with_forwarding_headers() {
    let up = upstream().await;
    let gw = gateway()
        .api(classic_api("k1", "/k1/", &up.url()))
        .start()
        .await;
    let c = client(&gw, None);
    let r = c
        .post(gw.url("/k1/some/path?x=1"))
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "secret")
        .header("x-forwarded-for", "10.1.2.3")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/some/path");
    assert_eq!(v["query"], "x=1");
    assert_eq!(v["body_len"], 5);
    let h = &v["headers"];
    assert_eq!(h["host"], up.addr.to_string());
    assert_eq!(h["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(
        h["x-forwarded-host"],
        format!("localhost:{}", gw.addr.port())
    );
    assert!(h.get("x-hop").is_none(), "hop-by-hop header forwarded: {h}");
    gw.stop().await;
}

#[tokio::test]
async fn listen_path_without_strip_and_api_id_mount() {
    let up = upstream().await;
    let mut def = classic_api("nostrip", "/keep/", &format!("{}/base", up.url()));
    def["proxy"]["strip_listen_path"] = json!(false);
    let gw = gateway().api(def).start().await;
    let c = client(&gw, None);
    let v = json_of(c.get(gw.url("/keep/a")).send().await.unwrap()).await;
    assert_eq!(v["path"], "/base/keep/a");
    // The /{api_id}/ mount always strips its own prefix.
    let v = json_of(c.get(gw.url("/nostrip/b")).send().await.unwrap()).await;
    assert_eq!(v["path"], "/base/b");
    gw.stop().await;
}

#[tokio::test]
async fn no_route_is_plain_404() {
    let up = upstream().await;
    let gw = gateway()
        .api(classic_api("a", "/a/", &up.url()))
        .start()
        .await;
    let r = client(&gw, None)
        .get(gw.url("/nope/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "Not Found");
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    gw.stop().await;
}

#[tokio::test]
async fn longest_listen_path_wins_and_custom_domains_route_by_host() {
    let up = upstream().await;
    let mut dom = classic_api("dom", "/p/", &format!("{}/domain", up.url()));
    dom["domain"] = json!("api.example");
    let gw = gateway()
        .set("enable_custom_domains", json!(true))
        .api(classic_api("short", "/p/", &format!("{}/short", up.url())))
        .api(classic_api(
            "long",
            "/p/deeper/",
            &format!("{}/long", up.url()),
        ))
        .api(dom)
        .start()
        .await;
    let c = client(&gw, None);
    let port = gw.addr.port();
    let get = |url: String| {
        let c = c.clone();
        async move { json_of(c.get(url).send().await.unwrap()).await["path"].clone() }
    };
    assert_eq!(
        get(format!("https://localhost:{port}/p/x")).await,
        "/short/x"
    );
    assert_eq!(
        get(format!("https://localhost:{port}/p/deeper/x")).await,
        "/long/x"
    );
    assert_eq!(
        get(format!("https://api.example:{port}/p/x")).await,
        "/domain/x"
    );
    gw.stop().await;
}

#[tokio::test]
async fn custom_domains_are_ignored_when_disabled() {
    let up = upstream().await;
    let mut dom = classic_api("dom", "/p/", &up.url());
    dom["domain"] = json!("api.example");
    let gw = gateway().api(dom).start().await;
    let r = client(&gw, None).get(gw.url("/p/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn unreachable_upstream_is_502_and_slow_one_504() {
    // A port that was just free: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let up = upstream().await;
    let gw = gateway()
        .set("proxy_default_timeout", json!(1))
        .api(classic_api("dead", "/dead/", &format!("http://{dead}")))
        .api(classic_api("slow", "/slow-api/", &up.url()))
        .start()
        .await;
    let c = client(&gw, None);
    let r = c.get(gw.url("/dead/x")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        r.text().await.unwrap(),
        "{\n    \"error\": \"There was a problem proxying the request\"\n}"
    );
    let r = c.get(gw.url("/slow-api/slow")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(
        json_of(r).await["error"],
        "Upstream service reached hard timeout."
    );
    gw.stop().await;
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let up = upstream().await;
    let gw = gateway()
        .api(classic_api("big", "/big-api/", &up.url()))
        .start()
        .await;
    let c = client(&gw, None);
    let r = c
        .get(gw.url("/big-api/big?n=5000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 5_000_000);
    let r = c
        .post(gw.url("/big-api/upload"))
        .body(vec![b'y'; 3_000_000])
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["body_len"], 3_000_000);
    gw.stop().await;
}

#[tokio::test]
async fn request_body_limit_is_413() {
    let up = upstream().await;
    let gw = gateway()
        .set("http_server_options.max_request_body_size", json!(1000))
        .api(classic_api("lim", "/lim/", &up.url()))
        .start()
        .await;
    let c = client(&gw, None);
    let r = c
        .post(gw.url("/lim/x"))
        .body(vec![b'y'; 2000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = c
        .post(gw.url("/lim/x"))
        .body(vec![b'y'; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn http2_by_alpn_when_enabled() {
    let up = upstream().await;
    let gw = gateway()
        .set("http_server_options.enable_http2", json!(true))
        .api(classic_api("h2", "/h2/", &up.url()))
        .start()
        .await;
    let c = reqwest::Client::builder()
        .resolve("localhost", gw.addr)
        .use_preconfigured_tls(tls_client_config(None, &[b"h2"]))
        .build()
        .unwrap();
    let r = c.get(gw.url("/h2/x")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn plain_http_listener() {
    let up = upstream().await;
    let gw = gateway()
        .plain_http()
        .api(classic_api("p", "/p/", &up.url()))
        .start()
        .await;
    let r = client(&gw, None).get(gw.url("/p/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["headers"]["x-forwarded-proto"], "http");
    gw.stop().await;
}

#[tokio::test]
async fn tls12_only_when_max_version_is_771() {
    let up = upstream().await;
    let gw = gateway()
        .set("http_server_options.max_version", json!(771))
        .api(classic_api("t", "/t/", &up.url()))
        .start()
        .await;
    let cfg = rustls::ClientConfig::builder_with_provider(certgate::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let conn = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await;
    assert!(conn.is_err(), "a TLS 1.3-only client must be refused");
    let r = client(&gw, None).get(gw.url("/t/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    gw.stop().await;
}

/// Sends `head` (which asks to close) and `body` on a plain connection; the answer.
async fn raw_exchange(gw: &Gw, head: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    let read = s.read_to_end(&mut buf);
    let r = tokio::time::timeout(std::time::Duration::from_secs(20), read).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    assert!(r.is_ok(), "connection still open: {text}");
    text
}

#[tokio::test]
async fn malformed_chunked_body_is_the_clients_400_not_a_502() {
    let up = upstream().await;
    let gw = gateway()
        .plain_http()
        .set("http_server_options.max_request_body_size", json!(64))
        .api(classic_api("c", "/c/", &up.url()))
        .start()
        .await;
    let head = "POST /c/upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    for (body, status, message) in [
        // Not a hex chunk size.
        (&b"zz\r\n"[..], "400", "Malformed request body"),
        // A chunk whose data is not followed by CRLF.
        (b"3\r\nabcXY\r\n0\r\n\r\n", "400", "Malformed request body"),
        // Over max_request_body_size mid-stream: still 413.
        (b"50\r\n", "413", "Request is too large"),
    ] {
        let body = if status == "413" {
            [body, &[b'x'; 0x50][..], b"\r\n0\r\n\r\n"].concat()
        } else {
            body.to_vec()
        };
        let text = raw_exchange(&gw, head, &body).await;
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status}")),
            "{:?}: {text}",
            String::from_utf8_lossy(&body)
        );
        assert!(
            text.ends_with(&format!("{{\n    \"error\": \"{message}\"\n}}")),
            "{text}"
        );
    }
    // A well-formed chunked body still goes through.
    let text = raw_exchange(&gw, head, b"3\r\nabc\r\n0\r\n\r\n").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"body_len\":3"), "{text}");
    // The Gateway API reads its bodies the same way: the client's 400, not a 413.
    let head = format!(
        "POST /tyk/apis HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         X-Tyk-Authorization: {SECRET}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let text = raw_exchange(&gw, &head, b"zz\r\n").await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("Malformed request body"), "{text}");
    gw.stop().await;
}
