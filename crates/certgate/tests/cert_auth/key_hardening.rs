//! Issue 11: a certificate's key is not a bearer token (hole 1), changing a key's
//! certificate moves the binding (hole 4), no master key by a partial PUT (hole 11),
//! and a custom key never lands on a certificate's session (hole 13).

use serde_json::{json, Value};

use crate::combined::{c1, c2, h};
use crate::common::*;
use crate::support::*;

const CERT_API: &str = "cert-api";
const TOK_API: &str = "tok-api";
const NO_RIGHTS: &str = "Failed to create key, ensure security settings are correct.";
const CERT_NAME: &str = "custom key ID must not be a certificate ID or fingerprint; create a certificate's key with POST /tyk/keys/create and its \"certificate\" field";

struct Env {
    _up: Upstream,
    gw: Gw,
}

/// A certificate-auth API `/cert/` and a token API `/tok/` (secure mode), c1 and c2 in
/// the store; `sets` changes the gateway configuration.
async fn env_with(sets: &[(&str, Value)], plain_http: bool) -> Env {
    let up = upstream().await;
    let mut b = gateway()
        .api(cert_api(CERT_API, "/cert/", &up.url()))
        .api(token_api(TOK_API, "/tok/", &up.url()));
    for (path, v) in sets {
        b = b.set(path, v.clone());
    }
    if plain_http {
        b = b.plain_http();
    }
    let gw = b.start().await;
    upload(&gw, c1(), "default").await;
    upload(&gw, c2(), "default").await;
    Env { _up: up, gw }
}

async fn env() -> Env {
    env_with(&[], false).await
}

/// A session with access to both APIs, optionally bound to `certificate`.
fn both(certificate: Option<&str>) -> Value {
    let mut s = session(CERT_API, certificate);
    s["access_rights"][TOK_API] =
        json!({"api_id": TOK_API, "api_name": TOK_API, "versions": ["Default"]});
    s
}

/// The key `POST /tyk/keys/create` gives a certificate (org default, murmur64).
fn cert_key(c: &certgate::pki::Issued) -> String {
    certgate::tokens::generate_token("default", &h(c), "murmur64")
}

async fn call(
    gw: &Gw,
    cert: Option<&certgate::pki::Issued>,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    get(&client(gw, cert), &gw.url(path), token).await
}

// ---- Hole 1: a certificate-bound key is not a bearer token ----

#[tokio::test]
async fn certificate_key_fingerprint_and_id_are_unknown_tokens_on_a_token_api() {
    let e = env().await;
    let key = create_key(&e.gw, &both(Some(&h(c1())))).await;
    // The certificate path works.
    expect_ok(call(&e.gw, Some(c1()), "/cert/x", None).await).await;
    // What an unknown key gets on the token API.
    expect_refused(
        call(&e.gw, None, "/tok/x", Some("no-such-key-at-all")).await,
        403,
        DISALLOWED,
    )
    .await;
    let fingerprint = c1().sha256_hex();
    for token in [fingerprint.as_str(), &h(c1()), &key] {
        // Without a certificate, with another one, and even with c1 itself: a token
        // never authenticates a certificate's session.
        for cert in [None, Some(c2()), Some(c1())] {
            expect_refused(
                call(&e.gw, cert, "/tok/x", Some(token)).await,
                403,
                DISALLOWED,
            )
            .await;
        }
        // With a `Bearer ` prefix too.
        let bearer = format!("Bearer {token}");
        expect_refused(
            call(&e.gw, None, "/tok/x", Some(&bearer)).await,
            403,
            DISALLOWED,
        )
        .await;
    }
    // The certificate's own session is untouched.
    let stored = stored_session(&e.gw, &key).await.unwrap();
    assert_eq!(stored["certificate"], json!(h(c1())));
    e.gw.stop().await;
}

#[tokio::test]
async fn certificate_key_is_not_a_bearer_token_on_a_plain_http_listener() {
    let e = env_with(&[], true).await;
    let key = create_key(&e.gw, &both(Some(&h(c1())))).await;
    let c = client(&e.gw, None);
    for token in [c1().sha256_hex(), h(c1()), key] {
        expect_refused(
            get(&c, &e.gw.url("/tok/x"), Some(&token)).await,
            403,
            DISALLOWED,
        )
        .await;
    }
    // A key without a certificate still works there.
    let plain = create_key(&e.gw, &both(None)).await;
    expect_ok(get(&c, &e.gw.url("/tok/x"), Some(&plain)).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn binding_key_needs_a_bound_certificate_on_a_token_api_without_allow_list() {
    let e = env().await;
    let key = create_key(&e.gw, &session_with_bindings(TOK_API, None, &[&h(c1())])).await;
    for cert in [None, Some(c2())] {
        expect_refused(
            call(&e.gw, cert, "/tok/x", Some(&key)).await,
            403,
            DISALLOWED,
        )
        .await;
    }
    expect_ok(call(&e.gw, Some(c1()), "/tok/x", Some(&key)).await).await;
    e.gw.stop().await;
}

// ---- Hole 4: a PUT moves the certificate binding at once ----

#[tokio::test]
async fn put_changing_the_certificate_revokes_the_old_one_at_once() {
    let e = env().await;
    let key = create_key(&e.gw, &session(CERT_API, Some(&h(c1())))).await;
    // c1 works and its session is cached on this node.
    for _ in 0..2 {
        expect_ok(call(&e.gw, Some(c1()), "/cert/x", None).await).await;
    }
    let mut one = OneConn::open(&e.gw, Some(c1())).await;
    assert_eq!(one.get("/cert/x", None).await.0, 200);
    let new_key = cert_key(c2());
    assert_eq!(
        put_key(&e.gw, &key, &session(CERT_API, Some(&h(c2())))).await,
        (
            200,
            json!({"key": new_key, "status": "ok", "action": "modified"})
        )
    );
    // From the answer on: c1 is refused (also on its open connection), c2 works.
    for _ in 0..2 {
        expect_refused(
            call(&e.gw, Some(c1()), "/cert/x", None).await,
            401,
            DISALLOWED,
        )
        .await;
    }
    assert_eq!(one.get("/cert/x", None).await, (401, tyk_body(DISALLOWED)));
    expect_ok(call(&e.gw, Some(c2()), "/cert/x", None).await).await;
    // Nothing was rebound: the session lives under c2's name only, naming c2.
    assert!(stored_session(&e.gw, &key).await.is_none());
    let stored = stored_session(&e.gw, &new_key).await.unwrap();
    assert_eq!(stored["certificate"], json!(h(c2())));
    assert_eq!(get_key(&e.gw, &key).await.0, 404);
    // Still refused afterwards (no later request brings c1 back).
    expect_refused(
        call(&e.gw, Some(c1()), "/cert/x", None).await,
        401,
        DISALLOWED,
    )
    .await;
    e.gw.stop().await;
}

#[tokio::test]
async fn put_moving_to_a_certificate_that_has_a_key_is_409_and_changes_nothing() {
    let e = env().await;
    let k1 = create_key(&e.gw, &session(CERT_API, Some(&h(c1())))).await;
    let k2 = create_key(&e.gw, &session(TOK_API, Some(&h(c2())))).await;
    let (status, v) = put_key(&e.gw, &k1, &session(CERT_API, Some(&h(c2())))).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(
        stored_session(&e.gw, &k1).await.unwrap()["certificate"],
        json!(h(c1()))
    );
    let other = stored_session(&e.gw, &k2).await.unwrap();
    assert_eq!(
        (&other["certificate"], other["access_rights"].get(CERT_API)),
        (&json!(h(c2())), None)
    );
    expect_ok(call(&e.gw, Some(c1()), "/cert/x", None).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn secure_mode_never_rebinds_a_session_on_the_request_path() {
    let e = env().await;
    // A session stored under c1's name that names c2 (edited by hand).
    let key = cert_key(c1());
    write_session(&e.gw, &key, &session(CERT_API, Some(&h(c2())))).await;
    expect_refused(
        call(&e.gw, Some(c1()), "/cert/x", None).await,
        401,
        DISALLOWED,
    )
    .await;
    assert_eq!(
        stored_session(&e.gw, &key).await.unwrap()["certificate"],
        json!(h(c2()))
    );
    // Nor one that names no certificate.
    write_session(&e.gw, &key, &session(CERT_API, None)).await;
    expect_refused(
        call(&e.gw, Some(c1()), "/cert/x", None).await,
        401,
        DISALLOWED,
    )
    .await;
    assert_eq!(
        stored_session(&e.gw, &key)
            .await
            .unwrap()
            .get("certificate"),
        None
    );
    e.gw.stop().await;
}

// ---- Hole 11: no master key by a partial PUT ----

#[tokio::test]
async fn put_without_access_rights_is_400_as_post() {
    let e = env().await;
    let key = create_key(&e.gw, &both(None)).await;
    let body = json!({"org_id": "default", "rate": 1000, "per": 1});
    expect_api_error(
        post_custom_key(&e.gw, "partial-key", &body).await,
        400,
        NO_RIGHTS,
    );
    expect_api_error(put_key(&e.gw, &key, &body).await, 400, NO_RIGHTS);
    // Empty rights are the same.
    let mut empty = body.clone();
    empty["access_rights"] = json!({});
    expect_api_error(put_key(&e.gw, &key, &empty).await, 400, NO_RIGHTS);
    // Unchanged, and still limited to its APIs.
    let stored = stored_session(&e.gw, &key).await.unwrap();
    assert_eq!(stored["access_rights"].as_object().unwrap().len(), 2);
    e.gw.stop().await;
}

#[tokio::test]
async fn put_with_only_a_policy_without_access_rights_is_400() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    write(
        &dir.path().join("policies/no-rights.json"),
        &json!({"id": "no-rights", "org_id": "default", "rate": 10, "per": 1, "access_rights": {}}),
    );
    let up = upstream().await;
    let gw = gateway()
        .set(
            "policies",
            json!({"policy_source": "file", "policy_path": "policies"}),
        )
        .api(token_api(TOK_API, "/tok/", &up.url()))
        .start_in(dir)
        .await;
    let key = create_key(&gw, &session(TOK_API, None)).await;
    // As Tyk's policy rules: policies that grant nothing are an error.
    let body = json!({"org_id": "default", "apply_policies": ["no-rights"]});
    let msg = "Failed to create key - key has no valid policies to be applied";
    expect_api_error(put_key(&gw, &key, &body).await, 400, msg);
    expect_api_error(post_custom_key(&gw, "policy-only", &body).await, 400, msg);
    assert!(stored_session(&gw, &key).await.unwrap()["apply_policies"].is_null());
    gw.stop().await;
}

#[tokio::test]
async fn empty_access_rights_reach_nothing_unless_master_keys_are_allowed() {
    // A session without access rights in the store (written by hand or by an older
    // version): refused on token and certificate APIs alike.
    let e = env().await;
    let token = certgate::tokens::generate_token("default", "master-by-hand", "murmur64");
    write_session(&e.gw, &token, &json!({"org_id": "default"})).await;
    expect_refused(
        call(&e.gw, None, "/tok/x", Some(&token)).await,
        403,
        DISALLOWED,
    )
    .await;
    write_session(
        &e.gw,
        &cert_key(c1()),
        &json!({"org_id": "default", "certificate": h(c1())}),
    )
    .await;
    expect_refused(
        call(&e.gw, Some(c1()), "/cert/x", None).await,
        403,
        DISALLOWED,
    )
    .await;
    e.gw.stop().await;

    // With allow_master_keys they are master keys, as in Tyk.
    let e = env_with(&[("allow_master_keys", json!(true))], false).await;
    write_session(&e.gw, &token, &json!({"org_id": "default"})).await;
    expect_ok(call(&e.gw, None, "/tok/x", Some(&token)).await).await;
    let (status, v) = put_key(
        &e.gw,
        &token,
        &json!({"org_id": "default", "rate": 5, "per": 1}),
    )
    .await;
    assert_eq!((status, &v["action"]), (200, &json!("modified")), "{v}");
    e.gw.stop().await;
}

// ---- Hole 13: a custom key never lands on a certificate's session ----

#[tokio::test]
async fn custom_key_named_like_a_certificate_is_refused() {
    let e = env().await;
    let key = create_key(&e.gw, &session(CERT_API, Some(&h(c1())))).await;
    let grab = json!({
        "org_id": "default",
        "quota_max": 1,
        "access_rights": {TOK_API: {"api_id": TOK_API, "api_name": TOK_API, "versions": ["Default"]}}
    });
    let upper = c1().sha256_hex().to_uppercase();
    for name in [
        c1().sha256_hex(),
        h(c1()),
        upper,
        format!("other{}", c1().sha256_hex()),
    ] {
        expect_api_error(post_custom_key(&e.gw, &name, &grab).await, 400, CERT_NAME);
    }
    // c1's session keeps its rights; nothing else was stored.
    let stored = stored_session(&e.gw, &key).await.unwrap();
    assert_eq!(
        stored["access_rights"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec![CERT_API]
    );
    assert!(stored.get("quota_max").is_none());
    expect_ok(call(&e.gw, Some(c1()), "/cert/x", None).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn custom_key_create_never_overwrites() {
    let e = env().await;
    let first = both(None);
    let (status, v) = post_custom_key(&e.gw, "my-custom-key", &first).await;
    assert_eq!(status, 200, "{v}");
    let key = v["key"].as_str().unwrap().to_owned();
    let mut second = session(TOK_API, None);
    second["quota_max"] = json!(1);
    let (status, v) = post_custom_key(&e.gw, "my-custom-key", &second).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["status"], "error");
    let stored = stored_session(&e.gw, &key).await.unwrap();
    assert_eq!(stored["access_rights"].as_object().unwrap().len(), 2);
    assert!(stored.get("quota_max").is_none());
    e.gw.stop().await;
}
