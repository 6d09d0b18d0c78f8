//! Unit tests: Tyk's example definitions, the §5.2 OAS mapping and precedence rules, Classic
//! token configuration, validation and error wording. Hostile-input tests are in `robustness`.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::classic::spec_from_classic;
use super::*;

mod endpoint_lists;
mod robustness;
mod strip_auth;

/// Definitions written for these tests in `tests/fixtures/apidef/` (Tyk's own examples are
/// checked by the `conformance` test target).
fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/apidef")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// The minimal certificate-auth OAS API of spec §5.2.
fn cert_oas() -> Value {
    json!({"openapi":"3.0.3","info":{"title":"t","version":"1"},"paths":{},
     "x-tyk-api-gateway":{
       "info":{"id":"api1","orgId":"default","name":"cert-api","state":{"active":true}},
       "upstream":{"url":"http://upstream:8080"},
       "server":{"listenPath":{"value":"/cert/","strip":true},
                 "authentication":{"enabled":true,"certificateAuth":{"enabled":true}},
                 "clientCertificates":{"enabled":false,"allowlist":[]}}}})
}

/// An OAS API whose first security requirement names an `apiKey` scheme with a Tyk token
/// scheme; `authentication` is merged over `{"enabled": true, "securitySchemes": {...}}`.
fn token_oas(token: Value, authentication: Value, api_key: Value) -> Value {
    let mut doc = cert_oas();
    let mut auth = json!({"enabled": true, "securitySchemes": {"key": token}});
    if let (Some(a), Some(extra)) = (auth.as_object_mut(), authentication.as_object()) {
        a.extend(extra.clone());
    }
    doc["x-tyk-api-gateway"]["server"]["authentication"] = auth;
    doc["security"] = json!([{"key": []}]);
    doc["components"] = json!({"securitySchemes": {"key": api_key}});
    doc
}

fn header_key() -> Value {
    json!({"type": "apiKey", "in": "header", "name": "X-Api-Key"})
}

fn classic(v: Value) -> Result<ApiDefinition, ApiDefError> {
    parse_classic(&bytes(&v))
}

fn minimal_classic() -> Value {
    json!({"api_id": "c1", "org_id": "o", "name": "n",
           "proxy": {"listen_path": "/c/", "target_url": "http://up:80"}})
}

// === fixtures ===

#[test]
fn classic_with_deprecated_auth_fixture() {
    let raw = fixture("classic_legacy_auth.json");
    assert!(!is_oas_document(&serde_json::from_slice(&raw).unwrap()));
    let def = parse_classic(&raw).unwrap();
    let s = &def.spec;
    assert_eq!((s.api_id.as_str(), s.org_id.as_str()), ("orders", "acme"));
    assert_eq!(s.listen_path, "/orders/");
    assert!(s.strip_listen_path);
    assert_eq!(s.target_url, "http://orders.internal:9000");
    assert!(!s.use_keyless && !s.active);
    assert_eq!(s.auth.auth_header_name, "x-orders-key");
    assert_eq!(s.auth.param_name, "x-orders-key");
    assert!(!s.uses_certificate_auth() && s.runs_auth_key());
    assert!(s.versioning.not_versioned);
    assert_eq!(s.versioning.versions, ["Default"]);
    assert_eq!(
        (s.versioning.location.as_str(), s.versioning.key.as_str()),
        ("header", "x-api-version")
    );
    assert!(!def.is_oas());
    assert_eq!(def.classic["enable_context_vars"], true);
}

#[test]
fn keyless_classic_fixture() {
    let def = parse_classic(&fixture("classic_keyless.json")).unwrap();
    assert_eq!(def.spec.api_id, "status");
    assert!(def.spec.use_keyless && !def.spec.runs_auth_key());
    assert_eq!(def.spec.auth, AuthTokenConfig::default());
    assert_eq!(def.spec.target_url, "http://status.internal/");
    assert_eq!(def.classic["do_not_track"], true);
}

#[test]
fn oas_without_extension_fixture_is_refused() {
    let raw = fixture("oas_without_extension.json");
    assert!(is_oas_document(&serde_json::from_slice(&raw).unwrap()));
    let err = parse_oas(&raw).unwrap_err();
    assert_eq!(err, ApiDefError::MissingTykExtension);
    assert_eq!(
        err.to_string(),
        "the payload should contain x-tyk-api-gateway"
    );
}

#[test]
fn template_fixture_lacks_required_fields_until_filled() {
    let raw = fixture("oas_template.json");
    let err = parse_oas(&raw).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x-tyk-api-gateway.info.state: active is required"
    );

    let mut doc: Value = serde_json::from_slice(&raw).unwrap();
    let ext = &mut doc["x-tyk-api-gateway"];
    ext["info"]["state"]["active"] = json!(true);
    let err = parse_oas(&bytes(&doc)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x-tyk-api-gateway.upstream: url is required"
    );
    doc["x-tyk-api-gateway"]["upstream"]["url"] = json!("https://inventory.example");
    doc["x-tyk-api-gateway"]["server"]["listenPath"]["value"] = json!("items");
    let def = parse_oas(&bytes(&doc)).unwrap();
    assert!(def.spec.use_keyless);
    assert_eq!(def.spec.listen_path, "/items");
    assert_eq!(def.spec.name, "inventory");
    assert!(def.oas.as_ref().unwrap()["paths"]["/items"].is_object());
}

// === keyless + certificate authentication (issue 11 #10) ===

/// Tyk serves a keyless API open even when it is marked for certificate authentication.
#[test]
fn keyless_classic_with_certificate_auth_is_refused() {
    for auth in [
        json!({"auth_configs": {"authToken": {"use_certificate": true}}}),
        json!({"auth": {"use_certificate": true}}),
        json!({"auth": {"use_certificate": true}, "auth_configs": {"authToken": {}}}),
    ] {
        let mut v = minimal_classic();
        v["use_keyless"] = json!(true);
        for (k, val) in auth.as_object().unwrap() {
            v[k] = val.clone();
        }
        let err = classic(v).unwrap_err();
        assert_eq!(
            err,
            ApiDefError::Validation(KEYLESS_CERTIFICATE.to_owned()),
            "{auth}"
        );
        assert!(err.to_string().contains("must not be keyless"), "{err}");
    }
    // Either half alone is fine.
    let mut v = minimal_classic();
    v["use_keyless"] = json!(true);
    assert!(classic(v).is_ok());
    let mut v = minimal_classic();
    v["auth_configs"] = json!({"authToken": {"use_certificate": true}});
    assert!(classic(v).unwrap().spec.uses_certificate_auth());
}

// === OAS certificate auth and precedence (§5.2) ===

#[test]
fn minimal_oas_certificate_api() {
    let def = parse_oas(&bytes(&cert_oas())).unwrap();
    let s = &def.spec;
    assert!(!s.use_keyless && !s.use_standard_auth);
    assert!(s.auth.use_certificate && s.uses_certificate_auth() && s.handshake_use_certificate);
    assert!(s.runs_auth_key());
    assert_eq!(s.auth.auth_header_name, "Authorization");
    assert_eq!((s.api_id.as_str(), s.org_id.as_str()), ("api1", "default"));
    assert!(s.active && s.strip_listen_path && s.domain_disabled && !s.use_mutual_tls_auth);
    assert!(s.versioning.not_versioned);
    assert_eq!(
        def.classic["auth_configs"]["authToken"]["use_certificate"],
        true
    );
    assert_eq!(def.classic["use_keyless"], false);
    assert!(classic_is_oas(&def.classic));
    assert_eq!(def.oas.as_ref(), Some(&cert_oas()));
}

#[test]
fn explicit_certificate_auth_disabled_beats_legacy_flag() {
    let doc = token_oas(
        json!({"enabled": true, "enableClientCertificate": true}),
        json!({"certificateAuth": {"enabled": false}}),
        header_key(),
    );
    let s = parse_oas(&bytes(&doc)).unwrap().spec;
    assert!(!s.auth.use_certificate && !s.uses_certificate_auth());
    assert!(s.use_standard_auth);
    assert_eq!(s.auth.auth_header_name, "X-Api-Key");
}

#[test]
fn legacy_flag_counts_when_certificate_auth_absent() {
    let doc = token_oas(
        json!({"enabled": true, "enableClientCertificate": true}),
        json!({}),
        header_key(),
    );
    let def = parse_oas(&bytes(&doc)).unwrap();
    assert!(def.spec.uses_certificate_auth() && def.spec.use_standard_auth);
    assert!(!def.spec.auth.disable_header);
    assert_eq!(def.classic["auth_configs"]["authToken"]["name"], "key");
    // Fill keeps the stored document, so the legacy flag is returned as submitted.
    let stored = &def.oas.unwrap()["x-tyk-api-gateway"]["server"]["authentication"];
    assert_eq!(
        stored["securitySchemes"]["key"]["enableClientCertificate"],
        true
    );
    assert!(stored.get("certificateAuth").is_none());
}

#[test]
fn legacy_flag_needs_the_first_security_requirement() {
    let base = token_oas(
        json!({"enabled": true, "enableClientCertificate": true}),
        json!({}),
        header_key(),
    );
    let mut no_security = base.clone();
    no_security.as_object_mut().unwrap().remove("security");
    assert!(
        !parse_oas(&bytes(&no_security))
            .unwrap()
            .spec
            .auth
            .use_certificate
    );

    let mut no_components = base.clone();
    no_components.as_object_mut().unwrap().remove("components");
    assert!(
        !parse_oas(&bytes(&no_components))
            .unwrap()
            .spec
            .auth
            .use_certificate
    );

    let mut second = base;
    second["security"] = json!([{}, {"key": []}]);
    assert!(
        !parse_oas(&bytes(&second))
            .unwrap()
            .spec
            .auth
            .use_certificate
    );
}

#[test]
fn certificate_auth_wins_even_without_tyk_token_scheme() {
    let mut doc = cert_oas();
    doc["security"] = json!([{"key": []}]);
    doc["components"] = json!({"securitySchemes": {"key": header_key()}});
    let s = parse_oas(&bytes(&doc)).unwrap().spec;
    assert!(s.uses_certificate_auth() && !s.use_standard_auth);
    assert_eq!(s.auth.auth_header_name, "X-Api-Key");
}

#[test]
fn oas_without_authentication_is_keyless() {
    let mut doc = cert_oas();
    let server = doc["x-tyk-api-gateway"]["server"].as_object_mut().unwrap();
    server.remove("authentication");
    let def = parse_oas(&bytes(&doc)).unwrap();
    assert!(def.spec.use_keyless && !def.spec.uses_certificate_auth());
    assert!(!def.spec.handshake_use_certificate);
    assert_eq!(def.classic["auth_configs"], json!({}));
}

/// Issue 11 #10, OAS form: `authentication.enabled: false` makes the API keyless (as in
/// Tyk), which next to `certificateAuth.enabled: true` would serve it open; refused.
#[test]
fn disabled_authentication_with_certificate_auth_is_refused() {
    let mut doc = cert_oas();
    doc["x-tyk-api-gateway"]["server"]["authentication"]["enabled"] = json!(false);
    let err = parse_oas(&bytes(&doc)).unwrap_err();
    assert_eq!(err, ApiDefError::Validation(KEYLESS_CERTIFICATE.to_owned()));
    assert!(
        err.to_string().contains("server.authentication.enabled"),
        "{err}"
    );
    // Disabled authentication with certificateAuth disabled is a plain keyless API.
    doc["x-tyk-api-gateway"]["server"]["authentication"]["certificateAuth"]["enabled"] =
        json!(false);
    let s = parse_oas(&bytes(&doc)).unwrap().spec;
    assert!(s.use_keyless && !s.uses_certificate_auth() && !s.runs_auth_key());
    assert!(!s.handshake_use_certificate);
}

#[test]
fn oas_token_location_from_query_and_cookie() {
    let query = token_oas(
        json!({"enabled": true}),
        json!({}),
        json!({"type": "apiKey", "in": "query", "name": "key"}),
    );
    let a = parse_oas(&bytes(&query)).unwrap().spec.auth;
    assert!(a.use_param && a.disable_header && !a.use_cookie);
    assert_eq!(a.param_name, "key");

    let cookie = token_oas(
        json!({"enabled": true, "header": {"enabled": true, "name": "X-H"}}),
        json!({}),
        json!({"type": "apiKey", "in": "cookie", "name": "sid"}),
    );
    let a = parse_oas(&bytes(&cookie)).unwrap().spec.auth;
    assert!(a.use_cookie && !a.disable_header);
    assert_eq!(
        (a.cookie_name.as_str(), a.auth_header_name.as_str()),
        ("sid", "X-H")
    );
}

#[test]
fn enabled_token_scheme_is_preferred() {
    let mut doc = token_oas(json!({"enabled": false}), json!({}), header_key());
    let auth = &mut doc["x-tyk-api-gateway"]["server"]["authentication"];
    auth["securitySchemes"]["other"] = json!({"enabled": true});
    doc["security"] = json!([{"key": [], "other": []}]);
    doc["components"]["securitySchemes"]["other"] =
        json!({"type": "apiKey", "in": "header", "name": "X-Other"});
    let s = parse_oas(&bytes(&doc)).unwrap().spec;
    assert!(s.use_standard_auth);
    assert_eq!(s.auth.auth_header_name, "X-Other");
}

#[test]
fn oas_jwt_scheme_is_another_auth_method() {
    let mut doc = cert_oas();
    doc["x-tyk-api-gateway"]["server"]["authentication"]["securitySchemes"] =
        json!({"jwt": {"enabled": true}});
    doc["security"] = json!([{"jwt": []}]);
    doc["components"] = json!({"securitySchemes": {"jwt":
        {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}});
    let def = parse_oas(&bytes(&doc)).unwrap();
    assert_eq!(def.spec.other_auth_methods, ["jwt"]);
    assert!(!def.spec.runs_auth_key());
    assert_eq!(def.classic["enable_jwt"], true);
}

#[test]
fn oas_server_fields_map_to_classic() {
    let mut doc = cert_oas();
    let ext = &mut doc["x-tyk-api-gateway"];
    ext["info"]["state"]["internal"] = json!(true);
    ext["upstream"]["rateLimit"] = json!({"enabled": true, "rate": 10, "per": "1m"});
    let server = &mut ext["server"];
    server["port"] = json!(8443);
    server["protocol"] = json!("https");
    server["clientCertificates"] = json!({"enabled": true, "allowlist": ["default1"]});
    server["customDomain"] = json!({"enabled": true, "name": "api.example", "certificates": ["c"]});
    let auth = &mut server["authentication"];
    auth["stripAuthorizationData"] = json!(true);
    auth["baseIdentityProvider"] = json!("auth_token");
    auth["customKeyLifetime"] = json!({"enabled": true, "value": "1h30m", "respectValidity": true});
    let def = parse_oas(&bytes(&doc)).unwrap();
    let s = &def.spec;
    assert_eq!((s.listen_port, s.protocol.as_str()), (8443, "https"));
    assert!(s.use_mutual_tls_auth && s.internal && s.strip_auth_data);
    assert_eq!(s.client_certificates, ["default1"]);
    assert_eq!(
        (s.domain.as_str(), s.domain_disabled),
        ("api.example", false)
    );
    assert_eq!(s.certificates, ["c"]);
    assert_eq!(s.base_identity_provided_by, "auth_token");
    assert_eq!(s.session_lifetime, 5400);
    assert!(s.session_lifetime_respects_key_expiration);
    assert_eq!(
        s.global_rate_limit,
        GlobalRateLimit {
            rate: 10.0,
            per: 60.0,
            disabled: false
        }
    );
    assert_eq!(def.classic["proxy"]["listen_path"], "/cert/");
    assert_eq!(def.classic["domain"], "api.example");
}

#[test]
fn converted_classic_reparses_to_the_same_spec() {
    let docs = [
        cert_oas(),
        token_oas(json!({"enabled": true}), json!({}), header_key()),
        token_oas(
            json!({"enabled": true, "enableClientCertificate": true}),
            json!({"stripAuthorizationData": true}),
            json!({"type": "apiKey", "in": "query", "name": "k"}),
        ),
    ];
    for doc in docs {
        let def = parse_oas(&bytes(&doc)).unwrap();
        assert_eq!(spec_from_classic(&def.classic).unwrap(), def.spec);
    }
}

#[test]
fn oas_version_and_openapi_fields_are_checked() {
    let mut doc = cert_oas();
    doc["openapi"] = json!("2.0");
    let err = parse_oas(&bytes(&doc)).unwrap_err();
    assert_eq!(err.to_string(), "Schema not found for version \"2.0\"");
    doc.as_object_mut().unwrap().remove("openapi");
    let err = parse_oas(&bytes(&doc)).unwrap_err();
    assert_eq!(err.to_string(), "(root): openapi is required");

    let mut doc = cert_oas();
    doc["x-tyk-api-gateway"]["info"]["name"] = json!("  ");
    let err = parse_oas(&bytes(&doc)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x-tyk-api-gateway.info.name: Does not match pattern '\\S+'"
    );
}

// === Classic token configuration (§1.7) ===

#[test]
fn classic_auth_configs_win_over_deprecated_auth() {
    let mut v = minimal_classic();
    v["auth"] = json!({"auth_header_name": "X-Old", "use_certificate": true});
    let s = classic(v.clone()).unwrap().spec;
    assert_eq!(s.auth.auth_header_name, "X-Old");
    assert!(s.uses_certificate_auth() && s.handshake_use_certificate);

    v["auth_configs"] = json!({"authToken": {"auth_header_name": "X-New"}});
    let s = classic(v).unwrap().spec;
    assert_eq!(s.auth.auth_header_name, "X-New");
    assert!(!s.uses_certificate_auth());
    // The handshake still requests a certificate because of the deprecated flag (§1.3).
    assert!(s.handshake_use_certificate);
}

#[test]
fn classic_param_and_cookie_names_default_like_tyk() {
    let mut v = minimal_classic();
    v["auth_configs"] = json!({"authToken": {"auth_header_name": "X-Key", "use_param": true}});
    let a = classic(v.clone()).unwrap().spec.auth;
    assert!(a.use_param);
    assert_eq!(a.param_name, "X-Key");

    v["auth_configs"] = json!({"authToken": {"auth_header_name": "X-Key",
        "disable_header": true, "use_cookie": true}});
    let a = classic(v.clone()).unwrap().spec.auth;
    assert!(a.disable_header && a.use_cookie);
    assert_eq!(a.cookie_name, "Authorization");

    v["auth_configs"] = json!({"authToken": {"use_param": true, "param_name": "token",
        "use_cookie": true, "cookie_name": "c"}});
    let a = classic(v).unwrap().spec.auth;
    assert_eq!(
        (a.param_name.as_str(), a.cookie_name.as_str()),
        ("token", "c")
    );
}

#[test]
fn classic_auth_sources_rule() {
    let mut v = minimal_classic();
    v["use_standard_auth"] = json!(true);
    v["auth_configs"] = json!({"authToken": {"disable_header": true}});
    let err = classic(v.clone()).unwrap_err();
    assert_eq!(
        err.reason(),
        "all auth sources are disabled for authToken, at least one of header/cookie/query must be enabled"
    );
    v["use_standard_auth"] = json!(false);
    assert!(classic(v).is_ok());
}

#[test]
fn classic_other_auth_methods() {
    let mut v = minimal_classic();
    v["enable_jwt"] = json!(true);
    v["external_oauth"] = json!({"enabled": true});
    let s = classic(v.clone()).unwrap().spec;
    assert_eq!(s.other_auth_methods, ["jwt", "external_oauth"]);
    assert!(!s.runs_auth_key());
    v["use_standard_auth"] = json!(true);
    assert!(classic(v).unwrap().spec.runs_auth_key());
}

#[test]
fn classic_nulls_count_as_absent() {
    let mut v = minimal_classic();
    v["auth_configs"] = Value::Null;
    v["auth"] = Value::Null;
    v["domain"] = Value::Null;
    v["client_certificates"] = Value::Null;
    let s = classic(v).unwrap().spec;
    assert_eq!(s.auth, AuthTokenConfig::default());
    assert!(s.domain.is_empty() && s.client_certificates.is_empty());
}

// === validation ===

#[test]
fn hostile_api_ids_are_rejected() {
    let long = "x".repeat(256);
    for id in [
        "../../etc/passwd",
        "..",
        ".",
        "",
        "a/b",
        "a\\b",
        "a b",
        "a\0b",
        "é",
        "api-oas",
        &long,
    ] {
        assert!(validate_api_id(id).is_err(), "{id:?} accepted");
    }
    for id in ["abc", "a.b_c-D9", "1", &"y".repeat(255)] {
        assert!(validate_api_id(id).is_ok(), "{id:?} refused");
    }
    let mut v = minimal_classic();
    v["api_id"] = json!("../../etc/passwd");
    assert!(matches!(
        classic(v).unwrap_err(),
        ApiDefError::Validation(_)
    ));
    let mut doc = cert_oas();
    doc["x-tyk-api-gateway"]["info"]["id"] = json!("../x");
    assert!(matches!(
        parse_oas(&bytes(&doc)).unwrap_err(),
        ApiDefError::Validation(_)
    ));
}

#[test]
fn wrong_types_name_the_field() {
    let cases = [
        (
            json!({"proxy": {"listen_path": 5}}),
            "proxy.listen_path must be a string",
        ),
        (
            json!({"use_keyless": "yes"}),
            "use_keyless must be a boolean",
        ),
        (json!({"proxy": []}), "proxy must be an object"),
        (
            json!({"auth_configs": {"authToken": []}}),
            "auth_configs.authToken must be an object",
        ),
        (
            json!({"listen_port": 1.5}),
            "listen_port must be an integer",
        ),
        (
            json!({"client_certificates": [1]}),
            "client_certificates must be an array of strings",
        ),
        (
            json!({"global_rate_limit": {"rate": "1"}}),
            "global_rate_limit.rate must be a number",
        ),
        (
            json!({"version_data": {"versions": []}}),
            "version_data.versions must be an object",
        ),
    ];
    for (patch, message) in cases {
        let mut v = minimal_classic();
        merge(&mut v, &patch);
        let err = classic(v).unwrap_err();
        assert!(err.is_malformed(), "{err:?}");
        assert_eq!(err.to_string(), message);
    }
    let err = parse_classic(b"[1, 2]").unwrap_err();
    assert_eq!(err.to_string(), "API definition must be a JSON object");

    let mut doc = cert_oas();
    doc["x-tyk-api-gateway"]["server"]["listenPath"]["value"] = json!(1);
    let err = parse_oas(&bytes(&doc)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x-tyk-api-gateway.server.listenPath.value must be a string"
    );
    doc["x-tyk-api-gateway"]["server"] = json!([]);
    let err = parse_oas(&bytes(&doc)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "x-tyk-api-gateway.server must be an object"
    );
}

/// Deep-merges `patch` into `target`.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[test]
fn invalid_json_reports_position() {
    let err = parse_classic(b"{\n  \"api_id\": }").unwrap_err();
    let ApiDefError::InvalidJson { line, column, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!((*line, *column), (2, 13));
    assert!(err.is_malformed() && err.to_string().starts_with("invalid JSON: "));
    assert!(parse_oas(b"").unwrap_err().is_malformed());
}

#[test]
fn listen_path_is_normalised_or_refused() {
    let mut v = minimal_classic();
    v["proxy"]["listen_path"] = json!("api/");
    let def = classic(v.clone()).unwrap();
    assert_eq!(def.spec.listen_path, "/api/");
    assert_eq!(def.classic["proxy"]["listen_path"], "api/");
    for (path, reason) in [
        ("", "proxy.listen_path is required"),
        (
            "/a b/",
            "proxy.listen_path must not contain whitespace or control characters",
        ),
    ] {
        v["proxy"]["listen_path"] = json!(path);
        assert_eq!(classic(v.clone()).unwrap_err().reason(), reason);
    }
}

#[test]
fn target_url_must_be_absolute_http() {
    let mut v = minimal_classic();
    for url in ["http://up", "https://Example.com:8443/x?y=1", "HTTP://UP/"] {
        v["proxy"]["target_url"] = json!(url);
        assert!(classic(v.clone()).is_ok(), "{url} refused");
    }
    for url in [
        "",
        "ftp://up",
        "h2c://up:8080",
        "/relative",
        "up:80",
        "tyk://other",
        "http://",
        "http://a b",
    ] {
        v["proxy"]["target_url"] = json!(url);
        let err = classic(v.clone()).unwrap_err();
        assert!(matches!(err, ApiDefError::Validation(_)), "{url}: {err:?}");
    }
}

#[test]
fn ports_and_protocols_are_checked() {
    let mut v = minimal_classic();
    v["listen_port"] = json!(70000);
    assert_eq!(
        classic(v.clone()).unwrap_err().reason(),
        "listen_port must be between 0 and 65535"
    );
    v["listen_port"] = json!(-1);
    assert!(classic(v.clone()).is_err());
    v["listen_port"] = json!(8081);
    v["protocol"] = json!("gopher");
    assert!(classic(v.clone()).is_err());
    v["protocol"] = json!("h2c");
    assert_eq!(classic(v).unwrap().spec.listen_port, 8081);
}

#[test]
fn validation_error_formats_like_tyk() {
    let err = ApiDefError::Validation("x".to_owned());
    assert_eq!(
        err.to_string(),
        "Validation of API Definition failed. Reason: x."
    );
    assert_eq!(err.reason(), "x");
    let missing = ApiDefError::MissingTykExtension;
    assert_eq!(missing.reason(), missing.to_string());
    assert!(!missing.is_malformed());
}

// === ids and files ===

#[test]
fn set_api_id_updates_every_copy() {
    let mut doc = cert_oas();
    doc["x-tyk-api-gateway"]["info"]
        .as_object_mut()
        .unwrap()
        .remove("id");
    let mut def = parse_oas(&bytes(&doc)).unwrap();
    assert!(def.spec.api_id.is_empty());
    let id = new_api_id();
    def.set_api_id(&id);
    assert_eq!(def.spec.api_id, id);
    assert_eq!(def.classic["api_id"], id.as_str());
    assert_eq!(
        def.oas.as_ref().unwrap()["x-tyk-api-gateway"]["info"]["id"],
        id.as_str()
    );
    assert!(def.validate().is_ok());

    let mut v = minimal_classic();
    v.as_object_mut().unwrap().remove("api_id");
    let mut def = classic(v).unwrap();
    def.set_api_id("abc");
    assert_eq!(
        (def.spec.api_id.as_str(), &def.classic["api_id"]),
        ("abc", &json!("abc"))
    );
}

#[test]
fn file_names_and_new_ids() {
    assert_eq!(file_names("a1", false), ("a1.json".to_owned(), None));
    assert_eq!(
        file_names("a1", true),
        ("a1.json".to_owned(), Some("a1-oas.json".to_owned()))
    );
    let id = new_api_id();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(validate_api_id(&id).is_ok());
    assert!(is_oas_document(&json!({"openapi": "3.0.3"})));
    assert!(is_oas_document(&json!({"x-tyk-api-gateway": {}})));
    assert!(!is_oas_document(&json!({"api_id": "1"})) && !is_oas_document(&json!([])));
    assert!(!classic_is_oas(&minimal_classic()));
}

#[test]
fn go_durations() {
    use super::field::parse_go_duration as d;
    assert_eq!(d(""), Some(0.0));
    assert_eq!(d("0"), Some(0.0));
    assert_eq!(d("1h30m"), Some(5400.0));
    assert_eq!(d("1.5s"), Some(1.5));
    assert_eq!(d("300ms"), Some(0.3));
    assert_eq!(d("-2m"), Some(-120.0));
    for bad in ["1", "h", "1x", "1..2s", "-", ".s", "1h 2m"] {
        assert_eq!(d(bad), None, "{bad}");
    }
}
