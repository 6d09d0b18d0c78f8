//! Behaviour of [`Store`] with the embedded backend: Redis semantics, expiry, durability.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::embedded::{EmbeddedOptions, EmbeddedStore, FILE_NAME};
use super::{Notification, Store, StoreError, Ttl};

async fn open(dir: &Path) -> Store {
    Store::open_embedded(dir).await.expect("open store")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Polls `cond` every 5 ms until it holds; panics after 5 s.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn set_get_delete_exists() {
    let dir = tempdir();
    let s = open(dir.path()).await;
    assert_eq!(s.get("apikey-a").await.unwrap(), None);
    assert!(!s.exists("apikey-a").await.unwrap());
    s.set("apikey-a", r#"{"org_id":"o"}"#, None).await.unwrap();
    assert_eq!(
        s.get("apikey-a").await.unwrap().as_deref(),
        Some(r#"{"org_id":"o"}"#)
    );
    assert!(s.exists("apikey-a").await.unwrap());
    assert_eq!(s.ttl("apikey-a").await.unwrap(), Ttl::Persistent);
    s.set("apikey-a", "v2", None).await.unwrap();
    assert_eq!(s.get("apikey-a").await.unwrap().as_deref(), Some("v2"));
    let many = s
        .get_many(&["apikey-a".into(), "nope".into(), "apikey-a".into()])
        .await
        .unwrap();
    assert_eq!(many, vec![Some("v2".into()), None, Some("v2".into())]);
    assert!(s.delete("apikey-a").await.unwrap());
    assert!(!s.delete("apikey-a").await.unwrap());
    assert_eq!(s.get("apikey-a").await.unwrap(), None);
    assert_eq!(s.ttl("apikey-a").await.unwrap(), Ttl::Missing);
    s.ping().await.unwrap();
}

#[tokio::test]
async fn arbitrary_keys_and_values() {
    let dir = tempdir();
    let s = open(dir.path()).await;
    let big = "x".repeat(3 * 1024 * 1024);
    for (k, v) in [
        ("", "empty key"),
        ("nul\0key", "nul\0value"),
        ("ключ-🔑", "значение ✓"),
        ("big", big.as_str()),
        ("empty-value", ""),
    ] {
        s.set(k, v, None).await.unwrap();
        assert_eq!(s.get(k).await.unwrap().as_deref(), Some(v), "key {k:?}");
    }
    s.list_push("l", "").await.unwrap();
    s.list_push("l", "\0").await.unwrap();
    assert_eq!(s.list_range("l").await.unwrap(), vec!["", "\0"]);
}

#[tokio::test]
async fn ttl_expires_and_is_invisible_to_every_read() {
    let dir = tempdir();
    let s = open(dir.path()).await;
    let start = Instant::now();
    s.set("quota-k", "1", Some(Duration::from_millis(150)))
        .await
        .unwrap();
    s.set("keep", "1", None).await.unwrap();
    s.list_push("list", "a").await.unwrap();
    assert!(s.expire("list", Duration::from_millis(150)).await.unwrap());
    match s.ttl("quota-k").await.unwrap() {
        Ttl::Expires(d) => assert!(d <= Duration::from_millis(150) && !d.is_zero(), "{d:?}"),
        other => panic!("expected a TTL, got {other:?}"),
    }
    assert_eq!(s.get("quota-k").await.unwrap().as_deref(), Some("1"));
    eventually("quota-k expires", || async {
        s.get("quota-k").await.unwrap().is_none()
    })
    .await;
    assert!(
        start.elapsed() >= Duration::from_millis(140),
        "{:?}",
        start.elapsed()
    );
    eventually("list expires", || async {
        s.list_range("list").await.unwrap().is_empty()
    })
    .await;
    for key in ["quota-k", "list"] {
        assert!(!s.exists(key).await.unwrap());
        assert_eq!(s.ttl(key).await.unwrap(), Ttl::Missing);
        assert!(!s.expire(key, Duration::from_secs(9)).await.unwrap());
    }
    assert_eq!(s.get_many(&["quota-k".into()]).await.unwrap(), vec![None]);
    let mut keys = s.keys_with_prefix("").await.unwrap();
    keys.sort();
    assert_eq!(keys, vec!["keep"]);
    assert!(!s.set_xx("quota-k", "2", None).await.unwrap());
    assert!(!s.delete("quota-k").await.unwrap());
    // An expired counter starts again from zero, without the old TTL.
    s.set("c", "41", Some(Duration::from_millis(50)))
        .await
        .unwrap();
    eventually("c expires", || async { !s.exists("c").await.unwrap() }).await;
    assert_eq!(s.incr_by("c", 1).await.unwrap(), 1);
    assert_eq!(s.ttl("c").await.unwrap(), Ttl::Persistent);
    assert!(s.set_nx("quota-k", "fresh", None).await.unwrap());
    assert_eq!(s.get("quota-k").await.unwrap().as_deref(), Some("fresh"));
}

#[tokio::test]
async fn ttl_rules() {
    let dir = tempdir();
    let s = open(dir.path()).await;
    let zero = s.set("k", "v", Some(Duration::ZERO)).await;
    assert!(
        matches!(zero, Err(StoreError::InvalidTtl { .. })),
        "{zero:?}"
    );
    assert!(!s.exists("k").await.unwrap());
    // A sub-millisecond TTL rounds up instead of expiring at once.
    s.set("k", "v", Some(Duration::from_micros(10)))
        .await
        .unwrap();
    s.set("k", "v", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    // A plain SET clears the TTL.
    s.set("k", "v", None).await.unwrap();
    assert_eq!(s.ttl("k").await.unwrap(), Ttl::Persistent);
    assert!(!s.expire("missing", Duration::from_secs(1)).await.unwrap());
    assert!(s.expire("k", Duration::from_secs(100)).await.unwrap());
    let ttl = s.ttl("k").await.unwrap().remaining().unwrap();
    assert!(
        ttl > Duration::from_secs(99) && ttl <= Duration::from_secs(100),
        "{ttl:?}"
    );
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some("v"));
    // A huge TTL saturates rather than overflowing.
    s.set("far", "v", Some(Duration::MAX)).await.unwrap();
    assert!(matches!(s.ttl("far").await.unwrap(), Ttl::Expires(_)));
    // EXPIRE 0 deletes, as in Redis.
    assert!(s.expire("k", Duration::ZERO).await.unwrap());
    assert!(!s.exists("k").await.unwrap());
}

#[tokio::test]
async fn set_nx_and_xx() {
    let dir = tempdir();
    let s = open(dir.path()).await;
    assert!(!s.set_xx("k", "x", None).await.unwrap());
    assert!(!s.exists("k").await.unwrap());
    assert!(s.set_nx("k", "1", None).await.unwrap());
    assert!(!s.set_nx("k", "2", None).await.unwrap());
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some("1"));
    assert!(s
        .set_xx("k", "3", Some(Duration::from_secs(30)))
        .await
        .unwrap());
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some("3"));
    assert!(s.ttl("k").await.unwrap().remaining().is_some());
    // NX/XX look at existence of any type.
    s.list_push("l", "a").await.unwrap();
    assert!(!s.set_nx("l", "s", None).await.unwrap());
    assert!(s.set_xx("l", "s", None).await.unwrap());
    assert_eq!(s.get("l").await.unwrap().as_deref(), Some("s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_incr_loses_no_update() {
    let dir = tempdir();
    let s = open(dir.path()).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..200 {
                s.incr_by("quota-x", 1).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.get("quota-x").await.unwrap().as_deref(), Some("1600"));
    assert_eq!(s.incr_by("quota-x", -600).await.unwrap(), 1000);
}

#[tokio::test]
async fn incr_keeps_ttl_and_rejects_non_integers() {
    let dir = tempdir();
    let s = open(dir.path()).await;
    assert_eq!(s.incr_by("q", 5).await.unwrap(), 5);
    assert_eq!(s.ttl("q").await.unwrap(), Ttl::Persistent);
    assert!(s.expire("q", Duration::from_secs(60)).await.unwrap());
    assert_eq!(s.incr_by("q", 1).await.unwrap(), 6);
    let ttl = s.ttl("q").await.unwrap().remaining().expect("TTL kept");
    assert!(ttl > Duration::from_secs(58), "{ttl:?}");
    for bad in ["abc", "", " 1", "01", "+1", "1.5", "99999999999999999999"] {
        s.set("n", bad, None).await.unwrap();
        let r = s.incr_by("n", 1).await;
        assert!(
            matches!(r, Err(StoreError::NotInteger { .. })),
            "{bad:?}: {r:?}"
        );
        assert_eq!(s.get("n").await.unwrap().as_deref(), Some(bad));
    }
    s.set("n", &i64::MAX.to_string(), None).await.unwrap();
    let r = s.incr_by("n", 1).await;
    assert!(matches!(r, Err(StoreError::Overflow { .. })), "{r:?}");
    assert_eq!(s.incr_by("n", i64::MIN).await.unwrap(), -1);
    s.set("n", "-7", None).await.unwrap();
    assert_eq!(s.incr_by("n", 0).await.unwrap(), -7);
}

fn wrong<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::WrongType { .. }))
}

#[tokio::test]
async fn wrong_type_errors() {
    let dir = tempdir();
    let s = open(dir.path()).await;
    s.set("str", "1", None).await.unwrap();
    s.list_push("list", "a").await.unwrap();
    s.set_add("set", "m").await.unwrap();
    assert!(wrong(&s.get("list").await));
    assert!(wrong(&s.get("set").await));
    assert!(wrong(&s.incr_by("list", 1).await));
    assert!(wrong(&s.list_push("str", "x").await));
    assert!(wrong(&s.list_push("set", "x").await));
    assert!(wrong(&s.list_range("str").await));
    assert!(wrong(&s.list_remove("set", "m").await));
    assert!(wrong(&s.set_add("list", "a").await));
    assert!(wrong(&s.set_remove("str", "1").await));
    assert!(wrong(&s.set_members("list").await));
    let err = s.get("list").await.unwrap_err().to_string();
    assert!(err.contains("WRONGTYPE") && err.contains("`list`"), "{err}");
    // Nothing was changed by the failed commands.
    assert_eq!(s.list_range("list").await.unwrap(), vec!["a"]);
    assert_eq!(s.get("str").await.unwrap().as_deref(), Some("1"));
    // MGET answers nil for non-strings; SET, DEL, EXISTS work on any type.
    let many = s
        .get_many(&["str".into(), "list".into(), "set".into()])
        .await
        .unwrap();
    assert_eq!(many, vec![Some("1".into()), None, None]);
    assert!(s.exists("set").await.unwrap());
    s.set("set", "now a string", None).await.unwrap();
    assert_eq!(s.get("set").await.unwrap().as_deref(), Some("now a string"));
    assert!(s.delete("list").await.unwrap());
    s.list_push("list", "fresh").await.unwrap();
}

#[tokio::test]
async fn list_push_range_remove() {
    let dir = tempdir();
    let s = open(dir.path()).await;
    assert!(s.list_range("cert-o-index").await.unwrap().is_empty());
    assert_eq!(s.list_remove("cert-o-index", "x").await.unwrap(), 0);
    for v in ["raw-a", "raw-b", "raw-a", "raw-c", "raw-a"] {
        s.list_push("cert-o-index", v).await.unwrap();
    }
    assert_eq!(
        s.list_range("cert-o-index").await.unwrap(),
        vec!["raw-a", "raw-b", "raw-a", "raw-c", "raw-a"]
    );
    assert_eq!(s.list_remove("cert-o-index", "raw-a").await.unwrap(), 3);
    assert_eq!(s.list_remove("cert-o-index", "raw-z").await.unwrap(), 0);
    assert_eq!(
        s.list_range("cert-o-index").await.unwrap(),
        vec!["raw-b", "raw-c"]
    );
    assert_eq!(s.list_remove("cert-o-index", "raw-b").await.unwrap(), 1);
    assert_eq!(s.list_remove("cert-o-index", "raw-c").await.unwrap(), 1);
    // An emptied list no longer exists.
    assert!(!s.exists("cert-o-index").await.unwrap());
    s.set("cert-o-index", "string now", None).await.unwrap();
}

#[tokio::test]
async fn set_add_remove_members() {
    let dir = tempdir();
    let s = open(dir.path()).await;
    assert!(s.set_members("s").await.unwrap().is_empty());
    assert!(!s.set_remove("s", "a").await.unwrap());
    assert!(s.set_add("s", "b").await.unwrap());
    assert!(s.set_add("s", "a").await.unwrap());
    assert!(!s.set_add("s", "a").await.unwrap());
    let mut members = s.set_members("s").await.unwrap();
    members.sort();
    assert_eq!(members, vec!["a", "b"]);
    assert!(s.set_remove("s", "a").await.unwrap());
    assert!(!s.set_remove("s", "a").await.unwrap());
    assert_eq!(s.set_members("s").await.unwrap(), vec!["b"]);
    assert!(s.set_remove("s", "b").await.unwrap());
    assert!(!s.exists("s").await.unwrap());
}

#[tokio::test]
async fn keys_with_prefix_lists_every_type() {
    let dir = tempdir();
    let s = open(dir.path()).await;
    for k in [
        "apikey-1",
        "apikey-2",
        "apikey",
        "apikez",
        "apike",
        "cert-raw-1",
        "b",
    ] {
        s.set(k, "v", None).await.unwrap();
    }
    s.list_push("apikey-list", "x").await.unwrap();
    s.set_add("apikey-set", "x").await.unwrap();
    let mut keys = s.keys_with_prefix("apikey-").await.unwrap();
    keys.sort();
    assert_eq!(
        keys,
        vec!["apikey-1", "apikey-2", "apikey-list", "apikey-set"]
    );
    assert_eq!(
        s.keys_with_prefix("cert-").await.unwrap(),
        vec!["cert-raw-1"]
    );
    assert!(s.keys_with_prefix("zzz").await.unwrap().is_empty());
    assert_eq!(s.keys_with_prefix("").await.unwrap().len(), 9);
}

#[tokio::test]
async fn values_and_ttls_survive_reopen() {
    let dir = tempdir();
    {
        let s = open(dir.path()).await;
        s.set("apikey-p", "session", None).await.unwrap();
        s.set("short", "v", Some(Duration::from_millis(100)))
            .await
            .unwrap();
        s.set("long", "v", Some(Duration::from_secs(3600)))
            .await
            .unwrap();
        s.list_push("cert-o-index", "raw-1").await.unwrap();
        s.set_add("members", "m").await.unwrap();
        assert_eq!(s.incr_by("quota-p", 3).await.unwrap(), 3);
        // Dropping the last handle closes the file (the writer thread is joined).
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let s = open(dir.path()).await;
    assert_eq!(s.get("apikey-p").await.unwrap().as_deref(), Some("session"));
    assert_eq!(s.get("short").await.unwrap(), None, "expired while closed");
    let ttl = s.ttl("long").await.unwrap().remaining().expect("TTL kept");
    assert!(ttl > Duration::from_secs(3590), "{ttl:?}");
    assert_eq!(s.list_range("cert-o-index").await.unwrap(), vec!["raw-1"]);
    assert_eq!(s.set_members("members").await.unwrap(), vec!["m"]);
    assert_eq!(s.incr_by("quota-p", 1).await.unwrap(), 4);
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempdir();
    let nested = dir.path().join("a/b");
    let first = open(&nested).await;
    assert!(nested.join(FILE_NAME).is_file());
    let second = Store::open_embedded(&nested).await;
    match second {
        Err(e @ StoreError::AlreadyOpen { .. }) => {
            assert!(e.to_string().contains("already open"), "{e}")
        }
        other => panic!("expected AlreadyOpen, got {other:?}"),
    }
    first.set("k", "v", None).await.unwrap();
    drop(first);
    let again = open(&nested).await;
    assert_eq!(again.get("k").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn publish_reaches_every_subscriber() {
    let dir = tempdir();
    let s = open(dir.path()).await;
    s.publish("tyk.cluster.notifications", "nobody listens")
        .await
        .unwrap();
    let mut a = s.subscribe();
    let mut b = s.clone().subscribe();
    s.publish(
        "tyk.cluster.notifications",
        r#"{"Command":"KeySpaceUpdateNotification"}"#,
    )
    .await
    .unwrap();
    let expected = Notification {
        channel: "tyk.cluster.notifications".into(),
        payload: r#"{"Command":"KeySpaceUpdateNotification"}"#.into(),
    };
    for rx in [&mut a, &mut b] {
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("delivered")
            .expect("not lagged");
        assert_eq!(got, expected);
    }
}

#[tokio::test]
async fn background_purge_removes_expired_records_from_the_file() {
    let dir = tempdir();
    let options = EmbeddedOptions {
        purge_interval: Duration::from_millis(20),
        ..EmbeddedOptions::default()
    };
    let store = Store::Embedded(Arc::new(
        EmbeddedStore::open(dir.path(), options).await.unwrap(),
    ));
    store
        .set("gone", "v", Some(Duration::from_millis(30)))
        .await
        .unwrap();
    store
        .set("stays", "v", Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    // Re-set without TTL: its stale index entry must not delete it.
    store
        .set("rewritten", "v", Some(Duration::from_millis(30)))
        .await
        .unwrap();
    store.set("rewritten", "v2", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(store);
    // Look at the raw file: the purge must have physically removed the record.
    let db = redb::Database::create(dir.path().join(FILE_NAME)).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let kv = txn
        .open_table(redb::TableDefinition::<&str, &[u8]>::new("kv"))
        .unwrap();
    assert!(kv.get("gone").unwrap().is_none());
    assert!(kv.get("stays").unwrap().is_some());
    assert!(kv.get("rewritten").unwrap().is_some());
    let exp = txn
        .open_table(redb::TableDefinition::<(u64, &str), ()>::new("expiry"))
        .unwrap();
    let indexed: Vec<String> = redb::ReadableTable::iter(&exp)
        .unwrap()
        .map(|e| e.unwrap().0.value().1.to_owned())
        .collect();
    assert_eq!(indexed, vec!["stays"]);
}

/// Environment variable that turns [`child_process_helper`] on: `crash:<dir>` or `lock:<dir>`.
const CHILD_ENV: &str = "CERTGATE_STORE_TEST_CHILD";

/// Not a test on its own: the body of the child process spawned by the two tests below.
#[tokio::test]
async fn child_process_helper() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    if let Some(dir) = mode.strip_prefix("lock:") {
        match Store::open_embedded(Path::new(dir)).await {
            Err(StoreError::AlreadyOpen { .. }) => println!("CHILD ALREADY_OPEN"),
            other => println!("CHILD UNEXPECTED {other:?}"),
        }
    } else if let Some(dir) = mode.strip_prefix("crash:") {
        let s = open(Path::new(dir)).await;
        for i in 0u64.. {
            s.set(&format!("k{i}"), &format!("v{i}"), None)
                .await
                .unwrap();
            s.incr_by("acked", 1).await.unwrap();
            // Printed only once both writes were acknowledged.
            println!("CHILD ACK {i}");
        }
    }
}

/// Runs [`child_process_helper`] in a new process of this test binary.
fn spawn_child(mode: String) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "store::tests::child_process_helper",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(CHILD_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child test process")
}

#[tokio::test]
async fn another_process_gets_a_clear_error() {
    let dir = tempdir();
    let _held = open(dir.path()).await;
    let child = spawn_child(format!("lock:{}", dir.path().display()));
    let out = child.wait_with_output().expect("child output");
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("CHILD ALREADY_OPEN"), "child said: {out}");
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempdir();
    let mut child = spawn_child(format!("crash:{}", dir.path().display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut last_ack = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while last_ack.is_none_or(|n| n < 50) {
        assert!(Instant::now() < deadline, "child too slow");
        let line = match lines.next() {
            Some(line) => line.expect("read child output"),
            None => panic!("child exited early"),
        };
        if let Some(n) = line.strip_prefix("CHILD ACK ") {
            last_ack = Some(n.parse::<u64>().expect("ack number"));
        }
    }
    child.kill().expect("SIGKILL child"); // SIGKILL on unix: no clean shutdown
    child.wait().expect("reap child");
    // Acknowledgements still in the pipe count too.
    for line in lines.map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("CHILD ACK ") {
            last_ack = n.parse().ok().or(last_ack);
        }
    }
    let last = last_ack.expect("some acks");
    let s = open(dir.path()).await;
    for i in 0..=last {
        assert_eq!(
            s.get(&format!("k{i}")).await.unwrap(),
            Some(format!("v{i}"))
        );
    }
    let acked: u64 = s.get("acked").await.unwrap().unwrap().parse().unwrap();
    assert!(
        acked > last,
        "counter {acked} lost acknowledged increments (last ack {last})"
    );
}
