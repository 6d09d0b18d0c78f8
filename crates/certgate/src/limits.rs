//! Rate limits and quotas with Tyk's semantics, enforced through the [`Store`] so that every
//! gateway node sharing one Redis (certgate or Tyk) enforces ONE limit for the cluster.
//!
//! # What is counted
//!
//! The limits of a request come from the session: the API's own `access_rights[api].limit`
//! when it is not empty, else the session root ([`crate::session::SessionState::effective_limit`],
//! spec §5.3/§5.4). Two things are counted, both in the store:
//!
//! - **Rate** (`rate` requests per `per` seconds; skipped when either is `<= 0`): a sliding
//!   window over counters `rate-limit-[<scope>-]<key>:<window index>`, see below. Refused with
//!   **429 `Rate Limit Exceeded`**.
//! - **Quota** (`quota_max` requests per `quota_renewal_rate` seconds; skipped when
//!   `quota_max <= 0`): Tyk's counter `quota-[<scope>-]<key>`, an integer whose TTL,
//!   `quota_renewal_rate` seconds, is set when the counter is created, so it disappears at the
//!   end of the period and the next request starts a new one (`quota_renewal_rate <= 0`: no
//!   TTL, the quota never renews). Request number `quota_max + 1` of a period and every later
//!   one is refused with **403 `Quota exceeded`** (Tyk: blocked when `counter - 1 >= quota_max`).
//!
//! `<key>` is the key as Tyk names it in these counters, which the caller passes: the token
//! itself, or its hash (`tokens::hash_key(token, true)`) when `hash_keys` is on. Tyk's
//! `RedisQuotaExceeded` uses `HashStr(KeyID)` with hashing on and `KeyID` otherwise, and its
//! rate limiter the session's `KeyHash()`, which is the same value. `<scope>` is the access
//! right's `allowance_scope` (set to the API id for per-API limits when no policy applies).
//!
//! # One round trip per request
//!
//! The rate counters and the quota counter of a request are updated by ONE
//! [`Store::incr_window`] (a Lua script in Redis, one transaction in the embedded store):
//! increment first, decide on the returned values. Incrementing first is what makes the limits
//! hold under concurrency, on one node or many: each request gets its own count from an
//! atomic `INCRBY`, so with `quota_max = 300` exactly 300 requests get a count `<= 300`, however
//! many run at once. The rare request refused by the rate limit then gives its quota unit back
//! (and its rate unit, see below) with a second, negative `incr_window`, so a rate-limited
//! client does not burn its quota.
//!
//! # Why a sliding window (and not a fixed window or GCRA)
//!
//! A fixed window of `per` seconds (one counter with a TTL) lets a client send `rate` requests
//! at the end of one window and `rate` more at the start of the next: twice the rate within a
//! few milliseconds. The sliding window removes that burst at the cost of one more counter in
//! the same round trip: the counter of the current window `i` (index `now / per`) and the one
//! of the previous window are both read, and the request is allowed while
//!
//! ```text
//! previous × (1 − elapsed / per) + current ≤ rate
//! ```
//!
//! i.e. the previous window's requests are assumed spread evenly and only the part of it still
//! inside the last `per` seconds counts. It is exact in the first window and when the traffic is
//! steady, and never lets more than `rate` through in any window of the form `[i·per,
//! (i+1)·per)`. GCRA would be smoother still, but needs a compare-and-set (a script of its
//! own) that could not share a round trip with the quota's `INCRBY`, nor be expressed with the
//! store's counter primitive; the sliding window needs nothing but counters.
//!
//! A refused request also gives its rate unit back, so that a client retrying while limited is
//! held at exactly `rate` per window instead of being locked out for the next window by its own
//! refused retries (the in-memory leaky bucket Tyk uses by default does not count refused
//! requests either).
//!
//! The window index comes from the node's clock (the `now` passed in), so nodes sharing a
//! Redis should have synchronised clocks; a skew of `s` seconds blurs the window boundaries by
//! `s`, no more. The counters carry a TTL of two windows plus a second, so Redis forgets them.
//! A `rate` below 1 (e.g. 0.5 per second) is treated as one request per `per / rate` seconds;
//! a fractional `rate` above 1 is rounded down, as Tyk's Redis limiters do (`int64(rate)`).
//!
//! # Differences from Tyk worth knowing
//!
//! - Tyk's default rate limiter (DRL) is an in-memory leaky bucket per node, which several nodes
//!   only approximate (it divides the rate among the nodes it knows of); here the counters are
//!   shared, so one limit holds for the cluster exactly. Tyk keeps no `rate-limit-…` counter in
//!   Redis in that mode, so the names used here (with their `:<window>` suffix) collide with
//!   nothing Tyk writes (its optional Redis limiters use `rate-limit-<key>` as a sorted set and
//!   `rate-limit-<key>.BLOCKED`).
//! - Tyk's DRL bucket is keyed by the session's `last_updated` too, so updating a key resets its
//!   rate; here a rate window is not reset by a key update (it ends within `2 × per` anyway).
//! - A quota counter found WITHOUT a TTL while `quota_renewal_rate > 0` (left by an old Tyk, or by
//!   a period with renewal off) is reset when it blocks a request, as Tyk does ("incorrect key
//!   expiry setting detected"): the request is allowed as the first of a new period.
//!
//! # Response headers
//!
//! [`LimitDecision::headers`] are Tyk's default (`rate_limit_response_headers` empty or
//! `"quotas"`): `X-RateLimit-Limit` = `quota_max`, `X-RateLimit-Remaining` = the quota left,
//! `X-RateLimit-Reset` = `quota_renews` (unix seconds). Tyk sets them only on requests that were
//! proxied (not on 403/429). [`LimitDecision::rate_headers`] are those of `"rate_limits"`:
//! `rate`, the requests left in the window (never negative) and the unix second the current
//! window ends; Tyk sets these on 429 responses too.

#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::session::{ApiLimit, SessionState};
use crate::store::{CounterIncr, Store, StoreError, StoreResult, Ttl};

pub mod signin;

/// Prefix of quota counters (Tyk `QuotaKeyPrefix`).
pub const QUOTA_KEY_PREFIX: &str = "quota-";
/// Prefix of rate-limit counters (Tyk `RateLimitKeyPrefix`).
pub const RATE_LIMIT_KEY_PREFIX: &str = "rate-limit-";
/// Suffix of Tyk's sentinel rate-limit key, deleted by [`reset_counters`] as Tyk does.
pub const SENTINEL_SUFFIX: &str = ".BLOCKED";
/// Name prefix of an API's global rate limiter (Tyk `RateLimitForAPI`: `apilimiter-…`).
pub const API_LIMITER_PREFIX: &str = "apilimiter-";

/// Why [`check`] or [`check_global`] refused a request; its status and Tyk's message
/// are chosen by [`crate::errors::Refusal`] (429, 429, 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Over the key's rate limit ("Rate Limit Exceeded").
    RateLimited,
    /// Over the API's `global_rate_limit` ("API Rate Limit Exceeded").
    ApiRateLimited,
    /// Over the quota ("Quota exceeded").
    QuotaExceeded,
}

/// Added to the TTL of rate counters: room for clock skew between nodes.
const SKEW_SLACK_MS: u64 = 1000;
/// Longest rate window (about 100 years); longer ones are capped.
const MAX_WINDOW_MS: f64 = 3_155_760_000_000.0;

/// The values of the `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
/// response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    /// `X-RateLimit-Limit`.
    pub limit: i64,
    /// `X-RateLimit-Remaining`.
    pub remaining: i64,
    /// `X-RateLimit-Reset`, unix seconds.
    pub reset: i64,
}

/// The quota counter after a request, to be written back into the session as Tyk does
/// ([`apply_quota_usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    /// The counter: requests counted in the current period, this one included.
    pub used: i64,
    /// Requests left in the period (0 once exceeded).
    pub remaining: i64,
    /// Unix second the period ends: `now + quota_renewal_rate` if this request started the
    /// period, else the session's stored `quota_renews`.
    pub renews: i64,
    /// This request started a new period (the counter was created): the session's
    /// `quota_renews` changed and should be persisted (Tyk schedules a session update).
    pub new_period: bool,
}

/// The outcome of [`check`] for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitDecision {
    /// The request may proceed.
    pub allowed: bool,
    /// When refused: why ([`Verdict::RateLimited`] or [`Verdict::QuotaExceeded`]).
    pub error: Option<Verdict>,
    /// `X-RateLimit-*` as Tyk sends them by default (from the quota); see the module docs.
    pub headers: RateHeaders,
    /// `X-RateLimit-*` for `rate_limit_response_headers: "rate_limits"`; `None` when the rate
    /// is not limited.
    pub rate_headers: Option<RateHeaders>,
    /// The quota counter after this request; `None` when the quota was not counted (unlimited,
    /// disabled, or the request was refused by the rate limit first).
    pub quota: Option<QuotaUsage>,
}

/// Counts one request against its rate limit, then its quota (Tyk `RateLimitAndQuotaCheck`),
/// in one store round trip (two if the rate limit refuses it).
///
/// - `key`: the key as named in counters: the token, or its hash with `hash_keys` on.
/// - `api_id`: the API, for logs only (the counters are per key and `scope`).
/// - `limit`: the effective limit ([`SessionState::effective_limit`]).
/// - `scope`: the access right's `allowance_scope` (`""` for the session-level counters).
/// - `disable_rate`, `disable_quota`: the API's `disable_rate_limit` / `disable_quota`.
/// - `now`: the current time (injected for tests).
///
/// A store error is returned as is: Tyk refuses such a request (403 when reading the quota
/// fails, 500 `there was a problem proxying the request` when the rate limiter fails).
#[allow(clippy::too_many_arguments)] // every input of the decision, explicit (and `now` injectable)
pub async fn check(
    store: &Store,
    key: &str,
    api_id: &str,
    limit: &ApiLimit,
    scope: &str,
    disable_rate: bool,
    disable_quota: bool,
    now: SystemTime,
) -> StoreResult<LimitDecision> {
    let stored = RateHeaders {
        limit: limit.quota_max,
        remaining: limit.quota_remaining,
        reset: limit.quota_renews,
    };
    let window = if disable_rate {
        None
    } else {
        Window::new(limit.rate, limit.per, now)
    };
    let quota = if disable_quota || limit.quota_max <= 0 {
        None
    } else {
        Some(QuotaCounter::new(key, scope, limit.quota_renewal_rate))
    };
    let mut decision = LimitDecision {
        allowed: true,
        error: None,
        headers: stored,
        rate_headers: None,
        quota: None,
    };
    if window.is_none() && quota.is_none() {
        return Ok(decision);
    }

    let rate_name = rate_limit_key(key, scope);
    let mut items = Vec::with_capacity(3);
    if let Some(w) = &window {
        items.extend(w.items(&rate_name));
    }
    let quota_at = items.len();
    if let Some(q) = &quota {
        items.push(q.incr(1));
    }
    let values = store.incr_window(&items).await?;
    let value = |i: usize| {
        values.get(i).copied().ok_or_else(|| {
            StoreError::Backend(format!(
                "incr_window answered {} values for {} counters",
                values.len(),
                items.len()
            ))
        })
    };

    if let Some(w) = &window {
        let previous = match w.previous_index() {
            Some(_) => value(1)?,
            None => 0,
        };
        let estimate = w.estimate(value(0)?, previous);
        decision.rate_headers = Some(w.headers(estimate));
        if estimate > w.rate {
            tracing::debug!(
                api_id,
                scope,
                estimate,
                rate = w.rate,
                "rate limit exceeded"
            );
            // Give back what this refused request took, in one more round trip.
            let mut back = vec![w.current(&rate_name, -1)];
            if let Some(q) = &quota {
                back.push(q.incr(-1));
            }
            if let Err(e) = store.incr_window(&back).await {
                tracing::warn!(error = %e, "could not give back the counts of a rate-limited request");
            }
            decision.allowed = false;
            decision.error = Some(Verdict::RateLimited);
            return Ok(decision);
        }
    }

    if let Some(q) = &quota {
        let mut used = value(quota_at)?;
        let mut blocked = used > limit.quota_max;
        if blocked && q.renewal.is_some() && store.ttl(&q.key).await? == Ttl::Persistent {
            // A counter that should renew but never will: start a new period (as Tyk does).
            tracing::info!(
                api_id,
                scope,
                "quota counter without expiry found; renewing it"
            );
            store.set(&q.key, "1", q.renewal).await?;
            used = 1;
            blocked = false;
        }
        let remaining = if blocked {
            0
        } else {
            limit.quota_max.saturating_sub(used).max(0)
        };
        let new_period = used == 1;
        let renews = if new_period {
            unix_secs(now).saturating_add(limit.quota_renewal_rate.max(0))
        } else {
            limit.quota_renews
        };
        decision.quota = Some(QuotaUsage {
            used,
            remaining,
            renews,
            new_period,
        });
        decision.headers = RateHeaders {
            limit: limit.quota_max,
            remaining,
            reset: renews,
        };
        if blocked {
            tracing::debug!(
                api_id,
                scope,
                used,
                quota_max = limit.quota_max,
                "quota exceeded"
            );
            decision.allowed = false;
            decision.error = Some(Verdict::QuotaExceeded);
        }
    }
    Ok(decision)
}

/// Counts one request against an API's `global_rate_limit` (`rate` requests per `per`
/// seconds for all keys together; Tyk `RateLimitForAPI`). `Some(`[`Verdict::ApiRateLimited`]`)` when
/// refused; `None` when allowed or when the limit is off (`rate` or `per`
/// `<= 0`). Same sliding window as [`check`], counters `rate-limit-apilimiter-<api_id>:<window>`.
pub async fn check_global(
    store: &Store,
    api_id: &str,
    rate: f64,
    per: f64,
    now: SystemTime,
) -> StoreResult<Option<Verdict>> {
    let Some(w) = Window::new(rate, per, now) else {
        return Ok(None);
    };
    let name = global_rate_limit_key(api_id);
    let items = w.items(&name);
    let values = store.incr_window(&items).await?;
    let current = values.first().copied().unwrap_or(0);
    let previous = values.get(1).copied().unwrap_or(0);
    if w.estimate(current, previous) <= w.rate {
        return Ok(None);
    }
    if let Err(e) = store.incr_window(&[w.current(&name, -1)]).await {
        tracing::warn!(error = %e, api_id, "could not give back the count of a rate-limited request");
    }
    Ok(Some(Verdict::ApiRateLimited))
}

/// The quota left and its renewal time, recomputed from the counter, for `GET /tyk/keys`:
/// `(remaining, renews)`.
///
/// - `quota_max <= 0` (unlimited): the stored `quota_remaining` and `quota_renews`, untouched.
/// - No counter (nothing used in this period, or reset): `quota_max` and the stored
///   `quota_renews`. (Tyk does this for per-API limits; for the session root it leaves the
///   stored `quota_remaining`.)
/// - Otherwise `max(0, quota_max - counter)`, and the unix second the counter expires (the
///   stored `quota_renews` if it never does). A counter that is not an integer counts as 0
///   used, as Tyk's `strconv.Atoi` failure does.
pub async fn quota_remaining(
    store: &Store,
    key: &str,
    scope: &str,
    limit: &ApiLimit,
) -> StoreResult<(i64, i64)> {
    if limit.quota_max <= 0 {
        return Ok((limit.quota_remaining, limit.quota_renews));
    }
    let name = quota_key(key, scope);
    let Some(value) = store.get(&name).await? else {
        return Ok((limit.quota_max, limit.quota_renews));
    };
    let used: i64 = value.parse().unwrap_or(0);
    let renews = match store.ttl(&name).await? {
        Ttl::Expires(left) => {
            let left = i64::try_from(left.as_millis().div_ceil(1000)).unwrap_or(i64::MAX);
            unix_secs(SystemTime::now()).saturating_add(left)
        }
        Ttl::Persistent | Ttl::Missing => limit.quota_renews,
    };
    Ok((limit.quota_max.saturating_sub(used).max(0), renews))
}

/// Deletes the quota counter `quota-[<scope>-]<key>`: the next request starts a new period.
/// `true` if there was one.
pub async fn reset_quota(store: &Store, key: &str, scope: &str) -> StoreResult<bool> {
    store.delete(&quota_key(key, scope)).await
}

/// What Tyk's `ResetQuota` does when a key is created or deleted: deletes the session-level
/// quota counter, Tyk's sentinel `rate-limit-<key>.BLOCKED`, and the quota counter of every
/// `allowance_scope` in the session's access rights.
pub async fn reset_counters(store: &Store, key: &str, session: &SessionState) -> StoreResult<()> {
    store.delete(&quota_key(key, "")).await?;
    store
        .delete(&format!("{RATE_LIMIT_KEY_PREFIX}{key}{SENTINEL_SUFFIX}"))
        .await?;
    let mut scopes: Vec<&str> = session
        .access_rights
        .values()
        .map(|a| a.allowance_scope.as_str())
        .filter(|s| !s.is_empty())
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    for scope in scopes {
        store.delete(&quota_key(key, scope)).await?;
    }
    Ok(())
}

/// Writes a request's quota usage into the session, as Tyk's `updateSessionQuota`: the
/// `quota_remaining`/`quota_renews` of every access right with a non-empty limit and this
/// `scope`, and of the session root when `scope` is empty.
pub fn apply_quota_usage(session: &mut SessionState, scope: &str, usage: &QuotaUsage) {
    let remaining = usage.remaining.max(0);
    for access in session.access_rights.values_mut() {
        if !access.limit.is_empty() && access.allowance_scope == scope {
            access.limit.quota_remaining = remaining;
            access.limit.quota_renews = usage.renews;
        }
    }
    if scope.is_empty() {
        session.quota_remaining = remaining;
        session.quota_renews = usage.renews;
    }
}

/// `quota-[<scope>-]<key>`: Tyk's quota counter name.
pub fn quota_key(key: &str, scope: &str) -> String {
    match scope {
        "" => format!("{QUOTA_KEY_PREFIX}{key}"),
        scope => format!("{QUOTA_KEY_PREFIX}{scope}-{key}"),
    }
}

/// `rate-limit-[<scope>-]<key>`: the name of a key's rate counters, which append
/// `:<window index>`.
pub fn rate_limit_key(key: &str, scope: &str) -> String {
    match scope {
        "" => format!("{RATE_LIMIT_KEY_PREFIX}{key}"),
        scope => format!("{RATE_LIMIT_KEY_PREFIX}{scope}-{key}"),
    }
}

/// `rate-limit-apilimiter-<api_id>`: the name of an API's global rate counters.
pub fn global_rate_limit_key(api_id: &str) -> String {
    format!("{RATE_LIMIT_KEY_PREFIX}{API_LIMITER_PREFIX}{api_id}")
}

// ---- the sliding window ----------------------------------------------------------------------

/// The rate window `now` falls in.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    /// Requests allowed per window (at least 1).
    rate: f64,
    /// Window length in milliseconds (at least 1).
    len_ms: u64,
    /// `now / len_ms`.
    index: u64,
    /// `now % len_ms`.
    elapsed_ms: u64,
}

impl Window {
    /// `None` when the rate is not limited (`rate` or `per` not positive, or not finite).
    fn new(rate: f64, per: f64, now: SystemTime) -> Option<Self> {
        if !(rate > 0.0 && per > 0.0 && rate.is_finite() && per.is_finite()) {
            return None;
        }
        // Less than one request per window: one per proportionally longer window.
        let (rate, per) = if rate < 1.0 {
            (1.0, per / rate)
        } else {
            (rate.floor(), per)
        };
        // Finite and clamped, so the conversion is exact enough and cannot overflow.
        let len_ms = (per * 1000.0).round().clamp(1.0, MAX_WINDOW_MS) as u64;
        let now_ms = unix_ms(now);
        Some(Self {
            rate,
            len_ms,
            index: now_ms / len_ms,
            elapsed_ms: now_ms % len_ms,
        })
    }

    fn previous_index(&self) -> Option<u64> {
        self.index.checked_sub(1)
    }

    /// The update of the current window's counter by `by`, created with a TTL covering this
    /// window and the next (when it is the previous one), plus room for clock skew.
    fn current(&self, name: &str, by: i64) -> CounterIncr {
        let ttl = self.len_ms.saturating_mul(2).saturating_add(SKEW_SLACK_MS);
        CounterIncr::new(
            window_key(name, self.index),
            by,
            Some(Duration::from_millis(ttl)),
        )
    }

    /// The counters a request touches: +1 on the current window, a read (+0) of the previous
    /// one. Reading creates the previous counter if it is missing; it is then given a TTL
    /// ending with the current window, after which it is useless.
    fn items(&self, name: &str) -> Vec<CounterIncr> {
        let mut items = Vec::with_capacity(3);
        items.push(self.current(name, 1));
        if let Some(previous) = self.previous_index() {
            let left = (self.len_ms - self.elapsed_ms).max(1);
            items.push(CounterIncr::new(
                window_key(name, previous),
                0,
                Some(Duration::from_millis(left)),
            ));
        }
        items
    }

    /// Requests in the last window's length: the current window's, plus the previous window's
    /// weighted by the part of it still inside that length.
    fn estimate(&self, current: i64, previous: i64) -> f64 {
        let weight = (self.len_ms - self.elapsed_ms) as f64 / self.len_ms as f64;
        previous.max(0) as f64 * weight + current as f64
    }

    /// Tyk's `rate_limits` headers after a request that brought the estimate to `estimate`.
    fn headers(&self, estimate: f64) -> RateHeaders {
        let end_ms = self.index.saturating_add(1).saturating_mul(self.len_ms);
        RateHeaders {
            limit: self.rate as i64,
            remaining: (self.rate - estimate).floor().max(0.0) as i64,
            reset: i64::try_from(end_ms.div_ceil(1000)).unwrap_or(i64::MAX),
        }
    }
}

/// A key's quota counter and the TTL it is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QuotaCounter {
    key: String,
    /// `None` when the quota never renews (`quota_renewal_rate <= 0`).
    renewal: Option<Duration>,
}

impl QuotaCounter {
    fn new(key: &str, scope: &str, renewal_rate: i64) -> Self {
        Self {
            key: quota_key(key, scope),
            renewal: u64::try_from(renewal_rate)
                .ok()
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
        }
    }

    fn incr(&self, by: i64) -> CounterIncr {
        CounterIncr::new(self.key.clone(), by, self.renewal)
    }
}

/// `<name>:<index>`, built in one allocation of the right size (this runs on every
/// request; `format!` grew the string twice).
fn window_key(name: &str, index: u64) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = index;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut key = String::with_capacity(name.len() + 1 + digits.len() - at);
    key.push_str(name);
    key.push(':');
    key.extend(digits[at..].iter().map(|&d| char::from(d)));
    key
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
