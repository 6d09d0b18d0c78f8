//! §9.10 S104–S109: the Keys API with certificates and certificate bindings.

use serde_json::{json, Value};

use crate::combined::{c1, c2, h};
use crate::common::*;
use crate::support::*;

const API: &str = "keys-api";

struct Env {
    _up: Upstream,
    gw: Gw,
}

/// A certificate-auth API (secure mode), c1 and c2 in the store.
async fn env() -> Env {
    let up = upstream().await;
    let gw = gateway()
        .api(cert_api(API, "/keys-api/", &up.url()))
        .start()
        .await;
    upload(&gw, c1(), "default").await;
    upload(&gw, c2(), "default").await;
    Env { _up: up, gw }
}

fn modified(key: &str) -> (u16, Value) {
    (
        200,
        json!({"key": key, "status": "ok", "action": "modified"}),
    )
}

/// "default" + 64 hex digits that name no stored certificate.
fn missing_id() -> String {
    format!("default{}", "0".repeat(64))
}

#[tokio::test]
async fn s104_put_changing_certificate_to_another_stored_one_is_200() {
    let e = env().await;
    let key = create_key(&e.gw, &session(API, Some(&h(c1())))).await;
    // Deliberately unlike Tyk (issue 11, hole 4): the key follows its certificate. It
    // moves to c2's name (the answer names it), c1 is refused from then on and c2
    // works; Tyk leaves it under c1's name and the next request with c1 rebinds it.
    let new_key = certgate::tokens::generate_token("default", &h(c2()), "murmur64");
    assert_eq!(
        put_key(&e.gw, &key, &session(API, Some(&h(c2())))).await,
        modified(&new_key)
    );
    let (status, v) = get_key(&e.gw, &new_key).await;
    assert_eq!((status, &v["certificate"]), (200, &json!(h(c2()))));
    assert_eq!(get_key(&e.gw, &key).await.0, 404);
    let r = get(&client(&e.gw, Some(c1())), &e.gw.url("/keys-api/x"), None).await;
    expect_refused(r, 401, DISALLOWED).await;
    let r = get(&client(&e.gw, Some(c2())), &e.gw.url("/keys-api/x"), None).await;
    expect_ok(r).await;
    assert!(stored_session(&e.gw, &key).await.is_none());
    e.gw.stop().await;
}

#[tokio::test]
async fn s105_put_removing_the_certificate_is_400() {
    let e = env().await;
    let key = create_key(&e.gw, &session(API, Some(&h(c1())))).await;
    let mut s = session(API, None);
    s["certificate"] = json!("");
    expect_api_error(
        put_key(&e.gw, &key, &s).await,
        400,
        "Key cannot be used without a certificate",
    );
    // Unchanged.
    assert_eq!(
        stored_session(&e.gw, &key).await.unwrap()["certificate"],
        json!(h(c1()))
    );
    e.gw.stop().await;
}

#[tokio::test]
async fn s106_put_with_a_certificate_not_in_the_store_is_400() {
    let e = env().await;
    let key = create_key(&e.gw, &session(API, Some(&h(c1())))).await;
    expect_api_error(
        put_key(&e.gw, &key, &session(API, Some("invalid-cert-id"))).await,
        400,
        "Key must be used with an existent certificate",
    );
    e.gw.stop().await;
}

#[tokio::test]
async fn s107_create_validates_bindings() {
    let e = env().await;
    // Existing certificate: 200.
    let key = create_key(&e.gw, &session_with_bindings(API, None, &[&h(c1())])).await;
    assert_eq!(
        stored_session(&e.gw, &key).await.unwrap()["mtls_static_certificate_bindings"],
        json!([h(c1())])
    );
    // Not prefixed by the session's org: 400 invalid.
    expect_api_error(
        create_key_raw(
            &e.gw,
            &session_with_bindings(API, None, &["nonexistent-cert-id"]),
        )
        .await,
        400,
        "invalid certificate ID: nonexistent-cert-id",
    );
    // Prefixed but not in the store: 400 not found.
    let missing = missing_id();
    expect_api_error(
        create_key_raw(&e.gw, &session_with_bindings(API, None, &[&missing])).await,
        400,
        &format!("certificate not found: {missing}"),
    );
    // No field, and an empty list: 200.
    create_key(&e.gw, &session(API, None)).await;
    create_key(&e.gw, &session_with_bindings(API, None, &[])).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s108_custom_key_and_put_validate_only_new_bindings() {
    let e = env().await;
    let (h1, h2, missing) = (h(c1()), h(c2()), missing_id());
    // POST /tyk/keys/{name} with valid bindings: 200.
    let (status, v) = post_custom_key(
        &e.gw,
        "custom-key-id",
        &session_with_bindings(API, None, &[&h1]),
    )
    .await;
    assert_eq!((status, &v["action"]), (200, &json!("added")), "{v}");
    let key = v["key"].as_str().unwrap().to_owned();
    assert_eq!(
        key,
        certgate::tokens::generate_token("default", "custom-key-id", "murmur64")
    );
    // Invalid bindings: 400, nothing stored.
    expect_api_error(
        post_custom_key(
            &e.gw,
            "custom-key-invalid",
            &session_with_bindings(API, None, &[&missing]),
        )
        .await,
        400,
        &format!("certificate not found: {missing}"),
    );
    let invalid = certgate::tokens::generate_token("default", "custom-key-invalid", "murmur64");
    assert!(stored_session(&e.gw, &invalid).await.is_none());

    let put = |bindings: Vec<String>| {
        let refs: Vec<&str> = bindings.iter().map(String::as_str).collect();
        session_with_bindings(API, None, &refs)
    };
    // Adding a valid one: 200.
    let r = put_key(&e.gw, &key, &put(vec![h1.clone(), h2.clone()])).await;
    assert_eq!(r, modified(&key));
    // Only an invalid one: 400.
    expect_api_error(
        put_key(&e.gw, &key, &put(vec!["nonexistent-cert-id".into()])).await,
        400,
        "invalid certificate ID: nonexistent-cert-id",
    );
    // Existing plus a new invalid one: 400.
    expect_api_error(
        put_key(&e.gw, &key, &put(vec![h1.clone(), missing.clone()])).await,
        400,
        &format!("certificate not found: {missing}"),
    );
    let bindings = |v: Value| v["mtls_static_certificate_bindings"].clone();
    assert_eq!(
        bindings(stored_session(&e.gw, &key).await.unwrap()),
        json!([h1, h2])
    );
    // Unchanged: 200. Removing one: 200.
    let r = put_key(&e.gw, &key, &put(vec![h1.clone(), h2.clone()])).await;
    assert_eq!(r, modified(&key));
    let r = put_key(&e.gw, &key, &put(vec![h1.clone()])).await;
    assert_eq!(r, modified(&key));
    assert_eq!(
        bindings(stored_session(&e.gw, &key).await.unwrap()),
        json!([h1])
    );
    e.gw.stop().await;
}

#[tokio::test]
async fn s109_binding_ids_wrong_org_path_traversal_and_missing() {
    let e = env().await;
    let cases = [
        (
            format!("otherorg{}", c1().sha256_hex()),
            "invalid certificate ID",
        ),
        (
            "../../../../etc/passwd".to_owned(),
            "invalid certificate ID",
        ),
        (missing_id(), "certificate not found"),
        // Prefixed by the org but naming a path: never read as a file.
        (
            "default../../../../etc/passwd".to_owned(),
            "certificate not found",
        ),
    ];
    for (id, msg) in cases {
        expect_api_error(
            create_key_raw(&e.gw, &session_with_bindings(API, None, &[&id])).await,
            400,
            &format!("{msg}: {id}"),
        );
    }
    e.gw.stop().await;
}
