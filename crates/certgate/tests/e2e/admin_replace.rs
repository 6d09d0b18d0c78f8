//! Issue 12: `POST /tyk/apis` and `POST /tyk/apis/oas` with an existing id replace the
//! API, whatever its flavour, as Tyk does; a refused replacement changes nothing.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::support::*;

async fn status_of(gw: &Gw, path: &str) -> u16 {
    client(gw, None)
        .get(gw.url(path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn oas_doc(id: &str, listen: &str, target: &str) -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": id, "version": "1"},
        "paths": {},
        "x-tyk-api-gateway": {
            "info": {"id": id, "orgId": "default", "name": id, "state": {"active": true}},
            "upstream": {"url": target},
            "server": {"listenPath": {"value": listen, "strip": true}}
        }
    })
}

fn read(path: std::path::PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn create_with_an_existing_id_replaces_the_api_in_either_flavour() {
    let up = upstream().await;
    let gw = gateway()
        .api(classic_api("a", "/a1/", &up.url()))
        .start()
        .await;
    let c = admin(&gw);

    // Classic over Classic.
    let (status, v) = admin_send(c.post(gw.url("/tyk/apis")).json(&classic_api(
        "a",
        "/a2/",
        &up.url(),
    )))
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"key": "a", "status": "ok", "action": "added"}));
    admin_reload(&gw).await;
    let (_, got) = admin_send(c.get(gw.url("/tyk/apis/a"))).await;
    assert_eq!(got["proxy"]["listen_path"], "/a2/");
    assert_eq!(status_of(&gw, "/a2/x").await, 200);
    assert_eq!(status_of(&gw, "/a1/x").await, 404);

    // OAS over OAS.
    for listen in ["/o1/", "/o2/"] {
        let (status, v) = admin_send(c.post(gw.url("/tyk/apis/oas")).json(&oas_doc(
            "o",
            listen,
            &up.url(),
        )))
        .await;
        assert_eq!((status, &v["action"]), (200, &json!("added")), "{v}");
        admin_reload(&gw).await;
    }
    let (_, got) = admin_send(c.get(gw.url("/tyk/apis/oas/o"))).await;
    assert_eq!(
        got["x-tyk-api-gateway"]["server"]["listenPath"]["value"],
        "/o2/"
    );
    assert_eq!(status_of(&gw, "/o2/x").await, 200);
    assert_eq!(status_of(&gw, "/o1/x").await, 404);

    // Classic over OAS: the stale OAS document goes, or it would stay the live one.
    let (status, _) = admin_send(c.post(gw.url("/tyk/apis")).json(&classic_api(
        "o",
        "/o3/",
        &up.url(),
    )))
    .await;
    assert_eq!(status, 200);
    assert!(!gw.app_path().join("o-oas.json").exists());
    admin_reload(&gw).await;
    let (_, got) = admin_send(c.get(gw.url("/tyk/apis/o"))).await;
    assert_eq!(got["proxy"]["listen_path"], "/o3/");
    assert_eq!(got.get("is_oas"), None);
    assert_eq!(status_of(&gw, "/o3/x").await, 200);
    assert_eq!(status_of(&gw, "/o2/x").await, 404);
    let (status, _) = admin_send(c.get(gw.url("/tyk/apis/oas/o"))).await;
    assert_eq!(status, 400);

    // OAS over Classic.
    let (status, _) = admin_send(c.post(gw.url("/tyk/apis/oas")).json(&oas_doc(
        "a",
        "/a3/",
        &up.url(),
    )))
    .await;
    assert_eq!(status, 200);
    admin_reload(&gw).await;
    let (_, got) = admin_send(c.get(gw.url("/tyk/apis/oas/a"))).await;
    assert_eq!(
        got["x-tyk-api-gateway"]["server"]["listenPath"]["value"],
        "/a3/"
    );
    assert_eq!(status_of(&gw, "/a3/x").await, 200);
    assert_eq!(status_of(&gw, "/a2/x").await, 404);
    let left: Vec<_> = std::fs::read_dir(gw.app_path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    gw.stop().await;
}

/// Issue 11 refused keyless certificate APIs; a replace through `POST` (and `PATCH`) must
/// not be a way around it, nor leave a half-written API behind.
#[tokio::test]
async fn replace_making_a_certificate_api_keyless_is_refused_and_changes_nothing() {
    let up = upstream().await;
    let cert_oas = json!({
        "openapi": "3.0.3",
        "info": {"title": "co", "version": "1"},
        "paths": {},
        "security": [{"auth": []}],
        "components": {"securitySchemes": {"auth": {"type": "apiKey", "in": "header", "name": "Authorization"}}},
        "x-tyk-api-gateway": {
            "info": {"id": "co", "orgId": "default", "name": "co", "state": {"active": true}},
            "upstream": {"url": up.url()},
            "server": {"listenPath": {"value": "/co/", "strip": true},
                       "authentication": {"enabled": true, "certificateAuth": {"enabled": true},
                                          "securitySchemes": {"auth": {"enabled": true}}}}
        }
    });
    let gw = gateway()
        .api(cert_api("c", "/c/", &up.url()))
        .oas_api("co", cert_oas.clone())
        .start()
        .await;
    let c = admin(&gw);
    let snapshot = |gw: &Gw| {
        let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(gw.app_path())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().into_string().unwrap(), read(e.path()))
            })
            .collect();
        all.sort();
        all
    };
    let before = snapshot(&gw);
    let must_not_be_keyless = |status: u16, v: &Value| {
        assert_eq!(status, 400, "{v}");
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(msg.contains("must not be keyless"), "{msg}");
    };

    // Classic: certificate auth plus use_keyless.
    let mut open = cert_api("c", "/c/", &up.url());
    open["use_keyless"] = json!(true);
    let (status, v) = admin_send(c.post(gw.url("/tyk/apis")).json(&open)).await;
    must_not_be_keyless(status, &v);

    // OAS replacing the Classic API: authentication off, certificateAuth on.
    let mut open_oas = cert_oas.clone();
    open_oas["x-tyk-api-gateway"]["info"]["id"] = json!("c");
    open_oas["x-tyk-api-gateway"]["server"]["authentication"]["enabled"] = json!(false);
    let (status, v) = admin_send(c.post(gw.url("/tyk/apis/oas")).json(&open_oas)).await;
    must_not_be_keyless(status, &v);

    // PATCH switching authentication off on the certificate OAS API.
    let mut bare = cert_oas.clone();
    bare.as_object_mut().unwrap().remove("x-tyk-api-gateway");
    let (status, v) = admin_send(
        c.patch(gw.url("/tyk/apis/oas/co?authentication=false"))
            .json(&bare),
    )
    .await;
    must_not_be_keyless(status, &v);

    assert_eq!(snapshot(&gw), before, "a refused replace changed app_path");
    admin_reload(&gw).await;
    for path in ["/c/x", "/co/x"] {
        let s = status_of(&gw, path).await;
        assert!(s == 401 || s == 403, "{path}: anonymous client got {s}");
    }
    assert_eq!(up.hits.load(Ordering::SeqCst), 0);
    gw.stop().await;
}
