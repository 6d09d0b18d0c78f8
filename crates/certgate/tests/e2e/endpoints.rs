//! Issue 12 #8: a version's endpoint lists (Classic `extended_paths` white / black /
//! ignored, OAS `middleware.operations` allow / block / ignoreAuthentication), version
//! expiry and `fallback_to_default`, over real TLS with a recording upstream.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::support::*;

const FORBIDDEN: &str = "{\n    \"error\": \"Requested endpoint is forbidden\"\n}";
const CERT_REQUIRED: &str = "{\n    \"error\": \"Client certificate required\"\n}";

/// A certificate-auth API whose `Default` version has `extended_paths`.
fn listed_api(id: &str, upstream: &str, extended: Value) -> Value {
    let mut api = cert_api(id, &format!("/{id}/"), upstream);
    api["version_data"] = json!({"not_versioned": true, "versions": {"Default": {
        "name": "Default", "use_extended_paths": true, "extended_paths": extended}}});
    api
}

/// Starts a gateway with `apis`, registers the client certificate for `bound` and
/// returns the gateway.
async fn start(apis: Vec<Value>, bound: &[(&str, Value)]) -> Gw {
    let mut b = gateway();
    for api in apis {
        b = b.api(api);
    }
    let gw = b.start().await;
    let id = upload(&gw, &pki().client, "default").await;
    bind(&gw, &id, bound).await;
    gw
}

/// One key for the client certificate (one per certificate), granting `bound`.
async fn bind(gw: &Gw, id: &str, bound: &[(&str, Value)]) {
    let mut s = session(bound[0].0, Some(id));
    for (api, versions) in bound {
        s["access_rights"][*api] = json!({"api_id": api, "api_name": api, "versions": versions});
    }
    let (st, v) = create_key_raw(gw, &s).await;
    assert_eq!(st, 200, "{v}");
}

async fn send(
    gw: &Gw,
    cert: bool,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let identity = cert.then(|| &pki().client);
    let mut r = client(gw, identity).request(method, gw.url(path));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.text().await.unwrap())
}

async fn get(gw: &Gw, cert: bool, path: &str) -> (u16, String) {
    send(gw, cert, reqwest::Method::GET, path, &[]).await
}

#[tokio::test]
async fn white_list_lets_only_listed_endpoints_reach_the_upstream() {
    let up = upstream().await;
    let api = listed_api(
        "wl",
        &up.url(),
        json!({"white_list": [
            {"path": "/users/{id}", "method": "GET"},
            {"path": "/off", "method": "GET", "disabled": true}
        ]}),
    );
    let gw = start(vec![api], &[("wl", json!(["Default"]))]).await;

    let (st, body) = get(&gw, true, "/wl/users/7").await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    for (method, path) in [
        (reqwest::Method::POST, "/wl/users/7"),
        (reqwest::Method::GET, "/wl/orders"),
        (reqwest::Method::GET, "/wl/off"),
    ] {
        let (st, body) = send(&gw, true, method.clone(), path, &[]).await;
        assert_eq!((st, body.as_str()), (403, FORBIDDEN), "{method} {path}");
    }
    // A listed endpoint still needs the certificate.
    let (st, body) = get(&gw, false, "/wl/users/7").await;
    assert_eq!((st, body.as_str()), (401, CERT_REQUIRED));
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        1,
        "refused requests reached the upstream"
    );
    gw.stop().await;
}

#[tokio::test]
async fn black_list_refuses_listed_endpoints() {
    let up = upstream().await;
    let api = listed_api(
        "bl",
        &up.url(),
        json!({"black_list": [{"path": "/admin", "method": ""},
                              {"path": "/users", "method": "DELETE"}]}),
    );
    let gw = start(vec![api], &[("bl", json!(["Default"]))]).await;
    for path in ["/bl/admin", "/bl/admin/x", "/bl/x/admin"] {
        let (st, body) = get(&gw, true, path).await;
        assert_eq!((st, body.as_str()), (403, FORBIDDEN), "{path}");
    }
    let (st, body) = send(&gw, true, reqwest::Method::DELETE, "/bl/users", &[]).await;
    assert_eq!((st, body.as_str()), (403, FORBIDDEN));
    assert_eq!(up.hits.load(Ordering::SeqCst), 0);
    assert_eq!(get(&gw, true, "/bl/users").await.0, 200);
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    gw.stop().await;
}

#[tokio::test]
async fn ignored_endpoint_needs_no_certificate_and_only_that_endpoint() {
    let up = upstream().await;
    let api = listed_api(
        "ig",
        &up.url(),
        json!({"ignored": [{"path": "/health", "method": "GET"}]}),
    );
    let gw = start(vec![api], &[("ig", json!(["Default"]))]).await;
    let (st, body) = get(&gw, false, "/ig/health").await;
    assert_eq!(st, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/health");
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    // Another method, a longer path, a path that merely contains it: certificate needed.
    for (method, path) in [
        (reqwest::Method::POST, "/ig/health"),
        (reqwest::Method::GET, "/ig/health/x"),
        (reqwest::Method::GET, "/ig/orders/health"),
        (reqwest::Method::GET, "/ig/other"),
    ] {
        let (st, body) = send(&gw, false, method.clone(), path, &[]).await;
        assert_eq!((st, body.as_str()), (401, CERT_REQUIRED), "{method} {path}");
    }
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    assert_eq!(get(&gw, true, "/ig/other").await.0, 200);
    gw.stop().await;
}

/// A versioned certificate-auth API (version in the `x-api-version` header).
fn versioned_api(id: &str, upstream: &str, fallback: bool) -> Value {
    let mut api = cert_api(id, &format!("/{id}/"), upstream);
    api["definition"] = json!({"location": "header", "key": "x-api-version",
        "fallback_to_default": fallback});
    api["version_data"] = json!({"not_versioned": false, "default_version": "v1", "versions": {
        "v1": {"name": "v1", "expires": "3000-01-02 15:04", "use_extended_paths": true,
               "extended_paths": {"black_list": [{"path": "/admin", "method": "GET"}]}},
        "old": {"name": "old", "expires": "2001-01-02 15:04"}}});
    api
}

#[tokio::test]
async fn expired_version_is_refused_with_tyks_message() {
    let up = upstream().await;
    let gw = start(
        vec![versioned_api("ex", &up.url(), false)],
        &[("ex", json!(["v1", "old"]))],
    )
    .await;
    let (st, body) = send(
        &gw,
        true,
        reqwest::Method::GET,
        "/ex/x",
        &[("x-api-version", "old")],
    )
    .await;
    assert_eq!(
        (st, body.as_str()),
        (
            403,
            "{\n    \"error\": \"Api Version has expired, please check documentation or contact administrator\"\n}"
        )
    );
    // Expiry is checked before authentication: no certificate, same answer.
    let (st, _) = send(
        &gw,
        false,
        reqwest::Method::GET,
        "/ex/x",
        &[("x-api-version", "old")],
    )
    .await;
    assert_eq!(st, 403);
    assert_eq!(up.hits.load(Ordering::SeqCst), 0);
    let (st, _) = send(
        &gw,
        true,
        reqwest::Method::GET,
        "/ex/x",
        &[("x-api-version", "v1")],
    )
    .await;
    assert_eq!(st, 200);
    gw.stop().await;
}

#[tokio::test]
async fn unknown_version_falls_back_to_the_default_only_when_asked() {
    let up = upstream().await;
    let gw = start(
        vec![
            versioned_api("fb", &up.url(), true),
            versioned_api("nf", &up.url(), false),
        ],
        // Tyk's AccessRightsCheck compares the version as requested.
        &[("fb", json!(["v1", "v9"])), ("nf", json!(["v1", "v9"]))],
    )
    .await;
    let v9 = [("x-api-version", "v9")];
    let (st, body) = send(&gw, true, reqwest::Method::GET, "/nf/x", &v9).await;
    assert_eq!(
        (st, body.as_str()),
        (
            403,
            "{\n    \"error\": \"This API version does not seem to exist\"\n}"
        )
    );
    assert_eq!(up.hits.load(Ordering::SeqCst), 0);
    let (st, body) = send(&gw, true, reqwest::Method::GET, "/fb/x", &v9).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    // The default version's lists apply to the fallen-back request.
    let (st, body) = send(&gw, true, reqwest::Method::GET, "/fb/admin", &v9).await;
    assert_eq!((st, body.as_str()), (403, FORBIDDEN));
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    gw.stop().await;
}

#[tokio::test]
async fn oas_operations_allow_block_and_ignore_authentication() {
    let up = upstream().await;
    let op = |id: &str| json!({"operationId": id, "responses": {"200": {"description": "ok"}}});
    let doc = |id: &str, operations: Value| {
        json!({"openapi": "3.0.3", "info": {"title": id, "version": "1"},
            "paths": {"/pets/{id}": {"get": op(&format!("{id}-get")), "delete": op(&format!("{id}-del"))},
                      "/status": {"get": op(&format!("{id}-status"))}},
            "x-tyk-api-gateway": {
                "info": {"id": id, "orgId": "default", "name": id, "state": {"active": true}},
                "upstream": {"url": up.url()},
                "server": {"listenPath": {"value": format!("/{id}/"), "strip": true},
                           "authentication": {"enabled": true, "certificateAuth": {"enabled": true}}},
                "middleware": {"operations": operations}}})
    };
    let allow = doc(
        "oa",
        json!({"oa-get": {"allow": {"enabled": true}},
               "oa-status": {"ignoreAuthentication": {"enabled": true}}}),
    );
    let block = doc("ob", json!({"ob-del": {"block": {"enabled": true}}}));
    let gw = gateway()
        .oas_api("oa", allow)
        .oas_api("ob", block)
        .start()
        .await;
    let id = upload(&gw, &pki().client, "default").await;
    bind(
        &gw,
        &id,
        &[("oa", json!(["Default"])), ("ob", json!(["Default"]))],
    )
    .await;

    assert_eq!(get(&gw, true, "/oa/pets/1").await.0, 200);
    let (st, body) = send(&gw, true, reqwest::Method::DELETE, "/oa/pets/1", &[]).await;
    assert_eq!((st, body.as_str()), (403, FORBIDDEN));
    // ignoreAuthentication: no certificate needed on that operation only.
    assert_eq!(get(&gw, false, "/oa/status").await.0, 200);
    let (st, body) = get(&gw, false, "/oa/pets/1").await;
    assert_eq!((st, body.as_str()), (401, CERT_REQUIRED));

    let (st, body) = send(&gw, true, reqwest::Method::DELETE, "/ob/pets/1", &[]).await;
    assert_eq!((st, body.as_str()), (403, FORBIDDEN));
    assert_eq!(get(&gw, true, "/ob/pets/1").await.0, 200);
    assert_eq!(get(&gw, true, "/ob/status").await.0, 200);
    assert_eq!(up.hits.load(Ordering::SeqCst), 4);
    gw.stop().await;
}
