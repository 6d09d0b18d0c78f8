//! Redis-only behaviour: starting without Redis, surviving a Redis restart or freeze,
//! data written by other clients, authentication and database selection, cluster-wide
//! pub/sub, and how many commands the store sends.

use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::super::{
    Notification, RedisOptions, Store, StoreError, RECONNECTED_CHANNEL, SUBSCRIPTION_LOST_CHANNEL,
};
use super::{eventually, eventually_within, open_redis, redis_options};
use certgate_testkit::testredis::{free_port, RedisCluster, RedisServer};

const TYK: &str = "tyk.cluster.notifications";

fn unavailable<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Unavailable(_)))
}

/// Every kind of call fails with `Unavailable`; returns how long they all took.
async fn all_unavailable(s: &Store) -> Duration {
    let t = Instant::now();
    assert!(unavailable(&s.get("k").await));
    assert!(unavailable(&s.get_many(&["k".into()]).await));
    assert!(unavailable(&s.set("k", "v", None).await));
    assert!(unavailable(&s.incr_by("q", 1).await));
    assert!(unavailable(&s.keys_with_prefix("").await));
    assert!(unavailable(&s.list_range("l").await));
    assert!(unavailable(&s.publish(TYK, "x").await));
    assert!(unavailable(&s.ping().await));
    t.elapsed()
}

/// The next notification on `channel`, skipping others; panics after `limit`.
async fn next_on(
    rx: &mut broadcast::Receiver<Notification>,
    channel: &str,
    limit: Duration,
) -> Notification {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(n)) if n.channel == channel => return n,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("notification channel closed: {e}"),
            Err(_) => panic!("no notification on {channel} within {limit:?}"),
        }
    }
}

/// Publishes through the store until its own subscriber receives the message.
async fn round_trip(s: &Store, rx: &mut broadcast::Receiver<Notification>, payload: &str) {
    eventually("publish succeeds", || async {
        s.publish(TYK, payload).await.is_ok()
    })
    .await;
    loop {
        let n = next_on(rx, TYK, Duration::from_secs(5)).await;
        if n.payload == payload {
            return;
        }
    }
}

#[tokio::test]
async fn starts_without_redis_and_connects_when_it_appears() {
    let port = free_port(false);
    let opts = RedisOptions {
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        ..redis_options(vec![format!("127.0.0.1:{port}")], false)
    };
    let t = Instant::now();
    let store = Store::open_redis(&opts).await.expect("opens without Redis");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(!store.is_connected());
    let mut rx = store.subscribe();
    let took = all_unavailable(&store).await;
    assert!(took < Duration::from_millis(100), "failing took {took:?}");

    let server = RedisServer::start_on(port, &[]);
    let up = Instant::now();
    eventually_within(Duration::from_secs(5), "the store connects", || async {
        store.ping().await.is_ok()
    })
    .await;
    eprintln!("connected {:?} after Redis started", up.elapsed());
    assert!(store.is_connected());
    store.set("k", "v", None).await.unwrap();
    assert_eq!(server.query_text(redis::cmd("GET").arg("k")), "v");
    next_on(&mut rx, RECONNECTED_CHANNEL, Duration::from_secs(5)).await;
    round_trip(&store, &mut rx, "hello").await;
}

#[tokio::test]
async fn cluster_mode_also_starts_without_redis() {
    let opts = RedisOptions {
        connect_timeout: Duration::from_millis(300),
        response_timeout: Duration::from_millis(300),
        ..redis_options(vec![format!("127.0.0.1:{}", free_port(true))], true)
    };
    let store = Store::open_redis(&opts).await.expect("opens without Redis");
    assert!(!store.is_connected());
    let took = all_unavailable(&store).await;
    assert!(took < Duration::from_millis(100), "failing took {took:?}");
}

#[tokio::test]
async fn restart_resubscribes_and_announces_the_gap() {
    let mut server = RedisServer::start();
    let store = open_redis(redis_options(vec![server.addr()], false)).await;
    let mut rx = store.subscribe();
    round_trip(&store, &mut rx, "before").await;
    store.set("k", "v", None).await.unwrap();

    server.restart();
    let t = Instant::now();
    next_on(&mut rx, RECONNECTED_CHANNEL, Duration::from_secs(10)).await;
    eprintln!("resubscribed {:?} after the restart", t.elapsed());
    round_trip(&store, &mut rx, "after").await;
    eprintln!("store usable {:?} after the restart", t.elapsed());
    // No persistence: the data went with the old process.
    assert_eq!(store.get("k").await.unwrap(), None);
    assert!(store.is_connected());
}

#[tokio::test]
async fn a_frozen_redis_times_out_then_recovers() {
    let server = RedisServer::start();
    let timeout = Duration::from_millis(300);
    let opts = RedisOptions {
        connect_timeout: timeout,
        response_timeout: timeout,
        ..redis_options(vec![server.addr()], false)
    };
    let store = open_redis(opts).await;
    let mut rx = store.subscribe();
    store.set("k", "v", None).await.unwrap();

    server.pause();
    let t = Instant::now();
    let r = store.get("k").await;
    let took = t.elapsed();
    assert!(unavailable(&r), "{r:?}");
    assert!(
        took >= timeout - Duration::from_millis(50) && took < timeout + Duration::from_millis(400),
        "{took:?}"
    );
    // The health check confirms it; from then on calls fail without waiting.
    eventually("the store notices", || async { !store.is_connected() }).await;
    let took = all_unavailable(&store).await;
    assert!(took < Duration::from_millis(100), "failing took {took:?}");

    server.resume();
    eventually("the store recovers", || async {
        store.ping().await.is_ok()
    })
    .await;
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some("v"));
    // The subscription survived the freeze: no gap to announce.
    round_trip(&store, &mut rx, "after").await;
    assert!(matches!(
        rx.try_recv(),
        Err(broadcast::error::TryRecvError::Empty)
    ));
}

#[tokio::test]
async fn data_written_by_others_never_panics() {
    let server = RedisServer::start();
    let store = open_redis(redis_options(vec![server.addr()], false)).await;
    let mut rx = store.subscribe();
    let raw = |args: &[&[u8]]| {
        let mut cmd = redis::Cmd::new();
        for a in args {
            cmd.arg(*a);
        }
        server.query(&cmd).expect("raw command");
    };
    raw(&[b"SET", b"bin", b"\xff\xfe"]);
    raw(&[b"RPUSH", b"list", b"ok", b"\xff"]);
    raw(&[b"SADD", b"set", b"\xc3"]);
    raw(&[b"SET", b"\xffkey", b"v"]);
    raw(&[b"SET", b"plain", b"v"]);
    raw(&[b"HSET", b"hash", b"f", b"v"]);
    raw(&[b"ZADD", b"zset", b"1", b"m"]);

    let r = store.get("bin").await;
    assert!(matches!(r, Err(StoreError::Corrupt { .. })), "{r:?}");
    assert!(matches!(
        store.get_many(&["bin".into()]).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.list_range("list").await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.set_members("set").await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.incr_by("bin", 1).await,
        Err(StoreError::NotInteger { .. })
    ));
    for other_type in ["hash", "zset"] {
        assert!(matches!(
            store.get(other_type).await,
            Err(StoreError::WrongType { .. })
        ));
        assert!(matches!(
            store.list_push(other_type, "x").await,
            Err(StoreError::WrongType { .. })
        ));
    }
    assert_eq!(
        store
            .get_many(&["hash".into(), "plain".into()])
            .await
            .unwrap(),
        vec![None, Some("v".into())]
    );
    let mut keys = store.keys_with_prefix("").await.unwrap();
    keys.sort();
    assert_eq!(keys, vec!["bin", "hash", "list", "plain", "set", "zset"]);
    assert_eq!(store.list_remove("list", "ok").await.unwrap(), 1);

    raw(&[b"PUBLISH", TYK.as_bytes(), b"\xff{}"]);
    let n = next_on(&mut rx, TYK, Duration::from_secs(5)).await;
    assert_eq!(n.payload, "\u{fffd}{}");
    // The store is still healthy.
    store.ping().await.unwrap();
}

#[tokio::test]
async fn password_user_and_database_are_used() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let opts = RedisOptions {
        username: Some("default".into()),
        password: Some("s3cret".into()),
        database: 3,
        ..redis_options(vec![server.addr()], false)
    };
    let store = open_redis(opts.clone()).await;
    let mut rx = store.subscribe();
    store.set("k", "v", None).await.unwrap();
    let keyspace = server.query_text(redis::cmd("INFO").arg("keyspace"));
    assert!(keyspace.contains("db3:keys=1"), "{keyspace}");
    round_trip(&store, &mut rx, "authenticated").await;
    let debug = format!("{opts:?}");
    assert!(!debug.contains("s3cret"), "{debug}");

    let wrong = RedisOptions {
        password: Some("wrong".into()),
        connect_timeout: Duration::from_millis(300),
        response_timeout: Duration::from_millis(300),
        ..opts
    };
    let store = Store::open_redis(&wrong).await.expect("opens anyway");
    assert!(!store.is_connected());
    let r = store.get("k").await;
    assert!(unavailable(&r), "{r:?}");
}

#[tokio::test]
async fn tls_to_a_plain_server_is_unavailable_not_a_panic() {
    let server = RedisServer::start();
    let opts = RedisOptions {
        tls: true,
        connect_timeout: Duration::from_millis(500),
        response_timeout: Duration::from_millis(500),
        ..redis_options(vec![server.addr()], false)
    };
    let store = Store::open_redis(&opts).await.expect("opens anyway");
    assert!(!store.is_connected());
    let r = store.get("k").await;
    assert!(unavailable(&r), "{r:?}");
}

#[tokio::test]
async fn invalid_configurations_are_refused() {
    let addr = "127.0.0.1:1".to_owned();
    let bad = [
        redis_options(vec![], false),
        redis_options(vec![addr.clone(), addr.clone()], false),
        redis_options(vec!["no-port".into()], false),
        RedisOptions {
            database: 1,
            ..redis_options(vec![addr.clone()], true)
        },
        RedisOptions {
            response_timeout: Duration::ZERO,
            ..redis_options(vec![addr], false)
        },
    ];
    for opts in bad {
        let r = Store::open_redis(&opts).await;
        assert!(matches!(r, Err(StoreError::Config(_))), "{opts:?}: {r:?}");
    }
}

#[tokio::test]
async fn one_command_per_call_and_silence_when_idle() {
    let server = RedisServer::start();
    let store = open_redis(redis_options(vec![server.addr()], false)).await;
    store.set("a", "1", None).await.unwrap();
    server.reset_stats();
    assert_eq!(store.get("a").await.unwrap().as_deref(), Some("1"));
    assert!(store.exists("a").await.unwrap());
    let many: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    assert_eq!(store.get_many(&many).await.unwrap().len(), 20);
    // Idle: no health checks on the data connection; only the subscriber PINGs its
    // own connection (so that a silently dead subscription is noticed).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = server.command_stats();
    let sent: u64 = stats
        .iter()
        .filter(|(cmd, _)| !matches!(cmd.as_str(), "info" | "config|resetstat" | "ping"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(stats.get("get"), Some(&1), "{stats:?}");
    assert_eq!(stats.get("exists"), Some(&1), "{stats:?}");
    assert_eq!(stats.get("mget"), Some(&1), "{stats:?}");
    assert_eq!(sent, 3, "{stats:?}");

    // Dropping the store closes its connections (data and subscriber).
    drop(store);
    let clients = || server.query_text(redis::cmd("INFO").arg("clients"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !clients().contains("connected_clients:1\r") {
        assert!(Instant::now() < deadline, "{}", clients());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn cluster_keys_spread_over_masters_and_pubsub_is_cluster_wide() {
    let cluster = RedisCluster::shared().await;
    let store = open_redis(redis_options(cluster.addrs(), true)).await;
    let mut rx = store.subscribe();
    for i in 0..100 {
        store.set(&format!("apikey-{i}"), "v", None).await.unwrap();
    }
    for node in cluster.nodes() {
        let size = node.query(&redis::cmd("DBSIZE")).unwrap();
        assert!(
            matches!(size, redis::Value::Int(n) if n > 0),
            "node {} holds {size:?}",
            node.port()
        );
    }
    assert_eq!(store.keys_with_prefix("apikey-").await.unwrap().len(), 100);
    // A message published on any node reaches the store's subscriber.
    for node in cluster.nodes() {
        let payload = format!("from {}", node.port());
        node.query(redis::cmd("PUBLISH").arg(TYK).arg(&payload))
            .unwrap();
        let n = next_on(&mut rx, TYK, Duration::from_secs(5)).await;
        assert_eq!(n.payload, payload);
    }
    round_trip(&store, &mut rx, "via the store").await;
    // MGET over three masters: split by redis-rs, one MGET per hash slot involved.
    let before = cluster.command_stats().get("mget").copied().unwrap_or(0);
    let keys: Vec<String> = (0..100).map(|i| format!("apikey-{i}")).collect();
    assert!(store
        .get_many(&keys)
        .await
        .unwrap()
        .iter()
        .all(|v| v.as_deref() == Some("v")));
    let after = cluster.command_stats().get("mget").copied().unwrap_or(0);
    assert!((3..=100).contains(&(after - before)), "{before} → {after}");
    eprintln!("one get_many of 100 keys sent {} MGETs", after - before);
}

#[tokio::test]
async fn incr_window_is_one_script_call_and_survives_a_script_flush() {
    use super::super::CounterIncr;
    let server = RedisServer::start();
    let store = open_redis(redis_options(vec![server.addr()], false)).await;
    let items = [
        CounterIncr::new("rate-limit-k:1", 1, Some(Duration::from_secs(60))),
        CounterIncr::new("rate-limit-k:0", 0, Some(Duration::from_secs(1))),
        CounterIncr::new("quota-k", 1, Some(Duration::from_secs(60))),
    ];
    assert_eq!(store.incr_window(&items).await.unwrap(), vec![1, 0, 1]);
    server.reset_stats();
    assert_eq!(store.incr_window(&items).await.unwrap(), vec![2, 0, 2]);
    let stats = server.command_stats();
    assert_eq!(stats.get("evalsha"), Some(&1), "{stats:?}");
    assert_eq!(stats.get("eval"), None, "{stats:?}");
    // Redis forgot the script (restart, SCRIPT FLUSH): EVAL loads it again, once.
    server.query(redis::cmd("SCRIPT").arg("FLUSH")).unwrap();
    server.reset_stats();
    assert_eq!(store.incr_window(&items).await.unwrap(), vec![3, 0, 3]);
    assert_eq!(store.incr_window(&items).await.unwrap(), vec![4, 0, 4]);
    let stats = server.command_stats();
    assert_eq!(stats.get("eval"), Some(&1), "{stats:?}");
    assert_eq!(stats.get("evalsha"), Some(&2), "{stats:?}");
}

#[tokio::test]
async fn cluster_incr_window_sends_one_script_per_slot() {
    use super::super::CounterIncr;
    let cluster = RedisCluster::shared().await;
    let store = open_redis(redis_options(cluster.addrs(), true)).await;
    let ttl = Some(Duration::from_secs(60));
    // Two keys sharing a hash tag (one slot) and a third elsewhere.
    let items = [
        CounterIncr::new("{k}rate", 1, ttl),
        CounterIncr::new("quota-k", 1, ttl),
        CounterIncr::new("{k}prev", 0, ttl),
    ];
    // The first call loads the script on the masters involved (EVALSHA fails, EVAL).
    assert_eq!(store.incr_window(&items).await.unwrap(), vec![1, 1, 0]);
    let count = |name: &str| cluster.command_stats().get(name).copied().unwrap_or(0);
    let (evalsha, eval) = (count("evalsha"), count("eval"));
    assert_eq!(store.incr_window(&items).await.unwrap(), vec![2, 2, 0]);
    assert_eq!(count("evalsha") - evalsha, 2);
    assert_eq!(count("eval") - eval, 0);
}

/// A TCP proxy whose established connections can be frozen: bytes stop flowing both
/// ways and nothing is closed, as when a NAT entry or a firewall state is dropped.
/// Connections made after a freeze work normally.
struct FreezingProxy {
    addr: String,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FreezingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FreezingProxy {
    async fn start(target: String) -> Self {
        use std::sync::atomic::AtomicU64;
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let generation = Arc::new(AtomicU64::new(0));
        let g = generation.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                    continue;
                };
                let mine = g.load(std::sync::atomic::Ordering::SeqCst);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, g.clone(), mine));
                tokio::spawn(pump(sr, cw, g.clone(), mine));
            }
        });
        Self {
            addr,
            generation,
            task,
        }
    }

    fn freeze(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Forwards bytes until either side closes; once the proxy's generation moved past
/// `mine`, swallows them instead (the socket stays open).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
    mine: u64,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let live = generation.load(std::sync::atomic::Ordering::SeqCst) == mine;
        if live && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A subscription whose connection died silently (no reset ever arrives) is noticed
/// while idle — the subscriber PINGs it — announced at once on
/// `SUBSCRIPTION_LOST_CHANNEL`, then re-established and announced as a gap.
#[tokio::test]
async fn a_silently_dead_subscription_is_noticed_while_idle() {
    let server = RedisServer::start();
    let proxy = FreezingProxy::start(server.addr()).await;
    let opts = RedisOptions {
        connect_timeout: Duration::from_millis(300),
        response_timeout: Duration::from_millis(300),
        ..redis_options(vec![proxy.addr.clone()], false)
    };
    let store = open_redis(opts).await;
    let mut rx = store.subscribe();
    round_trip(&store, &mut rx, "before").await;
    assert!(store.is_subscribed());

    // Nothing is sent by anyone: only an idle check can notice.
    proxy.freeze();
    next_on(&mut rx, SUBSCRIPTION_LOST_CHANNEL, Duration::from_secs(10)).await;
    next_on(&mut rx, RECONNECTED_CHANNEL, Duration::from_secs(10)).await;
    assert!(store.is_subscribed());
    // The new subscription works: a message published by another client arrives.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _ = server.query(redis::cmd("PUBLISH").arg(TYK).arg("after"));
        match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            Ok(Ok(n)) if n.channel == TYK && n.payload == "after" => break,
            _ => assert!(
                Instant::now() < deadline,
                "the new subscription gets nothing"
            ),
        }
    }
}
