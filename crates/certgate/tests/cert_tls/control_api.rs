//! §9.6 S61–S65: mutual TLS on the Gateway API (`security.control_api_use_mutual_tls`,
//! `security.certificates.control_api`), on the gateway port with
//! `control_api_hostname` and on a separate `control_api_port`.

use serde_json::json;

use crate::helpers::*;
use crate::support::*;

/// The Gateway API on the gateway port for SNI/Host `localhost`, with mTLS.
fn by_hostname(control_certs: &[String]) -> GwBuilder {
    gateway()
        .set("control_api_hostname", json!("localhost"))
        .set("security.control_api_use_mutual_tls", json!(true))
        .set("security.certificates.control_api", json!(control_certs))
}

/// The Gateway API on its own port, with mTLS.
fn by_port(control_certs: &[String]) -> GwBuilder {
    gateway()
        .set("control_api_port", json!(free_port()))
        .set("security.control_api_use_mutual_tls", json!(true))
        .set("security.certificates.control_api", json!(control_certs))
}

/// Adds `pem` to the store with org "" directly (the Gateway API is locked by mTLS
/// until its allow list resolves) and reloads; returns the ID.
async fn store_direct(gw: &Gw, pem: &str) -> String {
    let id = gw.gateway().certs.add(pem.as_bytes(), "").await.unwrap();
    gw.gateway().reload().await;
    id
}

/// `GET /tyk/certs` with the admin header, presenting `identity`, SNI/Host localhost.
async fn list_certs(
    addr: std::net::SocketAddr,
    identity: &certgate::pki::Issued,
) -> Result<(u16, String), String> {
    let admin = [("x-tyk-authorization", SECRET)];
    let c = cfg(Some(identity));
    get_with(
        addr,
        Some("localhost"),
        "localhost",
        "/tyk/certs",
        &admin,
        c,
    )
    .await
}

#[tokio::test]
async fn s61_control_mtls_without_certs_refuses_control_but_not_data_plane() {
    let up = upstream().await;
    let gw = by_hostname(&[])
        .api(classic_api("data", "/data/", &up.url()))
        .start()
        .await;
    let host = ip_host(gw.addr);
    let r = get(gw.addr, None, &host, "/data/", cfg(Some(&pki().client))).await;
    assert_status(&r, 200, "data plane without SNI");
    let r = get(gw.addr, None, &host, "/data/", cfg(None)).await;
    assert_status(&r, 200, "data plane without SNI and certificate");
    let r = list_certs(gw.addr, &pki().client).await;
    assert_tls_refused(&r, UNTRUSTED, "control request with a client cert");
    gw.stop().await;
}

#[tokio::test]
async fn s62_control_cert_in_allow_list_passes() {
    let (c1, c2) = self_signed();
    let gw = by_hostname(&[c1.sha256_hex()]).start().await;
    let id = store_direct(&gw, &c1.cert_pem).await;
    assert_eq!(id, c1.sha256_hex());
    let r = list_certs(gw.addr, c1).await;
    assert_status(&r, 200, "allow-listed control cert");
    let r = list_certs(gw.addr, c2).await;
    assert_tls_refused(&r, UNTRUSTED, "another cert");
    gw.stop().await;
}

/// S62 with a CA-issued administrator certificate (the usual case): Go accepts a leaf
/// that is itself in the pool.
#[tokio::test]
async fn s62_ca_issued_control_cert_in_allow_list_passes() {
    let c = &pki().client;
    let gw = by_hostname(&[c.sha256_hex()]).start().await;
    store_direct(&gw, &c.cert_pem).await;
    let r = list_certs(gw.addr, c).await;
    assert_status(&r, 200, "allow-listed CA-issued control cert");
    gw.stop().await;
}

#[tokio::test]
async fn s63_invalid_control_cert_entries_refuse_handshake() {
    let (c1, _) = self_signed();
    let list = ["invalid".to_owned(), format!("invalid-{}", c1.sha256_hex())];
    let gw = by_hostname(&list).start().await;
    store_direct(&gw, &c1.cert_pem).await;
    let r = list_certs(gw.addr, c1).await;
    assert_tls_refused(&r, UNTRUSTED, "no usable control cert");
    gw.stop().await;
}

#[tokio::test]
async fn s64_invalid_entry_is_skipped_valid_one_passes() {
    let (c1, _) = self_signed();
    let list = ["invalid".to_owned(), c1.sha256_hex()];
    for builder in [by_hostname(&list), by_port(&list)] {
        let gw = builder.start().await;
        store_direct(&gw, &c1.cert_pem).await;
        let addr = gw.running.as_ref().unwrap().control_addr.unwrap_or(gw.addr);
        let r = list_certs(addr, c1).await;
        assert_status(&r, 200, "valid entry after an invalid one");
        let (s, b) = r.unwrap();
        assert_eq!(
            (s, b.as_str()),
            (
                200,
                format!("{{\"certs\":[\"{}\"]}}\n", c1.sha256_hex()).as_str()
            )
        );
        gw.stop().await;
    }
}

#[tokio::test]
async fn s65_root_ca_in_control_list_accepts_signed_client() {
    let list = [pki().ca.cert.sha256_hex()];
    for builder in [by_hostname(&list), by_port(&list)] {
        let gw = builder.start().await;
        store_direct(&gw, &pki().ca.cert.cert_pem).await;
        let addr = gw.running.as_ref().unwrap().control_addr.unwrap_or(gw.addr);
        let r = list_certs(addr, &pki().client).await;
        assert_status(&r, 200, "client signed by the listed root");
        let (foreign, _) = self_signed();
        let r = list_certs(addr, foreign).await;
        assert_tls_refused(&r, UNTRUSTED, "self-signed client");
        gw.stop().await;
    }
}
