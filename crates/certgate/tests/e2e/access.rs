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

/// Issue 11, hole 16: methods compare exactly (`get` is not `GET`), and method
/// overrides never reach the upstream, so a GET-only rule means GET upstream.
#[tokio::test]
async fn allowed_urls_methods_are_exact_and_overrides_are_not_forwarded() {
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
    let lower = reqwest::Method::from_bytes(b"get").unwrap();
    let (st, body) = call(&gw, &key, lower, "/t/users/7", &[]).await;
    assert_eq!(
        (st, body.contains("resource has been disallowed")),
        (403, true)
    );
    let overrides = [
        ("x-http-method-override", "DELETE"),
        ("x-http-method", "DELETE"),
        ("x-method-override", "DELETE"),
    ];
    let (st, body) = call(&gw, &key, reqwest::Method::GET, "/t/users/7", &overrides).await;
    assert_eq!(st, 200, "{body}");
    let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["method"], "GET");
    for (name, _) in overrides {
        assert!(
            echo["headers"].get(name).is_none(),
            "{name} forwarded: {body}"
        );
    }
    gw.stop().await;
}

/// Issue 11, hole 12: the url-param version is decoded as Go decodes it, and a query
/// that another parser would read as another version is refused.
#[tokio::test]
async fn url_param_version_is_decoded_and_unambiguous() {
    let up = upstream().await;
    let mut api = token_api("q", "/q/", &up.url());
    api["definition"] = json!({"location": "url-param", "key": "version"});
    api["version_data"] = json!({"not_versioned": false, "default_version": "v1",
        "versions": {"v1": {"name": "v1"}, "v2": {"name": "v2"}}});
    let gw = gateway().api(api).start().await;
    let key = key_for(
        &gw,
        json!({"org_id": "default", "access_rights": {"q": {"api_id": "q", "versions": ["v1"]}}}),
    )
    .await;
    let get = |path: &'static str| call(&gw, &key, reqwest::Method::GET, path, &[]);
    assert_eq!(get("/q/x?version=v1").await.0, 200);
    assert_eq!(get("/q/x").await.0, 200);
    let hits = up.hits.load(std::sync::atomic::Ordering::SeqCst);
    // An escaped key is still the version parameter: v2 is not granted.
    let (st, body) = get("/q/x?versio%6E=v2").await;
    assert_eq!((st, body.contains("API has been disallowed")), (403, true));
    for path in [
        "/q/x?versio%6E=v2&version=v1",
        "/q/x?version=v1&version=v2",
        "/q/x?version=v1;version=v2",
        "/q/x?version=v2;",
    ] {
        let (st, body) = get(path).await;
        assert_eq!(
            (
                st,
                body.contains("Version information is duplicated or unreadable")
            ),
            (400, true),
            "{path}: {body}"
        );
    }
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), hits);
    gw.stop().await;
}

/// Issue 11, hole 12: a version header sent twice or not readable is refused, not
/// taken as absent (which would apply the default version).
#[tokio::test]
async fn version_header_must_be_single_and_readable() {
    let up = upstream().await;
    let mut api = token_api("h", "/h/", &up.url());
    api["definition"] = json!({"location": "header", "key": "x-api-version"});
    api["version_data"] = json!({"not_versioned": false, "default_version": "v1",
        "versions": {"v1": {"name": "v1"}, "v2": {"name": "v2"}}});
    let gw = gateway().api(api).start().await;
    let key = key_for(
        &gw,
        json!({"org_id": "default", "access_rights": {"h": {"api_id": "h", "versions": ["v1"]}}}),
    )
    .await;
    assert_eq!(
        call(&gw, &key, reqwest::Method::GET, "/h/x", &[]).await.0,
        200
    );
    let twice = client(&gw, None)
        .get(gw.url("/h/x"))
        .header("authorization", &key)
        .header("x-api-version", "v1")
        .header("x-api-version", "v2")
        .send()
        .await
        .unwrap();
    let not_ascii = client(&gw, None)
        .get(gw.url("/h/x"))
        .header("authorization", &key)
        .header(
            "x-api-version",
            reqwest::header::HeaderValue::from_bytes(b"v\xc3\xa92").unwrap(),
        )
        .send()
        .await
        .unwrap();
    for r in [twice, not_ascii] {
        let st = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(
            (
                st,
                body.contains("Version information is duplicated or unreadable")
            ),
            (400, true),
            "{body}"
        );
    }
    gw.stop().await;
}
