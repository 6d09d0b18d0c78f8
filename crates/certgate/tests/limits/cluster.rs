//! Several nodes on one real Redis: one quota and one rate limit for the cluster.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;

use certgate_testkit::testredis::RedisServer;

use crate::support::*;

async fn nodes(redis: &RedisServer, up: &Upstream, n: usize) -> Vec<Gw> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            gateway()
                .set(
                    "storage",
                    json!({"type": "redis", "host": "127.0.0.1", "port": redis.port()}),
                )
                .api(token_api("t", "/t/", &up.url()))
                .start()
                .await,
        );
    }
    out
}

/// Sends `per_task` requests from `tasks` tasks on every node; counts statuses.
async fn hammer(nodes: &[Gw], key: &str, tasks: usize, per_task: usize) -> (usize, usize) {
    let ok = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for n in nodes {
        for _ in 0..tasks {
            let c = client(n, None);
            let url = n.url("/t/x");
            let key = key.to_owned();
            let (ok, refused) = (ok.clone(), refused.clone());
            handles.push(tokio::spawn(async move {
                for _ in 0..per_task {
                    let st = c
                        .get(&url)
                        .header("authorization", &key)
                        .send()
                        .await
                        .unwrap()
                        .status();
                    match st.as_u16() {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        403 | 429 => refused.fetch_add(1, Ordering::Relaxed),
                        other => panic!("unexpected status {other}"),
                    };
                }
            }));
        }
    }
    for h in handles {
        h.await.unwrap();
    }
    (ok.load(Ordering::Relaxed), refused.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_is_never_exceeded_across_nodes() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let gws = nodes(&redis, &up, 3).await;
    let (st, v) = create_key_raw(&gws[0], &json!({"org_id": "default", "quota_max": 100,
        "quota_renewal_rate": 3600, "access_rights": {"t": {"api_id": "t", "versions": ["Default"]}}})).await;
    assert_eq!(st, 200);
    let key = v["key"].as_str().unwrap();
    let (ok, refused) = hammer(&gws, key, 4, 20).await;
    assert_eq!(
        ok, 100,
        "quota exceeded or under-used across nodes ({refused} refused)"
    );
    assert_eq!(refused, 3 * 4 * 20 - 100);
    for g in gws {
        g.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_holds_for_the_cluster() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let gws = nodes(&redis, &up, 3).await;
    // 60 per minute: the whole burst lands in one window.
    let (st, v) = create_key_raw(
        &gws[0],
        &json!({"org_id": "default", "rate": 60, "per": 60,
        "access_rights": {"t": {"api_id": "t", "versions": ["Default"]}}}),
    )
    .await;
    assert_eq!(st, 200);
    let key = v["key"].as_str().unwrap();
    let (ok, refused) = hammer(&gws, key, 2, 30).await;
    assert_eq!(
        ok, 60,
        "the cluster let {ok} through for a limit of 60 ({refused} refused)"
    );
    for g in gws {
        g.stop().await;
    }
}
