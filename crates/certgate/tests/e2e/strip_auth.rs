//! `strip_auth_data` (issue 12 #1): after authentication the credential of every auth
//! config of the API is removed before proxying — headers, query parameters and cookies —
//! whatever credential authenticated.

use serde_json::{json, Value};

use crate::support::*;

/// A certificate-auth API with a second (disabled) auth config, whose names Tyk strips too.
fn cert_api_stripping(id: &str, strip: bool, target: &str) -> Value {
    let mut v = cert_api(id, &format!("/{id}/"), target);
    v["auth_configs"]["jwt"] = json!({"auth_header_name": "X-Jwt"});
    v["strip_auth_data"] = json!(strip);
    v
}

async fn echo_of(r: reqwest::RequestBuilder) -> Value {
    let r = r.send().await.unwrap();
    let status = r.status();
    let v = json_of(r).await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test]
async fn certificate_api_strips_the_auth_header_and_cookie() {
    let up = upstream().await;
    let gw = gateway()
        .api(cert_api_stripping("cs", true, &up.url()))
        .api(cert_api_stripping("cf", false, &up.url()))
        .start()
        .await;
    let p = pki();
    let id = upload(&gw, &p.client, "default").await;
    let mut s = session("cs", Some(&id));
    s["access_rights"]["cf"] = json!({"api_id": "cf", "api_name": "cf", "versions": ["Default"]});
    let (st, v) = create_key_raw(&gw, &s).await;
    assert_eq!(st, 200, "{v}");
    let c = client(&gw, Some(&p.client));
    let send = |api: &str| {
        c.get(gw.url(&format!("/{api}/x?a=1&Authorization=q")))
            .header("authorization", "Bearer leaked-token")
            .header("x-jwt", "leaked-jwt")
            .header("cookie", "Authorization=leaked-cookie; theme=dark")
            .header("x-other", "kept")
    };

    let h = echo_of(send("cs")).await["headers"].clone();
    assert!(
        h.get("authorization").is_none(),
        "credential forwarded: {h}"
    );
    assert!(
        h.get("x-jwt").is_none(),
        "other auth config's header forwarded: {h}"
    );
    assert_eq!(h["cookie"], "theme=dark");
    assert_eq!(h["x-other"], "kept");

    // strip_auth_data false: everything is forwarded as sent.
    let v = echo_of(send("cf")).await;
    let h = &v["headers"];
    assert_eq!(h["authorization"], "Bearer leaked-token");
    assert_eq!(h["x-jwt"], "leaked-jwt");
    assert_eq!(h["cookie"], "Authorization=leaked-cookie; theme=dark");
    assert_eq!(v["query"], "a=1&Authorization=q");
    gw.stop().await;
}

#[tokio::test]
async fn token_api_strips_the_query_parameter_and_keeps_the_rest_of_the_query() {
    let up = upstream().await;
    let mut api = token_api("tq", "/tq/", &up.url());
    api["auth_configs"]["authToken"] =
        json!({"auth_header_name": "X-Api-Key", "use_param": true, "param_name": "key"});
    api["strip_auth_data"] = json!(true);
    let gw = gateway().api(api).start().await;
    let s = json!({"org_id": "default",
        "access_rights": {"tq": {"api_id": "tq", "api_name": "tq", "versions": ["Default"]}}});
    let (st, v) = create_key_raw(&gw, &s).await;
    assert_eq!(st, 200, "{v}");
    let key = v["key"].as_str().unwrap();
    let c = client(&gw, None);

    // The parameter authenticates; it (and its encoded twin) is removed, every other pair
    // reaches the upstream as written, in order.
    let v = echo_of(c.get(gw.url(&format!(
        "/tq/x?b=%2F2&key={key}&a=1+2&k%65y=twin&z=%7e&Key=case"
    ))))
    .await;
    assert_eq!(v["query"], "b=%2F2&a=1+2&z=%7e&Key=case");
    // The header authenticates (an empty parameter is not read); it is removed, and a
    // query of only the parameter goes.
    let v = echo_of(
        c.get(gw.url("/tq/y?key="))
            .header("x-api-key", key)
            .header("x-keep", "1"),
    )
    .await;
    assert_eq!(v["query"], Value::Null);
    assert!(v["headers"].get("x-api-key").is_none(), "{v}");
    assert_eq!(v["headers"]["x-keep"], "1");
    gw.stop().await;
}
