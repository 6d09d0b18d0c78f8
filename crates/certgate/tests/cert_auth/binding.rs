//! §9.3 S40–S44 (Env B, `allow_unsafe_dynamic_mtls_token: false`): certificate–token
//! binding (`mtls_static_certificate_bindings`) on APIs with a static allow list.

use serde_json::{json, Value};

use crate::combined::{c1, c2, call, dyn_api, env, h, static_token_api, Env};
use crate::common::*;
use crate::support::*;

const API: &str = "test-api";

/// Env B's API: static [c1, c2], token auth (no `use_certificate`), `/cert-binding/`.
async fn env_b() -> Env {
    env(false, |t| {
        vec![static_token_api(API, "/cert-binding/", t, &[c1(), c2()])]
    })
    .await
}

#[tokio::test]
async fn s40_binding_key_with_bound_certificate_is_200() {
    let e = env_b().await;
    let key = create_key(&e.gw, &session_with_bindings(API, None, &[&h(c1())])).await;
    expect_ok(call(&e.gw, Some(c1()), "/cert-binding/x", Some(&key)).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s41_binding_key_with_other_allowed_certificate_is_401_disallowed() {
    let e = env_b().await;
    let key = create_key(&e.gw, &session_with_bindings(API, None, &[&h(c1())])).await;
    expect_refused(
        call(&e.gw, Some(c2()), "/cert-binding/x", Some(&key)).await,
        401,
        DISALLOWED,
    )
    .await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s42_binding_key_without_certificate_is_403_client_tls_required() {
    let e = env_b().await;
    let key = create_key(&e.gw, &session_with_bindings(API, None, &[&h(c1())])).await;
    expect_refused(
        call(&e.gw, None, "/cert-binding/x", Some(&key)).await,
        403,
        CLIENT_TLS_REQUIRED,
    )
    .await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s43_key_without_bindings_works_with_any_allowed_certificate() {
    let e = env_b().await;
    let key = create_key(&e.gw, &session(API, None)).await;
    for c in [c1(), c2()] {
        expect_ok(call(&e.gw, Some(c), "/cert-binding/x", Some(&key)).await).await;
    }
    // Without any certificate the allow list refuses first.
    expect_refused(
        call(&e.gw, None, "/cert-binding/x", Some(&key)).await,
        403,
        CLIENT_TLS_REQUIRED,
    )
    .await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s44_expired_certificate_whose_allow_list_entry_cannot_load_is_403_not_allowed() {
    let expired = expired_cert();
    let expired_id = cert_id("default", &expired);
    let listed: Value = json!([h(c1()), expired_id.clone()]);
    let e = env(false, |t| {
        let mut api = dyn_api("expired-binding", "/expired-binding/", t, None);
        api["use_mutual_tls_auth"] = json!(true);
        api["client_certificates"] = listed;
        vec![api]
    })
    .await;
    // The expired certificate cannot be uploaded (403, as every store add error).
    let (status, v) = upload_cert(&e.gw, &expired.cert_pem, "default").await;
    assert_eq!((status, &v["status"]), (403, &json!("error")), "{v}");
    // Nor can a key be bound to it through the API (S107)...
    let s = session_with_bindings("expired-binding", None, &[&expired_id]);
    expect_api_error(
        create_key_raw(&e.gw, &s).await,
        400,
        &format!("certificate not found: {expired_id}"),
    );
    // ... so it is written directly, as Tyk's test helper does.
    let token = certgate::tokens::generate_token("default", "expired-binding-key", "murmur64");
    write_session(&e.gw, &token, &s).await;
    // The entry that cannot be loaded is skipped: the expired certificate is not allowed.
    expect_refused(
        call(&e.gw, Some(&expired), "/expired-binding/x", Some(&token)).await,
        403,
        &not_allowed(&expired),
    )
    .await;
    e.gw.stop().await;
}

/// §1.11: a static-mTLS API on a plain-HTTP listener is refused before any token check.
#[tokio::test]
async fn static_allow_list_on_plain_http_is_403_tls_not_enabled() {
    let up = upstream().await;
    let gw = gateway()
        .plain_http()
        .api(static_token_api(
            API,
            "/cert-binding/",
            &up.url(),
            &[c1(), c2()],
        ))
        .start()
        .await;
    upload(&gw, c1(), "default").await;
    reload(&gw).await;
    let key = create_key(&gw, &session(API, None)).await;
    expect_refused(
        call(&gw, None, "/cert-binding/x", Some(&key)).await,
        403,
        TLS_NOT_ENABLED,
    )
    .await;
    gw.stop().await;
}
