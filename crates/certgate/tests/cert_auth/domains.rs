//! §9.1 S10–S18: Env D (`hash_key_function: ""`, legacy tokens equal to the certificate
//! ID, `enable_custom_domains`), custom domains, revocation by deleting the certificate,
//! a hand-edited session, and hashed keys with fallback hash functions.

use serde_json::json;

use crate::common::*;
use crate::support::*;

/// Env D's gateway: legacy (unhashed, un-encoded) tokens and custom domains.
fn env_d() -> GwBuilder {
    gateway()
        .set("hash_key_function", json!(""))
        .set("enable_custom_domains", json!(true))
}

/// Env D's API (no `use_standard_auth`, §9.0).
fn d_api(id: &str, listen: &str, target: &str, domain: Option<&str>) -> serde_json::Value {
    let mut api = cert_api(id, listen, target);
    if let Some(d) = domain {
        api["domain"] = json!(d);
    }
    api
}

fn test_session(id: &str) -> serde_json::Value {
    json!({
        "org_id": "default",
        "certificate": id,
        "access_rights": {"test": {"api_id": "test", "versions": ["v1"]}}
    })
}

async fn expect_not_found(r: reqwest::Response) {
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "Not Found");
}

#[tokio::test]
async fn s10_legacy_tokens_certificate_in_store_without_key_is_401() {
    let up = upstream().await;
    let gw = env_d()
        .api(d_api("test", "/", &up.url(), None))
        .start()
        .await;
    upload(&gw, &pki().client, "default").await;
    let c = client(&gw, Some(&pki().client));
    expect_refused(get(&c, &ip_url(&gw, "/x"), None).await, 401, DISALLOWED).await;
    gw.stop().await;
}

#[tokio::test]
async fn s11_legacy_tokens_key_equals_certificate_id_and_second_create_is_500() {
    let up = upstream().await;
    let gw = env_d()
        .api(d_api("test", "/", &up.url(), None))
        .start()
        .await;
    let id = upload(&gw, &pki().client, "default").await;
    let key = create_key(&gw, &test_session(&id)).await;
    // With an empty hash function generateToken is org + id minus org = the ID.
    assert_eq!(key, id);
    expect_api_error(
        create_key_raw(&gw, &test_session(&id)).await,
        500,
        &format!("Failed to create key - Key with given certificate already found:{key}"),
    );
    gw.stop().await;
}

#[tokio::test]
async fn s12_legacy_tokens_certificate_without_and_with_sni_is_200() {
    let up = upstream().await;
    let gw = env_d()
        .api(d_api("test", "/", &up.url(), None))
        .start()
        .await;
    let id = upload(&gw, &pki().client, "default").await;
    create_key(&gw, &test_session(&id)).await;
    let c = client(&gw, Some(&pki().client));
    expect_ok(get(&c, &ip_url(&gw, "/x"), None).await).await;
    expect_ok(get(&c, &host_url(&gw, "localhost", "/x"), None).await).await;
    gw.stop().await;
}

/// API1 `/test1` on domain `localhost` (certificate auth), API2 `/test2` keyless.
async fn s13_gateway(up: &Upstream) -> (Gw, String) {
    let gw = env_d()
        .api(d_api("api1", "/test1", &up.url(), Some("localhost")))
        .api(classic_api("api2", "/test2", &up.url()))
        .start()
        .await;
    let id = upload(&gw, &pki().client, "default").await;
    (gw, id)
}

#[tokio::test]
async fn s13_custom_domain_without_key_no_host_is_404_localhost_is_401() {
    let up = upstream().await;
    let (gw, _) = s13_gateway(&up).await;
    let c = client(&gw, Some(&pki().client));
    expect_not_found(get(&c, &ip_url(&gw, "/test1"), None).await).await;
    expect_refused(
        get(&c, &host_url(&gw, "localhost", "/test1"), None).await,
        401,
        DISALLOWED,
    )
    .await;
    // The keyless API without a domain answers on any host.
    expect_ok(get(&c, &ip_url(&gw, "/test2"), None).await).await;
    gw.stop().await;
}

#[tokio::test]
async fn s14_custom_domain_with_key_no_host_is_404_localhost_is_200_then_unsafe_token_is_200() {
    let up = upstream().await;
    let (gw, id) = s13_gateway(&up).await;
    let key = create_key(&gw, &session("api1", Some(&id))).await;
    let c = client(&gw, Some(&pki().client));
    expect_not_found(get(&c, &ip_url(&gw, "/test1"), None).await).await;
    expect_ok(get(&c, &host_url(&gw, "localhost", "/test1"), None).await).await;

    // The same key on a node with allow_unsafe_dynamic_mtls_token: a TLS client
    // without a certificate sending the key to localhost.
    let node = Sibling::start(
        &gw,
        &[("security.allow_unsafe_dynamic_mtls_token", json!(true))],
    )
    .await;
    let c = node.client(None);
    expect_ok(get(&c, &node.url("/test1"), Some(&key)).await).await;
    // On the secure node that is refused (a token alone never authenticates there).
    let c = client(&gw, None);
    expect_refused(
        get(&c, &host_url(&gw, "localhost", "/test1"), Some(&key)).await,
        401,
        CERT_REQUIRED,
    )
    .await;
    drop(node);
    gw.stop().await;
}

#[tokio::test]
async fn s15_gorilla_host_template_no_host_404_hosts_401_then_key_200() {
    let up = upstream().await;
    let gw = env_d()
        .api(d_api(
            "tmpl",
            "/test1",
            &up.url(),
            Some("{?:localhost|api.example}"),
        ))
        .start()
        .await;
    let id = upload(&gw, &pki().client, "default").await;
    let c = client(&gw, Some(&pki().client));
    expect_not_found(get(&c, &ip_url(&gw, "/test1"), None).await).await;
    for host in ["localhost", "api.example"] {
        expect_refused(
            get(&c, &host_url(&gw, host, "/test1"), None).await,
            401,
            DISALLOWED,
        )
        .await;
    }
    create_key(&gw, &session("tmpl", Some(&id))).await;
    expect_ok(get(&c, &host_url(&gw, "api.example", "/test1"), None).await).await;
    expect_ok(get(&c, &host_url(&gw, "localhost", "/test1"), None).await).await;
    // A host the template does not name is not routed.
    let r = get(&c, &host_url(&gw, "a.wild.example", "/test1"), None).await;
    assert_eq!(r.status(), 404);
    gw.stop().await;
}

#[tokio::test]
async fn s16_deleting_the_certificate_from_the_store_revokes_with_403() {
    let up = upstream().await;
    let gw = env_d()
        .api(d_api("test", "/", &up.url(), None))
        .start()
        .await;
    let id = upload(&gw, &pki().client, "default").await;
    create_key(&gw, &session("test", Some(&id))).await;
    let c = client(&gw, Some(&pki().client));
    expect_ok(get(&c, &gw.url("/x"), None).await).await;
    delete_cert(&gw, &id, "default").await;
    expect_refused(get(&c, &gw.url("/x"), None).await, 403, DISALLOWED).await;
    gw.stop().await;
}

#[tokio::test]
async fn s17_hand_edited_session_certificate_is_rebound_by_its_own_certificate() {
    let up = upstream().await;
    let gw = env_d()
        .set("security.allow_unsafe_dynamic_mtls_token", json!(true))
        .api(d_api("test", "/", &up.url(), None))
        .start()
        .await;
    let id = upload(&gw, &pki().client, "default").await;
    let key = create_key(&gw, &session("test", Some(&id))).await;
    assert_eq!(key, id);
    // Overwrite the stored session's certificate directly in the store.
    let mut s = stored_session(&gw, &key).await.unwrap();
    assert_eq!(s["certificate"], json!(id));
    s["certificate"] = json!("fooBar");
    write_session(&gw, &key, &s).await;

    // (a) token alone: the session's certificate "fooBar" is not in the store.
    let anon = client(&gw, None);
    expect_refused(get(&anon, &gw.url("/x"), Some(&key)).await, 403, DISALLOWED).await;
    // (b) the certificate it is stored under: 200, and the binding is restored.
    let c = client(&gw, Some(&pki().client));
    expect_ok(get(&c, &gw.url("/x"), None).await).await;
    let s = stored_session(&gw, &key).await.unwrap();
    assert_eq!(s["certificate"], json!(id));
    // (c) token alone again: 200.
    expect_ok(get(&anon, &gw.url("/x"), Some(&key)).await).await;
    gw.stop().await;
}

#[tokio::test]
async fn s18_hashed_keys_other_hash_function_401_until_fallback_200() {
    let up = upstream().await;
    let gw = gateway()
        .set("hash_keys", json!(true))
        .set("hash_key_function", json!("murmur64"))
        .set(
            "local_session_cache.disable_cached_session_state",
            json!(true),
        )
        .api(cert_api("hashed", "/hashed/", &up.url()))
        .start()
        .await;
    let id = upload(&gw, &pki().client, "default").await;
    let (status, v) = create_key_raw(&gw, &session("hashed", Some(&id))).await;
    assert_eq!(status, 200, "{v}");
    let key = v["key"].as_str().unwrap();
    // With hash_keys the answer carries the key's hash, and the store holds only it.
    let hash = certgate::tokens::hash_str(key, None);
    assert_eq!(v["key_hash"], json!(hash));
    assert!(gw
        .gateway()
        .store
        .exists(&format!("apikey-{hash}"))
        .await
        .unwrap());
    assert!(!gw
        .gateway()
        .store
        .exists(&format!("apikey-{key}"))
        .await
        .unwrap());
    let c = client(&gw, Some(&pki().client));
    expect_ok(get(&c, &gw.url("/hashed/x"), None).await).await;

    // A node configured with sha256 derives another token: not found.
    let sha = Sibling::start(&gw, &[("hash_key_function", json!("sha256"))]).await;
    let c = sha.client(Some(&pki().client));
    expect_refused(get(&c, &sha.url("/hashed/x"), None).await, 401, DISALLOWED).await;
    drop(sha);
    // With murmur64 as a fallback function it is found again.
    let fb = Sibling::start(
        &gw,
        &[
            ("hash_key_function", json!("sha256")),
            ("hash_key_function_fallback", json!(["murmur64"])),
        ],
    )
    .await;
    let c = fb.client(Some(&pki().client));
    expect_ok(get(&c, &fb.url("/hashed/x"), None).await).await;
    drop(fb);
    gw.stop().await;
}
