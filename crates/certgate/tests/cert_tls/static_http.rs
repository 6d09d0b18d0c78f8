//! §9.5 S55–S60: static mTLS on the default single port (Env F), where the allow list
//! is enforced per request and the handshake only requests a certificate.

use serde_json::json;

use crate::helpers::*;
use crate::support::*;

fn env_f() -> GwBuilder {
    gateway().set("http_server_options.max_version", json!(771))
}

fn static_mtls(up: &Upstream, list: &[String]) -> serde_json::Value {
    static_api("apiID-1", "/static-mtls/", &up.url(), "", list)
}

#[tokio::test]
async fn s55_control_api_unaffected_by_static_mtls() {
    let up = upstream().await;
    let gw = env_f().start().await;
    let id = upload(&gw, &pki().client, "default").await;
    set_apis(&gw, &[static_mtls(&up, &[id])]).await;
    let r = get(
        gw.addr,
        Some("localhost"),
        "localhost",
        "/static-mtls/",
        cfg(None),
    )
    .await;
    assert_proxy_error(&r, 403, "Client TLS certificate is required", "data plane");
    let r = admin(&gw)
        .get(gw.url("/tyk/apis/oas"))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    gw.stop().await;
}

#[tokio::test]
async fn s56_allow_listed_client_cert_passes() {
    let up = upstream().await;
    let gw = env_f().start().await;
    let id = upload(&gw, &pki().client, "default").await;
    set_apis(&gw, &[static_mtls(&up, &[id])]).await;
    let r = client(&gw, Some(&pki().client))
        .get(gw.url("/static-mtls/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = client(&gw, Some(&pki().other_client))
        .get(gw.url("/static-mtls/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let msg = format!(
        "Certificate with SHA256 {} not allowed",
        pki().other_client.sha256_hex()
    );
    assert_eq!(r.text().await.unwrap(), proxy_body(&msg));
    gw.stop().await;
}

/// The store refuses expired uploads, so the expired allow-list entry is a file path
/// (Tyk's test mocks the certificate manager instead).
#[tokio::test]
async fn s57_expired_allow_listed_cert_is_403() {
    let now = time::OffsetDateTime::now_utc();
    let expired = pki()
        .ca
        .client_valid(
            "expired",
            now - time::Duration::days(3),
            now - time::Duration::days(1),
        )
        .unwrap();
    let up = upstream().await;
    let gw = env_f().start().await;
    let path = gw.dir.path().join("expired.pem");
    std::fs::write(&path, &expired.cert_pem).unwrap();
    let entry = path.to_str().unwrap().to_owned();
    set_apis(&gw, &[static_mtls(&up, &[entry])]).await;
    let r = get(
        gw.addr,
        Some("localhost"),
        "localhost",
        "/static-mtls/",
        cfg(Some(&expired)),
    )
    .await;
    assert_proxy_error(
        &r,
        403,
        "Certificate has expired",
        "expired allow-listed cert",
    );
    gw.stop().await;
}

#[tokio::test]
async fn s58_public_key_allow_list_announces_no_ca() {
    let up = upstream().await;
    let gw = env_f().start().await;
    let kp = rcgen::KeyPair::from_pem(&pki().other_client.key_pem).unwrap();
    let pub_pem = kp.public_key_pem();
    let (s, body) = post_cert(&gw, &gw.base(), &pub_pem, "default").await;
    assert_eq!(s, 200, "{body}");
    let pub_id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Tyk's test loads apiID-2 alone (BuildAndLoadAPI replaces apiID-1): with
    // apiID-1's certificate beside it on the same domain, its subject would be
    // announced (tests/cert_tls/announce.rs).
    let mut api2 = static_api("apiID-2", "/api2/", &up.url(), "", &[pub_id]);
    api2["use_keyless"] = json!(true);
    set_apis(&gw, &[api2]).await;
    let (c, rec) = recording_config(None);
    let r = get(gw.addr, Some("localhost"), "localhost", "/api2/", c).await;
    assert_proxy_error(
        &r,
        403,
        "Client TLS certificate is required",
        "no cert to apiID-2",
    );
    let hints = rec.hints.lock().unwrap().clone();
    assert_eq!(
        hints,
        Some(Vec::new()),
        "a certificate is requested with an empty CA list"
    );
    let (s, b) = admin_req(&gw, "GET", &gw.url("/tyk/apis")).await;
    assert_eq!(s, 200, "{b}");
    gw.stop().await;
}

#[tokio::test]
async fn s59_root_ca_allow_list_accepts_signed_leaf() {
    let up = upstream().await;
    let gw = env_f().start().await;
    let root_id = upload(&gw, &pki().ca.cert, "default").await;
    set_apis(&gw, &[static_mtls(&up, &[root_id])]).await;
    let leaf = &pki().client;
    let with_root = tls_client_config_chain(&[leaf, &pki().ca.cert], &[]);
    let r = get(
        gw.addr,
        Some("localhost"),
        "localhost",
        "/static-mtls/",
        with_root,
    )
    .await;
    assert_status(&r, 200, "leaf + root");
    let r = get(
        gw.addr,
        Some("localhost"),
        "localhost",
        "/static-mtls/",
        cfg(Some(leaf)),
    )
    .await;
    assert_status(&r, 200, "leaf alone");
    // compatibility.md row 10: appending the root to a foreign leaf does not pass.
    let (foreign, _) = self_signed();
    let forged = tls_client_config_chain(&[foreign, &pki().ca.cert], &[]);
    let r = get(
        gw.addr,
        Some("localhost"),
        "localhost",
        "/static-mtls/",
        forged,
    )
    .await;
    let msg = format!(
        "Certificate with SHA256 {} not allowed",
        foreign.sha256_hex()
    );
    assert_proxy_error(&r, 403, &msg, "self-signed leaf + appended root");
    gw.stop().await;
}

#[tokio::test]
async fn s60_stored_chain_with_key_accepts_leaf_and_root() {
    let up = upstream().await;
    let gw = env_f().start().await;
    let leaf = pki().ca.client("chain-client").unwrap();
    let pem = format!(
        "{}{}{}",
        leaf.cert_pem,
        pki().ca.cert.cert_pem,
        leaf.key_pem
    );
    let (s, body) = post_cert(&gw, &gw.base(), &pem, "default").await;
    assert_eq!(s, 200, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(id, default_id(&leaf));
    set_apis(&gw, &[static_mtls(&up, &[id])]).await;
    let c = tls_client_config_chain(&[&leaf, &pki().ca.cert], &[]);
    let r = get(gw.addr, Some("localhost"), "localhost", "/static-mtls/", c).await;
    assert_status(&r, 200, "stored chain, client sends leaf + root");
    gw.stop().await;
}
