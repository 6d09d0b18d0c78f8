//! Several gateways on one real Redis (and on a real 3-master Redis Cluster): shared
//! sessions and certificates in Tyk's layout, revocation on every node, zero Redis
//! commands per request for a cached client, and Redis outages.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

#[allow(dead_code)]
#[path = "../e2e/support.rs"]
mod support;

mod faults;
mod keyhash;
mod nodes;
mod race_loop;
mod races;
mod tyk_layout;

use serde_json::{json, Value};

use certgate_testkit::testredis::RedisServer;

/// The `storage` section for a standalone Redis.
pub fn redis_storage(r: &RedisServer) -> Value {
    json!({"type": "redis", "host": "127.0.0.1", "port": r.port(), "timeout": 1})
}
