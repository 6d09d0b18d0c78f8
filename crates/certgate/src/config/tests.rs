use std::collections::HashMap;
use std::path::Path;

use serde_json::json;

use super::*;

fn load(v: Value, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
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
    assert_eq!(c.secret, DEFAULT_SECRET);
    assert_eq!(c.http_server_options.min_version, TLS12);
    assert_eq!(c.http_server_options.max_version, TLS13);
    assert!(!c.http_server_options.use_ssl);
    assert_eq!(c.min_token_length, 3);
    assert_eq!(c.storage.kind, StorageKind::Embedded);
    assert_eq!(c.health_check_endpoint_name, "hello");
    assert!(c.app_path.ends_with("apps"));
    assert!(c.control_addr().is_none());
}

#[test]
fn tyk_example_config_loads() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tyk/examples/tyk.conf.example");
    let bytes = std::fs::read(&path).expect("shared/tyk example present");
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    let c = Config::from_json(&v, Path::new("/")).unwrap();
    assert_eq!(c.storage.kind, StorageKind::Redis);
    assert_eq!((c.storage.host.as_str(), c.storage.port), ("redis", 6379));
    v["storage"] = json!({"type": "embedded"});
    let c = Config::from_json(&v, Path::new("/")).unwrap();
    assert!(c.hash_keys);
    assert_eq!(c.hash_key_function, "murmur64");
    assert_eq!(c.app_path, Path::new("/opt/tyk-gateway/apps"));
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
            ("TYK_GW_SECRET", "s3cret"),
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
    assert_eq!(c.secret, "s3cret");
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
        br#"{"app_path": "apps", "storage": {"path": "data"}}"#,
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
