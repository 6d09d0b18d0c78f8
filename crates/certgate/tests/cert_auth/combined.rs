//! §9.2 S19–S39 (Env A, `allow_unsafe_dynamic_mtls_token: true`): certificate auth
//! combined with static allow lists and certificate–token bindings.
//!
//! Static mTLS is enforced at HTTP level (single port: the handshake only requests a
//! certificate), so allow-list refusals are 403 proxy errors. Allow lists are resolved
//! when the snapshot is built: every test uploads c1, c2, c3 then reloads.

use std::sync::OnceLock;

use certgate::pki::Issued;
use serde_json::{json, Value};

use crate::common::*;
use crate::support::*;

pub(crate) fn c1() -> &'static Issued {
    &pki().client
}
pub(crate) fn c2() -> &'static Issued {
    &pki().other_client
}
pub(crate) fn c3() -> &'static Issued {
    static C3: OnceLock<Issued> = OnceLock::new();
    C3.get_or_init(|| pki().ca.client("client-3").unwrap())
}
/// hN = "default" + sha256(cN).
pub(crate) fn h(c: &Issued) -> String {
    cert_id("default", c)
}

/// A certificate-auth API (`use_standard_auth`, `use_certificate`), optionally with a
/// static allow list.
pub(crate) fn dyn_api(id: &str, listen: &str, target: &str, allow: Option<&[&Issued]>) -> Value {
    let mut api = cert_api(id, listen, target);
    api["use_standard_auth"] = json!(true);
    if let Some(list) = allow {
        with_allow_list(&mut api, list);
    }
    api
}

/// A token API with a static allow list (no `use_certificate`).
pub(crate) fn static_token_api(id: &str, listen: &str, target: &str, allow: &[&Issued]) -> Value {
    let mut api = token_api(id, listen, target);
    api["use_standard_auth"] = json!(true);
    with_allow_list(&mut api, allow);
    api
}

pub(crate) fn with_allow_list(api: &mut Value, list: &[&Issued]) {
    api["use_mutual_tls_auth"] = json!(true);
    api["client_certificates"] = json!(list.iter().map(|c| h(c)).collect::<Vec<_>>());
}

pub(crate) struct Env {
    _up: Upstream,
    pub gw: Gw,
}

/// Env A: allow_unsafe on.
async fn env_a(apis: impl FnOnce(&str) -> Vec<Value>) -> Env {
    env(true, apis).await
}

/// Starts a gateway with the APIs `apis(target)`, uploads c1, c2, c3 (org default)
/// and reloads so the allow lists resolve.
pub(crate) async fn env(allow_unsafe: bool, apis: impl FnOnce(&str) -> Vec<Value>) -> Env {
    let up = upstream().await;
    let mut b = gateway().set(
        "security.allow_unsafe_dynamic_mtls_token",
        json!(allow_unsafe),
    );
    for api in apis(&up.url()) {
        b = b.api(api);
    }
    let gw = b.start().await;
    for c in [c1(), c2(), c3()] {
        upload(&gw, c, "default").await;
    }
    reload(&gw).await;
    Env { _up: up, gw }
}

fn combined(target: &str) -> Vec<Value> {
    vec![dyn_api(
        "combined-mtls-api",
        "/combined-mtls/",
        target,
        Some(&[c1(), c2()]),
    )]
}
const COMBINED: &str = "combined-mtls-api";

pub(crate) async fn call(
    gw: &Gw,
    cert: Option<&Issued>,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    get(&client(gw, cert), &gw.url(path), token).await
}

#[tokio::test]
async fn s19_combined_bound_certificate_with_its_key_is_200() {
    let e = env_a(combined).await;
    let key = create_key(&e.gw, &session(COMBINED, Some(&h(c1())))).await;
    expect_ok(call(&e.gw, Some(c1()), "/combined-mtls/x", Some(&key)).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s20_combined_other_allowed_certificate_without_session_is_401() {
    let e = env_a(combined).await;
    let key = create_key(&e.gw, &session(COMBINED, Some(&h(c1())))).await;
    expect_refused(
        call(&e.gw, Some(c2()), "/combined-mtls/x", Some(&key)).await,
        401,
        DISALLOWED,
    )
    .await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s21_combined_certificate_not_in_allow_list_is_403_not_allowed() {
    let e = env_a(combined).await;
    let key = create_key(&e.gw, &session(COMBINED, Some(&h(c3())))).await;
    expect_refused(
        call(&e.gw, Some(c3()), "/combined-mtls/x", Some(&key)).await,
        403,
        &not_allowed(c3()),
    )
    .await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s22_combined_no_client_certificate_is_403_client_tls_required() {
    let e = env_a(combined).await;
    let key = create_key(&e.gw, &session(COMBINED, Some(&h(c1())))).await;
    expect_refused(
        call(&e.gw, None, "/combined-mtls/x", Some(&key)).await,
        403,
        CLIENT_TLS_REQUIRED,
    )
    .await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s23_combined_valid_certificate_with_invalid_token_is_403_disallowed() {
    let e = env_a(combined).await;
    create_key(&e.gw, &session(COMBINED, Some(&h(c1())))).await;
    expect_refused(
        call(&e.gw, Some(c1()), "/combined-mtls/x", Some("invalid-token")).await,
        403,
        DISALLOWED,
    )
    .await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s24_combined_binding_key_with_bound_certificate_is_200() {
    let e = env_a(combined).await;
    let key = create_key(&e.gw, &session_with_bindings(COMBINED, None, &[&h(c1())])).await;
    // The certificate lookup runs first: c1 needs its own session.
    expect_refused(
        call(&e.gw, Some(c1()), "/combined-mtls/x", Some(&key)).await,
        401,
        DISALLOWED,
    )
    .await;
    create_key(&e.gw, &session(COMBINED, Some(&h(c1())))).await;
    expect_ok(call(&e.gw, Some(c1()), "/combined-mtls/x", Some(&key)).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s25_combined_binding_mismatch_is_401_disallowed() {
    let e = env_a(combined).await;
    create_key(&e.gw, &session(COMBINED, Some(&h(c1())))).await;
    let key = create_key(&e.gw, &session_with_bindings(COMBINED, None, &[&h(c3())])).await;
    expect_refused(
        call(&e.gw, Some(c1()), "/combined-mtls/x", Some(&key)).await,
        401,
        DISALLOWED,
    )
    .await;
    e.gw.stop().await;
}

fn dynamic_only(target: &str) -> Vec<Value> {
    vec![dyn_api("dynamic-mtls-only", "/dynamic-only/", target, None)]
}

#[tokio::test]
async fn s26_s27_dynamic_only_bound_certificate_200_other_certificate_401() {
    let e = env_a(dynamic_only).await;
    let key = create_key(&e.gw, &session("dynamic-mtls-only", Some(&h(c1())))).await;
    // S26
    expect_ok(call(&e.gw, Some(c1()), "/dynamic-only/x", Some(&key)).await).await;
    // S27
    expect_refused(
        call(&e.gw, Some(c2()), "/dynamic-only/x", Some(&key)).await,
        401,
        DISALLOWED,
    )
    .await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s28_s29_static_only_token_api_allowed_200_not_allowed_403() {
    let e = env_a(|t| {
        vec![static_token_api(
            "static-mtls-only",
            "/static-only/",
            t,
            &[c1(), c2()],
        )]
    })
    .await;
    let key = create_key(&e.gw, &session("static-mtls-only", None)).await;
    // S28
    expect_ok(call(&e.gw, Some(c1()), "/static-only/x", Some(&key)).await).await;
    // S29
    expect_refused(
        call(&e.gw, Some(c3()), "/static-only/x", Some(&key)).await,
        403,
        &not_allowed(c3()),
    )
    .await;
    e.gw.stop().await;
}

fn strict(target: &str) -> Vec<Value> {
    vec![dyn_api(
        "strict-allowlist-api",
        "/strict-allowlist/",
        target,
        Some(&[c1()]),
    )]
}
const STRICT: &str = "strict-allowlist-api";

#[tokio::test]
async fn s30_strict_allow_list_binding_to_unlisted_certificate_is_403_not_allowed() {
    let e = env_a(strict).await;
    let key = create_key(&e.gw, &session_with_bindings(STRICT, None, &[&h(c2())])).await;
    expect_refused(
        call(&e.gw, Some(c2()), "/strict-allowlist/x", Some(&key)).await,
        403,
        &not_allowed(c2()),
    )
    .await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s31_strict_allow_list_bound_listed_certificate_is_200() {
    let e = env_a(strict).await;
    let key = create_key(&e.gw, &session(STRICT, Some(&h(c1())))).await;
    expect_ok(call(&e.gw, Some(c1()), "/strict-allowlist/x", Some(&key)).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s32_s33_s34_strict_allow_list_unlisted_certificate_is_403_whatever_the_token() {
    let e = env_a(strict).await;
    let key = create_key(&e.gw, &session(STRICT, None)).await;
    // S32 plain key, S33 no token, S34 invalid token.
    for token in [Some(key.as_str()), None, Some("invalid-token")] {
        expect_refused(
            call(&e.gw, Some(c2()), "/strict-allowlist/x", token).await,
            403,
            &not_allowed(c2()),
        )
        .await;
    }
    e.gw.stop().await;
}

#[tokio::test]
async fn s35_s36_expired_certificate_403_valid_certificate_200() {
    let e = env_a(|t| vec![dyn_api("expired-cert-test", "/expired-test/", t, None)]).await;
    let key = create_key(&e.gw, &session("expired-cert-test", Some(&h(c1())))).await;
    // S35: an expired self-signed certificate (not in the store) with the key.
    expect_refused(
        call(&e.gw, Some(&expired_cert()), "/expired-test/x", Some(&key)).await,
        403,
        CERT_EXPIRED,
    )
    .await;
    // S36
    expect_ok(call(&e.gw, Some(c1()), "/expired-test/x", Some(&key)).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s37_s38_key_bound_to_missing_certificate_403_unbound_key_200() {
    const API: &str = "dynamic-mtls-invalid-cert";
    let e = env_a(|t| vec![dyn_api(API, "/invalid-cert/", t, None)]).await;
    // S37. certgate refuses to create a key for a certificate that is not in the store
    // (docs/compatibility.md row 13) ...
    let s = session(API, Some("nonexistent-cert-id"));
    expect_api_error(
        create_key_raw(&e.gw, &s).await,
        400,
        "Key must be used with an existent certificate",
    );
    // ... so the session Tyk would have created is written directly; on the request
    // path the missing certificate is refused (cert_not_found).
    let token = certgate::tokens::generate_token("default", "nonexistent-cert-id", "murmur64");
    write_session(&e.gw, &token, &s).await;
    expect_refused(
        call(&e.gw, None, "/invalid-cert/x", Some(&token)).await,
        403,
        DISALLOWED,
    )
    .await;
    // S38
    let key = create_key(&e.gw, &session(API, None)).await;
    expect_ok(call(&e.gw, None, "/invalid-cert/x", Some(&key)).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s39_multi_binding_keys_each_with_its_certificate_is_200() {
    const API: &str = "multi-binding-api";
    let e = env_a(|t| vec![dyn_api(API, "/multi-binding/", t, Some(&[c1(), c2()]))]).await;
    let (h1, h2) = (h(c1()), h(c2()));
    let key1 = create_key(&e.gw, &session_with_bindings(API, Some(&h1), &[&h1, &h2])).await;
    let key2 = create_key(&e.gw, &session_with_bindings(API, Some(&h2), &[&h2, &h1])).await;
    expect_ok(call(&e.gw, Some(c1()), "/multi-binding/x", Some(&key1)).await).await;
    expect_ok(call(&e.gw, Some(c2()), "/multi-binding/x", Some(&key2)).await).await;
    e.gw.stop().await;
}

/// docs/compatibility.md row 10: only the presented leaf is matched against the allow
/// list. Tyk accepts a client that appends a public copy of an allow-listed
/// certificate behind its own leaf; certgate refuses it with the leaf's hash.
#[tokio::test]
async fn allow_list_matches_only_the_leaf_appended_listed_certificate_is_403() {
    let e = env_a(|t| {
        vec![static_token_api(
            "static-mtls-only",
            "/static-only/",
            t,
            &[c1(), c2()],
        )]
    })
    .await;
    let key = create_key(&e.gw, &session("static-mtls-only", None)).await;
    let cfg = tls_client_config_chain(&[c3(), c1()], &[b"http/1.1"]);
    let r = get(
        &client_with(&e.gw, cfg),
        &e.gw.url("/static-only/x"),
        Some(&key),
    )
    .await;
    expect_refused(r, 403, &not_allowed(c3())).await;
    e.gw.stop().await;
}

/// docs/compatibility.md row 10: a CA entry verifies the leaf's chain with the
/// clientAuth usage (Tyk checks serverAuth, so its clientAuth-only leaves fail).
#[tokio::test]
async fn allow_list_ca_entry_accepts_client_auth_leaves_it_issued() {
    let ca = &pki().ca.cert;
    let e = env_a(|t| {
        let mut api = token_api("ca-list", "/ca-list/", t);
        api["use_mutual_tls_auth"] = json!(true);
        api["client_certificates"] = json!([h(ca)]);
        vec![api]
    })
    .await;
    upload(&e.gw, ca, "default").await;
    reload(&e.gw).await;
    let key = create_key(&e.gw, &session("ca-list", None)).await;
    expect_ok(call(&e.gw, Some(c3()), "/ca-list/x", Some(&key)).await).await;
    // A self-signed certificate does not chain to the CA.
    let now = time::OffsetDateTime::now_utc();
    let stray = certgate::pki::self_signed_client(
        "stray",
        now - time::Duration::days(1),
        now + time::Duration::days(1),
    )
    .unwrap();
    expect_refused(
        call(&e.gw, Some(&stray), "/ca-list/x", Some(&key)).await,
        403,
        &not_allowed(&stray),
    )
    .await;
    e.gw.stop().await;
}
