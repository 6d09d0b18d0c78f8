//! One node (embedded store).

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

async fn key(gw: &Gw, s: Value) -> String {
    let (st, v) = create_key_raw(gw, &s).await;
    assert_eq!(st, 200, "{v}");
    v["key"].as_str().unwrap().to_owned()
}

async fn get(gw: &Gw, key: &str) -> reqwest::Response {
    client(gw, None)
        .get(gw.url("/t/x"))
        .header("authorization", key)
        .send()
        .await
        .unwrap()
}

fn with_policies() -> GwBuilder {
    gateway().set(
        "policies",
        json!({"policy_source": "file", "policy_path": "policies"}),
    )
}

async fn put_policy(gw: &Gw, p: Value, reload: bool) {
    let dir = gw.dir.path().join("policies");
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir.join(format!("{}.json", p["id"].as_str().unwrap())), &p);
    if reload {
        gw.gateway().reload().await;
    }
}

#[tokio::test]
async fn rate_limit_is_429_with_headers() {
    let up = upstream().await;
    let gw = gateway()
        .api(token_api("t", "/t/", &up.url()))
        .start()
        .await;
    let k = key(
        &gw,
        json!({"org_id": "default", "rate": 3, "per": 60,
        "access_rights": {"t": {"api_id": "t", "versions": ["Default"]}}}),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(get(&gw, &k).await.status(), 200);
    }
    let r = get(&gw, &k).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-ratelimit-limit"], "3");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert!(r.headers().contains_key("x-ratelimit-reset"));
    assert_eq!(
        r.text().await.unwrap(),
        "{\n    \"error\": \"Rate Limit Exceeded\"\n}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn quota_is_403_and_reported_and_survives_a_restart() {
    let up = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().to_owned();
    let gw = gateway()
        .api(token_api("t", "/t/", &up.url()))
        .start_in(dir)
        .await;
    let k = key(
        &gw,
        json!({"org_id": "default", "quota_max": 5, "quota_renewal_rate": 3600,
        "access_rights": {"t": {"api_id": "t", "versions": ["Default"]}}}),
    )
    .await;
    for i in 0..5 {
        let r = get(&gw, &k).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["x-ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
    }
    let r = get(&gw, &k).await;
    assert_eq!(r.status(), 403);
    assert_eq!(json_of(r).await["error"], "Quota exceeded");
    let v = json_of(
        admin(&gw)
            .get(gw.url(&format!("/tyk/keys/{k}")))
            .header("x-tyk-authorization", SECRET)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        v.get("quota_remaining").is_none() || v["quota_remaining"] == 0,
        "{v}"
    );
    // Restart on the same embedded store: the counter is still there.
    let Gw { running, dir, .. } = gw;
    running.unwrap().shutdown().await;
    assert!(dir.path() == keep);
    let gw = gateway()
        .api(token_api("t", "/t/", &up.url()))
        .start_in(dir)
        .await;
    assert_eq!(get(&gw, &k).await.status(), 403);
    gw.stop().await;
}

#[tokio::test]
async fn quota_renews_after_its_period() {
    let up = upstream().await;
    let gw = gateway()
        .api(token_api("t", "/t/", &up.url()))
        .start()
        .await;
    let k = key(
        &gw,
        json!({"org_id": "default", "quota_max": 2, "quota_renewal_rate": 1,
        "access_rights": {"t": {"api_id": "t", "versions": ["Default"]}}}),
    )
    .await;
    assert_eq!(get(&gw, &k).await.status(), 200);
    assert_eq!(get(&gw, &k).await.status(), 200);
    assert_eq!(get(&gw, &k).await.status(), 403);
    let renewed = eventually(Duration::from_secs(5), || async {
        get(&gw, &k).await.status() == 200
    })
    .await;
    assert!(renewed, "quota did not renew");
    gw.stop().await;
}

#[tokio::test]
async fn api_global_rate_limit() {
    let up = upstream().await;
    let mut api = classic_api("g", "/t/", &up.url());
    api["global_rate_limit"] = json!({"rate": 2, "per": 60});
    let gw = gateway().api(api).start().await;
    let c = client(&gw, None);
    assert_eq!(c.get(gw.url("/t/x")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(gw.url("/t/x")).send().await.unwrap().status(), 200);
    let r = c.get(gw.url("/t/x")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(json_of(r).await["error"], "API Rate Limit Exceeded");
    gw.stop().await;
}

#[tokio::test]
async fn policy_grants_access_and_changes_apply_without_touching_the_session() {
    let up = upstream().await;
    let gw = with_policies()
        .api(token_api("t", "/t/", &up.url()))
        .api(token_api("u", "/u/", &up.url()))
        .start()
        .await;
    put_policy(
        &gw,
        json!({"id": "p1", "org_id": "default", "rate": 100, "per": 1, "quota_max": -1,
        "access_rights": {"t": {"api_id": "t", "api_name": "t", "versions": ["Default"]}}}),
        true,
    )
    .await;
    let k = key(&gw, json!({"org_id": "default", "apply_policies": ["p1"]})).await;
    assert_eq!(get(&gw, &k).await.status(), 200);
    let r = client(&gw, None)
        .get(gw.url("/u/x"))
        .header("authorization", &k)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Tighten the policy: a quota of 1. The stored session is not touched.
    put_policy(
        &gw,
        json!({"id": "p1", "org_id": "default", "rate": 100, "per": 1,
        "quota_max": 1, "quota_renewal_rate": 3600,
        "access_rights": {"t": {"api_id": "t", "api_name": "t", "versions": ["Default"]}}}),
        true,
    )
    .await;
    assert_eq!(get(&gw, &k).await.status(), 200);
    let r = get(&gw, &k).await;
    assert_eq!(r.status(), 403);
    assert_eq!(json_of(r).await["error"], "Quota exceeded");
    // An inactive policy deactivates every key that uses it.
    put_policy(
        &gw,
        json!({"id": "p1", "org_id": "default", "is_inactive": true,
        "access_rights": {"t": {"api_id": "t", "versions": ["Default"]}}}),
        true,
    )
    .await;
    assert_eq!(
        json_of(get(&gw, &k).await).await["error"],
        "Key is inactive, please renew"
    );
    gw.stop().await;
}

#[tokio::test]
async fn missing_policy_refuses_the_key_and_its_creation() {
    let up = upstream().await;
    let gw = with_policies()
        .api(token_api("t", "/t/", &up.url()))
        .start()
        .await;
    let (st, v) = create_key_raw(
        &gw,
        &json!({"org_id": "default", "apply_policies": ["nope"]}),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        v["message"],
        "Failed to create key - policy not found: \"nope\""
    );
    put_policy(
        &gw,
        json!({"id": "p2", "org_id": "default",
        "access_rights": {"t": {"api_id": "t", "versions": ["Default"]}}}),
        true,
    )
    .await;
    let k = key(&gw, json!({"org_id": "default", "apply_policies": ["p2"]})).await;
    assert_eq!(get(&gw, &k).await.status(), 200);
    // The policy is deleted: the key is refused, without an error on the request path.
    std::fs::remove_file(gw.dir.path().join("policies/p2.json")).unwrap();
    gw.gateway().reload().await;
    let r = get(&gw, &k).await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        json_of(r).await["error"],
        "Access to this API has been disallowed"
    );
    gw.stop().await;
}

#[tokio::test]
async fn session_lifetime_expires_the_key_on_time() {
    let up = upstream().await;
    let gw = gateway()
        .api(token_api("t", "/t/", &up.url()))
        .start()
        .await;
    let k = key(
        &gw,
        json!({"org_id": "default", "session_lifetime": 1,
        "access_rights": {"t": {"api_id": "t", "versions": ["Default"]}}}),
    )
    .await;
    assert_eq!(get(&gw, &k).await.status(), 200);
    let gone = eventually(Duration::from_secs(5), || async {
        get(&gw, &k).await.status() == 403
    })
    .await;
    assert!(gone, "the key outlived its session_lifetime");
    gw.stop().await;
}

#[tokio::test]
async fn deleting_the_api_a_key_references_is_harmless() {
    let up = upstream().await;
    let gw = gateway()
        .api(token_api("t", "/t/", &up.url()))
        .api(token_api("u", "/u/", &up.url()))
        .start()
        .await;
    let k = key(&gw, json!({"org_id": "default", "access_rights": {
        "t": {"api_id": "t", "versions": ["Default"]}, "u": {"api_id": "u", "versions": ["Default"]}}})).await;
    std::fs::remove_file(gw.app_path().join("u.json")).unwrap();
    gw.gateway().reload().await;
    assert_eq!(get(&gw, &k).await.status(), 200);
    gw.stop().await;
}
