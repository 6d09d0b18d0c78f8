//! compatibility.md row 12: a request whose Host selects another client-certificate
//! policy than the connection's SNI is 421 Misdirected Request.

use serde_json::json;

use crate::helpers::*;
use crate::support::*;

const MISDIRECTED: &str = "Misdirected Request: the Host header does not match the TLS server name";

#[tokio::test]
async fn host_selecting_another_policy_than_sni_is_421() {
    let up = upstream().await;
    let mut cert = cert_api("cert", "/cert/", &up.url());
    cert["domain"] = json!("api.example");
    let gw = gateway()
        .set("enable_custom_domains", json!(true))
        .api(cert)
        .api(classic_api("open", "/open/", &up.url()))
        .start()
        .await;
    let id = upload(&gw, &pki().client, "default").await;
    let (s, v) = create_key_raw(&gw, &session("cert", Some(&id))).await;
    assert_eq!(s, 200, "{v}");
    let c = &pki().client;

    // SNI localhost (no client-certificate policy), Host api.example (certificate auth).
    let r = get(
        gw.addr,
        Some("localhost"),
        "api.example",
        "/cert/",
        cfg(Some(c)),
    )
    .await;
    assert_proxy_error(&r, 421, MISDIRECTED, "SNI localhost, Host api.example");
    // No SNI at all: held to the APIs without a domain.
    let r = get(gw.addr, None, "api.example", "/cert/", cfg(Some(c))).await;
    assert_proxy_error(&r, 421, MISDIRECTED, "no SNI, Host api.example");
    // Exact bytes and headers once, through reqwest.
    let r = client(&gw, Some(c))
        .get(gw.url("/cert/"))
        .header("host", "api.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 421);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["x-generator"], "tyk.io");
    assert_eq!(
        &r.bytes().await.unwrap()[..],
        format!("{{\n    \"error\": \"{MISDIRECTED}\"\n}}").as_bytes()
    );

    // Matching SNI and Host.
    let r = get(
        gw.addr,
        Some("api.example"),
        "api.example",
        "/cert/",
        cfg(Some(c)),
    )
    .await;
    assert_status(&r, 200, "SNI = Host = api.example with the certificate");
    let r = get(
        gw.addr,
        Some("api.example"),
        "api.example",
        "/cert/",
        cfg(None),
    )
    .await;
    assert_proxy_error(
        &r,
        401,
        "Client certificate required",
        "api.example, no cert",
    );
    let r = get(gw.addr, Some("localhost"), "localhost", "/open/", cfg(None)).await;
    assert_status(&r, 200, "keyless API on localhost");
    gw.stop().await;
}
