//! The behaviour every backend must show, written once against [`Store`]: each function
//! gets a fresh, empty store and is run for the embedded store, a standalone Redis and a
//! Redis Cluster by the `suite!` invocation in `mod.rs`.

use std::time::{Duration, Instant};

use super::super::{CounterIncr, Notification, Store, StoreError, Ttl};
use super::eventually;

fn wrong<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::WrongType { .. }))
}

pub(super) async fn set_get_delete_exists(s: &Store) {
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

pub(super) async fn arbitrary_keys_and_values(s: &Store) {
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

pub(super) async fn ttl_expires_and_is_invisible_to_every_read(s: &Store) {
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

pub(super) async fn ttl_rules(s: &Store) {
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

pub(super) async fn set_nx_and_xx(s: &Store) {
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

pub(super) async fn concurrent_incr_loses_no_update(s: &Store) {
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

pub(super) async fn incr_keeps_ttl_and_rejects_non_integers(s: &Store) {
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

pub(super) async fn wrong_type_errors(s: &Store) {
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

pub(super) async fn list_push_range_remove(s: &Store) {
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

pub(super) async fn set_add_remove_members(s: &Store) {
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

pub(super) async fn keys_with_prefix_lists_every_type(s: &Store) {
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

pub(super) async fn publish_reaches_every_subscriber(s: &Store) {
    const CH: &str = "tyk.cluster.notifications";
    async fn next(rx: &mut tokio::sync::broadcast::Receiver<Notification>) -> Notification {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("delivered")
            .expect("not lagged")
    }
    s.publish(CH, "nobody listens").await.unwrap();
    // Delivery may be asynchronous (Redis): wait until an earlier message has come through
    // before subscribing, so that what a and b see first must be the next one.
    let mut early = s.subscribe();
    s.publish(CH, "early").await.unwrap();
    while next(&mut early).await.payload != "early" {}
    let mut a = s.subscribe();
    let mut b = s.clone().subscribe();
    s.publish(CH, r#"{"Command":"KeySpaceUpdateNotification"}"#)
        .await
        .unwrap();
    let expected = Notification {
        channel: CH.into(),
        payload: r#"{"Command":"KeySpaceUpdateNotification"}"#.into(),
    };
    for rx in [&mut a, &mut b, &mut early] {
        assert_eq!(next(rx).await, expected);
    }
}

pub(super) async fn get_many_keeps_order_across_keys(s: &Store) {
    assert!(s.get_many(&[]).await.unwrap().is_empty());
    // Many keys, so a cluster spreads them over every master (and some share a slot).
    let keys: Vec<String> = (0..60).map(|i| format!("apikey-{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        if !i.is_multiple_of(3) {
            s.set(k, &format!("v{i}"), None).await.unwrap();
        }
    }
    s.list_push("apikey-list", "x").await.unwrap();
    let mut asked: Vec<String> = keys.iter().rev().cloned().collect();
    asked.push("apikey-list".into());
    asked.push("{tag}a".into());
    asked.push("apikey-5".into());
    s.set("{tag}a", "tagged", None).await.unwrap();
    let got = s.get_many(&asked).await.unwrap();
    assert_eq!(got.len(), asked.len());
    for (k, v) in asked.iter().zip(&got) {
        let expected = match k.as_str() {
            "apikey-list" => None,
            "{tag}a" => Some("tagged".to_owned()),
            _ => {
                let i: usize = k.trim_start_matches("apikey-").parse().unwrap();
                (!i.is_multiple_of(3)).then(|| format!("v{i}"))
            }
        };
        assert_eq!(v, &expected, "key {k}");
    }
}

pub(super) async fn keys_with_prefix_takes_glob_characters_literally(s: &Store) {
    for k in [
        "a*b", "a*bc", "axb", "a?c", "abc", "a[1]", "a1", "a\\z", "a^x", "a-y", "ab",
    ] {
        s.set(k, "v", None).await.unwrap();
    }
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    for (prefix, expected) in [
        ("a*", vec!["a*b", "a*bc"]),
        ("a?", vec!["a?c"]),
        ("a[", vec!["a[1]"]),
        ("a[1", vec!["a[1]"]),
        ("a\\", vec!["a\\z"]),
        ("a^", vec!["a^x"]),
        ("a-", vec!["a-y"]),
        ("ab", vec!["ab", "abc"]),
        ("]", vec![]),
    ] {
        assert_eq!(
            sorted(s.keys_with_prefix(prefix).await.unwrap()),
            expected,
            "prefix {prefix:?}"
        );
    }
    assert_eq!(s.keys_with_prefix("a").await.unwrap().len(), 11);
}

pub(super) async fn health_is_reported(s: &Store) {
    assert!(s.is_connected());
    s.ping().await.unwrap();
    let debug = format!("{s:?}");
    assert!(debug.starts_with("Store::"), "{debug}");
}

fn incr(key: &str, by: i64, ttl: Option<Duration>) -> CounterIncr {
    CounterIncr::new(key, by, ttl)
}

const MINUTE: Option<Duration> = Some(Duration::from_secs(60));

pub(super) async fn incr_window_sets_the_ttl_only_on_creation(s: &Store) {
    assert!(s.incr_window(&[]).await.unwrap().is_empty());
    let got = s
        .incr_window(&[
            incr("rate-limit-k", 1, MINUTE),
            incr("quota-k", 5, None),
            // Already created by the first item: neither a new TTL nor a reset.
            incr("rate-limit-k", 2, Some(Duration::from_secs(1))),
        ])
        .await
        .unwrap();
    assert_eq!(got, vec![1, 5, 3]);
    assert_eq!(s.ttl("quota-k").await.unwrap(), Ttl::Persistent);
    let first = s.ttl("rate-limit-k").await.unwrap().remaining().unwrap();
    assert!(first > Duration::from_secs(58), "{first:?}");
    // A second call does not extend (or shorten) the TTL.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let got = s
        .incr_window(&[incr("rate-limit-k", 1, Some(Duration::from_secs(3600)))])
        .await
        .unwrap();
    assert_eq!(got, vec![4]);
    let second = s.ttl("rate-limit-k").await.unwrap().remaining().unwrap();
    assert!(
        second < first && second > Duration::from_secs(58),
        "{second:?}"
    );
    // An existing persistent counter stays persistent.
    s.set("c", "7", None).await.unwrap();
    assert_eq!(
        s.incr_window(&[incr("c", 1, Some(Duration::from_secs(1)))])
            .await
            .unwrap(),
        vec![8]
    );
    assert_eq!(s.ttl("c").await.unwrap(), Ttl::Persistent);
    assert_eq!(s.get("c").await.unwrap().as_deref(), Some("8"));
    // Adding 0 creates a missing counter (with the TTL) and changes nothing else.
    assert_eq!(
        s.incr_window(&[incr("zero", 0, MINUTE), incr("c", 0, None)])
            .await
            .unwrap(),
        vec![0, 8]
    );
    assert!(s.ttl("zero").await.unwrap().remaining().is_some());
    assert_eq!(s.ttl("c").await.unwrap(), Ttl::Persistent);
}

pub(super) async fn incr_window_counter_expires_and_restarts_from_zero(s: &Store) {
    let short = Some(Duration::from_millis(200));
    let start = Instant::now();
    for expected in 1..=3 {
        assert_eq!(
            s.incr_window(&[incr("quota-w", 1, short)]).await.unwrap(),
            vec![expected]
        );
    }
    eventually("the counter expires", || async {
        !s.exists("quota-w").await.unwrap()
    })
    .await;
    assert!(
        start.elapsed() >= Duration::from_millis(190),
        "{:?}",
        start.elapsed()
    );
    // A new window: from zero again, with a fresh TTL.
    assert_eq!(
        s.incr_window(&[incr("quota-w", 1, MINUTE)]).await.unwrap(),
        vec![1]
    );
    let ttl = s.ttl("quota-w").await.unwrap().remaining().unwrap();
    assert!(ttl > Duration::from_secs(58), "{ttl:?}");
}

pub(super) async fn incr_window_concurrent_calls_lose_no_increment(s: &Store) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..100 {
                let v = s
                    .incr_window(&[incr("quota-c", 1, MINUTE), incr("rate-limit-c", 2, None)])
                    .await
                    .unwrap();
                seen.push(v[0]);
            }
            seen
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.extend(t.await.unwrap());
    }
    // Every call got its own value: no two saw the same count, none was lost.
    seen.sort_unstable();
    assert_eq!(seen, (1..=800).collect::<Vec<i64>>());
    assert_eq!(s.get("quota-c").await.unwrap().as_deref(), Some("800"));
    assert_eq!(
        s.get("rate-limit-c").await.unwrap().as_deref(),
        Some("1600")
    );
}

pub(super) async fn incr_window_negative_increments_give_units_back(s: &Store) {
    assert_eq!(
        s.incr_window(&[incr("quota-n", 3, MINUTE)]).await.unwrap(),
        vec![3]
    );
    assert_eq!(
        s.incr_window(&[incr("quota-n", -1, MINUTE), incr("quota-n", -5, None)])
            .await
            .unwrap(),
        vec![2, -3]
    );
    assert_eq!(s.get("quota-n").await.unwrap().as_deref(), Some("-3"));
    assert!(s.ttl("quota-n").await.unwrap().remaining().is_some());
    // Giving back on a missing counter creates it below zero, with the TTL.
    assert_eq!(
        s.incr_window(&[incr("fresh", -1, MINUTE)]).await.unwrap(),
        vec![-1]
    );
    assert!(s.ttl("fresh").await.unwrap().remaining().is_some());
}

pub(super) async fn incr_window_errors(s: &Store) {
    s.list_push("list", "a").await.unwrap();
    s.set("text", "abc", None).await.unwrap();
    s.set("max", &i64::MAX.to_string(), None).await.unwrap();
    let r = s.incr_window(&[incr("list", 1, MINUTE)]).await;
    assert!(wrong(&r), "{r:?}");
    let r = s.incr_window(&[incr("text", 1, None)]).await;
    assert!(
        matches!(&r, Err(StoreError::NotInteger { key }) if key == "text"),
        "{r:?}"
    );
    let r = s.incr_window(&[incr("max", 1, None)]).await;
    assert!(
        matches!(&r, Err(StoreError::Overflow { key }) if key == "max"),
        "{r:?}"
    );
    // The failing item names its own key, wherever it is in the call.
    let r = s
        .incr_window(&[incr("ok", 1, None), incr("text", 1, None)])
        .await;
    assert!(
        matches!(&r, Err(StoreError::NotInteger { key }) if key == "text"),
        "{r:?}"
    );
    // A zero TTL is refused before anything is applied.
    let r = s
        .incr_window(&[incr("z1", 1, None), incr("z2", 1, Some(Duration::ZERO))])
        .await;
    assert!(
        matches!(&r, Err(StoreError::InvalidTtl { key }) if key == "z2"),
        "{r:?}"
    );
    assert!(!s.exists("z1").await.unwrap());
    // The failing keys are unchanged.
    assert_eq!(s.list_range("list").await.unwrap(), vec!["a"]);
    assert_eq!(s.get("text").await.unwrap().as_deref(), Some("abc"));
    assert_eq!(s.get("max").await.unwrap(), Some(i64::MAX.to_string()));
}

pub(super) async fn incr_window_keeps_order_across_keys(s: &Store) {
    // Many keys, so a cluster spreads them over every master; some repeat.
    let mut items = Vec::new();
    for i in 0..40i64 {
        items.push(incr(&format!("quota-{}", i % 25), i + 1, MINUTE));
    }
    items.push(incr("{tag}a", 1, None));
    items.push(incr("{tag}b", 2, None));
    let got = s.incr_window(&items).await.unwrap();
    let mut totals = std::collections::HashMap::new();
    let expected: Vec<i64> = items
        .iter()
        .map(|item| {
            let total = totals.entry(item.key.clone()).or_insert(0);
            *total += item.by;
            *total
        })
        .collect();
    assert_eq!(got, expected);
    for i in 0..25 {
        let key = format!("quota-{i}");
        assert_eq!(s.get(&key).await.unwrap(), Some(totals[&key].to_string()));
    }
}

/// Every other command sees (and changes) what `incr_window` counted: the embedded store
/// holds counters in memory, and must answer exactly as Redis does.
pub(super) async fn incr_window_counters_mix_with_every_command(s: &Store) {
    let k = "quota-mix";
    assert_eq!(s.incr_window(&[incr(k, 3, MINUTE)]).await.unwrap(), vec![3]);
    assert_eq!(s.get(k).await.unwrap().as_deref(), Some("3"));
    assert!(s.exists(k).await.unwrap());
    assert!(s.ttl(k).await.unwrap().remaining().is_some());
    assert_eq!(
        s.get_many(&[k.to_string(), "nothing".into()])
            .await
            .unwrap(),
        vec![Some("3".to_string()), None]
    );
    assert!(s
        .keys_with_prefix("quota-m")
        .await
        .unwrap()
        .contains(&k.to_string()));
    assert_eq!(s.incr_by(k, 2).await.unwrap(), 5);
    assert_eq!(s.incr_window(&[incr(k, 1, MINUTE)]).await.unwrap(), vec![6]);

    // DEL: gone for every read; the next count starts a new period.
    assert!(s.delete(k).await.unwrap());
    assert!(!s.delete(k).await.unwrap());
    assert_eq!(s.get(k).await.unwrap(), None);
    assert_eq!(s.ttl(k).await.unwrap(), Ttl::Missing);
    assert!(!s
        .keys_with_prefix("quota-m")
        .await
        .unwrap()
        .contains(&k.to_string()));
    assert_eq!(s.incr_window(&[incr(k, 1, MINUTE)]).await.unwrap(), vec![1]);

    // SET replaces the count (and its TTL); counting goes on from the new value.
    s.set(k, "40", None).await.unwrap();
    assert_eq!(s.ttl(k).await.unwrap(), Ttl::Persistent);
    assert_eq!(
        s.incr_window(&[incr(k, 1, MINUTE)]).await.unwrap(),
        vec![41]
    );
    assert!(!s.set_nx(k, "0", None).await.unwrap(), "exists");
    assert!(s.set_xx(k, "7", MINUTE).await.unwrap());
    assert_eq!(s.incr_window(&[incr(k, 1, None)]).await.unwrap(), vec![8]);
    assert!(
        s.ttl(k).await.unwrap().remaining().is_some(),
        "TTL from SET XX"
    );

    // EXPIRE on a counted key.
    assert!(s.expire(k, Duration::from_millis(50)).await.unwrap());
    eventually("the counted key expires", || async {
        s.get(k).await.unwrap().is_none()
    })
    .await;
    assert_eq!(s.incr_window(&[incr(k, 1, None)]).await.unwrap(), vec![1]);

    // A counter is a string: list and set commands on it are WRONGTYPE, and a text value
    // makes counting fail without changing it.
    assert!(wrong(&s.list_push(k, "x").await));
    assert!(wrong(&s.set_add(k, "x").await));
    assert_eq!(s.get(k).await.unwrap().as_deref(), Some("1"));
    s.set(k, "text", None).await.unwrap();
    let r = s.incr_window(&[incr(k, 1, None)]).await;
    assert!(matches!(r, Err(StoreError::NotInteger { .. })), "{r:?}");
    assert_eq!(s.get(k).await.unwrap().as_deref(), Some("text"));

    // A list replaced by a counter after DEL, and back.
    assert!(s.delete(k).await.unwrap());
    s.list_push(k, "a").await.unwrap();
    let r = s.incr_window(&[incr(k, 1, None)]).await;
    assert!(matches!(r, Err(StoreError::WrongType { .. })), "{r:?}");
    assert_eq!(s.list_range(k).await.unwrap(), vec!["a"]);
}
