//! Issue 12 #8: parsing of version lists, expiry and fallback (Classic and OAS).

use serde_json::{json, Value};

use super::{bytes, cert_oas, minimal_classic};
use crate::apidef::{parse_classic, parse_oas, ApiDefError, RuleKind, RuleMethods};

fn with_version(version: Value) -> Value {
    let mut d = minimal_classic();
    d["version_data"] = json!({"not_versioned": true, "versions": {"Default": version}});
    d
}

fn reason(d: &Value) -> String {
    match parse_classic(&bytes(d)) {
        Err(ApiDefError::Validation(r)) => r,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn classic_extended_lists_are_parsed_in_tyks_order() {
    let d = with_version(json!({"name": "Default", "use_extended_paths": true,
        "expires": "2030-01-02 15:04", "ignore_endpoint_case": true,
        "extended_paths": {
            "white_list": [{"path": "/users/{id}", "method": "GET"}],
            "black_list": [{"path": "/admin", "method": "", "disabled": true},
                           {"path": "/x", "method_actions": {"GET": {"action": "no_action"},
                                                             "PUT": {"action": "other"}}}],
            "ignored": [{"path": "/health", "method": "GET", "ignore_case": false}]}}));
    let s = parse_classic(&bytes(&d)).unwrap().spec;
    let v = s.versioning.rules_of("Default").unwrap();
    assert_eq!(v.expires, Some(1_893_596_640));
    let kinds: Vec<RuleKind> = v.rules.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [RuleKind::Ignored, RuleKind::BlackList, RuleKind::WhiteList]
    );
    assert_eq!(v.rules[0].pattern.source, "^(?:(?i)/health)$");
    assert_eq!(
        v.rules[1].methods,
        RuleMethods::Actions(vec![("GET".into(), true), ("PUT".into(), false)])
    );
    assert_eq!(v.rules[2].pattern.source, "(?i)/users/([^/]+)");
    assert_eq!(v.rules[2].methods, RuleMethods::One("GET".into()));
    assert!(s.versioning.has_ignored());
}

#[test]
fn classic_legacy_paths_are_honoured() {
    let d = with_version(
        json!({"name": "Default", "paths": {"white_list": ["/a"], "black_list": ["/b"]}}),
    );
    let s = parse_classic(&bytes(&d)).unwrap().spec;
    let v = s.versioning.unversioned_rules().unwrap();
    assert_eq!(v.rules.len(), 2);
    assert_eq!(v.rules[0].kind, RuleKind::BlackList);
    assert_eq!(v.rules[1].methods, RuleMethods::Any);
}

#[test]
fn lists_tyk_would_ignore_or_cannot_be_served_are_refused() {
    let cases = [
        (
            json!({"extended_paths": {"white_list": [{"path": "/a"}]}}),
            "version_data.versions.Default.extended_paths.white_list is set but use_extended_paths is false",
        ),
        (
            json!({"use_extended_paths": true, "paths": {"ignored": ["/a"]}}),
            "version_data.versions.Default.paths.ignored is set but use_extended_paths is true",
        ),
        (
            json!({"use_extended_paths": true, "extended_paths": {"url_rewrites": [{"path": "/a"}]}}),
            "version_data.versions.Default.extended_paths.url_rewrites is not supported",
        ),
        (
            json!({"use_extended_paths": true, "extended_paths": {"white_list": [
                {"path": "/a", "method_actions": {"GET": {"action": "reply"}}}]}}),
            "version_data.versions.Default.extended_paths.white_list[0].method_actions.GET: the reply action",
        ),
        (
            json!({"use_extended_paths": true, "extended_paths": {"black_list": [{"path": "(", "method": ""}]}}),
            "version_data.versions.Default.extended_paths.black_list[0].path: path \"(\" is not a valid regular expression",
        ),
        (
            json!({"expires": "2030-01-02T15:04"}),
            "version_data.versions.Default.expires must be a date in the form \"2006-01-02 15:04\"",
        ),
    ];
    for (version, want) in cases {
        let r = reason(&with_version(version.clone()));
        assert!(r.starts_with(want), "{version}: {r}");
    }
    // Disabled or empty entries of unsupported middleware are harmless.
    let d = with_version(json!({"use_extended_paths": true, "extended_paths": {
        "url_rewrites": [], "transform": [{"path": "/a", "disabled": true}],
        "track_endpoints": [{"path": "/a"}]}}));
    assert!(parse_classic(&bytes(&d)).is_ok());
}

#[test]
fn versions_definition_and_expiration() {
    let mut d = minimal_classic();
    d["expiration"] = json!("2001-02-03 04:05");
    d["definition"] = json!({"location": "header", "key": "v", "fallback_to_default": true});
    d["version_data"] = json!({"not_versioned": false, "default_version": "a",
        "versions": {"a": {"name": "a"}, "b": {"name": "b", "expires": "-1"}}});
    let s = parse_classic(&bytes(&d)).unwrap().spec;
    assert!(s.versioning.fallback_to_default);
    assert_eq!(s.versioning.expiration, Some(981_173_100));
    assert_eq!(s.versioning.rules_of("b").unwrap().expires, None);

    for flag in ["enabled", "strip_path", "strip_versioning_data"] {
        let mut bad = d.clone();
        bad["definition"][flag] = json!(true);
        assert_eq!(
            reason(&bad),
            format!("definition.{flag} is not supported by certgate")
        );
    }
    let mut bad = d.clone();
    bad["version_data"]["versions"]["b"]["name"] = json!("a");
    assert!(reason(&bad).contains("two versions have the name \"a\""));
    let mut bad = d.clone();
    bad["version_data"]["not_versioned"] = json!(true);
    bad["version_data"]["versions"]["b"]["paths"] = json!({"black_list": ["/x"]});
    assert!(reason(&bad).contains("must have a single version"));
    let mut bad = d;
    bad["expiration"] = json!("soon");
    assert!(reason(&bad).starts_with("expiration must be a date"));
}

fn oas_with_operations(operations: Value) -> Value {
    let mut doc = cert_oas();
    doc["paths"] = json!({"/pets/{id}": {"get": {"operationId": "getPet"},
                                        "delete": {"operationId": "delPet"}}});
    doc["x-tyk-api-gateway"]["middleware"] = json!({"operations": operations});
    doc
}

#[test]
fn oas_operations_become_the_default_versions_lists() {
    let doc = oas_with_operations(json!({
        "getPet": {"allow": {"enabled": true, "ignoreCase": true},
                   "ignoreAuthentication": {"enabled": false}},
        "delPet": {"block": {"enabled": true}}}));
    let def = parse_oas(&bytes(&doc)).unwrap();
    let v = def.spec.versioning.unversioned_rules().unwrap();
    assert_eq!(v.rules.len(), 2);
    assert_eq!(v.rules[0].kind, RuleKind::BlackList);
    assert_eq!(v.rules[0].methods, RuleMethods::One("DELETE".into()));
    assert_eq!(v.rules[1].pattern.source, "(?i)/pets/([^/]+)");
    // The Classic form carries the same lists.
    let again = parse_classic(&bytes(&def.classic)).unwrap();
    assert_eq!(again.spec.versioning, def.spec.versioning);

    let doc = oas_with_operations(json!({"nope": {"block": {"enabled": true}}}));
    match parse_oas(&bytes(&doc)) {
        Err(ApiDefError::Validation(r)) => assert_eq!(
            r,
            "x-tyk-api-gateway.middleware.operations.nope.block: no operation with operationId \"nope\" in paths"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn audit_table_matches_the_docs() {
    use crate::apidef::fields::{CLASSIC_FIELDS, OAS_FIELDS};
    crate::audit::assert_documented(CLASSIC_FIELDS, "Classic");
    crate::audit::assert_documented(OAS_FIELDS, "x-tyk-api-gateway");
    for table in [CLASSIC_FIELDS, OAS_FIELDS] {
        let mut paths: Vec<&str> = table.iter().map(|f| f.path).collect();
        paths.sort_unstable();
        let before = paths.len();
        paths.dedup();
        assert_eq!(before, paths.len(), "a field is listed twice");
    }
}

#[test]
fn parsers_consult_the_field_table() {
    let mut d = minimal_classic();
    d["enable_ip_whitelisting"] = json!(true);
    d["allowed_ips"] = json!(["10.0.0.1"]);
    assert_eq!(
        reason(&d),
        "enable_ip_whitelisting is not supported by certgate: IP allow list not implemented"
    );
    // Set to its zero value, a refused field is harmless; ignored and unknown fields load.
    d["enable_ip_whitelisting"] = json!(false);
    d["slug"] = json!("s");
    d["brand_new_field"] = json!({"x": 1});
    d["proxy"]["transport"] = json!({"proxy_url": "", "ssl_insecure_skip_verify": false});
    d["graphql"] = json!({"enabled": false, "execution_mode": "proxyOnly"});
    assert!(parse_classic(&bytes(&d)).is_ok());
    d["auth_configs"] = json!({"authToken": {"use_certificate": true, "validate_signature": true}});
    assert_eq!(
        reason(&d),
        "auth_configs.authToken.validate_signature is not supported by certgate: token \
         signature validation not implemented"
    );
    d["auth_configs"]["authToken"]["validate_signature"] = json!(false);
    d["proxy"]["preserve_host_header"] = json!(true);
    assert_eq!(
        reason(&d),
        "proxy.preserve_host_header is not supported by certgate: changes the upstream Host"
    );

    let mut doc = cert_oas();
    doc["paths"] = json!({"/a": {"get": {"operationId": "a"}}});
    doc["x-tyk-api-gateway"]["middleware"] = json!({"operations": {"a": {
        "allow": {"enabled": true}, "urlRewrite": {"enabled": true, "pattern": "x"}}}});
    match parse_oas(&bytes(&doc)) {
        Err(ApiDefError::Validation(r)) => assert_eq!(
            r,
            "x-tyk-api-gateway.middleware.operations.a.urlRewrite is not supported by certgate: \
             URL rewrites not implemented"
        ),
        other => panic!("{other:?}"),
    }
    doc["x-tyk-api-gateway"]["middleware"]["operations"]["a"]["urlRewrite"]["enabled"] =
        json!(false);
    assert!(parse_oas(&bytes(&doc)).is_ok());
    doc["x-tyk-api-gateway"]["server"]["authentication"]["securitySchemes"] = json!({"key": {
        "enabled": true, "header": {"enabled": true, "name": "X-Key"},
        "signatureValidation": {"enabled": true, "algorithm": "MasherySHA256"}}});
    match parse_oas(&bytes(&doc)) {
        Err(ApiDefError::Validation(r)) => assert!(
            r.starts_with(
                "x-tyk-api-gateway.server.authentication.securitySchemes.key.signatureValidation \
                 is not supported by certgate"
            ),
            "{r}"
        ),
        other => panic!("{other:?}"),
    }
}
