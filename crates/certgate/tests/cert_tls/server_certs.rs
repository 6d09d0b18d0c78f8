//! §9.6 S66–S73: where server certificates come from (file pairs, `ssl_certificates`
//! as file / store ID / inline PEM, API `certificates`), no certificate at all, and
//! `ssl_ciphers`.

use std::sync::Arc;

use certgate::pki::Issued;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::*;

/// The certificate the gateway served for `sni`.
async fn served(gw: &Gw, sni: &str) -> Result<Vec<u8>, String> {
    let s = connect(gw.addr, Some(sni), cfg(None)).await?;
    Ok(s.get_ref().1.peer_certificates().unwrap()[0].to_vec())
}

fn combined(c: &Issued) -> String {
    format!("{}{}", c.cert_pem, c.key_pem)
}

const UNRECOGNIZED: &[&str] = &["UnrecognisedName"];

/// A TLS gateway with no usable server certificate configured: `ssl_certificates`
/// names one that does not exist (certgate refuses an empty configuration, see S66).
fn no_usable_cert() -> GwBuilder {
    gateway()
        .set("http_server_options.certificates", json!([]))
        .set(
            "http_server_options.ssl_certificates",
            json!(["no-such-certificate-id"]),
        )
}

async fn start_literal(conf: Value) -> Result<Gw, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("apps")).unwrap();
    let path = dir.path().join("tyk.conf");
    write(&path, &conf);
    let cfg = certgate::config::Config::load(&path, &std::collections::HashMap::new())
        .map_err(|e| format!("config refused: {e:?}"))?;
    let running = certgate::app::start(cfg)
        .await
        .map_err(|e| format!("start failed: {e}"))?;
    let addr = running.addr;
    Ok(Gw {
        running: Some(running),
        dir,
        addr,
        tls: true,
    })
}

fn literal_conf() -> Value {
    json!({
        "listen_address": "127.0.0.1",
        "listen_port": 0,
        "secret": SECRET,
        "app_path": "apps",
        "storage": {"type": "embedded", "path": "data"},
        "http_server_options": {"use_ssl": true},
    })
}

/// Tyk starts with `use_ssl` and no server certificate; every handshake then fails
/// with `unrecognized_name`.
#[tokio::test]
async fn s66_use_ssl_without_any_certificate_is_unrecognized_name() {
    let gw = start_literal(literal_conf())
        .await
        .unwrap_or_else(|e| panic!("Tyk starts without a server certificate; certgate: {e}"));
    let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(None)).await;
    assert_tls_refused(&r, UNRECOGNIZED, "no server certificate");
    gw.stop().await;
}

#[tokio::test]
async fn s67_certificate_file_pair_by_domain() {
    let up = upstream().await;
    let gw = gateway()
        .api(classic_api("k", "/", &up.url()))
        .start()
        .await;
    assert_eq!(served(&gw, "localhost").await.unwrap(), pki().server.der);
    let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(None)).await;
    assert_status(&r, 200, "file pair");
    gw.stop().await;
}

#[tokio::test]
async fn s68_ssl_certificates_file_path_and_inline_pem() {
    let up = upstream().await;
    let file_cert = pki().ca.server(&["localhost"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("combined.pem");
    std::fs::write(&path, combined(&file_cert)).unwrap();
    let gw = gateway()
        .set("http_server_options.certificates", json!([]))
        .set(
            "http_server_options.ssl_certificates",
            json!([path.to_str().unwrap()]),
        )
        .api(classic_api("k", "/", &up.url()))
        .start_in(dir)
        .await;
    assert_eq!(served(&gw, "localhost").await.unwrap(), file_cert.der);
    let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(None)).await;
    assert_status(&r, 200, "ssl_certificates file path");
    gw.stop().await;

    let inline_cert = pki().ca.server(&["localhost"]).unwrap();
    let gw = gateway()
        .set("http_server_options.certificates", json!([]))
        .set(
            "http_server_options.ssl_certificates",
            json!([combined(&inline_cert)]),
        )
        .api(classic_api("k", "/", &up.url()))
        .start()
        .await;
    assert_eq!(served(&gw, "localhost").await.unwrap(), inline_cert.der);
    let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(None)).await;
    assert_status(&r, 200, "ssl_certificates inline PEM");
    gw.stop().await;
}

#[tokio::test]
async fn s69_ssl_certificates_store_id() {
    let up = upstream().await;
    let stored = pki().ca.server(&["store.example"]).unwrap();
    let gw = gateway()
        .set(
            "http_server_options.ssl_certificates",
            json!([stored.sha256_hex()]),
        )
        .api(classic_api("k", "/", &up.url()))
        .start()
        .await;
    // Before the upload the name falls back to the first certificate, which does
    // not cover it.
    let before = served(&gw, "store.example").await.unwrap_err();
    assert!(before.contains("not valid for name"), "{before}");
    let (s, body) = post_cert(&gw, &gw.base(), &combined(&stored), "").await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains(&format!("\"id\":\"{}\"", stored.sha256_hex())),
        "{body}"
    );
    let (s, _) = admin_req(&gw, "GET", &gw.url("/tyk/reload?block=true")).await;
    assert_eq!(s, 200);
    assert_eq!(served(&gw, "store.example").await.unwrap(), stored.der);
    let r = get(
        gw.addr,
        Some("store.example"),
        "store.example",
        "/",
        cfg(None),
    )
    .await;
    assert_status(&r, 200, "certificate from the store");
    gw.stop().await;
}

fn api_with_cert(up: &Upstream, id: &str, domain_disabled: bool) -> Value {
    let mut a = classic_api("k", "/", &up.url());
    a["certificates"] = json!([id]);
    if domain_disabled {
        a["domain_disabled"] = json!(true);
    }
    a
}

/// Tyk's S70 configuration literally: no server certificate in the gateway config,
/// the only one comes from the API definition.
#[tokio::test]
async fn s70_api_certificate_is_the_only_server_certificate() {
    let up = upstream().await;
    let cert = pki().ca.server(&["localhost"]).unwrap();
    let gw = start_literal(literal_conf()).await.unwrap_or_else(|e| {
        panic!("Tyk starts with server certificates only in APIs; certgate: {e}")
    });
    let id = gw
        .gateway()
        .certs
        .add(combined(&cert).as_bytes(), "")
        .await
        .unwrap();
    set_apis(&gw, &[api_with_cert(&up, &id, false)]).await;
    let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(None)).await;
    assert_status(&r, 200, "API certificate");
    gw.stop().await;
}

#[tokio::test]
async fn s70_api_certificate_served_with_tls12() {
    let up = upstream().await;
    let cert = pki().ca.server(&["localhost"]).unwrap();
    let gw = no_usable_cert()
        .set("http_server_options.max_version", json!(771))
        .start()
        .await;
    let id = gw
        .gateway()
        .certs
        .add(combined(&cert).as_bytes(), "")
        .await
        .unwrap();
    assert_eq!(id, cert.sha256_hex());
    set_apis(&gw, &[api_with_cert(&up, &id, false)]).await;
    assert_eq!(served(&gw, "localhost").await.unwrap(), cert.der);
    let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(None)).await;
    assert_status(&r, 200, "API certificate");
    gw.stop().await;
}

#[tokio::test]
async fn s71_api_certificate_with_domain_disabled_is_unused() {
    let up = upstream().await;
    let cert = pki().ca.server(&["localhost"]).unwrap();
    let gw = no_usable_cert().start().await;
    let id = gw
        .gateway()
        .certs
        .add(combined(&cert).as_bytes(), "")
        .await
        .unwrap();
    set_apis(&gw, &[api_with_cert(&up, &id, true)]).await;
    let r = get(gw.addr, Some("localhost"), "localhost", "/", cfg(None)).await;
    assert_tls_refused(&r, UNRECOGNIZED, "domain_disabled API certificate");
    gw.stop().await;
}

#[tokio::test]
async fn s72_no_certificate_anywhere_is_unrecognized_name() {
    let up = upstream().await;
    let gw = no_usable_cert()
        .api(classic_api("k", "/", &up.url()))
        .start()
        .await;
    for sni in [Some("localhost"), None] {
        let r = get(gw.addr, sni, "localhost", "/", cfg(None)).await;
        assert_tls_refused(&r, UNRECOGNIZED, &format!("SNI {sni:?}"));
    }
    gw.stop().await;
}

fn tls12_client(suites: &[rustls::SupportedCipherSuite]) -> rustls::ClientConfig {
    let mut p = (*certgate::tls::provider()).clone();
    p.cipher_suites = suites.to_vec();
    rustls::ClientConfig::builder_with_provider(Arc::new(p))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots())
        .with_no_client_auth()
}

#[tokio::test]
async fn s73_ssl_ciphers_restrict_tls12_suites() {
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    let up = upstream().await;
    let gw = gateway()
        .set("http_server_options.max_version", json!(771))
        .set(
            "http_server_options.ssl_ciphers",
            json!([
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            ]),
        )
        .api(classic_api("k", "/", &up.url()))
        .start()
        .await;
    let same = tls12_client(&[
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ]);
    let s = connect(gw.addr, Some("localhost"), same.clone())
        .await
        .unwrap();
    let suite = s.get_ref().1.negotiated_cipher_suite().unwrap().suite();
    assert!(
        matches!(
            format!("{suite:?}").as_str(),
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" | "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        ),
        "{suite:?}"
    );
    drop(s);
    let r = get(gw.addr, Some("localhost"), "localhost", "/", same).await;
    assert_status(&r, 200, "configured suites");
    let chacha = tls12_client(&[cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]);
    let r = get(gw.addr, Some("localhost"), "localhost", "/", chacha).await;
    assert_tls_refused(&r, &["HandshakeFailure"], "CHACHA20 only");
    gw.stop().await;
}

/// An API certificate is registered under its leaf's names next to the configured
/// ones (§1.2 step 3), and dropped with `domain_disabled`.
#[tokio::test]
async fn s70_api_certificate_selected_by_sni_next_to_global_one() {
    let up = upstream().await;
    let cert = pki().ca.server(&["apicert.example"]).unwrap();
    let gw = gateway().start().await;
    let (s, b) = post_cert(&gw, &gw.base(), &combined(&cert), "").await;
    assert_eq!(s, 200, "{b}");
    set_apis(&gw, &[api_with_cert(&up, &cert.sha256_hex(), false)]).await;
    assert_eq!(served(&gw, "apicert.example").await.unwrap(), cert.der);
    assert_eq!(served(&gw, "localhost").await.unwrap(), pki().server.der);
    let r = get(
        gw.addr,
        Some("apicert.example"),
        "apicert.example",
        "/",
        cfg(None),
    )
    .await;
    assert_status(&r, 200, "API certificate by SNI");
    set_apis(&gw, &[api_with_cert(&up, &cert.sha256_hex(), true)]).await;
    let e = served(&gw, "apicert.example").await.unwrap_err();
    assert!(e.contains("not valid for name"), "domain_disabled: {e}");
    gw.stop().await;
}
