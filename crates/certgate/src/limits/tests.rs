//! Behaviour of the limits: pure window arithmetic first, then every rule against the embedded
//! store, a standalone Redis and a Redis Cluster (`backends!` below runs each `shared::*`
//! function on the three). Time is injected where a test needs precise window positions; the
//! quota periods, which live in the store's TTLs, use short real periods and polling.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::*;
use crate::session::{AccessDefinition, SessionState};
use crate::store::{RedisOptions, Store};
use certgate_testkit::testredis::{RedisCluster, RedisServer};

/// A unix time `secs` seconds (plus `ms`) after the epoch.
fn at(secs: u64, ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms)
}

fn rate(rate: f64, per: f64) -> ApiLimit {
    ApiLimit {
        rate,
        per,
        ..ApiLimit::default()
    }
}

fn quota(max: i64, renewal: i64) -> ApiLimit {
    ApiLimit {
        quota_max: max,
        quota_renewal_rate: renewal,
        ..ApiLimit::default()
    }
}

// ---- pure --------------------------------------------------------------------------------------

#[test]
fn counter_names_follow_tyk() {
    assert_eq!(quota_key("abc", ""), "quota-abc");
    assert_eq!(quota_key("abc", "api1"), "quota-api1-abc");
    assert_eq!(rate_limit_key("abc", ""), "rate-limit-abc");
    assert_eq!(rate_limit_key("abc", "api1"), "rate-limit-api1-abc");
    assert_eq!(global_rate_limit_key("api1"), "rate-limit-apilimiter-api1");
    let w = Window::new(5.0, 10.0, at(1_000_003, 0)).unwrap();
    let items = w.items("rate-limit-abc");
    assert_eq!(items[0].key, "rate-limit-abc:100000");
    assert_eq!(items[0].by, 1);
    assert_eq!(items[0].ttl_if_new, Some(Duration::from_millis(21_000)));
    assert_eq!(items[1].key, "rate-limit-abc:99999");
    assert_eq!(items[1].by, 0);
    assert_eq!(items[1].ttl_if_new, Some(Duration::from_millis(7_000)));
}

#[test]
fn windows_are_positioned_on_the_clock() {
    let w = Window::new(10.0, 2.0, at(101, 500)).unwrap();
    assert_eq!((w.len_ms, w.index, w.elapsed_ms), (2000, 50, 1500));
    assert_eq!(w.rate, 10.0);
    // A fractional period in milliseconds.
    let w = Window::new(3.0, 0.25, at(1, 100)).unwrap();
    assert_eq!((w.len_ms, w.index, w.elapsed_ms), (250, 4, 100));
    // Below one request per window: one per longer window. Above: rounded down.
    let w = Window::new(0.5, 1.0, at(10, 0)).unwrap();
    assert_eq!((w.rate, w.len_ms), (1.0, 2000));
    assert_eq!(Window::new(2.9, 1.0, at(10, 0)).unwrap().rate, 2.0);
    // Off: non-positive or non-finite numbers.
    for (r, p) in [
        (0.0, 1.0),
        (-1.0, 1.0),
        (5.0, 0.0),
        (5.0, -1.0),
        (f64::NAN, 1.0),
        (5.0, f64::NAN),
        (f64::INFINITY, 1.0),
        (5.0, f64::INFINITY),
    ] {
        assert!(Window::new(r, p, at(10, 0)).is_none(), "{r} per {p}");
    }
    // A huge period is capped, not overflowed.
    let w = Window::new(1.0, 1e300, at(10, 0)).unwrap();
    assert_eq!(w.index, 0);
    assert!(w.previous_index().is_none());
    assert_eq!(w.items("n").len(), 1);
}

#[test]
fn the_previous_window_weighs_by_its_overlap() {
    // 10 s windows; 3 s into the current one, 70 % of the previous still counts.
    let w = Window::new(10.0, 10.0, at(103, 0)).unwrap();
    assert!((w.estimate(2, 10) - 9.0).abs() < 1e-9);
    assert!((w.estimate(0, 0)).abs() < 1e-9);
    // Negative counts (given back across a window change) never help.
    assert!((w.estimate(1, -4) - 1.0).abs() < 1e-9);
    let h = w.headers(9.0);
    assert_eq!(
        h,
        RateHeaders {
            limit: 10,
            remaining: 1,
            reset: 110
        }
    );
    assert_eq!(w.headers(12.5).remaining, 0);
}

#[test]
fn quota_usage_is_written_back_like_tyk() {
    let mut s = SessionState {
        quota_remaining: 7,
        quota_renews: 1,
        ..SessionState::default()
    };
    let scoped = AccessDefinition {
        allowance_scope: "api1".into(),
        limit: quota(10, 60),
        ..AccessDefinition::default()
    };
    let unscoped = AccessDefinition {
        limit: quota(5, 60),
        ..AccessDefinition::default()
    };
    s.access_rights.insert("api1".into(), scoped);
    s.access_rights.insert("api2".into(), unscoped);
    s.access_rights
        .insert("api3".into(), AccessDefinition::default());
    let usage = QuotaUsage {
        used: 4,
        remaining: 6,
        renews: 1234,
        new_period: false,
    };
    apply_quota_usage(&mut s, "api1", &usage);
    assert_eq!(s.access_rights["api1"].limit.quota_remaining, 6);
    assert_eq!(s.access_rights["api1"].limit.quota_renews, 1234);
    assert_eq!(s.access_rights["api2"].limit.quota_remaining, 0);
    assert!(s.access_rights["api3"].limit.is_empty());
    assert_eq!((s.quota_remaining, s.quota_renews), (7, 1));
    apply_quota_usage(&mut s, "", &usage);
    assert_eq!((s.quota_remaining, s.quota_renews), (6, 1234));
    assert_eq!(s.access_rights["api2"].limit.quota_remaining, 6);
    assert!(
        s.access_rights["api3"].limit.is_empty(),
        "empty limits stay empty"
    );
}

// ---- against every backend ------------------------------------------------------------------

/// A fresh store, a second handle to the same data (another "node": a second connection for
/// Redis), and whatever keeps the backend alive.
struct Fixture {
    store: Store,
    other_node: Store,
    _backend: Box<dyn std::any::Any + Send>,
}

fn redis_options(addrs: Vec<String>, cluster: bool) -> RedisOptions {
    RedisOptions {
        addrs,
        cluster,
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(2),
        channels: Vec::new(),
        ..RedisOptions::default()
    }
}

async fn open_redis(addrs: Vec<String>, cluster: bool) -> Store {
    let store = Store::open_redis(&redis_options(addrs, cluster))
        .await
        .expect("open redis store");
    assert!(store.is_connected());
    store
}

impl Fixture {
    async fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_embedded(dir.path()).await.expect("open store");
        Self {
            other_node: store.clone(),
            store,
            _backend: Box::new(dir),
        }
    }

    async fn redis() -> Self {
        let server = RedisServer::start();
        Self {
            store: open_redis(vec![server.addr()], false).await,
            other_node: open_redis(vec![server.addr()], false).await,
            _backend: Box::new(server),
        }
    }

    async fn cluster() -> Self {
        let cluster = RedisCluster::shared().await;
        Self {
            store: open_redis(cluster.addrs(), true).await,
            other_node: open_redis(cluster.addrs(), true).await,
            _backend: Box::new(cluster),
        }
    }
}

/// One `#[tokio::test]` per `shared` function and backend.
macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = super::Fixture::embedded().await;
                    super::shared::$name(&f.store, &f.other_node).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = super::Fixture::redis().await;
                    super::shared::$name(&f.store, &f.other_node).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let f = super::Fixture::cluster().await;
                    super::shared::$name(&f.store, &f.other_node).await;
                }
            )*
        }
    };
}

backends!(
    rate_allows_exactly_rate_per_window_then_429,
    rate_window_slides_in_real_time,
    rate_is_one_limit_for_several_nodes,
    fractional_rate_widens_the_window,
    quota_allows_exactly_max_then_403_and_renews,
    quota_without_renewal_never_renews,
    quota_is_never_exceeded_under_concurrency,
    rate_refused_requests_do_not_consume_quota,
    per_api_scopes_have_their_own_counters,
    unlimited_and_disabled_limits_touch_nothing,
    a_persistent_counter_that_should_renew_is_reset,
    global_rate_limit_is_per_api,
    quota_remaining_and_resets,
);

mod shared {
    use super::*;

    /// `check` for key `k`, session-level, both limits on.
    async fn hit(s: &Store, limit: &ApiLimit, now: SystemTime) -> LimitDecision {
        check(s, "k", "api1", limit, "", false, false, now)
            .await
            .expect("check")
    }

    /// Polls `cond` every 20 ms until it holds; panics after 10 s.
    async fn eventually<F, Fut>(what: &str, mut cond: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond().await {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(super) async fn rate_allows_exactly_rate_per_window_then_429(s: &Store, _: &Store) {
        let limit = rate(5.0, 10.0);
        // 1 s into window 100_000 (10 s windows); the previous one is empty.
        let t0 = at(1_000_001, 0);
        for remaining in (0..5).rev() {
            let d = hit(s, &limit, t0).await;
            assert!(d.allowed && d.error.is_none(), "{d:?}");
            let h = d.rate_headers.expect("rate headers");
            assert_eq!((h.limit, h.remaining, h.reset), (5, remaining, 1_000_010));
            assert!(d.quota.is_none(), "no quota configured");
        }
        for _ in 0..3 {
            let d = hit(s, &limit, t0).await;
            assert!(!d.allowed);
            assert_eq!(d.error, Some(Verdict::RateLimited));
            assert_eq!(d.rate_headers.map(|h| h.remaining), Some(0));
        }
        // Refused requests gave their unit back: the window holds exactly the 5 admitted.
        assert_eq!(
            s.get("rate-limit-k:100000").await.unwrap().as_deref(),
            Some("5")
        );
        // Two windows later the full rate is available again.
        let t2 = at(1_000_021, 0);
        for _ in 0..5 {
            assert!(hit(s, &limit, t2).await.allowed);
        }
        assert!(!hit(s, &limit, t2).await.allowed);
        // Halfway through the next window, half of the previous window still counts:
        // 5 × 0.5 + 2 ≤ 5, but not + 3.
        let t3 = at(1_000_035, 0);
        assert!(hit(s, &limit, t3).await.allowed);
        assert!(hit(s, &limit, t3).await.allowed);
        let d = hit(s, &limit, t3).await;
        assert_eq!(d.error, Some(Verdict::RateLimited));
        // And at the very end of it, almost nothing of the previous window is left.
        let t4 = at(1_000_039, 900);
        for _ in 0..2 {
            assert!(hit(s, &limit, t4).await.allowed);
        }
        assert!(!hit(s, &limit, t4).await.allowed);
    }

    pub(super) async fn rate_window_slides_in_real_time(s: &Store, _: &Store) {
        let limit = rate(3.0, 1.0);
        // Start early in a real 1 s window, so the first burst stays inside it.
        eventually("the start of a window", || async {
            unix_ms(SystemTime::now()) % 1000 < 300
        })
        .await;
        for _ in 0..3 {
            assert!(hit(s, &limit, SystemTime::now()).await.allowed);
        }
        assert!(!hit(s, &limit, SystemTime::now()).await.allowed);
        // The limit lifts as the window slides on: no request is admitted meanwhile beyond
        // the rate, and one is admitted again within two windows.
        eventually("a request is admitted again", || async {
            hit(s, &limit, SystemTime::now()).await.allowed
        })
        .await;
        // The counters expire with their windows: nothing is left for Redis to keep.
        eventually("the rate counters expire", || async {
            s.keys_with_prefix("rate-limit-").await.unwrap().is_empty()
        })
        .await;
    }

    pub(super) async fn rate_is_one_limit_for_several_nodes(s: &Store, other: &Store) {
        let limit = rate(20.0, 60.0);
        let now = at(1_000_000, 0);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let node = if i % 2 == 0 { s.clone() } else { other.clone() };
            let limit = limit.clone();
            tasks.push(tokio::spawn(async move {
                let mut admitted = 0;
                for _ in 0..10 {
                    if hit(&node, &limit, now).await.allowed {
                        admitted += 1;
                    }
                }
                admitted
            }));
        }
        let mut admitted = 0;
        for t in tasks {
            admitted += t.await.unwrap();
        }
        assert_eq!(admitted, 20, "80 requests over two nodes against rate 20");
    }

    pub(super) async fn fractional_rate_widens_the_window(s: &Store, _: &Store) {
        // 0.5 per second = 1 per 2 s.
        let limit = rate(0.5, 1.0);
        assert!(hit(s, &limit, at(2_000, 100)).await.allowed);
        assert!(!hit(s, &limit, at(2_001, 900)).await.allowed);
        assert!(hit(s, &limit, at(2_004, 0)).await.allowed);
    }

    pub(super) async fn quota_allows_exactly_max_then_403_and_renews(s: &Store, _: &Store) {
        let limit = ApiLimit {
            quota_renews: 42,
            ..quota(3, 2)
        };
        let now = SystemTime::now();
        let start = unix_secs(now);
        for (used, remaining) in [(1, 2), (2, 1), (3, 0)] {
            let d = hit(s, &limit, now).await;
            assert!(d.allowed, "{d:?}");
            let q = d.quota.expect("quota counted");
            assert_eq!(
                (q.used, q.remaining, q.new_period),
                (used, remaining, used == 1)
            );
            // The period's end: set by the request that starts it, else the session's.
            let renews = if used == 1 { start + 2 } else { 42 };
            assert_eq!(q.renews, renews);
            assert_eq!(
                d.headers,
                RateHeaders {
                    limit: 3,
                    remaining,
                    reset: renews
                }
            );
            assert!(d.rate_headers.is_none(), "no rate configured");
        }
        let d = hit(s, &limit, now).await;
        assert!(!d.allowed);
        assert_eq!(d.error, Some(Verdict::QuotaExceeded));
        assert_eq!(d.quota.map(|q| (q.used, q.remaining)), Some((4, 0)));
        let ttl = s.ttl("quota-k").await.unwrap().remaining().expect("a TTL");
        assert!(ttl <= Duration::from_secs(2), "{ttl:?}");
        // The counter expires with the period; the next request starts a new one.
        eventually("the quota renews", || async {
            let d = hit(s, &limit, SystemTime::now()).await;
            d.allowed && d.quota.is_some_and(|q| q.used == 1 && q.new_period)
        })
        .await;
    }

    pub(super) async fn quota_without_renewal_never_renews(s: &Store, _: &Store) {
        for renewal in [0, -1] {
            let limit = quota(2, renewal);
            let key = format!("k{renewal}");
            let hit = || check(s, &key, "api1", &limit, "", false, false, SystemTime::now());
            assert!(hit().await.unwrap().allowed);
            assert!(hit().await.unwrap().allowed);
            assert_eq!(hit().await.unwrap().error, Some(Verdict::QuotaExceeded));
            assert_eq!(
                s.ttl(&quota_key(&key, "")).await.unwrap(),
                Ttl::Persistent,
                "renewal {renewal}"
            );
        }
        // Still exhausted later: nothing expires.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let limit = quota(2, 0);
        let d = check(s, "k0", "api1", &limit, "", false, false, SystemTime::now())
            .await
            .unwrap();
        assert_eq!(d.error, Some(Verdict::QuotaExceeded));
    }

    pub(super) async fn quota_is_never_exceeded_under_concurrency(s: &Store, other: &Store) {
        let limit = quota(300, 3600);
        let mut tasks = Vec::new();
        for i in 0..16 {
            let node = if i % 2 == 0 { s.clone() } else { other.clone() };
            let limit = limit.clone();
            tasks.push(tokio::spawn(async move {
                let (mut allowed, mut refused) = (0, 0);
                for _ in 0..50 {
                    let d = hit(&node, &limit, SystemTime::now()).await;
                    match d.error {
                        None => allowed += 1,
                        Some(e) => {
                            assert_eq!(e, Verdict::QuotaExceeded);
                            refused += 1;
                        }
                    }
                }
                (allowed, refused)
            }));
        }
        let (mut allowed, mut refused) = (0, 0);
        for t in tasks {
            let (a, r) = t.await.unwrap();
            allowed += a;
            refused += r;
        }
        assert_eq!((allowed, refused), (300, 500));
        assert_eq!(s.get("quota-k").await.unwrap().as_deref(), Some("800"));
    }

    pub(super) async fn rate_refused_requests_do_not_consume_quota(s: &Store, _: &Store) {
        let limit = ApiLimit {
            rate: 2.0,
            per: 60.0,
            ..quota(100, 3600)
        };
        let now = at(1_000_000, 0);
        let mut outcomes = Vec::new();
        for _ in 0..10 {
            outcomes.push(hit(s, &limit, now).await);
        }
        assert_eq!(outcomes.iter().filter(|d| d.allowed).count(), 2);
        for refused in outcomes.iter().filter(|d| !d.allowed) {
            assert_eq!(refused.error, Some(Verdict::RateLimited));
            assert!(refused.quota.is_none());
            // Quota headers keep the session's stored values on a refusal.
            assert_eq!(
                refused.headers,
                RateHeaders {
                    limit: 100,
                    remaining: 0,
                    reset: 0
                }
            );
        }
        assert_eq!(s.get("quota-k").await.unwrap().as_deref(), Some("2"));
        let (remaining, _) = quota_remaining(s, "k", "", &limit).await.unwrap();
        assert_eq!(remaining, 98);
    }

    pub(super) async fn per_api_scopes_have_their_own_counters(s: &Store, _: &Store) {
        let limit = ApiLimit {
            rate: 10.0,
            per: 60.0,
            ..quota(2, 3600)
        };
        let now = at(1_000_000, 0);
        for scope in ["", "api1", "api2"] {
            for _ in 0..2 {
                let d = check(s, "k", "api1", &limit, scope, false, false, now).await;
                assert!(d.unwrap().allowed, "scope {scope:?}");
            }
            let d = check(s, "k", "api1", &limit, scope, false, false, now).await;
            assert_eq!(
                d.unwrap().error,
                Some(Verdict::QuotaExceeded),
                "scope {scope:?}"
            );
        }
        let mut quotas = s.keys_with_prefix("quota-").await.unwrap();
        quotas.sort();
        assert_eq!(quotas, vec!["quota-api1-k", "quota-api2-k", "quota-k"]);
        for name in [
            "rate-limit-k:16666",
            "rate-limit-api1-k:16666",
            "rate-limit-api2-k:16666",
        ] {
            assert_eq!(s.get(name).await.unwrap().as_deref(), Some("3"), "{name}");
        }
    }

    pub(super) async fn unlimited_and_disabled_limits_touch_nothing(s: &Store, _: &Store) {
        let stored = ApiLimit {
            quota_remaining: 17,
            quota_renews: 99,
            ..quota(-1, 60)
        };
        let now = at(1_000_000, 0);
        for limit in [
            stored.clone(),
            ApiLimit {
                quota_max: 0,
                ..stored.clone()
            },
            ApiLimit {
                rate: 0.0,
                per: 10.0,
                ..stored.clone()
            },
            ApiLimit {
                rate: 10.0,
                per: 0.0,
                ..stored.clone()
            },
        ] {
            let d = hit(s, &limit, now).await;
            assert!(d.allowed && d.error.is_none() && d.quota.is_none());
            assert!(d.rate_headers.is_none());
            assert_eq!(
                d.headers,
                RateHeaders {
                    limit: limit.quota_max,
                    remaining: 17,
                    reset: 99
                }
            );
        }
        // Both limits set, both disabled for the API.
        let both = ApiLimit {
            rate: 1.0,
            per: 60.0,
            ..quota(1, 60)
        };
        for _ in 0..3 {
            let d = check(s, "k", "api1", &both, "", true, true, now)
                .await
                .unwrap();
            assert!(d.allowed);
        }
        assert!(s.keys_with_prefix("").await.unwrap().is_empty());
        // Only the quota disabled: the rate still limits, no quota counter is written.
        for expected in [true, false] {
            let d = check(s, "k", "api1", &both, "", false, true, now)
                .await
                .unwrap();
            assert_eq!(d.allowed, expected);
        }
        assert!(!s.exists("quota-k").await.unwrap());
        // Only the rate disabled: the quota still limits.
        for expected in [true, false] {
            let d = check(s, "k2", "api1", &both, "", true, false, now)
                .await
                .unwrap();
            assert_eq!(d.allowed, expected);
        }
    }

    pub(super) async fn a_persistent_counter_that_should_renew_is_reset(s: &Store, _: &Store) {
        // Left by a period with renewal off (or an old Tyk): over the max, no TTL.
        s.set("quota-k", "50", None).await.unwrap();
        let limit = quota(3, 60);
        let d = hit(s, &limit, SystemTime::now()).await;
        assert!(d.allowed, "{d:?}");
        assert_eq!(
            d.quota.map(|q| (q.used, q.remaining, q.new_period)),
            Some((1, 2, true))
        );
        let ttl = s
            .ttl("quota-k")
            .await
            .unwrap()
            .remaining()
            .expect("now renews");
        assert!(ttl > Duration::from_secs(58), "{ttl:?}");
        assert_eq!(
            hit(s, &limit, SystemTime::now())
                .await
                .quota
                .map(|q| q.used),
            Some(2)
        );
        // Without renewal such a counter simply stays exhausted.
        s.set("quota-k", "50", None).await.unwrap();
        let d = hit(s, &quota(3, 0), SystemTime::now()).await;
        assert_eq!(d.error, Some(Verdict::QuotaExceeded));
    }

    pub(super) async fn global_rate_limit_is_per_api(s: &Store, other: &Store) {
        let now = at(1_000_000, 0);
        for node in [s, other, s] {
            assert_eq!(
                check_global(node, "api1", 3.0, 10.0, now).await.unwrap(),
                None
            );
        }
        for _ in 0..2 {
            assert_eq!(
                check_global(other, "api1", 3.0, 10.0, now).await.unwrap(),
                Some(Verdict::ApiRateLimited)
            );
        }
        assert_eq!(
            s.get("rate-limit-apilimiter-api1:100000")
                .await
                .unwrap()
                .as_deref(),
            Some("3")
        );
        // Another API has its own window; a disabled limit counts nothing.
        assert_eq!(check_global(s, "api2", 3.0, 10.0, now).await.unwrap(), None);
        assert_eq!(check_global(s, "api3", 0.0, 10.0, now).await.unwrap(), None);
        assert!(!s.exists("rate-limit-apilimiter-api3:100000").await.unwrap());
        // Two windows later, allowed again.
        let later = at(1_000_020, 0);
        assert_eq!(
            check_global(s, "api1", 3.0, 10.0, later).await.unwrap(),
            None
        );
    }

    pub(super) async fn quota_remaining_and_resets(s: &Store, _: &Store) {
        let limit = ApiLimit {
            quota_remaining: 1,
            quota_renews: 7,
            ..quota(5, 3600)
        };
        // No counter yet: the whole quota, the stored renewal.
        assert_eq!(quota_remaining(s, "k", "", &limit).await.unwrap(), (5, 7));
        for _ in 0..2 {
            assert!(hit(s, &limit, SystemTime::now()).await.allowed);
        }
        let before = unix_secs(SystemTime::now());
        let (remaining, renews) = quota_remaining(s, "k", "", &limit).await.unwrap();
        assert_eq!(remaining, 3);
        assert!(
            (before + 3599..=before + 3601).contains(&renews),
            "{renews}"
        );
        // Unlimited: the stored values, whatever the counter says.
        let unlimited = ApiLimit {
            quota_max: -1,
            ..limit.clone()
        };
        assert_eq!(
            quota_remaining(s, "k", "", &unlimited).await.unwrap(),
            (1, 7)
        );
        // Over the max: never negative; garbage counts as nothing used.
        s.set("quota-api1-k", "9", None).await.unwrap();
        assert_eq!(
            quota_remaining(s, "k", "api1", &limit).await.unwrap(),
            (0, 7)
        );
        s.set("quota-api1-k", "junk", None).await.unwrap();
        assert_eq!(
            quota_remaining(s, "k", "api1", &limit).await.unwrap(),
            (5, 7)
        );

        assert!(reset_quota(s, "k", "").await.unwrap());
        assert!(!reset_quota(s, "k", "").await.unwrap());
        assert_eq!(quota_remaining(s, "k", "", &limit).await.unwrap(), (5, 7));

        // Reset as Tyk does on key create/delete: root, sentinel and every scope.
        let mut session = SessionState::default();
        for scope in ["api1", "api2", ""] {
            session.access_rights.insert(
                format!("id-{scope}"),
                AccessDefinition {
                    allowance_scope: scope.into(),
                    ..AccessDefinition::default()
                },
            );
        }
        for name in [
            "quota-k",
            "quota-api1-k",
            "quota-api2-k",
            "rate-limit-k.BLOCKED",
            "quota-other",
        ] {
            s.set(name, "1", None).await.unwrap();
        }
        reset_counters(s, "k", &session).await.unwrap();
        assert_eq!(s.keys_with_prefix("").await.unwrap(), vec!["quota-other"]);
    }
}

// ---- embedded only ----------------------------------------------------------------------------

#[tokio::test]
async fn quota_counters_survive_reopening_the_embedded_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limit = quota(3, 3600);
    let now = SystemTime::now();
    {
        let s = Store::open_embedded(dir.path()).await.unwrap();
        for _ in 0..2 {
            let d = check(&s, "k", "api1", &limit, "", false, false, now).await;
            assert!(d.unwrap().allowed);
        }
    }
    let s = Store::open_embedded(dir.path()).await.unwrap();
    let d = check(&s, "k", "api1", &limit, "", false, false, now)
        .await
        .unwrap();
    assert!(d.allowed);
    assert_eq!(d.quota.map(|q| q.used), Some(3));
    let d = check(&s, "k", "api1", &limit, "", false, false, now)
        .await
        .unwrap();
    assert_eq!(d.error, Some(Verdict::QuotaExceeded));
    let ttl = s
        .ttl("quota-k")
        .await
        .unwrap()
        .remaining()
        .expect("TTL kept");
    assert!(ttl > Duration::from_secs(3590), "{ttl:?}");
}
