//! Revocation on an open keep-alive connection (§1.7 E, §11.1-5): the client keeps ONE
//! TLS connection (one HTTP/1.1 stream; a request on another connection would fail the
//! test), is served, then the key or the certificate is deleted through the Gateway
//! API, and the very next request on that same connection is refused.

use crate::common::*;
use crate::support::*;

const API: &str = "revoke";

async fn setup() -> (Upstream, Gw, String, String) {
    let up = upstream().await;
    let gw = gateway()
        .api(cert_api(API, "/revoke/", &up.url()))
        .start()
        .await;
    let id = upload(&gw, &pki().client, "default").await;
    let key = create_key(&gw, &session(API, Some(&id))).await;
    (up, gw, id, key)
}

#[tokio::test]
async fn revocation_deleting_the_key_refuses_the_next_request_on_the_same_connection() {
    let (_up, gw, _, key) = setup().await;
    let mut conn = OneConn::open(&gw, Some(&pki().client)).await;
    for _ in 0..2 {
        let (status, body) = conn.get("/revoke/x", None).await;
        assert_eq!(status, 200, "{body}");
    }
    delete_key(&gw, &key).await;
    let (status, body) = conn.get("/revoke/x", None).await;
    assert_eq!((status, body), (401, tyk_body(DISALLOWED)));
    // Still the same connection, still refused.
    let (status, body) = conn.get("/revoke/x", None).await;
    assert_eq!((status, body), (401, tyk_body(DISALLOWED)));
    gw.stop().await;
}

#[tokio::test]
async fn revocation_deleting_the_certificate_refuses_the_next_request_on_the_same_connection() {
    let (_up, gw, id, _) = setup().await;
    let mut conn = OneConn::open(&gw, Some(&pki().client)).await;
    let (status, body) = conn.get("/revoke/x", None).await;
    assert_eq!(status, 200, "{body}");
    delete_cert(&gw, &id, "default").await;
    let (status, body) = conn.get("/revoke/x", None).await;
    assert_eq!((status, body), (403, tyk_body(DISALLOWED)));
    // Uploading it again restores access on the same connection (the key still exists).
    assert_eq!(upload(&gw, &pki().client, "default").await, id);
    let (status, body) = conn.get("/revoke/x", None).await;
    assert_eq!(status, 200, "{body}");
    gw.stop().await;
}

/// §4.4: the certificate ID with `?org_id=` names the certificate's key on the Keys
/// API; deleting it that way is the "revoke a certificate" operation.
#[tokio::test]
async fn revocation_key_addressed_by_certificate_id_and_org() {
    let (_up, gw, id, key) = setup().await;
    let r = admin(&gw)
        .get(gw.url(&format!("/tyk/keys/{id}?org_id=default")))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["certificate"], serde_json::json!(id));
    let mut conn = OneConn::open(&gw, Some(&pki().client)).await;
    let (status, body) = conn.get("/revoke/x", None).await;
    assert_eq!(status, 200, "{body}");
    let r = admin(&gw)
        .delete(gw.url(&format!("/tyk/keys/{id}?org_id=default")))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(
        (&v["key"], &v["action"]),
        (&serde_json::json!(key), &serde_json::json!("deleted"))
    );
    let (status, body) = conn.get("/revoke/x", None).await;
    assert_eq!((status, body), (401, tyk_body(DISALLOWED)));
    gw.stop().await;
}
