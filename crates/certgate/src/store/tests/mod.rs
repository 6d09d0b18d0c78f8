//! Behaviour of [`Store`].
//!
//! - `suite.rs`: the semantics every backend shares, written once and run three times by
//!   `suite!` below: `suite_embedded::*`, `suite_redis::*` (a standalone Redis started for
//!   each test) and `suite_cluster::*` (a 3-master Redis Cluster shared by these tests, one
//!   at a time, flushed in between).
//! - `embedded.rs`: what only the embedded store has (persistence, file lock, purge).
//! - `redis.rs`: what only the Redis backend has (reconnection, timeouts, foreign data,
//!   authentication, cluster-wide pub/sub).
//!
//! Redis tests start their own servers ((`certgate_testkit::testredis`)); they never touch a Redis
//! already running on the machine, and fail if `redis-server` is missing.

mod embedded;
mod redis;
mod suite;

use std::time::{Duration, Instant};

use super::{RedisOptions, Store};
use certgate_testkit::testredis::{RedisCluster, RedisServer};

/// A fresh, empty store and whatever keeps its backend alive (a directory, a server, the
/// shared cluster), dropped after the store.
struct Fixture {
    store: Store,
    _backend: Box<dyn std::any::Any + Send>,
}

impl Fixture {
    async fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_embedded(dir.path()).await.expect("open store");
        Self {
            store,
            _backend: Box::new(dir),
        }
    }

    async fn redis() -> Self {
        let server = RedisServer::start();
        let store = open_redis(redis_options(vec![server.addr()], false)).await;
        Self {
            store,
            _backend: Box::new(server),
        }
    }

    async fn cluster() -> Self {
        let cluster = RedisCluster::shared().await;
        let store = open_redis(redis_options(cluster.addrs(), true)).await;
        Self {
            store,
            _backend: Box::new(cluster),
        }
    }
}

/// Options for a test server: short timeouts, the Tyk channel.
fn redis_options(addrs: Vec<String>, cluster: bool) -> RedisOptions {
    RedisOptions {
        addrs,
        cluster,
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(2),
        ..RedisOptions::default()
    }
}

async fn open_redis(opts: RedisOptions) -> Store {
    let store = Store::open_redis(&opts).await.expect("open redis store");
    assert!(store.is_connected(), "not connected to {:?}", opts.addrs);
    store
}

/// Polls `cond` every 5 ms until it holds; panics after 5 s.
async fn eventually<F, Fut>(what: &str, cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(Duration::from_secs(5), what, cond).await;
}

/// Polls `cond` every 5 ms until it holds; panics after `limit`.
async fn eventually_within<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One `#[tokio::test]` per suite function and backend.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod suite_embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = super::Fixture::embedded().await;
                    super::suite::$name(&f.store).await;
                }
            )*
        }
        mod suite_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = super::Fixture::redis().await;
                    super::suite::$name(&f.store).await;
                }
            )*
        }
        mod suite_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = super::Fixture::cluster().await;
                    super::suite::$name(&f.store).await;
                }
            )*
        }
    };
}

suite!(
    set_get_delete_exists,
    arbitrary_keys_and_values,
    ttl_expires_and_is_invisible_to_every_read,
    ttl_rules,
    set_nx_and_xx,
    concurrent_incr_loses_no_update,
    incr_keeps_ttl_and_rejects_non_integers,
    wrong_type_errors,
    list_push_range_remove,
    set_add_remove_members,
    keys_with_prefix_lists_every_type,
    keys_with_prefix_takes_glob_characters_literally,
    get_many_keeps_order_across_keys,
    publish_reaches_every_subscriber,
    health_is_reported,
    incr_window_sets_the_ttl_only_on_creation,
    incr_window_counter_expires_and_restarts_from_zero,
    incr_window_concurrent_calls_lose_no_increment,
    incr_window_negative_increments_give_units_back,
    incr_window_errors,
    incr_window_keeps_order_across_keys,
    incr_window_counters_mix_with_every_command,
);
