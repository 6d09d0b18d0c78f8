//! The `hash_keys` mode recorded in a Redis shared with other nodes (issue 11 #15): switched
//! from true to false, every stored key hash would work as a bearer token.

use serde_json::{json, Value};

use certgate_testkit::testredis::RedisServer;

use crate::redis_storage;
use crate::support::*;

fn config(r: &RedisServer, hash_keys: bool) -> certgate::config::Config {
    let conf = json!({
        "listen_address": "127.0.0.1", "listen_port": 0,
        "secret": SECRET, "node_secret": NODE_SECRET,
        "app_path": "apps", "storage": redis_storage(r),
        "hash_keys": hash_keys, "hash_key_function": "sha256",
    });
    certgate::config::Config::from_json(&conf, std::path::Path::new("/nonexistent")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_keys_is_recorded_in_redis_and_a_switch_is_refused() {
    let r = RedisServer::start();
    let first = certgate::app::start(config(&r, true)).await.unwrap();
    let record: Value =
        serde_json::from_str(&r.query_text(redis::cmd("GET").arg("certgate-key-hashing"))).unwrap();
    assert_eq!(record, json!({"hash_keys": true}));
    // Another node with the same setting joins.
    let second = certgate::app::start(config(&r, true)).await.unwrap();
    second.shutdown().await;

    let err = certgate::app::start(config(&r, false)).await.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    for needle in [
        "hash_keys is false in the configuration",
        "written with hash_keys true",
        "certgate-key-hashing",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing from {msg}");
    }
    first.shutdown().await;

    // An unreadable record fails closed too.
    r.query_text(redis::cmd("SET").arg("certgate-key-hashing").arg("yes"));
    let err = certgate::app::start(config(&r, true)).await.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("certgate-key-hashing"), "{err}");
}

/// A weak secret reaches `app::start` only through `Config::from_json`; it is refused there.
#[tokio::test]
async fn start_refuses_a_weak_secret_even_without_config_load() {
    let r = RedisServer::start();
    let mut cfg = config(&r, true);
    cfg.secret = certgate::config::TYK_DEFAULT_SECRET.to_owned();
    cfg.node_secret = String::new();
    let err = certgate::app::start(cfg).await.unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(msg.contains("secret: is a value published"), "{msg}");
    assert!(msg.contains("node_secret: is missing or empty"), "{msg}");
}
