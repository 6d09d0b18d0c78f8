use std::collections::HashMap;
use std::path::Path;

use serde_json::json;

use super::*;

/// A `secret` and `node_secret` that pass [`Config::secret_issues`].
const GOOD: &str = "unit-test-secret-3b9d1f";

/// Loads `v` as a file, adding a good `secret` and `node_secret` when it has none (tests
/// of other fields); [`load_raw`] adds nothing.
fn load(mut v: Value, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    if let Some(o) = v.as_object_mut() {
        o.entry("secret").or_insert(json!(GOOD));
        o.entry("node_secret").or_insert(json!(GOOD));
    }
    load_raw(v, env)
}

fn load_raw(v: Value, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tyk.conf");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::load(&path, &env)
}

fn issues(r: Result<Config, ConfigError>) -> Vec<ConfigIssue> {
    match r {
        Err(ConfigError::Invalid(i)) => i,
        other => panic!("expected invalid config, got {other:?}"),
    }
}

#[test]
fn defaults_are_tyks() {
    let c = load(json!({}), &[]).unwrap();
    assert_eq!(c.listen_port, 8080);
    assert_eq!(c.listen_addr(), "0.0.0.0:8080");
    assert_eq!(c.secret, GOOD);
    assert_eq!(c.http_server_options.min_version, TLS12);
    assert_eq!(c.http_server_options.max_version, TLS13);
    assert!(!c.http_server_options.use_ssl);
    assert_eq!(c.min_token_length, 3);
    assert_eq!(c.storage.kind, StorageKind::Embedded);
    assert_eq!(c.health_check_endpoint_name, "hello");
    assert!(c.app_path.ends_with("apps"));
    assert!(c.control_addr().is_none());
}

/// A Tyk-style `tyk.conf` written for these tests (Tyk's own example is checked by the
/// `conformance` test target): Redis storage, unknown keys ignored, absolute paths kept.
#[test]
fn tyk_style_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tyk.conf");
    let bytes = std::fs::read(&path).unwrap();
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    let c = Config::from_json(&v, Path::new("/")).unwrap();
    assert_eq!(c.storage.kind, StorageKind::Redis);
    assert_eq!((c.storage.host.as_str(), c.storage.port), ("redis", 6379));
    assert!(c.secret_issues().is_empty(), "{:?}", c.secret_issues());
    assert!(c.weak_key_hash_warning().is_none());
    v["storage"] = json!({"type": "embedded"});
    let c = Config::from_json(&v, Path::new("/")).unwrap();
    assert!(c.hash_keys);
    assert_eq!(c.hash_key_function, "sha256");
    assert_eq!(c.app_path, Path::new("/opt/certgate/apps"));
    assert_eq!(c.policies.policy_source, "file");
}

fn reasons_for(got: &[ConfigIssue], field: &str) -> String {
    got.iter()
        .filter(|i| i.field == field)
        .map(|i| i.reason.clone())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Issue 11 #5: Tyk falls back to its published example secret; certgate refuses to load.
#[test]
fn secret_must_be_present_long_and_unpublished() {
    let cases: [(Value, &str); 7] = [
        (json!({}), "missing or empty"),
        (json!({"secret": ""}), "missing or empty"),
        (
            json!({"secret": "                    "}),
            "missing or empty",
        ),
        (json!({"secret": "short-secret"}), "only 12 characters"),
        (json!({"secret": TYK_DEFAULT_SECRET}), "published"),
        (json!({"secret": "EXAMPLE_GATEWAY_SECRET"}), "published"),
        (json!({"secret": "demo-secret-change-me"}), "published"),
    ];
    for (conf, why) in cases {
        let got = issues(load_raw(conf.clone(), &[]));
        let reasons = reasons_for(&got, "secret");
        assert!(reasons.contains(why), "{conf}: {reasons}");
        assert!(reasons.contains("at least 16"), "{conf}: {reasons}");
        // The message never repeats the refused value.
        if let Some(s) = conf["secret"].as_str().filter(|s| !s.trim().is_empty()) {
            assert!(!reasons.contains(s), "{reasons}");
        }
    }
    // Reported with the other problems, at once.
    let got = issues(load_raw(json!({"listen_port": -1}), &[]));
    let fields: Vec<&str> = got.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, ["listen_port", "secret"]);
    // The environment can supply it, as in Tyk.
    let c = load_raw(json!({}), &[("TYK_GW_SECRET", GOOD)]).unwrap();
    assert_eq!(c.secret, GOOD);
    assert_eq!(MIN_SECRET_LEN, 16);
    assert!(PUBLISHED_SECRETS.contains(&TYK_DEFAULT_SECRET));
}

#[test]
fn node_secret_is_required_when_nodes_share_redis() {
    let redis = json!({"type": "redis", "host": "r1"});
    for (node_secret, why) in [
        (None, "missing or empty"),
        (Some("tiny"), "only 4 characters"),
        (Some(TYK_DEFAULT_SECRET), "published"),
    ] {
        let mut conf = json!({"secret": GOOD, "storage": redis});
        if let Some(n) = node_secret {
            conf["node_secret"] = json!(n);
        }
        let got = issues(load_raw(conf, &[]));
        let reasons = reasons_for(&got, "node_secret");
        assert!(reasons.contains(why), "{node_secret:?}: {reasons}");
        assert!(reasons.contains("Redis"), "{reasons}");
    }
    let c = load_raw(
        json!({"secret": GOOD, "storage": redis}),
        &[("TYK_GW_NODESECRET", GOOD)],
    );
    assert!(c.is_ok(), "{c:?}");
    // A single node on the embedded store signs nothing: node_secret may be absent.
    assert!(load_raw(json!({"secret": GOOD}), &[]).is_ok());
}

/// `from_json` builds partial configurations for tests; `app::start` checks the secrets.
#[test]
fn from_json_leaves_the_secret_check_to_start() {
    let c = Config::from_json(&json!({}), Path::new("/")).unwrap();
    assert_eq!(c.secret, "");
    let got = c.secret_issues();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].field, "secret");
}

/// Issue 11 #7: 32-bit key hashes are allowed (Tyk nodes share those keys) but warned about.
#[test]
fn thirty_two_bit_key_hashes_are_warned_about() {
    for function in ["", "murmur32"] {
        let c = load(
            json!({"hash_keys": true, "hash_key_function": function}),
            &[],
        )
        .unwrap();
        let w = c.weak_key_hash_warning().expect("a warning");
        for needle in ["32-bit", "hash_key_function", "\"sha256\"", "keep working"] {
            assert!(w.contains(needle), "{needle} missing from {w}");
        }
    }
    for (hash_keys, function) in [
        (true, "sha256"),
        (true, "murmur128"),
        (true, "murmur64"),
        (false, ""),
    ] {
        let c = load(
            json!({"hash_keys": hash_keys, "hash_key_function": function}),
            &[],
        )
        .unwrap();
        assert!(
            c.weak_key_hash_warning().is_none(),
            "{hash_keys} {function}"
        );
    }
}

#[test]
fn every_error_is_reported_at_once_with_its_field() {
    let got = issues(load(
        json!({
            "listen_port": 70000,
            "secret": 5,
            "http_server_options": {"use_ssl": "yes", "min_version": 769, "ssl_certificates": ["a", 3]},
            "hash_key_function": "md5",
            "storage": {"type": "mongo"}
        }),
        &[],
    ));
    let fields: Vec<&str> = got.iter().map(|i| i.field.as_str()).collect();
    for f in [
        "listen_port",
        "secret",
        "http_server_options.use_ssl",
        "http_server_options.min_version",
        "http_server_options.ssl_certificates[1]",
        "hash_key_function",
        "storage.type",
    ] {
        assert!(fields.contains(&f), "missing {f} in {fields:?}");
    }
    let text = ConfigError::Invalid(got).to_string();
    assert!(
        text.contains("listen_port: 70000 is not a TCP port"),
        "{text}"
    );
}

#[test]
fn redis_cluster_needs_addresses() {
    let got = issues(load(
        json!({"storage": {"type": "redis", "enable_cluster": true}}),
        &[],
    ));
    assert_eq!(got[0].field, "storage.addrs");
    let got = issues(load(
        json!({"storage": {"type": "redis", "addrs": ["nohost"]}}),
        &[],
    ));
    assert_eq!(got[0].field, "storage.addrs[0]");
    let c = load(json!({"storage": {"host": "r1", "port": 6380}}), &[]).unwrap();
    assert_eq!(c.storage.kind, StorageKind::Redis);
}

#[test]
fn tls_version_rules() {
    let got = issues(load(
        json!({"http_server_options": {"min_version": 772, "max_version": 771}}),
        &[],
    ));
    assert_eq!(got[0].field, "http_server_options.min_version");
    let c = load(json!({"http_server_options": {"min_version": 772}}), &[]).unwrap();
    assert_eq!(
        (
            c.http_server_options.min_version,
            c.http_server_options.max_version
        ),
        (772, 772)
    );
}

#[test]
fn ssl_without_global_certificates_loads() {
    // As Tyk: server certificates may come from API definitions; a handshake that
    // finds none is answered with unrecognized_name.
    let c = load(json!({"http_server_options": {"use_ssl": true}}), &[]).unwrap();
    assert!(c.http_server_options.use_ssl);
}

#[test]
fn env_overrides_use_tyk_names() {
    let c = load(
        json!({"listen_port": 8080, "security": {}}),
        &[
            ("TYK_GW_LISTENPORT", "9191"),
            ("TYK_GW_SECRET", "env-secret-0123456789"),
            ("TYK_GW_HASHKEYS", "true"),
            (
                "TYK_GW_HTTPSERVEROPTIONS_CIPHERS",
                "TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384",
            ),
            ("TYK_GW_SECURITY_CERTIFICATES_API", "a,b"),
            ("TYK_GW_SECURITY_ALLOWUNSAFEDYNAMICMTLSTOKEN", "1"),
            ("TYK_GW_STORAGE_PATH", "/var/lib/certgate"),
            (
                "TYK_GW_HTTPSERVEROPTIONS_CERTIFICATES",
                r#"[{"domain_name":"a.example","cert_file":"c.pem","key_file":"k.pem"}]"#,
            ),
        ],
    )
    .unwrap();
    assert_eq!(c.listen_port, 9191);
    assert_eq!(c.secret, "env-secret-0123456789");
    assert!(c.hash_keys);
    assert_eq!(c.http_server_options.ssl_ciphers.len(), 2);
    assert_eq!(c.security.certificates_apis, vec!["a", "b"]);
    assert!(c.security.allow_unsafe_dynamic_mtls_token);
    assert_eq!(c.storage.path, Path::new("/var/lib/certgate"));
    assert_eq!(
        c.http_server_options.certificates[0].domain_name,
        "a.example"
    );
}

#[test]
fn bad_env_values_are_reported_by_variable_name() {
    let got = issues(load(
        json!({}),
        &[
            ("TYK_GW_LISTENPORT", "eighty"),
            ("TYK_GW_HASHKEYS", "maybe"),
        ],
    ));
    let fields: Vec<&str> = got.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, vec!["TYK_GW_LISTENPORT", "TYK_GW_HASHKEYS"]);
}

#[test]
fn omit_config_file_needs_no_file() {
    let env: HashMap<String, String> = [
        ("TYK_GW_OMITCONFIGFILE", "true"),
        ("TYK_GW_LISTENPORT", "1234"),
        ("TYK_GW_SECRET", GOOD),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let c = Config::load(Path::new("/nonexistent/tyk.conf"), &env).unwrap();
    assert_eq!(c.listen_port, 1234);
}

#[test]
fn unreadable_and_malformed_files() {
    let env: HashMap<String, String> = HashMap::new();
    assert!(matches!(
        Config::load(Path::new("/nonexistent/tyk.conf"), &env),
        Err(ConfigError::Read { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tyk.conf");
    std::fs::write(&path, b"{\"listen_port\": 80,").unwrap();
    let err = Config::load(&path, &env).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    std::fs::write(&path, b"[1,2]").unwrap();
    assert!(matches!(
        Config::load(&path, &env),
        Err(ConfigError::Invalid(_))
    ));
}

#[test]
fn relative_paths_resolve_against_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tyk.conf");
    std::fs::write(
        &path,
        br#"{"secret": "unit-test-secret-3b9d1f", "app_path": "apps", "storage": {"path": "data"}}"#,
    )
    .unwrap();
    let c = Config::load(&path, &HashMap::<String, String>::new()).unwrap();
    assert_eq!(c.app_path, dir.path().join("apps"));
    assert_eq!(c.storage.path, dir.path().join("data"));
}

#[test]
fn edge_settings_defaults_overrides_and_refusals() {
    let c = load(json!({}), &[]).unwrap();
    let o = &c.http_server_options;
    assert_eq!(o.body_limits.total, Duration::from_secs(120));
    assert_eq!(o.body_limits.between_reads, Duration::from_secs(60));
    assert_eq!(o.body_limits.min_rate, 500);
    assert_eq!(o.write_timeout, Duration::from_secs(120));
    let names: Vec<&str> = c
        .strip_client_identity_headers
        .iter()
        .map(|h| h.as_str())
        .collect();
    for h in [
        "x-ssl-client-cert",
        "x-forwarded-client-cert",
        "client-cert",
        "client-cert-chain",
    ] {
        assert!(names.contains(&h), "{h} not stripped by default: {names:?}");
    }

    let c = load(
        json!({"http_server_options": {"read_timeout": 5, "write_timeout": 7,
            "certgate_body_read_timeout": 2, "certgate_min_body_rate": 0},
            "strip_client_identity_headers": ["X-Mine"]}),
        &[("TYK_GW_HTTPSERVEROPTIONS_CERTGATEBODYREADTIMEOUT", "3")],
    )
    .unwrap();
    let o = &c.http_server_options;
    assert_eq!(o.body_limits.total, Duration::from_secs(5));
    assert_eq!(o.body_limits.between_reads, Duration::from_secs(3));
    assert_eq!(o.body_limits.min_rate, 0);
    assert_eq!(o.write_timeout, Duration::from_secs(7));
    assert_eq!(c.strip_client_identity_headers, ["x-mine"]);
    let c = load(json!({}), &[("TYK_GW_STRIPCLIENTIDENTITYHEADERS", "")]).unwrap();
    assert!(c.strip_client_identity_headers.is_empty());

    let got = issues(load(
        json!({"http_server_options": {"certgate_body_read_timeout": -1,
            "certgate_min_body_rate": "fast", "write_timeout": 100_000},
            "strip_client_identity_headers": ["ok", "bad header"]}),
        &[],
    ));
    let fields: Vec<&str> = got.iter().map(|i| i.field.as_str()).collect();
    for f in [
        "http_server_options.certgate_body_read_timeout",
        "http_server_options.certgate_min_body_rate",
        "http_server_options.write_timeout",
        "strip_client_identity_headers[1]",
    ] {
        assert!(fields.contains(&f), "missing {f} in {fields:?}");
    }
}

/// Issue 12 #7: the notBefore allowance — default, file, env, and its bounds.
#[test]
fn client_cert_not_before_skew_is_bounded() {
    const KEY: &str = "security.certgate_client_cert_not_before_skew";
    let c = load(json!({}), &[]).unwrap();
    assert_eq!(c.security.client_cert_not_before_skew, 60);
    assert_eq!(SecurityConfig::default().client_cert_not_before_skew, 60);
    let c = load(
        json!({"security": {"certgate_client_cert_not_before_skew": 0}}),
        &[],
    )
    .unwrap();
    assert_eq!(c.security.client_cert_not_before_skew, 0);
    let c = load(
        json!({"security": {"certgate_client_cert_not_before_skew": 5}}),
        &[("TYK_GW_SECURITY_CERTGATECLIENTCERTNOTBEFORESKEW", "3600")],
    )
    .unwrap();
    assert_eq!(c.security.client_cert_not_before_skew, 3600);
    for bad in [json!(-1), json!(3601), json!("60s"), json!(1.5)] {
        let got = issues(load(
            json!({"security": {"certgate_client_cert_not_before_skew": bad}}),
            &[],
        ));
        assert!(
            got.iter().any(|i| i.field == KEY),
            "{bad}: {got:?} does not name {KEY}"
        );
    }
}

/// Issue 12 #8: every `tyk.conf` field has a fate, the same in the docs.
#[test]
fn audit_table_matches_the_docs() {
    crate::audit::assert_documented(fields::CONFIG_FIELDS, "tyk.conf");
    let mut paths: Vec<&str> = fields::CONFIG_FIELDS.iter().map(|f| f.path).collect();
    paths.sort_unstable();
    let before = paths.len();
    paths.dedup();
    assert_eq!(before, paths.len(), "a field is listed twice");
}

/// Issue 12 #8: a refused field set in `tyk.conf` is a load error naming it; set to its
/// zero value, or an ignored field, it loads.
#[test]
fn config_refuses_fields_it_cannot_honour() {
    let got = issues(load(
        json!({"ignore_endpoint_case": true,
               "slave_options": {"use_rpc": false, "call_timeout": 30}}),
        &[],
    ));
    assert_eq!(
        reasons_for(&got, "ignore_endpoint_case"),
        "is not supported by certgate: case-insensitive endpoint matching not implemented"
    );
    assert_eq!(got.len(), 1, "{got:?}");
    let c = load(
        json!({"ignore_endpoint_case": false, "enable_jsvm": true, "log_level": "debug",
               "http_server_options": {"enable_path_prefix_matching": true,
                                       "enable_path_suffix_matching": true}}),
        &[],
    )
    .unwrap();
    let m = c.http_server_options.path_matching;
    assert!(m.prefix && m.suffix);
}
