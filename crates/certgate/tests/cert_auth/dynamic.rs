//! §9.1 S1–S9 (Env C: `hash_key_function: murmur64`, key created with
//! `POST /tyk/keys/create` and a `certificate`), both key types, and the org rule (§1.8).

use certgate::pki::Issued;
use serde_json::json;

use crate::common::*;
use crate::support::*;

const API: &str = "apiID-1";
const PATH: &str = "/dynamic-mtls/x";

/// Env C: API `apiID-1` at `/dynamic-mtls/` with `use_standard_auth` and
/// `authToken{use_certificate, auth_header_name: Authorization}`.
struct EnvC {
    _up: Upstream,
    gw: Gw,
}

async fn env_c(allow_unsafe: bool) -> EnvC {
    let up = upstream().await;
    let mut api = cert_api(API, "/dynamic-mtls/", &up.url());
    api["use_standard_auth"] = json!(true);
    let gw = gateway()
        .set(
            "security.allow_unsafe_dynamic_mtls_token",
            json!(allow_unsafe),
        )
        .api(api)
        .start()
        .await;
    EnvC { _up: up, gw }
}

/// Uploads `cert` under org `default` and creates its key; (certificate ID, key).
async fn register(gw: &Gw, cert: &Issued) -> (String, String) {
    let id = upload(gw, cert, "default").await;
    assert_eq!(id, cert_id("default", cert));
    let key = create_key(gw, &session(API, Some(&id))).await;
    (id, key)
}

#[tokio::test]
async fn s01_unsafe_certificate_alone_is_200() {
    let e = env_c(true).await;
    register(&e.gw, &pki().client).await;
    let c = client(&e.gw, Some(&pki().client));
    expect_ok(get(&c, &e.gw.url(PATH), None).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s02_unsafe_certificate_id_as_token_without_certificate_is_200() {
    let e = env_c(true).await;
    let (id, _) = register(&e.gw, &pki().client).await;
    let c = client(&e.gw, None);
    expect_ok(get(&c, &e.gw.url(PATH), Some(&id)).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s03_unsafe_key_as_token_without_certificate_is_200() {
    let e = env_c(true).await;
    let (_, key) = register(&e.gw, &pki().client).await;
    let c = client(&e.gw, None);
    expect_ok(get(&c, &e.gw.url(PATH), Some(&key)).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s04_secure_mode_certificate_alone_is_200() {
    let e = env_c(false).await;
    let (id, key) = register(&e.gw, &pki().client).await;
    // The key is generateToken("default", id) with murmur64 (§2.3).
    assert_eq!(
        key,
        certgate::tokens::generate_token("default", &id, "murmur64")
    );
    let c = client(&e.gw, Some(&pki().client));
    expect_ok(get(&c, &e.gw.url(PATH), None).await).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s05_secure_mode_no_certificate_no_token_is_401_certificate_required() {
    let e = env_c(false).await;
    register(&e.gw, &pki().client).await;
    let c = client(&e.gw, None);
    expect_refused(get(&c, &e.gw.url(PATH), None).await, 401, CERT_REQUIRED).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s06_secure_mode_key_without_certificate_is_401_certificate_required() {
    let e = env_c(false).await;
    let (_, key) = register(&e.gw, &pki().client).await;
    let c = client(&e.gw, None);
    expect_refused(
        get(&c, &e.gw.url(PATH), Some(&key)).await,
        401,
        CERT_REQUIRED,
    )
    .await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s07_secure_mode_certificate_id_as_token_is_401_certificate_required() {
    let e = env_c(false).await;
    let (id, _) = register(&e.gw, &pki().client).await;
    let c = client(&e.gw, None);
    expect_refused(
        get(&c, &e.gw.url(PATH), Some(&id)).await,
        401,
        CERT_REQUIRED,
    )
    .await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s08_secure_mode_expired_certificate_is_403_certificate_expired() {
    let e = env_c(false).await;
    register(&e.gw, &pki().client).await;
    let expired = expired_cert();
    let c = client(&e.gw, Some(&expired));
    expect_refused(get(&c, &e.gw.url(PATH), None).await, 403, CERT_EXPIRED).await;
    e.gw.stop().await;
}

#[tokio::test]
async fn s09_secure_mode_certificate_in_store_without_key_is_401_disallowed() {
    let e = env_c(false).await;
    register(&e.gw, &pki().client).await;
    upload(&e.gw, &pki().other_client, "default").await;
    let c = client(&e.gw, Some(&pki().other_client));
    expect_refused(get(&c, &e.gw.url(PATH), None).await, 401, DISALLOWED).await;
    e.gw.stop().await;
}

/// S4's shape with an RSA-2048 and an ECDSA P-256 client certificate.
#[tokio::test]
async fn s04_rsa2048_and_ecdsa_p256_client_certificates_both_authenticate() {
    let e = env_c(false).await;
    let rsa = pki().ca.client_rsa("rsa-client").unwrap();
    let ec = pki().ca.client("ec-client").unwrap();
    assert!(rsa.key_pem.len() > 1000, "an RSA-2048 key");
    for cert in [&rsa, &ec] {
        register(&e.gw, cert).await;
        let c = client(&e.gw, Some(cert));
        expect_ok(get(&c, &e.gw.url(PATH), None).await).await;
    }
    // An RSA certificate without a key is refused like any other.
    let stranger = pki().ca.client_rsa("rsa-stranger").unwrap();
    let c = client(&e.gw, Some(&stranger));
    expect_refused(get(&c, &e.gw.url(PATH), None).await, 401, DISALLOWED).await;
    e.gw.stop().await;
}

/// §1.8: the certificate's upload org, the session org and the API org must agree.
#[tokio::test]
async fn org_mismatch_certificate_of_org_a_on_api_of_org_b_is_refused() {
    let up = upstream().await;
    let mut api = cert_api("org-b-api", "/org-b/", &up.url());
    api["org_id"] = json!("orgB");
    let gw = gateway().api(api).start().await;
    let cert = &pki().client;
    let id_a = upload(&gw, cert, "orgA").await;
    assert_eq!(id_a, cert_id("orgA", cert));

    // A consistent org-A key: looked up at request time under the API's org B ⇒ not found.
    let mut s = session("org-b-api", Some(&id_a));
    s["org_id"] = json!("orgA");
    create_key(&gw, &s).await;
    let c = client(&gw, Some(cert));
    expect_refused(get(&c, &gw.url("/org-b/x"), None).await, 401, DISALLOWED).await;

    // A session of org B bound to the org-A certificate ID: its token derives from
    // "orgA<sha>" (not stripped by org B) ⇒ still not found.
    let mut s = session("org-b-api", Some(&id_a));
    s["org_id"] = json!("orgB");
    create_key(&gw, &s).await;
    expect_refused(get(&c, &gw.url("/org-b/x"), None).await, 401, DISALLOWED).await;

    // A session of org B bound to "orgB<sha>", which is not in the store: certgate
    // refuses to create it (docs/compatibility.md row 13: 400)...
    let id_b = cert_id("orgB", cert);
    let mut s = session("org-b-api", Some(&id_b));
    s["org_id"] = json!("orgB");
    expect_api_error(
        create_key_raw(&gw, &s).await,
        400,
        "Key must be used with an existent certificate",
    );
    // ...and one written behind its back (Tyk's state after create) is found but the
    // store has no `cert-raw-orgB<sha>` ⇒ 403 (cert_not_found).
    let token = certgate::tokens::generate_token("orgB", &id_b, "murmur64");
    write_session(&gw, &token, &s).await;
    expect_refused(get(&c, &gw.url("/org-b/x"), None).await, 403, DISALLOWED).await;

    // Uploaded under org B too, the certificate works.
    upload(&gw, cert, "orgB").await;
    expect_ok(get(&c, &gw.url("/org-b/x"), None).await).await;
    gw.stop().await;
}

/// §1.8: with a 24-hex-digit org id (Mongo ObjectId style) the certificate works, but
/// its ID is no longer a bearer token in unsafe mode: `TokenOrg(certID)` is the org,
/// so only a direct read of the raw ID is made (row 8 holds for non-hex orgs only).
#[tokio::test]
async fn s02_unsafe_certificate_id_as_token_with_hex_org_is_403() {
    const ORG: &str = "5e9d9544a1dcd60001d0ed20";
    let up = upstream().await;
    let mut api = cert_api("hex-org", "/hex-org/", &up.url());
    api["org_id"] = json!(ORG);
    let gw = gateway()
        .set("security.allow_unsafe_dynamic_mtls_token", json!(true))
        .api(api)
        .start()
        .await;
    let id = upload(&gw, &pki().client, ORG).await;
    let mut s = session("hex-org", Some(&id));
    s["org_id"] = json!(ORG);
    let key = create_key(&gw, &s).await;
    let c = client(&gw, Some(&pki().client));
    expect_ok(get(&c, &gw.url("/hex-org/x"), None).await).await;
    let anon = client(&gw, None);
    expect_ok(get(&anon, &gw.url("/hex-org/x"), Some(&key)).await).await;
    expect_refused(
        get(&anon, &gw.url("/hex-org/x"), Some(&id)).await,
        403,
        DISALLOWED,
    )
    .await;
    gw.stop().await;
}

/// §11.1-19: Tyk never checks NotBefore. The upload is accepted as in Tyk, but
/// (issue 12 #7, deliberate difference) the request is refused while the certificate
/// is not valid yet.
#[tokio::test]
async fn not_yet_valid_certificate_is_uploaded_but_refused() {
    let e = env_c(false).await;
    let now = time::OffsetDateTime::now_utc();
    let future = pki()
        .ca
        .client_valid(
            "future",
            now + time::Duration::days(1),
            now + time::Duration::days(30),
        )
        .unwrap();
    register(&e.gw, &future).await;
    let c = client(&e.gw, Some(&future));
    expect_refused(
        get(&c, &e.gw.url(PATH), None).await,
        403,
        "Certificate is not yet valid",
    )
    .await;
    e.gw.stop().await;
}

/// §2.2: only the leaf's hash counts. A client that appends a copy of a registered
/// certificate (and the CA) behind its own leaf is still only its own leaf.
#[tokio::test]
async fn only_the_leaf_counts_appended_registered_certificate_does_not_help() {
    let e = env_c(false).await;
    register(&e.gw, &pki().client).await;
    // The registered leaf followed by its CA: 200.
    let cfg = tls_client_config_chain(&[&pki().client, &pki().ca.cert], &[b"http/1.1"]);
    let c = client_with(&e.gw, cfg);
    expect_ok(get(&c, &e.gw.url(PATH), None).await).await;
    // Another leaf with the registered certificate appended: 401.
    let cfg = tls_client_config_chain(&[&pki().other_client, &pki().client], &[b"http/1.1"]);
    let c = client_with(&e.gw, cfg);
    expect_refused(get(&c, &e.gw.url(PATH), None).await, 401, DISALLOWED).await;
    e.gw.stop().await;
}

/// §1.9 after certificate auth: the certificate's session must grant this API.
#[tokio::test]
async fn certificate_session_without_access_to_this_api_is_403() {
    let e = env_c(false).await;
    let id = upload(&e.gw, &pki().client, "default").await;
    create_key(&e.gw, &session("some-other-api", Some(&id))).await;
    let c = client(&e.gw, Some(&pki().client));
    expect_refused(get(&c, &e.gw.url(PATH), None).await, 403, DISALLOWED).await;
    e.gw.stop().await;
}

/// §1.7 token extraction in unsafe mode: a `Bearer ` prefix is removed.
#[tokio::test]
async fn s03_unsafe_bearer_prefixed_key_is_200() {
    let e = env_c(true).await;
    let (_, key) = register(&e.gw, &pki().client).await;
    let c = client(&e.gw, None);
    let bearer = format!("Bearer {key}");
    expect_ok(get(&c, &e.gw.url(PATH), Some(&bearer)).await).await;
    e.gw.stop().await;
}
