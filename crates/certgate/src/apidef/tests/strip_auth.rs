//! `strip_auth_data`: what is removed before proxying, for every auth config.

use serde_json::json;

use super::*;

#[test]
fn strip_auth_data_covers_every_auth_config() {
    let names = |s: &ApiSpec| {
        let h: Vec<&str> = s.auth_strip.headers.iter().map(|h| h.as_str()).collect();
        (
            h.join(","),
            s.auth_strip.params.join(","),
            s.auth_strip.cookies.join(","),
        )
    };
    let mut v = minimal_classic();
    v["strip_auth_data"] = json!(true);
    // No auth config at all: Tyk's defaults.
    let s = classic(v.clone()).unwrap().spec;
    assert!(s.strips_auth());
    let own = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(names(&s), own("authorization", "", "Authorization"));
    // Every entry (not only authToken); a parameter only with use_param, named after the
    // header when unnamed. The deprecated `auth` counts only when the map is empty, but the
    // names the effective config reads are always there.
    v["auth"] = json!({"auth_header_name": "X-Old"});
    v["auth_configs"] = json!({
        "authToken": {"auth_header_name": "X-Key", "disable_header": true, "use_param": true},
        "jwt": {"auth_header_name": "X-Jwt", "use_param": true, "param_name": "jwt",
                "cookie_name": "jc"},
        "hmac": {}
    });
    let s = classic(v.clone()).unwrap().spec;
    assert_eq!(
        names(&s),
        own(
            "x-key,authorization,x-jwt",
            "X-Key,jwt,Authorization",
            "X-Key,Authorization,jc"
        )
    );
    v["auth_configs"] = json!({});
    let s = classic(v.clone()).unwrap().spec;
    assert_eq!(names(&s), own("x-old", "", "X-Old"));
    // Keyless APIs strip nothing (StripAuth is in the authenticated chain only).
    v["use_keyless"] = json!(true);
    assert!(!classic(v).unwrap().spec.strips_auth());
    // OAS: the token scheme's names, and its Classic form re-parses to the same.
    let mut doc = token_oas(
        json!({"enabled": true, "query": {"enabled": true, "name": "k"}}),
        json!({"stripAuthorizationData": true}),
        header_key(),
    );
    doc["x-tyk-api-gateway"]["info"]["id"] = json!("o1");
    let def = parse_oas(&bytes(&doc)).unwrap();
    assert!(def.spec.strips_auth());
    assert_eq!(def.spec.auth_strip.params, ["k"]);
    assert_eq!(
        spec_from_classic(&def.classic).unwrap().auth_strip,
        def.spec.auth_strip
    );
}
