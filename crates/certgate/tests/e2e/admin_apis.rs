//! Gateway API plumbing and `/tyk/apis` (§4.1, §4.5, §4.7).

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn admin_secret_is_required_and_hello_is_open() {
    let gw = gateway().start().await;
    let c = admin(&gw);
    for secret in [None, Some("wrong"), Some("")] {
        let mut req = c.get(gw.url("/tyk/apis"));
        if let Some(s) = secret {
            req = req.header("x-tyk-authorization", s);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.text().await.unwrap(),
            "{\"status\":\"error\",\"message\":\"Attempted administrative access with invalid or missing key!\"}\n"
        );
    }
    let r = c.get(gw.url("/hello")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(v["status"], "pass");
    assert_eq!(v["description"], "Tyk GW");
    let r = c.post(gw.url("/hello")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = c
        .get(gw.url("/tyk/nothing-here"))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(json_of(r).await["status"], "error");
    let r = c
        .delete(gw.url("/tyk/reload"))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(json_of(r).await["message"], "Method not supported");
    gw.stop().await;
}

#[tokio::test]
async fn classic_api_lifecycle_goes_live_on_reload() {
    let up = upstream().await;
    let gw = gateway().start().await;
    let c = admin(&gw);
    let auth = |r: reqwest::RequestBuilder| r.header("x-tyk-authorization", SECRET);

    let def = classic_api("new-api", "/new/", &up.url());
    let r = auth(c.post(gw.url("/tyk/apis")))
        .json(&def)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        "{\"key\":\"new-api\",\"status\":\"ok\",\"action\":\"added\"}\n"
    );
    assert!(gw.app_path().join("new-api.json").is_file());
    // Not live until a reload, as in Tyk.
    let r = client(&gw, None)
        .get(gw.url("/new/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = auth(c.get(gw.url("/tyk/apis/new-api")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(json_of(r).await["message"], "API not found");

    let r = auth(c.get(gw.url("/tyk/reload?block=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        "{\"status\":\"ok\",\"message\":\"\"}\n"
    );
    let r = client(&gw, None)
        .get(gw.url("/new/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = json_of(
        auth(c.get(gw.url("/tyk/apis/new-api")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got["proxy"]["listen_path"], "/new/");
    let all = json_of(auth(c.get(gw.url("/tyk/apis"))).send().await.unwrap()).await;
    assert_eq!(all.as_array().unwrap().len(), 1);

    // A create with an existing id replaces it, as in Tyk (admin_replace.rs has more).
    let r = auth(c.post(gw.url("/tyk/apis")))
        .json(&def)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await["action"], "added");

    // Update: id mismatch, then a real change.
    let mut changed = def.clone();
    changed["api_id"] = json!("other");
    let r = auth(c.put(gw.url("/tyk/apis/new-api")))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        json_of(r).await["message"],
        "Request APIID does not match that in Definition! For Update operations these must match."
    );
    let mut changed = def.clone();
    changed["proxy"]["listen_path"] = json!("/renamed/");
    let r = auth(c.put(gw.url("/tyk/apis/new-api")))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["action"], "modified");
    auth(c.get(gw.url("/tyk/reload?block=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        client(&gw, None)
            .get(gw.url("/renamed/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client(&gw, None)
            .get(gw.url("/new/x"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Delete.
    let r = auth(c.delete(gw.url("/tyk/apis/new-api")))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["action"], "deleted");
    assert!(!gw.app_path().join("new-api.json").exists());
    auth(c.get(gw.url("/tyk/reload?block=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        client(&gw, None)
            .get(gw.url("/renamed/x"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = auth(c.delete(gw.url("/tyk/apis/new-api")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    gw.stop().await;
}

fn oas_doc(id: &str, listen: &str, target: &str) -> serde_json::Value {
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

#[tokio::test]
async fn oas_api_lifecycle() {
    let up = upstream().await;
    let gw = gateway().start().await;
    let c = admin(&gw);
    let auth = |r: reqwest::RequestBuilder| r.header("x-tyk-authorization", SECRET);
    let doc = oas_doc("oas1", "/oas1/", &up.url());
    let r = auth(c.post(gw.url("/tyk/apis/oas")))
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(gw.app_path().join("oas1-oas.json").is_file());
    assert!(gw.app_path().join("oas1.json").is_file());
    auth(c.get(gw.url("/tyk/reload?block=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        client(&gw, None)
            .get(gw.url("/oas1/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let got = json_of(
        auth(c.get(gw.url("/tyk/apis/oas/oas1")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        got["x-tyk-api-gateway"]["server"]["listenPath"]["value"],
        "/oas1/"
    );
    let list = json_of(auth(c.get(gw.url("/tyk/apis/oas"))).send().await.unwrap()).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // The Classic endpoint refuses to update an OAS API.
    let r = auth(c.put(gw.url("/tyk/apis/oas1")))
        .json(&classic_api("oas1", "/x/", &up.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // OAS payload on the Classic endpoint, and a payload without the extension.
    let r = auth(c.post(gw.url("/tyk/apis")))
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let mut bare = doc.clone();
    bare.as_object_mut().unwrap().remove("x-tyk-api-gateway");
    let r = auth(c.post(gw.url("/tyk/apis/oas")))
        .json(&bare)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        json_of(r).await["message"],
        "the payload should contain x-tyk-api-gateway"
    );
    let r = auth(c.delete(gw.url("/tyk/apis/oas/oas1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!gw.app_path().join("oas1-oas.json").exists());
    gw.stop().await;
}

#[tokio::test]
async fn malformed_admin_input_is_a_client_error_and_writes_nothing() {
    let gw = gateway().start().await;
    let c = admin(&gw);
    let auth = |r: reqwest::RequestBuilder| r.header("x-tyk-authorization", SECRET);
    let before = std::fs::read_dir(gw.app_path()).unwrap().count();

    let r = auth(c.post(gw.url("/tyk/apis")))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(json_of(r).await["message"]
        .as_str()
        .unwrap()
        .starts_with("Request malformed"));

    let mut hostile = classic_api("../../etc/passwd", "/x/", "http://127.0.0.1:1");
    let r = auth(c.post(gw.url("/tyk/apis")))
        .json(&hostile)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    hostile["api_id"] = json!("ok-id");
    hostile["proxy"]["listen_path"] = json!(7);
    let r = auth(c.post(gw.url("/tyk/apis")))
        .json(&hostile)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let msg = json_of(r).await["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("listen_path"), "{msg}");

    let r = auth(c.delete(gw.url("/tyk/apis/..%2F..%2Fetc%2Fpasswd")))
        .send()
        .await
        .unwrap();
    assert!(r.status() == 404 || r.status() == 400, "{}", r.status());

    let huge = vec![b' '; certgate::admin::MAX_BODY + 10];
    let r = auth(c.post(gw.url("/tyk/apis")))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(json_of(r).await["status"], "error");

    assert_eq!(std::fs::read_dir(gw.app_path()).unwrap().count(), before);
    gw.stop().await;
}

#[tokio::test]
async fn separate_control_port_serves_only_the_gateway_api() {
    let ctl = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let up = upstream().await;
    let gw = gateway()
        .set("control_api_port", json!(ctl))
        .api(classic_api("a", "/a/", &up.url()))
        .start()
        .await;
    let c = admin(&gw);
    // Not on the gateway port...
    let r = c
        .get(gw.url("/tyk/apis"))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // ...but on the control port.
    let control = gw.running.as_ref().unwrap().control_addr.unwrap();
    let c2 = reqwest::Client::builder()
        .resolve("localhost", control)
        .use_preconfigured_tls(tls_client_config(None, &[b"http/1.1"]))
        .build()
        .unwrap();
    let r = c2
        .get(format!("https://localhost:{}/tyk/apis", control.port()))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c2
        .get(format!("https://localhost:{}/a/x", control.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        client(&gw, None)
            .get(gw.url("/a/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    gw.stop().await;
}

#[tokio::test]
async fn policies_are_files_live_after_reload() {
    let gw = gateway()
        .set(
            "policies",
            json!({"policy_source": "file", "policy_path": "policies"}),
        )
        .start()
        .await;
    let c = admin(&gw);
    let auth = |r: reqwest::RequestBuilder| r.header("x-tyk-authorization", SECRET);
    let p = json!({"id": "p1", "rate": 10, "per": 1, "access_rights": {}});
    let r = auth(c.post(gw.url("/tyk/policies")))
        .json(&p)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        "{\"key\":\"p1\",\"status\":\"ok\",\"action\":\"added\"}\n"
    );
    assert!(gw.dir.path().join("policies/p1.json").is_file());
    let r = auth(c.get(gw.url("/tyk/policies/p1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(json_of(r).await["message"], "Policy not found");
    auth(c.get(gw.url("/tyk/reload?block=true")))
        .send()
        .await
        .unwrap();
    let got = json_of(
        auth(c.get(gw.url("/tyk/policies/p1")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got["rate"], 10);
    let all = json_of(auth(c.get(gw.url("/tyk/policies"))).send().await.unwrap()).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let r = auth(c.put(gw.url("/tyk/policies/p1")))
        .json(&json!({"id": "p2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        json_of(r).await["message"],
        "Request ID does not match that in policy! For Update operations these must match."
    );
    // A body without an id does not match either (Tyk compares the body's id).
    let r = auth(c.put(gw.url("/tyk/policies/p1")))
        .json(&json!({"rate": 20}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = auth(c.put(gw.url("/tyk/policies/p1")))
        .json(&json!({"id": "p1", "rate": 20}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["action"], "modified");
    let r = auth(c.post(gw.url("/tyk/policies")))
        .body("[1,2]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = auth(c.delete(gw.url("/tyk/policies/p1")))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["action"], "deleted");
    let r = auth(c.delete(gw.url("/tyk/policies/p1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    gw.stop().await;
}

/// Issue 11 #10: `use_keyless` next to certificate authentication would serve the API open
/// (as Tyk does); the Gateway API refuses it, Classic and OAS, on create and update.
#[tokio::test]
async fn keyless_api_marked_for_certificate_auth_is_refused() {
    let up = upstream().await;
    let gw = gateway().start().await;
    let c = admin(&gw);
    let auth = |r: reqwest::RequestBuilder| r.header("x-tyk-authorization", SECRET);
    let refused = |status: u16, body: &serde_json::Value| {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["status"], "error");
        let msg = body["message"].as_str().unwrap_or_default();
        assert!(msg.contains("must not be keyless"), "{msg}");
    };

    let mut open_cert = cert_api("kc", "/kc/", &up.url());
    open_cert["use_keyless"] = json!(true);
    let r = auth(c.post(gw.url("/tyk/apis")))
        .json(&open_cert)
        .send()
        .await
        .unwrap();
    refused(r.status().as_u16(), &json_of(r).await);

    let oas = json!({"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {},
        "x-tyk-api-gateway": {
            "info": {"id": "kcoas", "orgId": "default", "name": "kcoas", "state": {"active": true}},
            "upstream": {"url": up.url()},
            "server": {"listenPath": {"value": "/kcoas/", "strip": true},
                       "authentication": {"enabled": false, "certificateAuth": {"enabled": true}}}}});
    let r = auth(c.post(gw.url("/tyk/apis/oas")))
        .json(&oas)
        .send()
        .await
        .unwrap();
    refused(r.status().as_u16(), &json_of(r).await);

    // Updating a certificate-auth API into a keyless one is refused the same way.
    let good = cert_api("kc2", "/kc2/", &up.url());
    let r = auth(c.post(gw.url("/tyk/apis")))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut open = good.clone();
    open["use_keyless"] = json!(true);
    let r = auth(c.put(gw.url("/tyk/apis/kc2")))
        .json(&open)
        .send()
        .await
        .unwrap();
    refused(r.status().as_u16(), &json_of(r).await);

    // Nothing of the refused definitions was stored or served.
    for name in ["kc.json", "kcoas.json", "kcoas-oas.json"] {
        assert!(!gw.app_path().join(name).exists(), "{name} written");
    }
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(gw.app_path().join("kc2.json")).unwrap()).unwrap();
    assert_eq!(stored["use_keyless"], false);
    let r = auth(c.get(gw.url("/tyk/reload?block=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let anon = client(&gw, None);
    for path in ["/kc/x", "/kcoas/x"] {
        let r = anon.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = anon.get(gw.url("/kc2/x")).send().await.unwrap();
    assert_ne!(
        r.status(),
        200,
        "the certificate-auth API let an anonymous client in"
    );
    gw.stop().await;
}
