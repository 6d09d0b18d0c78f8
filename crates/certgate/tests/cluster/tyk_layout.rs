//! Tyk's Redis layout (§2.6, §3.2): what a Tyk gateway wrote authenticates on
//! certgate, and what certgate writes is where and how Tyk expects it.

use serde_json::json;

use certgate::tokens;
use certgate_testkit::testredis::RedisServer;

use crate::redis_storage;
use crate::support::*;

fn tyk_session(cert_id: &str) -> String {
    // A session as Tyk 5 stores it (Go field order, zero values present, nulls).
    json!({
        "last_check": 0, "allowance": 1000, "rate": 1000, "per": 60,
        "throttle_interval": 0, "throttle_retry_limit": 0, "max_query_depth": 0,
        "date_created": "2026-11-28T10:00:00Z", "expires": 0,
        "quota_max": -1, "quota_renews": 1764324000, "quota_remaining": -1, "quota_renewal_rate": 3600,
        "access_rights": {"c": {
            "api_name": "c", "api_id": "c", "versions": ["Default"],
            "allowed_urls": null, "restricted_types": null, "allowed_types": null,
            "limit": {"rate": 0, "per": 0, "throttle_interval": 0, "throttle_retry_limit": 0,
                      "max_query_depth": 0, "quota_max": 0, "quota_renews": 0,
                      "quota_remaining": 0, "quota_renewal_rate": 0, "set_by_policy": false},
            "field_access_rights": null, "disable_introspection": false, "allowance_scope": ""}},
        "org_id": "default", "oauth_client_id": "", "oauth_keys": null,
        "certificate": cert_id,
        "basic_auth_data": {"password": "", "hash_type": ""}, "jwt_data": {"secret": ""},
        "hmac_enabled": false, "enable_http_signature_validation": false, "hmac_string": "",
        "rsa_certificate_id": "", "is_inactive": false, "apply_policy_id": "",
        "apply_policies": null, "data_expires": 0, "monitor": {"trigger_limits": null},
        "enable_detailed_recording": false, "meta_data": {}, "tags": [], "alias": "",
        "last_updated": "1764320000", "id_extractor_deadline": 0, "session_lifetime": 0
    })
    .to_string()
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_and_certificate_written_by_tyk_authenticate() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let cert = &pki().client;
    let cert_id = format!("default{}", cert.sha256_hex());
    // What Tyk writes (hash_keys on, murmur64): the certificate, its org index, the
    // session under apikey-<murmur64(token)>.
    let token = tokens::generate_token("default", &cert_id, "murmur64");
    let hashed = tokens::hash_str(&token, None);
    redis
        .query(
            redis::cmd("SET")
                .arg(format!("cert-raw-{cert_id}"))
                .arg(pem_of(&cert.der)),
        )
        .unwrap();
    redis
        .query(
            redis::cmd("RPUSH")
                .arg("cert-default-index")
                .arg(format!("raw-{cert_id}")),
        )
        .unwrap();
    redis
        .query(
            redis::cmd("SET")
                .arg(format!("apikey-{hashed}"))
                .arg(tyk_session(&cert_id)),
        )
        .unwrap();

    let gw = gateway()
        .set("storage", redis_storage(&redis))
        .set("hash_keys", json!(true))
        .api(cert_api("c", "/c/", &up.url()))
        .start()
        .await;
    let r = client(&gw, Some(&pki().client))
        .get(gw.url("/c/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // The Gateway API reads Tyk's records too.
    let v = json_of(
        admin(&gw)
            .get(gw.url("/tyk/certs?org_id=default"))
            .header("x-tyk-authorization", SECRET)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["certs"], json!([cert_id]));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_certgate_writes_is_in_tyks_layout() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let gw = gateway()
        .set("storage", redis_storage(&redis))
        .set("hash_keys", json!(true))
        .api(cert_api("c", "/c/", &up.url()))
        .start()
        .await;
    let cert = &pki().other_client;
    let id = upload(&gw, cert, "default").await;
    assert_eq!(id, format!("default{}", cert.sha256_hex()));
    let (st, v) = create_key_raw(&gw, &session("c", Some(&id))).await;
    assert_eq!(st, 200);
    let key = v["key"].as_str().unwrap();
    assert_eq!(key, tokens::generate_token("default", &id, "murmur64"));
    let hash = v["key_hash"].as_str().unwrap();

    let raw = redis.query_text(redis::cmd("GET").arg(format!("cert-raw-{id}")));
    assert!(raw.starts_with("-----BEGIN CERTIFICATE-----\n"), "{raw}");
    assert!(
        raw.contains(&pem_of(&cert.der)),
        "re-encoded PEM differs from Go's encoding"
    );
    let index = redis.query_text(
        redis::cmd("LRANGE")
            .arg("cert-default-index")
            .arg(0)
            .arg(-1),
    );
    assert!(index.contains(&format!("raw-{id}")), "{index}");
    let session = redis.query_text(redis::cmd("GET").arg(format!("apikey-{hash}")));
    let s: serde_json::Value = serde_json::from_str(&session).unwrap();
    assert_eq!(s["certificate"], id.as_str());
    assert_eq!(s["org_id"], "default");
    assert!(
        s.get("is_inactive").is_none(),
        "zero values are omitted as Tyk does"
    );
    gw.stop().await;
}
