//! Applying policies, one test per rule (scenarios follow Tyk's
//! `internal/policy/apply_test.go` where one exists).

use serde_json::{json, Value};

use super::tests::{applied, limit, policies, session, to_value};
use super::*;

fn gold() -> Value {
    json!({"id": "gold", "rate": 100, "per": 60, "quota_max": 1000, "quota_renewal_rate": 3600,
           "tags": ["gold"], "access_rights": {"api-a": {"api_id": "api-a", "api_name": "A",
           "versions": ["Default"], "allowed_urls": [{"url": "/users", "methods": ["GET"]}]}}})
}

#[test]
fn single_policy_sets_rate_quota_and_acl() {
    let set = policies(&[gold()]);
    let stored = session(
        &["gold"],
        json!({"rate": 5, "per": 1, "quota_max": 7,
        "access_rights": {"api-z": {"api_id": "api-z"}}}),
    );
    let s = apply(&stored, &set).unwrap();
    // The policy's ACL replaces the key's own.
    assert_eq!(s.access_rights.keys().collect::<Vec<_>>(), ["api-a"]);
    let a = &s.access_rights["api-a"];
    assert_eq!(a.versions, ["Default"]);
    assert_eq!(a.allowed_urls[0].url, "/users");
    assert_eq!(limit(&s, "api-a"), (100.0, 60.0, 1000, 3600));
    assert_eq!(a.allowance_scope, "", "one policy: one shared counter");
    // Like Tyk, a merged entry carries only the merged fields, not api_id/api_name.
    assert_eq!((a.api_id.as_str(), a.api_name.as_str()), ("", ""));
    // The session root follows the single API.
    assert_eq!(
        (s.rate, s.per, s.quota_max, s.quota_renewal_rate),
        (100.0, 60.0, 1000, 3600)
    );
    assert_eq!(s.tags, ["gold"]);
    // The stored session is untouched.
    assert_eq!(stored.rate, 5.0);
}

#[test]
fn two_policies_unite_acl_and_keep_the_most_permissive_limits() {
    let set = policies(&[
        json!({"id": "p1", "rate": 10, "per": 1, "quota_max": 100, "quota_renewal_rate": 60,
               "access_rights": {"api-a": {"versions": ["v1"],
                   "allowed_urls": [{"url": "/users", "methods": ["GET"]}]}}}),
        json!({"id": "p2", "rate": 100, "per": 60, "quota_max": 500, "quota_renewal_rate": 3600,
               "access_rights": {"api-a": {"versions": ["v2", "v1"],
                   "allowed_urls": [{"url": "/users", "methods": ["POST", "GET"]},
                                    {"url": "/orders", "methods": ["GET"]}]},
                                 "api-b": {}}}),
    ]);
    for order in [["p1", "p2"], ["p2", "p1"]] {
        let s = applied(&order, &set);
        let a = &s.access_rights["api-a"];
        assert_eq!(s.access_rights.len(), 2);
        let mut versions = a.versions.clone();
        versions.sort();
        assert_eq!(versions, ["v1", "v2"]);
        let urls = a
            .allowed_urls
            .iter()
            .map(|u| (u.url.as_str(), u.methods.len()))
            .collect::<Vec<_>>();
        assert!(
            urls.contains(&("/users", 2)) && urls.contains(&("/orders", 1)),
            "{urls:?}"
        );
        // 10 per second beats 100 per minute; 500 beats 100; the longer window wins.
        assert_eq!(limit(&s, "api-a"), (10.0, 1.0, 500, 3600));
        assert_eq!(limit(&s, "api-b"), (100.0, 60.0, 500, 3600));
        assert_eq!((s.rate, s.per, s.quota_max), (10.0, 1.0, 500));
    }
}

#[test]
fn unlimited_quota_wins_over_any_finite_quota() {
    let set = policies(&[
        json!({"id": "finite", "quota_max": 1000000, "quota_renewal_rate": 60, "access_rights": {"api-a": {}}}),
        json!({"id": "unlimited", "quota_max": -1, "access_rights": {"api-a": {}}}),
    ]);
    for order in [["finite", "unlimited"], ["unlimited", "finite"]] {
        let s = applied(&order, &set);
        assert_eq!(s.access_rights["api-a"].limit.quota_max, -1, "{order:?}");
        assert_eq!(s.quota_max, -1);
        assert!(s.effective_limit("api-a").quota_unlimited());
    }
}

#[test]
fn acl_from_several_policies_scopes_counters_per_policy() {
    let set = policies(&[
        json!({"id": "p1", "quota_max": 10, "access_rights": {"api-a": {}}}),
        json!({"id": "p2", "quota_max": 20, "access_rights": {"api-b": {}}}),
        json!({"id": "p3", "access_rights": {"api-a": {}, "api-b": {}}}),
    ]);
    let s = applied(&["p1", "p2", "nonexistent"], &set);
    assert_eq!(s.access_rights["api-a"].allowance_scope, "p1");
    assert_eq!(s.access_rights["api-b"].allowance_scope, "p2");
    assert_eq!(s.effective_limit("api-a").quota_max, 10);
    assert_eq!(s.effective_limit("api-b").quota_max, 20);
    // One policy granting both APIs: one shared counter.
    let s = applied(&["p3"], &set);
    assert!(s
        .access_rights
        .values()
        .all(|a| a.allowance_scope.is_empty()));
}

/// Quota-only, rate-only and ACL-only policies add up to the policy that has all three.
#[test]
fn partitioned_policies_combine_to_their_parts() {
    let acl = json!({"api-a": {"versions": ["Default"], "allowed_urls": [{"url": "/x", "methods": ["GET"]}]}});
    let set = policies(&[
        json!({"id": "quota", "quota_max": 50, "quota_renewal_rate": 60,
               "partitions": {"quota": true}, "access_rights": {"api-a": {}}}),
        json!({"id": "rate", "rate": 5, "per": 1, "throttle_interval": 2, "throttle_retry_limit": 3,
               "partitions": {"rate_limit": true}, "access_rights": {"api-a": {}}}),
        json!({"id": "acl", "rate": 999, "per": 1, "quota_max": -1,
               "partitions": {"acl": true}, "access_rights": acl}),
        json!({"id": "all", "quota_max": 50, "quota_renewal_rate": 60, "rate": 5, "per": 1,
               "throttle_interval": 2, "throttle_retry_limit": 3, "access_rights": acl}),
    ]);
    let whole = to_value(&applied(&["all"], &set));
    for order in [
        ["quota", "rate", "acl"],
        ["acl", "rate", "quota"],
        ["rate", "acl", "quota"],
    ] {
        let parts = to_value(&applied(&order, &set));
        assert_eq!(parts["access_rights"], whole["access_rights"], "{order:?}");
        for field in [
            "rate",
            "per",
            "quota_max",
            "quota_renewal_rate",
            "throttle_interval",
        ] {
            assert_eq!(parts[field], whole[field], "{order:?} {field}");
        }
    }
    // The ACL part alone does not carry the acl policy's own (generous) limits.
    assert_eq!(
        limit(&applied(&["quota", "rate", "acl"], &set), "api-a"),
        (5.0, 1.0, 50, 60)
    );
}

#[test]
fn apis_granted_without_limits_inherit_the_session_root() {
    let set = policies(&[
        json!({"id": "acl", "partitions": {"acl": true}, "access_rights": {"api-a": {}, "api-b": {}}}),
        json!({"id": "rate-a", "rate": 4, "per": 1, "partitions": {"rate_limit": true},
               "access_rights": {"api-a": {}, "api-c": {}}}),
        json!({"id": "master", "rate": 50, "per": 1, "quota_max": 1000, "quota_renewal_rate": 60}),
    ]);
    let s = applied(&["acl", "rate-a"], &set);
    // api-c was only rate-limited, never granted.
    assert_eq!(
        s.access_rights.keys().collect::<Vec<_>>(),
        ["api-a", "api-b"]
    );
    assert_eq!(limit(&s, "api-a"), (4.0, 1.0, 0, 0));
    // api-b inherits the root rate (the rate policy raised the root to 4/s).
    assert_eq!(limit(&s, "api-b"), (4.0, 1.0, 0, 0));
    // A policy without access rights sets the root, which ACL-only APIs inherit.
    let s = applied(&["master", "acl"], &set);
    assert_eq!(limit(&s, "api-b"), (50.0, 1.0, 1000, 60));
}

#[test]
fn partitions_without_acl_grant_nothing() {
    let set = policies(&[
        json!({"id": "rate", "rate": 4, "per": 1, "partitions": {"rate_limit": true},
               "access_rights": {"api-a": {}}}),
        json!({"id": "master", "rate": 50, "per": 1}),
    ]);
    for ids in [&["rate"][..], &["master"][..], &["rate", "master"][..]] {
        let stored = session(ids, json!({"access_rights": {"api-a": {}}}));
        assert_eq!(
            apply(&stored, &set),
            Err(PolicyError::NoValidPolicies),
            "{ids:?}"
        );
    }
    assert_eq!(
        PolicyError::NoValidPolicies.to_string(),
        "key has no valid policies to be applied"
    );
}

#[test]
fn stored_limits_do_not_survive_policies_that_set_them() {
    let set = policies(&[
        json!({"id": "small", "rate": 10, "per": 1, "quota_max": 100,
                                "access_rights": {"api-a": {}, "api-b": {}}}),
    ]);
    let stored = session(
        &["small"],
        json!({"rate": 1000, "per": 1, "quota_max": -1,
        "quota_remaining": 5, "throttle_retry_limit": 9, "max_query_depth": -1}),
    );
    let s = apply(&stored, &set).unwrap();
    assert_eq!(
        (s.rate, s.per, s.quota_max, s.quota_remaining),
        (10.0, 1.0, 100, 0)
    );
    assert_eq!((s.throttle_retry_limit, s.max_query_depth), (0, 0));
}

#[test]
fn per_api_policy_gives_each_api_its_own_limits_and_counters() {
    let set = policies(&[json!({
    "id": "per-api", "rate": 300, "per": 1, "quota_max": -1,
    "partitions": {"per_api": true},
    "access_rights": {
        "api-d": {"api_name": "D", "versions": ["v1"],
                  "limit": {"rate": 200, "per": 10, "quota_max": 5000, "quota_renewal_rate": 3600}},
        "api-e": {}
    }})]);
    let s = applied(&["per-api"], &set);
    let d = &s.access_rights["api-d"];
    assert_eq!(limit(&s, "api-d"), (200.0, 10.0, 5000, 3600));
    assert_eq!(d.allowance_scope, "api-d", "own limit: counted per API");
    assert_eq!(
        (d.api_name.as_str(), d.versions.as_slice()),
        ("D", &["v1".to_owned()][..])
    );
    assert_eq!(limit(&s, "api-e"), (300.0, 1.0, -1, 0));
    assert_eq!(
        s.access_rights["api-e"].allowance_scope, "per-api",
        "policy limit: per policy"
    );
}

#[test]
fn per_api_policies_on_one_api_merge_to_the_most_permissive() {
    let set = policies(&[
        json!({"id": "d-slow", "partitions": {"per_api": true}, "access_rights": {"api-d":
            {"limit": {"rate": 400, "per": 25, "quota_max": 5000, "quota_renewal_rate": 3600}}}}),
        json!({"id": "d-fast", "partitions": {"per_api": true}, "access_rights": {"api-d":
            {"limit": {"rate": 200, "per": 10, "quota_max": 100, "quota_renewal_rate": 60}}}}),
        json!({"id": "d-unlimited", "partitions": {"per_api": true}, "access_rights": {"api-d":
            {"limit": {"rate": 1, "per": 1, "quota_max": -1, "quota_renewal_rate": 60}}}}),
    ]);
    for order in [["d-slow", "d-fast"], ["d-fast", "d-slow"]] {
        let s = applied(&order, &set);
        assert_eq!(limit(&s, "api-d"), (200.0, 10.0, 5000, 3600), "{order:?}");
        assert_eq!(s.access_rights["api-d"].allowance_scope, "api-d");
    }
    // An unlimited quota drops the renewal rate.
    let s = applied(&["d-fast", "d-unlimited"], &set);
    assert_eq!(limit(&s, "api-d"), (200.0, 10.0, -1, 0));
}

#[test]
fn per_api_cannot_be_combined_with_partitions() {
    let set = policies(&[
        json!({"id": "both", "partitions": {"per_api": true, "rate_limit": true}, "access_rights": {"a": {}}}),
        json!({"id": "per-api", "partitions": {"per_api": true}, "access_rights": {"a": {}}}),
        json!({"id": "quota", "quota_max": 2, "partitions": {"quota": true}}),
    ]);
    let err = apply(&session(&["both"], json!({})), &set).unwrap_err();
    assert_eq!(err, PolicyError::PerApiWithPartitions("both".to_owned()));
    assert_eq!(
        err.to_string(),
        "cannot apply policy both which has per_api and any of partitions set"
    );
    for order in [["per-api", "quota"], ["quota", "per-api"]] {
        let err = apply(&session(&order, json!({})), &set).unwrap_err();
        assert_eq!(err, PolicyError::MixedPerApiAndPartitions, "{order:?}");
    }
    assert_eq!(
        PolicyError::MixedPerApiAndPartitions.to_string(),
        "cannot apply multiple policies when some have per_api set and some are partitioned"
    );
}

#[test]
fn a_missing_policy_is_not_found_unless_others_exist() {
    let set = policies(&[gold()]);
    let err = apply(&session(&["nope"], json!({})), &set).unwrap_err();
    assert_eq!(err, PolicyError::NotFound("nope".to_owned()));
    assert_eq!(err.to_string(), r#"policy not found: "nope""#);
    // Tyk quotes with %q.
    let err = PolicyError::NotFound("a\"b\n".to_owned());
    assert_eq!(err.to_string(), r#"policy not found: "a\"b\n""#);
    // One missing of several is skipped; all missing grants nothing.
    let s = apply(&session(&["nope", "gold"], json!({})), &set).unwrap();
    assert!(s.access_rights.contains_key("api-a"));
    let err = apply(&session(&["nope", "nope2"], json!({})), &set).unwrap_err();
    assert_eq!(err, PolicyError::NoValidPolicies);
}

#[test]
fn policies_of_another_organisation_do_not_apply() {
    let set = policies(&[
        json!({"id": "foreign", "org_id": "org2", "access_rights": {"api-a": {}}}),
        gold(),
    ]);
    // Looked up in the key's organisation: the other organisation's policy is not found.
    let err = apply(&session(&["foreign"], json!({})), &set).unwrap_err();
    assert_eq!(err, PolicyError::NotFound("foreign".to_owned()));
    // A key without an organisation uses the API's for the lookup.
    let orgless = session(&["foreign"], json!({"org_id": ""}));
    assert!(apply_for_api(&orgless, &set, "org2").is_ok());
    assert!(apply(&orgless, &set).is_err());
    // The policy's organisation must be the API's.
    let err = apply_for_api(&session(&["gold"], json!({})), &set, "org2").unwrap_err();
    assert!(
        matches!(&err, PolicyError::DifferentOrg { policy_id, api_org, .. }
        if policy_id == "gold" && api_org == "org2")
    );
    assert_eq!(
        err.to_string(),
        "attempting to apply policy from different organisation to key, skipping"
    );
    assert!(apply_for_api(&session(&["gold"], json!({})), &set, "org1").is_ok());
}

#[test]
fn an_inactive_policy_makes_the_key_inactive() {
    let set = policies(&[
        gold(),
        json!({"id": "off", "is_inactive": true, "partitions": {"quota": true}}),
    ]);
    assert!(applied(&["gold", "off"], &set).is_inactive);
    assert!(!applied(&["gold"], &set).is_inactive);
    // With policies, the policies alone decide; without, the key's own flag stays.
    let stored = session(&["gold"], json!({"is_inactive": true}));
    assert!(!apply(&stored, &set).unwrap().is_inactive);
    let stored = session(&[], json!({"is_inactive": true}));
    assert!(apply(&stored, &set).unwrap().is_inactive);
}

#[test]
fn sessions_without_policies_are_unchanged() {
    let set = policies(&[gold()]);
    let stored = session(
        &[],
        json!({"rate": 5, "per": 1, "quota_max": 10, "tags": ["t"],
        "is_inactive": true, "access_rights": {"api-a": {"api_id": "api-a", "versions": ["Default"]}}}),
    );
    assert_eq!(apply(&stored, &set).unwrap(), stored);
    assert_eq!(apply(&stored, &PolicySet::default()).unwrap(), stored);
    // Except that an API's own limit gets its own counters, as in Tyk.
    let stored = session(
        &[],
        json!({"access_rights": {"api-a": {}, "api-b": {"limit": {"quota_max": 5}}}}),
    );
    let s = apply(&stored, &set).unwrap();
    assert_eq!(s.access_rights["api-a"].allowance_scope, "");
    assert_eq!(s.access_rights["api-b"].allowance_scope, "api-b");
}

#[test]
fn results_are_deterministic() {
    let docs = [
        gold(),
        json!({"id": "p1", "rate": 10, "per": 1, "tags": ["x", "y"], "access_rights": {"b": {}, "c": {}}}),
        json!({"id": "p2", "quota_max": 5, "tags": ["y", "z"], "meta_data": {"k": 1},
               "access_rights": {"c": {"allowed_urls": [{"url": "/", "methods": ["GET"]}]}, "d": {}}}),
    ];
    let stored = session(&["p2", "gold", "p1"], json!({"tags": ["own"]}));
    let first = apply(&stored, &policies(&docs)).unwrap().to_json();
    for _ in 0..20 {
        assert_eq!(apply(&stored, &policies(&docs)).unwrap().to_json(), first);
    }
    let mut reversed = docs.to_vec();
    reversed.reverse();
    assert_eq!(
        apply(&stored, &policies(&reversed)).unwrap().to_json(),
        first
    );
    let s = apply(&stored, &policies(&docs)).unwrap();
    assert_eq!(
        s.tags,
        ["own", "y", "z", "gold", "x"],
        "key tags first, then in policy order"
    );
}

#[test]
fn duplicate_and_legacy_policy_ids() {
    let set = policies(&[gold()]);
    let mut twice = applied(&["gold", "gold"], &set);
    twice.apply_policies.dedup();
    assert_eq!(twice, applied(&["gold"], &set));
    // The legacy single id is used when the list is empty.
    let legacy = session(&[], json!({"apply_policy_id": "gold"}));
    assert_eq!(
        apply(&legacy, &set).unwrap().access_rights,
        applied(&["gold"], &set).access_rights
    );
    let both = session(&["nope"], json!({"apply_policy_id": "gold"}));
    assert_eq!(
        apply(&both, &set),
        Err(PolicyError::NotFound("nope".to_owned()))
    );
}

#[test]
fn tags_metadata_and_flags_are_merged() {
    let set = policies(&[
        json!({"id": "p1", "tags": ["shared", "p1"], "meta_data": {"tier": "p1", "a": 1},
               "last_updated": "1700000000", "hmac_enabled": true, "access_rights": {"api-a": {}}}),
        json!({"id": "p2", "tags": ["p2"], "meta_data": {"tier": "p2"}, "last_updated": "1600000000",
               "post_expiry_action": "retain", "post_expiry_grace_period": 45,
               "enable_http_signature_validation": true, "access_rights": {"api-b": {}}}),
    ]);
    let stored = session(
        &["p1", "p2"],
        json!({"tags": ["own", "shared"], "last_updated": "1650000000",
        "meta_data": {"tier": "own", "mine": true}, "post_expiry_action": "delete"}),
    );
    let s = apply(&stored, &set).unwrap();
    assert_eq!(s.tags, ["own", "shared", "p1", "p2"]);
    assert_eq!(s.meta_data["tier"], "p2");
    assert_eq!(
        (&s.meta_data["a"], &s.meta_data["mine"]),
        (&json!(1), &json!(true))
    );
    assert_eq!(s.last_updated, "1700000000");
    assert!(s.hmac_enabled && s.enable_http_signature_validation);
    assert_eq!(
        (s.post_expiry_action.as_str(), s.post_expiry_grace_period),
        ("retain", 45)
    );
}

#[test]
fn endpoint_rate_limits_merge_to_the_faster_rate() {
    let endpoints = |rate: i64| json!([{"path": "/get", "methods": [{"name": "GET", "limit": {"rate": rate, "per": 60}}]}]);
    let set = policies(&[
        json!({"id": "p1", "access_rights": {"api-d": {"endpoints": endpoints(10)}}}),
        json!({"id": "p2", "access_rights": {"api-d": {"endpoints": [
            {"path": "/get", "methods": [{"name": "GET", "limit": {"rate": 20, "per": 60}}]},
            {"path": "/post", "methods": [{"name": "POST", "limit": {"rate": 1, "per": 1}}]}]}}}),
        json!({"id": "acl-only", "partitions": {"acl": true},
               "access_rights": {"api-d": {"endpoints": endpoints(99)}}}),
    ]);
    for order in [["p1", "p2"], ["p2", "p1"]] {
        let s = applied(&order, &set);
        let eps = &s.access_rights["api-d"].endpoints;
        let got = eps
            .iter()
            .map(|e| (e.path.as_str(), e.methods[0].limit.rate))
            .collect::<Vec<_>>();
        assert_eq!(got, [("/get", 20.0), ("/post", 1.0)], "{order:?}");
    }
    // Endpoint limits belong to the rate part: an ACL-only policy brings none.
    assert!(applied(&["acl-only"], &set).access_rights["api-d"]
        .endpoints
        .is_empty());
}

#[test]
fn graphql_rules_are_united() {
    let set = policies(&[
        json!({"id": "g1", "access_rights": {"g": {"disable_introspection": true,
            "restricted_types": [{"name": "Country", "fields": ["code", "name"]}],
            "field_access_rights": [{"type_name": "Query", "field_name": "people", "limits": {"max_query_depth": 4}}]}}}),
        json!({"id": "g2", "access_rights": {"g": {
            "restricted_types": [{"name": "Country", "fields": ["code", "phone"]}, {"name": "Dog", "fields": ["x"]}],
            "field_access_rights": [{"type_name": "Query", "field_name": "people", "limits": {"max_query_depth": -1}},
                                    {"type_name": "Query", "field_name": "pets", "limits": {"max_query_depth": 2}}]}}}),
    ]);
    let g = applied(&["g1", "g2"], &set).access_rights["g"].clone();
    assert!(g.disable_introspection);
    assert_eq!(
        g.restricted_types,
        [
            json!({"name": "Country", "fields": ["code", "name", "phone"]}),
            json!({"name": "Dog", "fields": ["x"]})
        ]
    );
    assert_eq!(g.field_access_rights[0]["limits"]["max_query_depth"], -1);
    assert_eq!(g.field_access_rights.len(), 2);
}

#[test]
fn custom_policies_in_metadata_replace_stored_ones() {
    let set = policies(&[gold()]);
    let custom = json!([{"id": "inline", "rate": 7, "per": 1, "access_rights": {"api-x": {}}}]);
    let stored = session(&["gold"], json!({"meta_data": {"policies": custom}}));
    let s = apply(&stored, &set).unwrap();
    assert_eq!(s.access_rights.keys().collect::<Vec<_>>(), ["api-x"]);
    assert_eq!(s.rate, 7.0);
    // Not a list of policies: the stored ones apply.
    let stored = session(
        &["gold"],
        json!({"meta_data": {"policies": [{"rate": "x"}]}}),
    );
    assert!(apply(&stored, &set)
        .unwrap()
        .access_rights
        .contains_key("api-a"));
}

#[test]
fn key_expiry_comes_from_the_last_policy_forcing_one() {
    let set = policies(&[
        json!({"id": "month", "key_expires_in": 2592000}),
        json!({"id": "never", "key_expires_in": 0}),
        json!({"id": "hour", "key_expires_in": 3600}),
    ]);
    let ids = |ids: &[&str]| key_expires_in(&session(ids, json!({})), &set);
    assert_eq!(ids(&["month", "never", "hour"]), Some(3600));
    assert_eq!(ids(&["hour", "month", "never", "missing"]), Some(2592000));
    assert_eq!(ids(&["never"]), None);
    assert_eq!(ids(&[]), None);
}
