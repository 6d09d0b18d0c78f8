//! Issue 12: `PATCH /tyk/apis/oas/{apiID}` as the swagger describes it (it answered 405).

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::support::*;

fn stored(gw: &Gw, id: &str) -> Value {
    let path = gw.app_path().join(format!("{id}-oas.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn oas_doc(id: &str, listen: &str, target: &str) -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": id, "version": "1"},
        // The operation the extension's rule names must exist (an unknown operationId
        // is refused at load).
        "paths": {"/x": {"get": {"operationId": "getX", "responses": {"200": {"description": "ok"}}}}},
        "x-tyk-api-gateway": {
            "info": {"id": id, "orgId": "default", "name": id, "state": {"active": true}},
            "upstream": {"url": target},
            "server": {"listenPath": {"value": listen, "strip": true}},
            "middleware": {"operations": {"getX": {"allow": {"enabled": true}}}}
        }
    })
}

/// The OpenAPI part only, as a client sends it to `PATCH`.
fn bare(title: &str) -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": title, "version": "2"},
        "paths": {"/x": {"get": {"operationId": "getX", "responses": {"200": {"description": "ok"}}}}}
    })
}

#[tokio::test]
async fn patch_keeps_the_stored_extension_and_applies_query_parameters() {
    let up = upstream().await;
    let up2 = upstream().await;
    let gw = gateway()
        .oas_api("p", oas_doc("p", "/p1/", &up.url()))
        .api(classic_api("cl", "/cl/", &up.url()))
        .start()
        .await;
    let c = admin(&gw);
    let ext_before = stored(&gw, "p")["x-tyk-api-gateway"].clone();

    // A body without x-tyk-api-gateway: the OpenAPI part is replaced, the extension kept.
    let (status, v) = admin_send(c.patch(gw.url("/tyk/apis/oas/p")).json(&bare("patched"))).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"key": "p", "status": "ok", "action": "modified"}));
    let doc = stored(&gw, "p");
    assert_eq!(doc["x-tyk-api-gateway"], ext_before);
    assert_eq!(doc["info"]["title"], "patched");
    assert!(doc["paths"]["/x"]["get"].is_object());
    admin_reload(&gw).await;
    let (_, got) = admin_send(c.get(gw.url("/tyk/apis/oas/p"))).await;
    assert_eq!(got["info"]["title"], "patched");
    assert_eq!(got["x-tyk-api-gateway"], ext_before);

    // Query parameters adjust the extension.
    let (status, v) = admin_send(
        c.patch(gw.url(&format!(
            "/tyk/apis/oas/p?listenPath=/p2/&upstreamURL={}&allowList=false",
            up2.url()
        )))
        .json(&bare("again")),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let ext = stored(&gw, "p")["x-tyk-api-gateway"].clone();
    assert_eq!(
        ext["server"]["listenPath"],
        json!({"value": "/p2/", "strip": true})
    );
    assert_eq!(ext["upstream"]["url"], json!(up2.url()));
    assert_eq!(ext["info"]["name"], "p");
    assert_eq!(
        ext["middleware"]["operations"]["getX"]["allow"]["enabled"],
        false
    );
    admin_reload(&gw).await;
    let r = client(&gw, None).get(gw.url("/p2/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up2.hits.load(Ordering::SeqCst), 1);
    let r = client(&gw, None).get(gw.url("/p1/x")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // customDomain creates an enabled custom domain.
    let (status, v) = admin_send(
        c.patch(gw.url("/tyk/apis/oas/p?customDomain=api.example"))
            .json(&bare("domain")),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        stored(&gw, "p")["x-tyk-api-gateway"]["server"]["customDomain"],
        json!({"enabled": true, "name": "api.example"})
    );

    // A body with its own extension and no parameters is a PUT.
    let (status, v) = admin_send(c.patch(gw.url("/tyk/apis/oas/p")).json(&oas_doc(
        "p",
        "/p3/",
        &up.url(),
    )))
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        stored(&gw, "p")["x-tyk-api-gateway"]["server"]["listenPath"]["value"],
        "/p3/"
    );
    gw.stop().await;
}

#[tokio::test]
async fn patch_refusals_name_the_problem_and_write_nothing() {
    let up = upstream().await;
    let gw = gateway()
        .oas_api("p", oas_doc("p", "/p1/", &up.url()))
        .api(classic_api("cl", "/cl/", &up.url()))
        .start()
        .await;
    let c = admin(&gw);
    let before = std::fs::read(gw.app_path().join("p-oas.json")).unwrap();

    let (status, v) = admin_send(c.patch(gw.url("/tyk/apis/oas/nope")).json(&bare("x"))).await;
    assert_eq!(
        (status, v["message"].as_str()),
        (404, Some("API not found"))
    );

    let (status, v) = admin_send(c.patch(gw.url("/tyk/apis/oas/cl")).json(&bare("x"))).await;
    assert_eq!(status, 400);
    assert_eq!(
        v["message"],
        "the requested API definition is in Tyk classic format, please use old api endpoint"
    );

    // Not an OAS document: a Classic definition, a non-object, not JSON.
    let (status, v) = admin_send(c.patch(gw.url("/tyk/apis/oas/p")).json(&classic_api(
        "p",
        "/p9/",
        &up.url(),
    )))
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("openapi"), "{v}");
    let (status, _) = admin_send(c.patch(gw.url("/tyk/apis/oas/p")).json(&json!([1]))).await;
    assert_eq!(status, 400);
    let (status, v) = admin_send(c.patch(gw.url("/tyk/apis/oas/p")).body("{nope")).await;
    assert_eq!(status, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("request malformed"),
        "{v}"
    );

    // Parameters that cannot be honoured are refused by name.
    for (query, name) in [
        ("allowList=true", "allowList"),
        ("validateRequest=1", "validateRequest"),
        ("mockResponse=true", "mockResponse"),
        ("validateRequest=yes", "validateRequest"),
        ("authentication=maybe", "authentication"),
    ] {
        let (status, v) = admin_send(
            c.patch(gw.url(&format!("/tyk/apis/oas/p?{query}")))
                .json(&bare("x")),
        )
        .await;
        assert_eq!(status, 400, "{query}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(name),
            "{query}: {v}"
        );
    }
    let (status, v) = admin_send(
        c.patch(gw.url("/tyk/apis/oas/p?upstreamURL=not-a-url"))
            .json(&bare("x")),
    )
    .await;
    assert_eq!(
        (status, v["message"].as_str()),
        (400, Some("invalid upstream URL"))
    );
    // authentication needs a security requirement to import (Tyk's message).
    let (status, v) = admin_send(
        c.patch(gw.url("/tyk/apis/oas/p?authentication=true"))
            .json(&bare("x")),
    )
    .await;
    assert_eq!(
        (status, v["message"].as_str()),
        (400, Some("security object is empty in OAS"))
    );
    // apiID other than the path's: Tyk's update mismatch.
    let (status, v) = admin_send(
        c.patch(gw.url("/tyk/apis/oas/p?apiID=other"))
            .json(&bare("x")),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        v["message"],
        "Request APIID does not match that in Definition! For Update operations these must match."
    );

    assert_eq!(
        std::fs::read(gw.app_path().join("p-oas.json")).unwrap(),
        before
    );
    assert!(!gw.app_path().join("nope-oas.json").exists());
    gw.stop().await;
}
