//! Three gateway nodes on one Redis.

use std::time::Duration;

use serde_json::json;

use certgate_testkit::testredis::{RedisCluster, RedisServer};

use crate::redis_storage;
use crate::support::*;

async fn node(storage: serde_json::Value, up: &Upstream) -> Gw {
    gateway()
        .set("storage", storage)
        .set(
            "local_session_cache",
            json!({"cached_session_timeout": 300}),
        )
        .api(cert_api("c", "/c/", &up.url()))
        .start()
        .await
}

async fn status(c: &reqwest::Client, url: &str) -> u16 {
    c.get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn refused_everywhere(nodes: &[&Gw], want: u16) -> bool {
    let clients: Vec<_> = nodes
        .iter()
        .map(|n| client(n, Some(&pki().client)))
        .collect();
    eventually(Duration::from_secs(5), || {
        let clients = clients.clone();
        let urls: Vec<String> = nodes.iter().map(|n| n.url("/c/x")).collect();
        async move {
            for (c, u) in clients.iter().zip(&urls) {
                if status(c, u).await != want {
                    return false;
                }
            }
            true
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_every_node() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let a = node(redis_storage(&redis), &up).await;
    let b = node(redis_storage(&redis), &up).await;
    let c = node(redis_storage(&redis), &up).await;
    let id = upload(&a, &pki().client, "default").await;
    let (st, v) = create_key_raw(&a, &session("c", Some(&id))).await;
    assert_eq!(st, 200, "{v}");
    let key = v["key"].as_str().unwrap().to_owned();
    // Every node authenticates the certificate (and caches it).
    for n in [&a, &b, &c] {
        let cl = client(n, Some(&pki().client));
        assert_eq!(status(&cl, &n.url("/c/x")).await, 200);
        assert_eq!(status(&cl, &n.url("/c/x")).await, 200);
    }
    // Delete the key on A: every node refuses.
    let r = admin(&a)
        .delete(a.url(&format!("/tyk/keys/{key}")))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        refused_everywhere(&[&a, &b, &c], 401).await,
        "key revocation did not reach every node"
    );

    // Recreate on B, warm every cache, then delete the certificate on C.
    let (st, _) = create_key_raw(&b, &session("c", Some(&id))).await;
    assert_eq!(st, 200);
    for n in [&a, &b, &c] {
        let cl = client(n, Some(&pki().client));
        assert!(
            eventually(Duration::from_secs(5), || {
                let cl = cl.clone();
                let u = n.url("/c/x");
                async move { status(&cl, &u).await == 200 }
            })
            .await
        );
    }
    let r = admin(&c)
        .delete(c.url(&format!("/tyk/certs/{id}?org_id=default")))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        refused_everywhere(&[&a, &b, &c], 403).await,
        "certificate revocation did not reach every node"
    );
    for n in [a, b, c] {
        n.stop().await;
    }
}

/// Issue 11 (hole 4): `PUT /tyk/keys/{key}` with another certificate moves the binding
/// on every node: the old certificate is refused (its cached session evicted, never
/// rebound), the new one works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_change_reaches_every_node() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let a = node(redis_storage(&redis), &up).await;
    let b = node(redis_storage(&redis), &up).await;
    let (c1, c2) = (&pki().client, &pki().other_client);
    let id1 = upload(&a, c1, "default").await;
    let id2 = upload(&a, c2, "default").await;
    let (st, v) = create_key_raw(&a, &session("c", Some(&id1))).await;
    assert_eq!(st, 200, "{v}");
    let key = v["key"].as_str().unwrap().to_owned();
    // Both nodes authenticate c1 and cache its session.
    for n in [&a, &b] {
        let cl = client(n, Some(c1));
        for _ in 0..2 {
            assert_eq!(status(&cl, &n.url("/c/x")).await, 200);
        }
    }
    let r = admin(&a)
        .put(a.url(&format!("/tyk/keys/{key}")))
        .header("x-tyk-authorization", SECRET)
        .json(&session("c", Some(&id2)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let moved = json_of(r).await["key"].as_str().unwrap().to_owned();
    assert_eq!(
        moved,
        certgate::tokens::generate_token("default", &id2, "murmur64")
    );
    // On the node that answered: at once.
    assert_eq!(status(&client(&a, Some(c1)), &a.url("/c/x")).await, 401);
    assert_eq!(status(&client(&a, Some(c2)), &a.url("/c/x")).await, 200);
    // On the other node: as soon as the notification arrives.
    let (b1, b2) = (client(&b, Some(c1)), client(&b, Some(c2)));
    let url = b.url("/c/x");
    let moved_on_b = eventually(Duration::from_secs(5), || {
        let (b1, b2, url) = (b1.clone(), b2.clone(), url.clone());
        async move { status(&b1, &url).await == 401 && status(&b2, &url).await == 200 }
    })
    .await;
    assert!(
        moved_on_b,
        "the certificate change did not reach the other node"
    );
    // And it stays so: no request rebinds the key to c1.
    for n in [&a, &b] {
        assert_eq!(status(&client(n, Some(c1)), &n.url("/c/x")).await, 401);
        assert_eq!(status(&client(n, Some(c2)), &n.url("/c/x")).await, 200);
    }
    for n in [a, b] {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_client_costs_no_redis_command() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let gw = node(redis_storage(&redis), &up).await;
    let id = upload(&gw, &pki().client, "default").await;
    let (st, _) = create_key_raw(&gw, &session("c", Some(&id))).await;
    assert_eq!(st, 200);
    let cl = client(&gw, Some(&pki().client));
    assert_eq!(status(&cl, &gw.url("/c/x")).await, 200);
    // The upload's notification makes the node reload (generation 2): wait for it so
    // its store reads are not counted below.
    let reloaded = eventually(Duration::from_secs(5), || async {
        gw.gateway().snapshot().generation >= 2
    })
    .await;
    assert!(reloaded, "the upload's reload did not happen");
    redis.reset_stats();
    for _ in 0..50 {
        assert_eq!(status(&cl, &gw.url("/c/x")).await, 200);
    }
    let stats = redis.command_stats();
    let used: Vec<_> = stats
        .iter()
        .filter(|(cmd, n)| {
            **n > 0
                && !matches!(
                    cmd.as_str(),
                    "info" | "config|resetstat" | "config" | "ping"
                )
        })
        .collect();
    assert!(
        used.is_empty(),
        "commands on the auth path of a cached client: {used:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_reload_reaches_every_node() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let a = node(redis_storage(&redis), &up).await;
    let b = node(redis_storage(&redis), &up).await;
    write(
        &b.app_path().join("late.json"),
        &classic_api("late", "/late/", &up.url()),
    );
    let r = admin(&a)
        .get(a.url("/tyk/reload/group"))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cl = client(&b, None);
    let url = b.url("/late/x");
    assert!(
        eventually(Duration::from_secs(5), || {
            let cl = cl.clone();
            let url = url.clone();
            async move { status(&cl, &url).await == 200 }
        })
        .await,
        "node B did not reload"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_backs_certificate_auth() {
    let cluster = RedisCluster::start(3);
    let up = upstream().await;
    let storage =
        json!({"type": "redis", "enable_cluster": true, "addrs": cluster.addrs(), "timeout": 2});
    let a = node(storage.clone(), &up).await;
    let b = node(storage, &up).await;
    let id = upload(&a, &pki().client, "default").await;
    let (st, v) = create_key_raw(&a, &session("c", Some(&id))).await;
    assert_eq!(st, 200, "{v}");
    let key = v["key"].as_str().unwrap().to_owned();
    let cl = client(&b, Some(&pki().client));
    assert_eq!(status(&cl, &b.url("/c/x")).await, 200);
    // Listing scans every master.
    let r = admin(&b)
        .get(b.url("/tyk/certs?org_id=default"))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["certs"][0], id.as_str());
    let r = admin(&a)
        .delete(a.url(&format!("/tyk/keys/{key}")))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(refused_everywhere(&[&a, &b], 401).await);
    a.stop().await;
    b.stop().await;
}
