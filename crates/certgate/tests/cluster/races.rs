//! Revocation races on Redis (one node, two nodes) and replayed cluster notifications
//! (issue 11, holes 9 and 14).

use std::time::Duration;

use certgate::cluster;
use certgate::store::{RedisOptions, Store};
use certgate_testkit::testredis::RedisServer;

use crate::race_loop::{race_loop, race_node};
use crate::redis_storage;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_race_one_node_redis() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let gw = race_node(redis_storage(&redis), &up).await;
    race_loop(&[&gw], 60).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_race_two_nodes_redis() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let a = race_node(redis_storage(&redis), &up).await;
    let b = race_node(redis_storage(&redis), &up).await;
    race_loop(&[&a, &b], 60).await;
    a.stop().await;
    b.stop().await;
}

/// A listener on the cluster channel, as an attacker with access to Redis has.
async fn tap(redis: &RedisServer) -> Store {
    Store::open_redis(&RedisOptions {
        addrs: vec![redis.addr()],
        channels: vec![cluster::CHANNEL.to_owned()],
        ..RedisOptions::default()
    })
    .await
    .unwrap()
}

/// One captured, validly signed `GroupReload` published hundreds of times: no node
/// reloads again (each copy is refused as a replay, with rate-limited warnings); the
/// original message reloaded every node once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_reload_messages_are_refused() {
    let redis = RedisServer::start();
    let up = upstream().await;
    let a = race_node(redis_storage(&redis), &up).await;
    let b = race_node(redis_storage(&redis), &up).await;
    let attacker = tap(&redis).await;
    let mut rx = attacker.subscribe();

    let nodes = [&a, &b];
    let initial: Vec<u64> = nodes
        .iter()
        .map(|n| n.gateway().snapshot().generation)
        .collect();
    let r = admin(&a)
        .get(a.url("/tyk/reload/group"))
        .header("x-tyk-authorization", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The attacker captures the message.
    let captured = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no message captured")
            .unwrap();
        if n.channel == cluster::CHANNEL && n.payload.contains(cluster::GROUP_RELOAD) {
            break n.payload;
        }
    };
    // The original reloaded both nodes (A when it sent it, B when it arrived).
    for (i, n) in nodes.iter().enumerate() {
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.gateway().snapshot().generation > initial[i]
            })
            .await,
            "node {i} did not reload"
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            b.gateway().notifications_applied() == 1
        })
        .await
    );
    let reloads: Vec<u64> = nodes
        .iter()
        .map(|n| n.gateway().reload_requests())
        .collect();
    let generations: Vec<u64> = nodes
        .iter()
        .map(|n| n.gateway().snapshot().generation)
        .collect();
    let rejected: Vec<u64> = nodes
        .iter()
        .map(|n| n.gateway().rejected_notifications())
        .collect();
    let applied: Vec<u64> = nodes
        .iter()
        .map(|n| n.gateway().notifications_applied())
        .collect();
    const COPIES: u64 = 500;
    for _ in 0..COPIES {
        attacker.publish(cluster::CHANNEL, &captured).await.unwrap();
    }
    // A marker after the copies (one publisher: delivered in order). Once a node
    // applied it, it has handled every copy.
    let cfg = a.gateway().config.clone();
    let marker = cluster::encode(&cfg, cluster::KEY_SPACE_UPDATE, "marker");
    attacker.publish(cluster::CHANNEL, &marker).await.unwrap();
    for (i, n) in nodes.iter().enumerate() {
        assert!(
            eventually(Duration::from_secs(10), || async {
                n.gateway().notifications_applied() > applied[i]
            })
            .await,
            "node {i} never saw the marker"
        );
        assert_eq!(
            n.gateway().reload_requests(),
            reloads[i],
            "node {i} reloaded for a replayed message"
        );
        assert_eq!(n.gateway().snapshot().generation, generations[i]);
        assert_eq!(
            n.gateway().rejected_notifications() - rejected[i],
            COPIES,
            "node {i} did not refuse every copy"
        );
        assert_eq!(n.gateway().notifications_applied(), applied[i] + 1);
    }
    a.stop().await;
    b.stop().await;
}
