//! §9.7 S74–S83: the certificate store API with org `1`, plus the store's refusals
//! and the promise that a private key never leaves the gateway.

use serde_json::Value;

use crate::helpers::*;
use crate::support::*;

async fn get_text(gw: &Gw, path: &str) -> (u16, String) {
    admin_req(gw, "GET", &gw.url(path)).await
}

#[tokio::test]
async fn s74_to_s83_certificate_store_api_org_1() {
    let gw = gateway().start().await;
    let root = &pki().ca.cert;
    let client = &pki().client;
    let server = pki().ca.server(&["localhost", "srv.example"]).unwrap();
    let (rs, cs, ss) = (root.sha256_hex(), client.sha256_hex(), server.sha256_hex());

    // S74
    let r = get_text(&gw, "/tyk/certs?org_id=1").await;
    assert_eq!(r, (200, "{\"certs\":null}\n".to_owned()), "S74");

    // S75
    let (s, b) = post_cert(&gw, &gw.base(), &root.cert_pem, "1").await;
    assert_eq!(s, 200, "S75 {b}");
    assert_eq!(
        b,
        format!("{{\"id\":\"1{rs}\",\"status\":\"ok\",\"message\":\"Certificate added\"}}\n"),
        "S75"
    );

    // S76
    let (s, b) = post_cert(&gw, &gw.base(), &client.cert_pem, "1").await;
    assert_eq!(s, 200, "S76 client {b}");
    assert!(b.contains(&format!("\"id\":\"1{cs}\"")), "S76 client {b}");
    let with_key = format!("{}{}", server.cert_pem, server.key_pem);
    let (s, b) = post_cert(&gw, &gw.base(), &with_key, "1").await;
    assert_eq!(s, 200, "S76 server {b}");
    assert!(b.contains(&format!("\"id\":\"1{ss}\"")), "S76 server {b}");

    // S77
    let (s, b) = get_text(&gw, "/tyk/certs?org_id=1").await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&b).unwrap();
    let ids: Vec<&str> = v["certs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for want in [format!("1{rs}"), format!("1{cs}"), format!("1{ss}")] {
        assert!(ids.contains(&want.as_str()), "S77 {want} in {b}");
    }
    assert_eq!(ids.len(), 3, "S77 {b}");

    // S78
    let (s, b) = get_text(&gw, "/tyk/certs?org_id=1&mode=detailed").await;
    assert_eq!(s, 200, "S78");
    let v: Value = serde_json::from_str(&b).unwrap();
    let certs = v["certs"].as_array().unwrap();
    assert_eq!(certs.len(), 3, "S78 {b}");
    let order = [
        "id",
        "issuer_cn",
        "subject_cn",
        "dns_names",
        "has_private",
        "not_before",
        "not_after",
        "is_ca",
    ];
    for c in certs {
        let keys: Vec<&str> = c.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, order, "S78 field order: {c}");
        let id = c["id"].as_str().unwrap();
        let (private, ca) = (
            c["has_private"].as_bool().unwrap(),
            c["is_ca"].as_bool().unwrap(),
        );
        if id == format!("1{ss}") {
            assert!(private && !ca, "S78 server: {c}");
            assert_eq!(
                c["dns_names"],
                serde_json::json!(["localhost", "srv.example"])
            );
            assert_eq!(c["issuer_cn"], "test CA");
            assert_eq!(c["subject_cn"], "localhost");
        } else if id == format!("1{rs}") {
            assert!(!private && ca, "S78 root: {c}");
            assert_eq!(c["dns_names"], Value::Null, "S78 root: {c}");
        } else {
            assert_eq!(id, format!("1{cs}"));
            assert!(!private && !ca, "S78 client: {c}");
            assert_eq!(c["subject_cn"], "client-1");
        }
    }

    // S79
    let (s, b) = get_text(&gw, &format!("/tyk/certs/1{cs}?org_id=1")).await;
    assert_eq!(s, 200, "S79");
    let prefix = format!("{{\"id\":\"1{cs}\",\"fingerprint\":\"{cs}\",\"has_private\":false");
    assert!(b.starts_with(&prefix), "S79 {b}");

    // S80
    let (s, b) = get_text(&gw, &format!("/tyk/certs/1{ss}")).await;
    assert_eq!(s, 200, "S80");
    let prefix = format!("{{\"id\":\"1{ss}\",\"fingerprint\":\"{ss}\",\"has_private\":true");
    assert!(b.starts_with(&prefix), "S80 {b}");

    // S81
    let (s, b) = get_text(&gw, &format!("/tyk/certs/1{rs}")).await;
    assert_eq!(s, 200, "S81");
    assert!(b.contains("\"is_ca\":true"), "S81 {b}");

    // S82
    let (s, b) = get_text(&gw, &format!("/tyk/certs/1{ss},1{cs}")).await;
    assert_eq!(s, 200, "S82");
    let prefix = format!("[{{\"id\":\"1{ss}\",\"fingerprint\":\"{ss}\",\"has_private\":true");
    assert!(b.starts_with(&prefix), "S82 {b}");
    let client_meta = format!("{{\"id\":\"1{cs}\",\"fingerprint\":\"{cs}\",\"has_private\":false");
    assert!(b.contains(&client_meta), "S82 {b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);

    // S83
    for sha in [&rs, &cs, &ss] {
        let r = admin_req(
            &gw,
            "DELETE",
            &gw.url(&format!("/tyk/certs/1{sha}?org_id=1")),
        )
        .await;
        assert_eq!(
            r,
            (
                200,
                "{\"status\":\"ok\",\"message\":\"removed\"}\n".to_owned()
            ),
            "S83"
        );
    }
    let r = get_text(&gw, "/tyk/certs?org_id=1").await;
    assert_eq!(r, (200, "{\"certs\":null}\n".to_owned()), "S83 list");
    gw.stop().await;
}

#[tokio::test]
async fn private_key_is_never_returned() {
    let gw = gateway().start().await;
    let server = pki().ca.server(&["localhost"]).unwrap();
    let pem = format!("{}{}", server.cert_pem, server.key_pem);
    let (s, up) = post_cert(&gw, &gw.base(), &pem, "1").await;
    assert_eq!(s, 200, "{up}");
    let id = format!("1{}", server.sha256_hex());
    let mut bodies = vec![up];
    for path in [
        "/tyk/certs?org_id=1".to_owned(),
        "/tyk/certs?org_id=1&mode=detailed".to_owned(),
        "/tyk/certs".to_owned(),
        "/tyk/certs?mode=detailed".to_owned(),
        format!("/tyk/certs/{id}"),
        format!("/tyk/certs/{id},{id}"),
    ] {
        let (s, b) = get_text(&gw, &path).await;
        assert_eq!(s, 200, "{path}: {b}");
        bodies.push(b);
    }
    let key_b64 = server
        .key_pem
        .lines()
        .find(|l| !l.starts_with("-----"))
        .unwrap()
        .to_owned();
    for b in &bodies {
        assert!(!b.contains("PRIVATE"), "{b}");
        assert!(!b.contains(&key_b64), "{b}");
    }
    // At rest: encrypted, never the original key.
    let raw = gw.gateway().certs.get_raw(&id).await.unwrap().unwrap();
    assert!(
        raw.contains(concat!("-----BEGIN ENCRYPTED PRIVATE", " KEY-----")),
        "{raw}"
    );
    assert!(raw.contains("Proc-Type: 4,ENCRYPTED"), "{raw}");
    assert!(!raw.contains(&key_b64));
    gw.stop().await;
}

#[tokio::test]
async fn malformed_pem_is_403_and_nothing_is_stored() {
    let gw = gateway().start().await;
    for body in [
        "not a certificate",
        "",
        "-----BEGIN NOTHING-----\n-----END NOTHING-----\n",
    ] {
        let (s, b) = post_cert(&gw, &gw.base(), body, "1").await;
        assert_eq!(
            (s, b),
            (
                403,
                api_error("Failed to decode certificate. It should be PEM encoded.")
            ),
            "body {body:?}"
        );
    }
    assert_eq!(
        get_text(&gw, "/tyk/certs?org_id=1").await,
        (200, "{\"certs\":null}\n".to_owned())
    );
    assert_eq!(
        get_text(&gw, "/tyk/certs").await,
        (200, "{\"certs\":null}\n".to_owned())
    );
    gw.stop().await;
}

#[tokio::test]
async fn expired_certificate_upload_is_403() {
    let gw = gateway().start().await;
    let now = time::OffsetDateTime::now_utc();
    let expired = pki()
        .ca
        .client_valid(
            "old",
            now - time::Duration::days(3),
            now - time::Duration::days(1),
        )
        .unwrap();
    let (s, b) = post_cert(&gw, &gw.base(), &expired.cert_pem, "1").await;
    assert_eq!((s, b), (403, api_error("certificate is expired")));
    let r = get_text(&gw, &format!("/tyk/certs/1{}", expired.sha256_hex())).await;
    assert_eq!(
        r,
        (
            404,
            api_error("Certificate with given SHA256 fingerprint not found")
        )
    );
    gw.stop().await;
}

#[tokio::test]
async fn duplicate_upload_is_403_already_exists() {
    let gw = gateway().start().await;
    let c = &pki().client;
    let (s, _) = post_cert(&gw, &gw.base(), &c.cert_pem, "1").await;
    assert_eq!(s, 200);
    let (s, b) = post_cert(&gw, &gw.base(), &c.cert_pem, "1").await;
    let id = format!("1{}", c.sha256_hex());
    assert_eq!(
        (s, b),
        (
            403,
            api_error(&format!("Certificate with {id} id already exists"))
        )
    );
    // The same certificate under another org is another entry.
    let (s, b) = post_cert(&gw, &gw.base(), &c.cert_pem, "2").await;
    assert_eq!(s, 200, "{b}");
    gw.stop().await;
}

#[tokio::test]
async fn delete_without_id_is_405() {
    let gw = gateway().start().await;
    let r = admin_req(&gw, "DELETE", &gw.url("/tyk/certs")).await;
    assert_eq!(r, (405, api_error("Method not supported")));
    gw.stop().await;
}

/// compatibility.md row 14: without `org_id` every call lists every certificate.
#[tokio::test]
async fn list_without_org_lists_all_on_every_call() {
    let gw = gateway().start().await;
    let a = upload(&gw, &pki().client, "1").await;
    let b = upload(&gw, &pki().other_client, "").await;
    let mut want = vec![a, b];
    want.sort();
    for _ in 0..3 {
        let (s, body) = get_text(&gw, "/tyk/certs").await;
        assert_eq!(s, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        let mut got: Vec<String> = v["certs"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect();
        got.sort();
        assert_eq!(got, want);
    }
    gw.stop().await;
}
