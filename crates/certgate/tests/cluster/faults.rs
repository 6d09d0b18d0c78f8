//! Redis unavailable at start and lost while serving: fail closed, never crash,
//! recover by itself.

use std::time::Duration;

use serde_json::json;

use certgate_testkit::testredis::{free_port, RedisServer};

use crate::redis_storage;
use crate::support::*;

async fn hello(gw: &Gw) -> String {
    let v = json_of(admin(gw).get(gw.url("/hello")).send().await.unwrap()).await;
    v["status"].as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_then_up() {
    let port = free_port(false);
    let up = upstream().await;
    let gw = gateway()
        .set(
            "storage",
            json!({"type": "redis", "host": "127.0.0.1", "port": port, "timeout": 1}),
        )
        .api(classic_api("open", "/open/", &up.url()))
        .api(cert_api("c", "/c/", &up.url()))
        .start()
        .await;
    // Serves what needs no storage, reports the outage, refuses store-backed work.
    assert_eq!(
        client(&gw, None)
            .get(gw.url("/open/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(hello(&gw).await, "fail");
    let r = client(&gw, Some(&pki().client))
        .get(gw.url("/c/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let (st, v) = upload_cert(&gw, &pki().client.cert_pem, "default").await;
    assert!(st >= 500, "a store failure must not answer {st}: {v}");
    assert_eq!(v["status"], "error");

    let _redis = RedisServer::start_on(port, &[]);
    assert!(
        eventually(Duration::from_secs(10), || async {
            hello(&gw).await == "pass"
        })
        .await,
        "did not recover"
    );
    let id = upload(&gw, &pki().client, "default").await;
    let (st, _) = create_key_raw(&gw, &session("c", Some(&id))).await;
    assert_eq!(st, 200);
    let cl = client(&gw, Some(&pki().client));
    let ok = eventually(Duration::from_secs(5), || {
        let cl = cl.clone();
        let u = gw.url("/c/x");
        async move {
            cl.get(u)
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        }
    })
    .await;
    assert!(ok);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_while_serving_fails_closed_and_recovers() {
    let mut redis = RedisServer::start();
    let up = upstream().await;
    let gw = gateway()
        .set("storage", redis_storage(&redis))
        .set("local_session_cache", json!({"cached_session_timeout": 2}))
        .api(cert_api("c", "/c/", &up.url()))
        .start()
        .await;
    let id = upload(&gw, &pki().client, "default").await;
    let (st, _) = create_key_raw(&gw, &session("c", Some(&id))).await;
    assert_eq!(st, 200);
    let known = client(&gw, Some(&pki().client));
    assert_eq!(
        known.get(gw.url("/c/x")).send().await.unwrap().status(),
        200
    );

    redis.stop();
    // An unknown client is refused (fail closed); the Gateway API answers 5xx.
    let unknown = client(&gw, Some(&pki().other_client));
    assert_eq!(
        unknown.get(gw.url("/c/x")).send().await.unwrap().status(),
        503
    );
    let (st, _) = create_key_raw(&gw, &session("c", None)).await;
    assert!(st >= 500, "{st}");
    // The cached client is refused once its cache window (2 s) has passed.
    let refused = eventually(Duration::from_secs(10), || {
        let k = known.clone();
        let u = gw.url("/c/x");
        async move {
            k.get(u)
                .send()
                .await
                .map(|r| r.status() == 503)
                .unwrap_or(false)
        }
    })
    .await;
    assert!(
        refused,
        "a cached client outlived the cache window during the outage"
    );

    // Redis comes back (empty: it keeps nothing on disk); the gateway recovers.
    redis.start_again();
    assert!(
        eventually(Duration::from_secs(10), || async {
            hello(&gw).await == "pass"
        })
        .await
    );
    let id = upload(&gw, &pki().client, "default").await;
    let (st, _) = create_key_raw(&gw, &session("c", Some(&id))).await;
    assert_eq!(st, 200);
    let ok = eventually(Duration::from_secs(5), || {
        let k = known.clone();
        let u = gw.url("/c/x");
        async move {
            k.get(u)
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        }
    })
    .await;
    assert!(ok, "did not recover after Redis returned");
    gw.stop().await;
}
