//! Embedded-only behaviour: persistence across reopen and `kill -9`, redb's file lock, the
//! background purge.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::embedded::{EmbeddedOptions, EmbeddedStore, FILE_NAME};
use super::super::{Store, StoreError};

async fn open(dir: &Path) -> Store {
    Store::open_embedded(dir).await.expect("open store")
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
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
    } else if let Some(dir) = mode.strip_prefix("counters:") {
        let s = open(Path::new(dir)).await;
        for _ in 0..200 {
            s.incr_window(&[super::super::CounterIncr::new("quota-k", 1, None)])
                .await
                .unwrap();
        }
        println!("CHILD COUNTED");
        tokio::time::sleep(Duration::from_secs(60)).await;
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
            "store::tests::embedded::child_process_helper",
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

/// Counter increments commit without an fsync but are on disk within
/// `COUNTER_FLUSH`: a process killed after that loses none of them.
#[tokio::test]
async fn counter_increments_reach_the_disk_within_the_flush_window() {
    let dir = tempdir();
    let mut child = spawn_child(format!("counters:{}", dir.path().display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("CHILD COUNTED") => break,
            Some(_) => continue,
            None => panic!("child exited early"),
        }
    }
    std::thread::sleep(super::super::embedded::COUNTER_FLUSH * 5);
    child.kill().expect("SIGKILL child");
    child.wait().expect("reap child");
    let s = open(dir.path()).await;
    assert_eq!(s.get("quota-k").await.unwrap().as_deref(), Some("200"));
}

#[tokio::test]
async fn incr_window_is_all_or_nothing_and_persists() {
    use super::super::CounterIncr;
    let dir = tempdir();
    {
        let s = open(dir.path()).await;
        s.set("text", "abc", None).await.unwrap();
        let r = s
            .incr_window(&[
                CounterIncr::new("quota-a", 1, Some(Duration::from_secs(3600))),
                CounterIncr::new("text", 1, None),
            ])
            .await;
        assert!(matches!(r, Err(StoreError::NotInteger { .. })), "{r:?}");
        assert!(!s.exists("quota-a").await.unwrap(), "nothing applied");
        let ok = s
            .incr_window(&[CounterIncr::new(
                "quota-a",
                5,
                Some(Duration::from_secs(3600)),
            )])
            .await
            .unwrap();
        assert_eq!(ok, vec![5]);
    }
    let s = open(dir.path()).await;
    let again = s
        .incr_window(&[CounterIncr::new("quota-a", 1, Some(Duration::from_secs(1)))])
        .await
        .unwrap();
    assert_eq!(again, vec![6]);
    let ttl = s.ttl("quota-a").await.unwrap().remaining().unwrap();
    assert!(ttl > Duration::from_secs(3590), "{ttl:?}");
}

/// Counters are held in memory between saves: closing the store saves them at once.
#[tokio::test]
async fn held_counters_are_saved_when_the_store_closes() {
    use super::super::CounterIncr;
    let dir = tempdir();
    {
        let s = open(dir.path()).await;
        for _ in 0..50 {
            s.incr_window(&[
                CounterIncr::new("quota-c", 1, Some(Duration::from_secs(3600))),
                CounterIncr::new("rate-limit-c:1", 1, None),
            ])
            .await
            .unwrap();
        }
        assert!(s.delete("rate-limit-c:1").await.unwrap());
    }
    let s = open(dir.path()).await;
    assert_eq!(s.get("quota-c").await.unwrap().as_deref(), Some("50"));
    assert!(s.ttl("quota-c").await.unwrap().remaining().is_some());
    assert_eq!(s.get("rate-limit-c:1").await.unwrap(), None, "deleted");
}

/// A write racing the first count of a key is ordered before or after it, never lost:
/// whatever `incr_window` answered, a later read agrees with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_racing_a_counter_load_is_never_lost() {
    use super::super::CounterIncr;
    let dir = tempdir();
    let s = open(dir.path()).await;
    for round in 0..200 {
        let key = format!("quota-race-{round}");
        let items = [CounterIncr::new(key.clone(), 1, None)];
        // Both orders of polling: the write sent first, or the count first.
        let (set, counted) = if round % 2 == 0 {
            tokio::join!(s.set(&key, "100", None), s.incr_window(&items))
        } else {
            let (c, w) = tokio::join!(s.incr_window(&items), s.set(&key, "100", None));
            (w, c)
        };
        set.unwrap();
        let counted = counted.unwrap()[0];
        let now = s.get(&key).await.unwrap();
        if counted == 101 {
            assert_eq!(
                now.as_deref(),
                Some("101"),
                "round {round}: counted after the SET"
            );
        } else {
            assert_eq!(counted, 1, "round {round}");
            assert_eq!(
                now.as_deref(),
                Some("100"),
                "round {round}: SET after the count"
            );
        }
        let (deleted, counted) = tokio::join!(s.delete(&key), s.incr_window(&items));
        let counted = counted.unwrap()[0];
        let now = s.get(&key).await.unwrap();
        assert!(deleted.unwrap(), "round {round}");
        match now {
            None => assert!(counted > 1, "round {round}: DEL after the count"),
            Some(v) => assert_eq!((v.as_str(), counted), ("1", 1), "round {round}"),
        }
    }
}
