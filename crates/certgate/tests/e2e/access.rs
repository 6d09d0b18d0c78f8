//! Access rights after authentication (§1.9): APIs, versions, allowed URLs.

use serde_json::json;

use crate::support::*;

async fn key_for(gw: &Gw, session: serde_json::Value) -> String {
    let (st, v) = create_key_raw(gw, &session).await;
    assert_eq!(st, 200, "{v}");
    v["key"].as_str().unwrap().to_owned()
}

async fn call(
    gw: &Gw,
    key: &str,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut r = client(gw, None)
        .request(method, gw.url(path))
        .header("authorization", key);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.text().await.unwrap())
}

#[tokio::test]
async fn allowed_urls_restrict_method_and_path() {
    let up = upstream().await;
    let gw = gateway()
        .api(token_api("t", "/t/", &up.url()))
        .start()
        .await;
    let key = key_for(
        &gw,
        json!({"org_id": "default", "access_rights": {"t": {"api_id": "t", "versions": ["Default"],
            "allowed_urls": [{"url": "/t/users/[0-9]+$", "methods": ["GET"]}]}}}),
    )
    .await;
    assert_eq!(
        call(&gw, &key, reqwest::Method::GET, "/t/users/7", &[])
            .await
            .0,
        200
    );
    let (st, body) = call(&gw, &key, reqwest::Method::DELETE, "/t/users/7", &[]).await;
    assert_eq!(st, 403);
    assert_eq!(
        body,
        "{\n    \"error\": \"Access to this resource has been disallowed\"\n}"
    );
    assert_eq!(
        call(&gw, &key, reqwest::Method::GET, "/t/orders", &[])
            .await
            .0,
        403
    );
    gw.stop().await;
}

#[tokio::test]
async fn versioned_classic_api_checks_the_version() {
    let up = upstream().await;
    let mut api = token_api("v", "/v/", &up.url());
    api["definition"] = json!({"location": "header", "key": "x-api-version"});
    api["version_data"] = json!({"not_versioned": false, "default_version": "",
        "versions": {"v1": {"name": "v1"}, "v2": {"name": "v2"}}});
    let gw = gateway().api(api).start().await;
    let key = key_for(
        &gw,
        json!({"org_id": "default", "access_rights": {"v": {"api_id": "v", "versions": ["v1"]}}}),
    )
    .await;
    assert_eq!(
        call(
            &gw,
            &key,
            reqwest::Method::GET,
            "/v/x",
            &[("x-api-version", "v1")]
        )
        .await
        .0,
        200
    );
    let (st, body) = call(
        &gw,
        &key,
        reqwest::Method::GET,
        "/v/x",
        &[("x-api-version", "v2")],
    )
    .await;
    assert_eq!(
        (st, body.contains("Access to this API has been disallowed")),
        (403, true)
    );
    let (st, body) = call(
        &gw,
        &key,
        reqwest::Method::GET,
        "/v/x",
        &[("x-api-version", "v9")],
    )
    .await;
    assert_eq!(
        (st, body.contains("This API version does not seem to exist")),
        (403, true)
    );
    let (st, body) = call(&gw, &key, reqwest::Method::GET, "/v/x", &[]).await;
    assert_eq!(
        (st, body.contains("Version information not found")),
        (403, true)
    );
    gw.stop().await;
}
