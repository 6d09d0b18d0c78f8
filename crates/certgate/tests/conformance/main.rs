//! Conformance with Tyk's own files: the example `tyk.conf` and API definitions in
//! `../shared/tyk/examples` beside the repository (read there, never copied in), and the
//! Gateway API against Tyk's `swagger.yml` with schemathesis ([`schemathesis`]).
//!
//! Not part of `cargo test --workspace` (`test = false` in Cargo.toml): a fresh clone has no
//! `../shared`. `.ci/run` runs this target when `../shared/tyk` exists and requires it when
//! `CI=true`; by hand: `cargo test --test conformance` (`CERTGATE_SHARED=<dir>` when
//! `shared/` is elsewhere). Without the files every test fails naming the missing path.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use certgate::apidef::{is_oas_document, parse_classic, parse_oas, ApiDefError, AuthTokenConfig};
use certgate::config::{Config, ConfigError, StorageKind, TYK_DEFAULT_SECRET};

/// `$CERTGATE_SHARED/tyk/examples`, by default `../shared` beside the repository.
fn examples() -> PathBuf {
    std::env::var_os("CERTGATE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("tyk/examples")
}

fn example(name: &str) -> Vec<u8> {
    let path = examples().join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} — the conformance tests need Tyk's examples in ../shared/tyk beside the repository (or set CERTGATE_SHARED)",
            path.display()
        )
    })
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[test]
fn app_sample_is_classic_with_deprecated_auth() {
    let raw = example("app_sample.json");
    assert!(!is_oas_document(&serde_json::from_slice(&raw).unwrap()));
    let def = parse_classic(&raw).unwrap();
    let s = &def.spec;
    assert_eq!((s.api_id.as_str(), s.org_id.as_str()), ("1", "default"));
    assert_eq!(s.listen_path, "/tyk-api-test/");
    assert!(s.strip_listen_path);
    assert_eq!(s.target_url, "http://httpbin.org");
    assert!(!s.use_keyless && !s.active);
    assert_eq!(s.auth.auth_header_name, "authorization");
    assert_eq!(s.auth.param_name, "authorization");
    assert!(!s.uses_certificate_auth() && s.runs_auth_key());
    assert!(s.versioning.not_versioned);
    assert_eq!(s.versioning.versions, ["Default"]);
    assert_eq!(
        (s.versioning.location.as_str(), s.versioning.key.as_str()),
        ("header", "version")
    );
    assert!(!def.is_oas());
    assert_eq!(def.classic["enable_batch_request_support"], true);
}

#[test]
fn quickstart_is_keyless_classic() {
    let def = parse_classic(&example("quickstart.json")).unwrap();
    assert_eq!(def.spec.api_id, "3");
    assert!(def.spec.use_keyless && !def.spec.runs_auth_key());
    assert_eq!(def.spec.auth, AuthTokenConfig::default());
    assert_eq!(def.spec.target_url, "http://httpbin.org/");
    assert_eq!(def.classic["do_not_track"], true);
}

#[test]
fn petstore_without_extension_is_refused() {
    let raw = example("petstore-no-responses.json");
    assert!(is_oas_document(&serde_json::from_slice(&raw).unwrap()));
    let err = parse_oas(&raw).unwrap_err();
    assert_eq!(err, ApiDefError::MissingTykExtension);
    assert_eq!(
        err.to_string(),
        "the payload should contain x-tyk-api-gateway"
    );
}

#[test]
fn template_example_lacks_required_fields_until_filled() {
    let raw = example("non-empty-x-tyk-ext-oas-template.json");
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
    doc["x-tyk-api-gateway"]["upstream"]["url"] = json!("https://petstore.example");
    doc["x-tyk-api-gateway"]["server"]["listenPath"]["value"] = json!("pets");
    let def = parse_oas(&bytes(&doc)).unwrap();
    assert!(def.spec.use_keyless);
    assert_eq!(def.spec.listen_path, "/pets");
    assert_eq!(def.spec.name, "oas-api");
    assert!(def.oas.as_ref().unwrap()["paths"]["/pets"].is_object());
}

/// Tyk's example config parses, and is refused as it stands: its `secret` is Tyk's
/// published default, and it uses Redis without a `node_secret`.
#[test]
fn tyk_example_config_parses_and_its_published_secret_is_refused() {
    let path = examples().join("tyk.conf.example");
    let mut v: Value = serde_json::from_slice(&example("tyk.conf.example")).unwrap();
    assert_eq!(v["secret"], TYK_DEFAULT_SECRET);
    let c = Config::from_json(&v, Path::new("/")).unwrap();
    assert_eq!(c.storage.kind, StorageKind::Redis);
    assert_eq!((c.storage.host.as_str(), c.storage.port), ("redis", 6379));
    let fields: Vec<String> = c.secret_issues().into_iter().map(|i| i.field).collect();
    assert_eq!(fields, ["secret", "node_secret"]);
    match Config::load(&path, &std::collections::HashMap::<String, String>::new()) {
        Err(ConfigError::Invalid(issues)) => {
            assert!(issues
                .iter()
                .any(|i| i.field == "secret" && i.reason.contains("published")));
        }
        other => panic!("expected the published secret to be refused, got {other:?}"),
    }
    v["storage"] = json!({"type": "embedded"});
    let c = Config::from_json(&v, Path::new("/")).unwrap();
    assert!(c.hash_keys);
    assert_eq!(c.hash_key_function, "murmur64");
    assert_eq!(c.app_path, Path::new("/opt/tyk-gateway/apps"));
}

mod schemathesis;
