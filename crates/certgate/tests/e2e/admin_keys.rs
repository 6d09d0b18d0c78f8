//! `/tyk/keys` and token authentication (§1.7 step B, §1.9, §4.2–§4.4).

use serde_json::{json, Value};

use crate::support::*;

async fn create_key(gw: &Gw, body: Value) -> reqwest::Response {
    admin(gw)
        .post(gw.url("/tyk/keys/create"))
        .header("x-tyk-authorization", SECRET)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn session_for(api: &str) -> Value {
    json!({"org_id": "default", "access_rights": {api: {"api_id": api, "api_name": api, "versions": ["Default"]}}})
}

#[tokio::test]
async fn token_auth_end_to_end() {
    let up = upstream().await;
    let gw = gateway()
        .api(token_api("tok", "/tok/", &up.url()))
        .api(token_api("other", "/other/", &up.url()))
        .start()
        .await;
    let c = client(&gw, None);
    let call = |token: Option<String>, path: &'static str| {
        let c = c.clone();
        let url = gw.url(path);
        async move {
            let mut r = c.get(url);
            if let Some(t) = token {
                r = r.header("authorization", t);
            }
            r.send().await.unwrap()
        }
    };

    let r = call(None, "/tok/x").await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-generator"], "tyk.io");
    assert_eq!(
        r.text().await.unwrap(),
        "{\n    \"error\": \"Authorization field missing\"\n}"
    );
    let r = call(Some("nonsense-token".into()), "/tok/x").await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        json_of(r).await["error"],
        "Access to this API has been disallowed"
    );

    let r = create_key(&gw, session_for("tok")).await;
    assert_eq!(r.status(), 200);
    let v = json_of(r).await;
    assert_eq!(v["action"], "added");
    let key = v["key"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("ey"),
        "murmur64 tokens are base64 JSON: {key}"
    );

    assert_eq!(call(Some(key.clone()), "/tok/x").await.status(), 200);
    assert_eq!(
        call(Some(format!("Bearer {key}")), "/tok/x").await.status(),
        200
    );
    // Access rights: the key is not for /other/.
    let r = call(Some(key.clone()), "/other/x").await;
    assert_eq!(r.status(), 403);

    // Read it back: zero values omitted, dates set.
    let r = admin(&gw)
        .get(gw.url(&format!("/tyk/keys/{key}")))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    let s = json_of(r).await;
    assert_eq!(s["org_id"], "default");
    assert!(s.get("is_inactive").is_none());
    assert!(s["date_created"].is_string());

    // Deactivate via PUT.
    let mut upd = session_for("tok");
    upd["is_inactive"] = json!(true);
    let r = admin(&gw)
        .put(gw.url(&format!("/tyk/keys/{key}")))
        .header("x-tyk-authorization", SECRET)
        .json(&upd)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["action"], "modified");
    let r = call(Some(key.clone()), "/tok/x").await;
    assert_eq!(r.status(), 403);
    assert_eq!(json_of(r).await["error"], "Key is inactive, please renew");

    // Delete: refused at once.
    let r = admin(&gw)
        .delete(gw.url(&format!("/tyk/keys/{key}")))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["action"], "deleted");
    assert_eq!(call(Some(key.clone()), "/tok/x").await.status(), 403);
    let r = admin(&gw)
        .delete(gw.url(&format!("/tyk/keys/{key}")))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(json_of(r).await["message"], "There is no such key found");
    gw.stop().await;
}

#[tokio::test]
async fn expired_key_is_401() {
    let up = upstream().await;
    let gw = gateway()
        .api(token_api("tok", "/tok/", &up.url()))
        .start()
        .await;
    let past = certgate::pipeline::now_unix() - 10;
    // A custom key keeps no past expiry on create; write one with PUT.
    let r = admin(&gw)
        .post(gw.url("/tyk/keys/my-custom-key"))
        .header("x-tyk-authorization", SECRET)
        .json(&session_for("tok"))
        .send()
        .await
        .unwrap();
    let key = json_of(r).await["key"].as_str().unwrap().to_owned();
    let mut s = session_for("tok");
    s["expires"] = json!(past);
    admin(&gw)
        .put(gw.url(&format!("/tyk/keys/{key}")))
        .header("x-tyk-authorization", SECRET)
        .json(&s)
        .send()
        .await
        .unwrap();
    let r = client(&gw, None)
        .get(gw.url("/tok/x"))
        .header("authorization", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json_of(r).await["error"], "Key has expired, please renew");
    // The custom name alone also works (generateToken(org, name) is looked up).
    let r = client(&gw, None)
        .get(gw.url("/tok/x"))
        .header("authorization", "my-custom-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    gw.stop().await;
}

#[tokio::test]
async fn token_from_query_param_and_cookie() {
    let up = upstream().await;
    let mut api = token_api("p", "/p/", &up.url());
    api["auth_configs"]["authToken"] =
        json!({"use_param": true, "param_name": "key", "use_cookie": true, "cookie_name": "sess"});
    let gw = gateway().api(api).start().await;
    let key = json_of(create_key(&gw, session_for("p")).await).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = client(&gw, None);
    let enc: String = url_escape(&key);
    assert_eq!(
        c.get(gw.url(&format!("/p/x?key={enc}")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(gw.url("/p/x"))
            .header("cookie", format!("sess={key}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    gw.stop().await;
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn hashed_keys_store_hashes_and_answer_key_hash() {
    let up = upstream().await;
    let gw = gateway()
        .set("hash_keys", json!(true))
        .api(token_api("tok", "/tok/", &up.url()))
        .start()
        .await;
    let v = json_of(create_key(&gw, session_for("tok")).await).await;
    let key = v["key"].as_str().unwrap().to_owned();
    let hash = v["key_hash"].as_str().unwrap().to_owned();
    assert_eq!(hash, certgate::tokens::hash_str(&key, None));
    let store = &gw.gateway().store;
    assert!(store.exists(&format!("apikey-{hash}")).await.unwrap());
    assert!(!store.exists(&format!("apikey-{key}")).await.unwrap());
    let r = client(&gw, None)
        .get(gw.url("/tok/x"))
        .header("authorization", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Read by hash.
    let r = admin(&gw)
        .get(gw.url(&format!("/tyk/keys/{hash}?hashed=1")))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Listing hashed keys is off by default.
    let r = admin(&gw)
        .get(gw.url("/tyk/keys"))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    gw.stop().await;
}

#[tokio::test]
async fn key_creation_validation() {
    let gw = gateway().start().await;
    let r = create_key(&gw, json!({"org_id": "default"})).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        json_of(r).await["message"],
        "Failed to create key, keys must have at least one Access Rights record set."
    );
    let r = admin(&gw)
        .post(gw.url("/tyk/keys/create"))
        .header("x-tyk-authorization", SECRET)
        .body("{\"rate\": \"fast\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = admin(&gw)
        .get(gw.url("/tyk/keys/doesnotexist"))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(json_of(r).await["message"], "Key not found");
    // Listing (not hashed): the created keys appear.
    let mut s = session_for("x");
    s["org_id"] = json!("org1");
    create_key(&gw, s).await;
    let v = json_of(
        admin(&gw)
            .get(gw.url("/tyk/keys?filter=org1"))
            .header("x-tyk-authorization", SECRET)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["keys"].as_array().unwrap().len(), 1);
    gw.stop().await;
}

/// A repeated query parameter is read as Go's `Query().Get` reads it (the first value),
/// on every Gateway API handler that takes parameters; it used to be a plain-text 400
/// (`Failed to deserialize query string: duplicate field`), found by the conformance run.
#[tokio::test]
async fn repeated_query_parameters_take_the_first_value() {
    let up = upstream().await;
    let gw = gateway()
        .api(token_api("dup-q", "/dup-q/", &up.url()))
        .start()
        .await;
    let r = create_key(&gw, session_for("dup-q")).await;
    assert_eq!(r.status(), 200);
    let key = json_of(r).await["key"].as_str().unwrap().to_owned();
    let get = |path: String| {
        admin(&gw)
            .get(gw.url(&path))
            .header("x-tyk-authorization", SECRET)
            .send()
    };

    // `hashed=` first: the key is looked up by its name, and found.
    let r = get(format!("/tyk/keys/{key}?hashed=&hashed=1"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let v = json_of(r).await;
    assert!(v["access_rights"]["dup-q"].is_object(), "{v}");
    // `hashed=1` first: the name is taken as a hash, which it is not.
    let r = get(format!("/tyk/keys/{key}?hashed=1&hashed="))
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(json_of(r).await["status"], "error");

    let r = get("/tyk/reload?block=true&block=true".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await, json!({"status": "ok", "message": ""}));

    let r = get("/tyk/certs?mode=detailed&mode=other&org_id=none&org_id=x".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r).await, json!({"certs": []}));
    gw.stop().await;
}
