//! Policy parsing and the policy set; helpers shared with the application tests.

use serde_json::{json, Value};

use super::*;

/// A policy as the Tyk Dashboard writes it (every field present, zero values included, fields
/// the Gateway does not read such as `state` and `graphql_access_rights`).
const DASHBOARD_POLICY: &str = r#"{
  "_id": "5EAD7120575961000181867E",
  "id": "5ead7120575961000181867e",
  "name": "Swagger Petstore Policy",
  "org_id": "5e9d9544a1dcd60001d0ed20",
  "rate": 1000,
  "per": 60,
  "quota_max": -1,
  "quota_renewal_rate": 3600,
  "throttle_interval": -1,
  "throttle_retry_limit": -1,
  "max_query_depth": -1,
  "access_rights": {
    "8ddd91f3cda9453442c477b06c4e2da4": {
      "api_id": "8ddd91f3cda9453442c477b06c4e2da4",
      "api_name": "Swagger Petstore",
      "versions": ["Default"],
      "allowed_urls": [{"url": "/pet/[0-9]+", "methods": ["GET", "PUT"]}],
      "restricted_types": [],
      "allowed_types": [],
      "limit": null,
      "field_access_rights": [],
      "disable_introspection": false,
      "allowance_scope": ""
    }
  },
  "hmac_enabled": false,
  "enable_http_signature_validation": false,
  "active": true,
  "is_inactive": false,
  "tags": ["petstore"],
  "key_expires_in": 2592000,
  "partitions": {"quota": false, "rate_limit": false, "complexity": false, "acl": false, "per_api": false},
  "last_updated": "1655965189",
  "meta_data": {"team": "pets"},
  "graphql_access_rights": null,
  "smoothing": null,
  "state": "active"
}"#;

/// A policy set from documents that must all be valid; the org defaults to `org1`.
pub(super) fn policies(docs: &[Value]) -> PolicySet {
    let docs = docs.iter().enumerate().map(|(i, doc)| {
        let mut doc = doc.clone();
        if let Some(obj) = doc.as_object_mut() {
            obj.entry("org_id").or_insert(json!("org1"));
        }
        (format!("policy-{i}.json"), doc)
    });
    let (set, errors) = PolicySet::new(docs.collect::<Vec<_>>());
    assert!(errors.is_empty(), "{errors:?}");
    set
}

/// A session of `org1` applying `ids`, plus `extra` fields.
pub(super) fn session(ids: &[&str], extra: Value) -> SessionState {
    let mut doc = json!({"org_id": "org1", "apply_policies": ids});
    if let (Some(obj), Value::Object(extra)) = (doc.as_object_mut(), extra) {
        obj.extend(extra);
    }
    SessionState::from_json(doc.to_string().as_bytes()).unwrap()
}

pub(super) fn applied(ids: &[&str], set: &PolicySet) -> SessionState {
    apply(&session(ids, json!({})), set).unwrap()
}

pub(super) fn to_value(s: &SessionState) -> Value {
    serde_json::from_slice(&s.to_json()).unwrap()
}

pub(super) fn limit(s: &SessionState, api: &str) -> (f64, f64, i64, i64) {
    let l = &s.access_rights[api].limit;
    (l.rate, l.per, l.quota_max, l.quota_renewal_rate)
}

// === Parsing ===

#[test]
fn dashboard_policy_file_is_read_with_tyk_field_names() {
    let value: Value = serde_json::from_str(DASHBOARD_POLICY).unwrap();
    let p = parse_policy(&value).unwrap();
    assert_eq!(p.id, "5ead7120575961000181867e");
    assert_eq!(
        p.mid, "5ead7120575961000181867e",
        "object ids are lower-cased"
    );
    assert_eq!(p.org_id, "5e9d9544a1dcd60001d0ed20");
    assert_eq!(
        (p.rate, p.per, p.quota_max, p.quota_renewal_rate),
        (1000.0, 60.0, -1, 3600)
    );
    assert_eq!(
        (
            p.throttle_interval,
            p.throttle_retry_limit,
            p.max_query_depth
        ),
        (-1.0, -1, -1)
    );
    assert_eq!(
        (p.key_expires_in, p.active, p.is_inactive),
        (2592000, true, false)
    );
    assert_eq!(p.partitions, Partitions::default());
    assert!(!p.partitions.enabled());
    assert_eq!(p.tags, ["petstore"]);
    assert_eq!(p.meta_data["team"], "pets");
    assert_eq!(p.last_updated, "1655965189");
    assert_eq!(p.smoothing, None);
    let api = &p.access_rights["8ddd91f3cda9453442c477b06c4e2da4"];
    assert_eq!(api.api_name, "Swagger Petstore");
    assert_eq!(api.allowed_urls[0].methods, ["GET", "PUT"]);
    assert!(api.limit.is_empty());
    // Dashboard-only fields are kept, not lost.
    assert_eq!(p.extra["state"], "active");
    assert!(p.extra.contains_key("graphql_access_rights"));
}

#[test]
fn legacy_mongo_id_is_the_id_when_id_is_missing() {
    for id in [
        json!("5ead7120575961000181867e"),
        json!({"$oid": "5ead7120575961000181867e"}),
    ] {
        let p = parse_policy(&json!({"_id": id, "rate": 1})).unwrap();
        assert_eq!(p.id, "5ead7120575961000181867e");
    }
    let p = parse_policy(&json!({"_id": "5ead7120575961000181867e", "id": "gold"})).unwrap();
    assert_eq!(
        (p.id.as_str(), p.mid.as_str()),
        ("gold", "5ead7120575961000181867e")
    );
    for doc in [
        json!({}),
        json!({"id": "", "_id": ""}),
        json!({"id": null, "_id": null}),
    ] {
        let err = parse_policy(&doc).unwrap_err().to_string();
        assert!(err.contains("neither an `id` nor an `_id`"), "{err}");
    }
}

#[test]
fn wrong_types_give_errors_naming_the_field() {
    for (doc, needle) in [
        (
            json!({"id": "p", "rate": "10"}),
            r#"`rate` must be a number, found string "10""#,
        ),
        (
            json!({"id": "p", "quota_max": 1.5}),
            "`quota_max` must be a 64-bit integer, found number 1.5",
        ),
        (
            json!({"id": "p", "quota_max": "100"}),
            r#"`quota_max` must be a 64-bit integer, found string "100""#,
        ),
        (
            json!({"id": "p", "key_expires_in": 1e3}),
            "`key_expires_in` must be a 64-bit integer",
        ),
        (
            json!({"id": "p", "quota_max": 9223372036854775808u64}),
            "`quota_max` must be a 64-bit integer",
        ),
        (
            json!({"id": "p", "org_id": 5}),
            "`org_id` must be a string, found number 5",
        ),
        (json!({"id": 7}), "`id` must be a string, found number 7"),
        (
            json!({"id": "p", "is_inactive": "true"}),
            "`is_inactive` must be true or false",
        ),
        (
            json!({"id": "p", "tags": "a"}),
            "`tags` must be an array of strings",
        ),
        (
            json!({"id": "p", "tags": ["a", 1]}),
            "`tags[1]` must be a string, found number 1",
        ),
        (
            json!({"id": "p", "access_rights": []}),
            "`access_rights` must be an object, found array []",
        ),
        (
            json!({"id": "p", "access_rights": {"a": 1}}),
            "`access_rights.a` must be an object",
        ),
        (
            json!({"id": "p", "access_rights": {"a": {"versions": "v1"}}}),
            "`access_rights.a`: invalid type",
        ),
        (
            json!({"id": "p", "partitions": {"quota": "yes"}}),
            "`partitions.quota` must be true or false",
        ),
        (
            json!({"id": "p", "partitions": []}),
            "`partitions` must be an object",
        ),
        (
            json!({"id": "p", "meta_data": []}),
            "`meta_data` must be an object",
        ),
        (
            json!({"id": "p", "smoothing": {"step": "x"}}),
            "`smoothing`: invalid type",
        ),
        (
            json!({"id": "p", "_id": "zz"}),
            r#"`_id` must be an object id (24 hex digits), found string "zz""#,
        ),
        (json!({"id": "p", "_id": 5}), "`_id` must be an object id"),
    ] {
        let err = parse_policy(&doc).unwrap_err();
        assert!(matches!(&err, PolicyError::Invalid { .. }), "{doc}");
        let message = err.to_string();
        assert!(message.contains(needle), "{doc}: {message}");
    }
    // The message names the policy when its id could be read.
    let err = parse_policy(&json!({"id": "gold", "rate": true})).unwrap_err();
    assert!(
        err.to_string().starts_with(r#"invalid policy "gold": "#),
        "{err}"
    );
    for doc in [json!(null), json!([]), json!("gold"), json!(1)] {
        let err = parse_policy(&doc).unwrap_err().to_string();
        assert!(err.contains("a policy must be a JSON object"), "{err}");
    }
    // Long values are abbreviated in messages.
    let err = parse_policy(&json!({"id": "p", "name": ["x".repeat(500)]})).unwrap_err();
    assert!(err.to_string().len() < 200, "{err}");
}

#[test]
fn parsing_never_panics_whatever_type_a_field_has() {
    let samples = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!(""),
        json!("x"),
        json!([]),
        json!([null, 1, "a", {}]),
        json!({}),
        json!({"a": {"b": [1]}}),
    ];
    let fields = parse::KNOWN_FIELDS.iter().chain(&["unknown"]);
    for field in fields {
        for sample in &samples {
            let doc = json!({"id": "p", *field: sample});
            let _ = parse_policy(&doc);
            let doc = json!({"id": "p", "access_rights": {"a": {*field: sample}}});
            let _ = parse_policy(&doc);
            let doc = json!({"id": "p", "partitions": {*field: sample}});
            let _ = parse_policy(&doc);
        }
    }
}

#[test]
fn policy_set_keeps_valid_policies_and_reports_the_rest() {
    let (set, errors) = PolicySet::new(vec![
        (
            "a.json".to_owned(),
            json!({"id": "gold", "org_id": "org1", "rate": 1}),
        ),
        ("b.json".to_owned(), json!({"id": "bad", "rate": "1"})),
        ("c.json".to_owned(), json!({"id": "gold", "org_id": "org2"})),
        (
            "d.json".to_owned(),
            json!({"id": "gold", "org_id": "org1", "rate": 2}),
        ),
    ]);
    assert_eq!(set.len(), 2);
    assert!(!set.is_empty());
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with(r#"b.json: invalid policy "bad": `rate`"#),
        "{errors:?}"
    );
    assert!(errors[1]
        .starts_with("d.json: policy \"gold\" of organisation \"org1\" is defined more than once"));
    // Same id in two organisations: both kept, looked up per organisation.
    assert_eq!(set.get_in_org("org1", "gold").map(|p| p.rate), Some(2.0));
    assert_eq!(
        set.get_in_org("org2", "gold").map(|p| p.org_id.as_str()),
        Some("org2")
    );
    assert!(set.get_in_org("org3", "gold").is_none());
    assert_eq!(set.get("gold").map(|p| p.rate), Some(2.0), "last loaded");
    let listed = set
        .policies()
        .iter()
        .map(|p| p.org_id.clone())
        .collect::<Vec<_>>();
    assert_eq!(listed, ["org1", "org2"]);
    assert!(PolicySet::default().is_empty());
}

#[test]
fn policy_record_map_keys_override_ids() {
    let (set, errors) = PolicySet::from_record_map(&json!({
        "gold": {"id": "ignored", "org_id": "org1"},
        "": {"id": "silver", "org_id": "org1"},
        "broken": {"rate": "x"},
    }));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("broken: "), "{errors:?}");
    assert!(set.get_in_org("org1", "gold").is_some());
    assert!(set.get_in_org("org1", "silver").is_some());
    assert!(set.get("ignored").is_none());
    let (set, errors) = PolicySet::from_record_map(&json!([]));
    assert!(
        set.is_empty() && errors[0].contains("found array"),
        "{errors:?}"
    );
}
