//! The Redis backend: every [`super::Store`] method mapped onto one Redis command, so a
//! certgate node and a Tyk node can share one Redis (standalone or Redis Cluster).
//!
//! # Commands
//!
//! | method | command |
//! | --- | --- |
//! | `get` / `get_many` | `GET` / `MGET` |
//! | `set`, `set_nx`, `set_xx` | `SET key value [PX ms] [NX\|XX]` |
//! | `delete`, `exists`, `ttl`, `expire` | `DEL`, `EXISTS`, `PTTL`, `PEXPIRE` |
//! | `incr_by` | `INCRBY` |
//! | `incr_window` | `EVALSHA` of a script doing `SET key 0 PX ttl NX` + `INCRBY` per key (`EVAL` if Redis lacks it); cluster: one per hash slot |
//! | `keys_with_prefix` | `SCAN cursor MATCH <escaped prefix>* COUNT 1000` until cursor 0 |
//! | `list_push`, `list_range`, `list_remove` | `RPUSH`, `LRANGE 0 -1`, `LREM key 0 value` |
//! | `set_add`, `set_remove`, `set_members` | `SADD`, `SREM`, `SMEMBERS` |
//! | `publish` / `ping` | `PUBLISH` / `PING` |
//!
//! Redis itself provides the semantics the embedded store imitates (types, `WRONGTYPE`,
//! expiry, `PEXPIRE 0` deleting). Two checks are made here before sending anything, so both
//! backends answer alike: a zero TTL is [`StoreError::InvalidTtl`] and a key plus value over
//! 512 MiB is [`StoreError::TooLarge`]. A TTL is sent in whole milliseconds, rounded up (a
//! sub-millisecond TTL does not expire at once) and capped at [`MAX_TTL`]. `PTTL` answering `0`
//! (under a millisecond left, the key still exists) reads as a 1 ms TTL.
//!
//! # Cluster mode
//!
//! - `MGET` of keys in different slots (which Redis Cluster refuses as one command): redis-rs
//!   splits it into one `MGET` per hash slot involved, sends them all at once (pipelined on
//!   each master's connection, the masters in parallel) and reassembles the replies in the
//!   caller's key order. So `get_many` costs one round trip's latency, but the servers see up
//!   to one `MGET` per key; keys sharing a hash tag (`{org}…`) share one.
//! - `SCAN` is per node: the masters are read from `CLUSTER SLOTS` (the same view redis-rs
//!   routes by) and each one is scanned to the end.
//! - `PUBLISH`/`SUBSCRIBE` are the classic, cluster-wide ones (not sharded): a message
//!   published on any node reaches subscribers on every node, so the subscriber connects to
//!   any one node.
//!
//! # Availability
//!
//! [`RedisStore::open`] never fails because Redis is down: it returns a store whose commands
//! fail with [`StoreError::Unavailable`] until Redis answers, and a background task brings it
//! back (see `redis/conn.rs` for the states and timings). Every round trip is bounded by
//! `connect_timeout + response_timeout`, so no call hangs on a dead or frozen server.
//!
//! # Data written by others
//!
//! Redis may hold anything (a real Tyk writes to it too). Nothing read from it can panic: a
//! value that is not UTF-8 is [`StoreError::Corrupt`]; a key that is not UTF-8 is skipped by
//! `keys_with_prefix` (no method could address it); a notification payload that is not UTF-8
//! is passed on lossily; a reply of an unexpected shape is [`StoreError::Backend`].

mod conn;
mod pubsub;

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{Cmd, Value};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::embedded::MAX_RECORD_BYTES;
use super::{CounterIncr, Notification, StoreError, StoreResult, Ttl};
use conn::{corrupt, unexpected, LuaScript, Shared};

/// The channel of the notification the store emits itself when its subscription to Redis is
/// re-established after having been lost (or after Redis was unreachable at start): messages
/// published in between were missed, so a gateway should drop whatever it caches from Redis.
/// Its payload is empty. It is never sent to Redis.
pub const RECONNECTED_CHANNEL: &str = "certgate.store.reconnected";

/// The channel of the notification the store emits itself as soon as it finds its
/// subscription to Redis lost (the connection ended, or an idle `PING` went unanswered):
/// messages published from now on are missed until [`RECONNECTED_CHANNEL`]. Its payload is
/// empty. It is never sent to Redis.
pub const SUBSCRIPTION_LOST_CHANNEL: &str = "certgate.store.subscription-lost";

/// The channel Tyk gateways use to tell each other about changes (keys, certificates, APIs).
pub const TYK_CLUSTER_CHANNEL: &str = "tyk.cluster.notifications";

/// Longest TTL sent to Redis (about 31 700 years); longer ones are capped. Redis refuses an
/// expiry that overflows its clock, which `Duration::MAX` would.
pub const MAX_TTL: Duration = Duration::from_millis(1_000_000_000_000_000);

/// Keys asked for per `SCAN` call.
const SCAN_COUNT: usize = 1000;

/// How to reach Redis.
#[derive(Clone)]
pub struct RedisOptions {
    /// `host:port` addresses (`[v6]:port` for IPv6). Standalone: exactly one. Cluster: any
    /// nodes of the cluster; the rest is discovered.
    pub addrs: Vec<String>,
    /// ACL user name (`AUTH user password`); `None` for the default user.
    pub username: Option<String>,
    /// Password; `None` for no `AUTH`.
    pub password: Option<String>,
    /// Database number (`SELECT`); standalone only, must be 0 in cluster mode.
    pub database: i64,
    /// Redis Cluster instead of a single server.
    pub cluster: bool,
    /// TLS (`rediss://`), verifying the server against the system's trusted roots.
    pub tls: bool,
    /// Longest wait for a TCP (and TLS) connection plus the handshake.
    pub connect_timeout: Duration,
    /// Longest wait for the reply to one command.
    pub response_timeout: Duration,
    /// Channels to subscribe to; their messages come out of [`super::Store::subscribe`].
    /// Empty: no subscriber connection at all (and no [`RECONNECTED_CHANNEL`] notifications).
    pub channels: Vec<String>,
}

impl Default for RedisOptions {
    /// `127.0.0.1:6379`, standalone, database 0, no TLS or auth, 2 s connect and response
    /// timeouts, subscribed to [`TYK_CLUSTER_CHANNEL`].
    fn default() -> Self {
        Self {
            addrs: vec!["127.0.0.1:6379".into()],
            username: None,
            password: None,
            database: 0,
            cluster: false,
            tls: false,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            channels: vec![TYK_CLUSTER_CHANNEL.into()],
        }
    }
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("addrs", &self.addrs)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("cluster", &self.cluster)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("channels", &self.channels)
            .finish()
    }
}

/// The Redis store. Use it through [`super::Store`].
pub struct RedisStore {
    shared: Arc<Shared>,
    /// Health monitor and subscriber; aborted on drop.
    tasks: Vec<JoinHandle<()>>,
    describe: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("redis", &self.describe)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl RedisStore {
    /// Creates the store and its background tasks. Fails only on an invalid configuration;
    /// if Redis is unreachable, the store starts disconnected and connects when it can.
    ///
    /// Waits for the first connection attempt and, concurrently, the first subscription
    /// attempt (each bounded by `connect_timeout + response_timeout`), so that with Redis up
    /// the store is usable and subscribed when this returns.
    pub async fn open(opts: &RedisOptions) -> StoreResult<Self> {
        let (notify, _) = broadcast::channel(conn::NOTIFY_CAPACITY);
        let (shared, pubsub_clients) = Shared::new(opts, notify)?;
        let shared = Arc::new(shared);
        let mut tasks = Vec::new();
        let mut first_subscription = None;
        if !opts.channels.is_empty() {
            let (first, first_done) = tokio::sync::oneshot::channel();
            first_subscription = Some(first_done);
            tasks.push(tokio::spawn(pubsub::subscriber(
                Arc::clone(&shared),
                pubsub_clients,
                opts.channels.clone(),
                first,
            )));
        }
        // First probe inline, so a reachable Redis is usable as soon as this returns.
        match shared.probe().await {
            Ok(()) => shared.set_connected(true),
            Err(e) => {
                tracing::warn!(error = %e, "Redis is not reachable yet; the store will keep trying");
                shared.set_connected(false);
                shared.request_probe();
            }
        }
        tasks.push(tokio::spawn(conn::monitor(Arc::clone(&shared))));
        if let Some(first_done) = first_subscription {
            let _ = tokio::time::timeout(shared.call_timeout(), first_done).await;
        }
        let describe = format!(
            "{} {}",
            if opts.cluster {
                "cluster"
            } else {
                "standalone"
            },
            opts.addrs.join(",")
        );
        Ok(Self {
            shared,
            tasks,
            describe,
        })
    }

    /// Whether the last contact with Redis succeeded (for health reporting).
    pub fn is_connected(&self) -> bool {
        self.shared.is_connected()
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.shared.subscribe()
    }

    /// Whether the subscriber connection is established (true when none was asked for).
    pub fn is_subscribed(&self) -> bool {
        self.shared.is_subscribed()
    }

    async fn query(&self, cmd: &Cmd, key: &str) -> StoreResult<Value> {
        self.shared.query(cmd, None, key).await
    }

    pub(super) async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        let v = self.query(redis::cmd("GET").arg(key), key).await?;
        string_or_nil(v, key)
    }

    pub(super) async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<String>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let label = keys.first().map(String::as_str).unwrap_or_default();
        let v = self.query(redis::cmd("MGET").arg(keys), label).await?;
        let Value::Array(items) = v else {
            return Err(unexpected("MGET", label, &v));
        };
        if items.len() != keys.len() {
            return Err(StoreError::Backend(format!(
                "MGET of {} keys answered {} values",
                keys.len(),
                items.len()
            )));
        }
        items
            .into_iter()
            .zip(keys)
            .map(|(v, key)| string_or_nil(v, key))
            .collect()
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
        condition: Option<&'static str>,
    ) -> StoreResult<bool> {
        check_size(key, key.len() + value.len())?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(ttl_ms(key, ttl)?);
        }
        if let Some(condition) = condition {
            cmd.arg(condition);
        }
        match self.query(&cmd, key).await? {
            Value::Okay => Ok(true),
            Value::SimpleString(s) if s == "OK" => Ok(true),
            Value::Nil => Ok(false),
            other => Err(unexpected("SET", key, &other)),
        }
    }

    pub(super) async fn delete(&self, key: &str) -> StoreResult<bool> {
        self.int("DEL", redis::cmd("DEL").arg(key), key)
            .await
            .map(|n| n > 0)
    }

    pub(super) async fn exists(&self, key: &str) -> StoreResult<bool> {
        self.int("EXISTS", redis::cmd("EXISTS").arg(key), key)
            .await
            .map(|n| n > 0)
    }

    pub(super) async fn ttl(&self, key: &str) -> StoreResult<Ttl> {
        match self.int("PTTL", redis::cmd("PTTL").arg(key), key).await? {
            -2 => Ok(Ttl::Missing),
            -1 => Ok(Ttl::Persistent),
            ms if ms >= 0 => Ok(Ttl::Expires(Duration::from_millis(
                ms.max(1).unsigned_abs(),
            ))),
            other => Err(unexpected("PTTL", key, &Value::Int(other))),
        }
    }

    pub(super) async fn expire(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        // PEXPIRE 0 deletes the key, as the embedded store's `expire` with a zero TTL does.
        let ms = if ttl.is_zero() { 0 } else { ttl_ms(key, ttl)? };
        self.int("PEXPIRE", redis::cmd("PEXPIRE").arg(key).arg(ms), key)
            .await
            .map(|n| n > 0)
    }

    pub(super) async fn incr_by(&self, key: &str, by: i64) -> StoreResult<i64> {
        self.int("INCRBY", redis::cmd("INCRBY").arg(key).arg(by), key)
            .await
    }

    pub(super) async fn incr_window(&self, items: &[CounterIncr]) -> StoreResult<Vec<i64>> {
        let mut args = Vec::with_capacity(items.len() * 2);
        for item in items {
            check_size(&item.key, item.key.len())?;
            let ttl = match item.ttl_if_new {
                Some(ttl) => ttl_ms(&item.key, ttl)?,
                None => 0,
            };
            args.push((item.by.to_string(), ttl.to_string()));
        }
        // Standalone: one script. Cluster: one per hash slot (a script's keys must share one),
        // in the order the slots first appear, all sent at once.
        let groups: Vec<Vec<usize>> = if self.shared.is_cluster() {
            let mut groups: Vec<(Slot, Vec<usize>)> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let slot = Slot::for_key(&item.key);
                match groups.iter_mut().find(|(s, _)| *s == slot) {
                    Some((_, members)) => members.push(i),
                    None => groups.push((slot, vec![i])),
                }
            }
            groups.into_iter().map(|(_, members)| members).collect()
        } else {
            vec![(0..items.len()).collect()]
        };
        let calls = groups.iter().map(|members| {
            let keys: Vec<&str> = members.iter().map(|&i| items[i].key.as_str()).collect();
            let argv: Vec<String> = members
                .iter()
                .flat_map(|&i| [args[i].0.clone(), args[i].1.clone()])
                .collect();
            async move {
                let reply = self
                    .shared
                    .eval(incr_window_script(), &keys, &argv, keys[0])
                    .await?;
                parse_incr_window(reply, &keys)
            }
        });
        let replies = futures_util::future::try_join_all(calls).await?;
        let mut values = vec![0; items.len()];
        for (members, group_values) in groups.iter().zip(replies) {
            for (&i, value) in members.iter().zip(group_values) {
                values[i] = value;
            }
        }
        Ok(values)
    }

    pub(super) async fn keys_with_prefix(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let pattern = glob_prefix(prefix);
        let nodes = match self.shared.is_cluster() {
            false => vec![None],
            true => self
                .shared
                .cluster_masters(prefix)
                .await?
                .into_iter()
                .map(|(host, port)| {
                    Some(RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host,
                        port,
                    }))
                })
                .collect(),
        };
        let mut seen = HashSet::new();
        for route in nodes {
            let mut cursor = 0u64;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT);
                let reply = self.shared.query(&cmd, route.clone(), prefix).await?;
                let (next, keys) = parse_scan(reply, prefix)?;
                for key in keys {
                    // Keys that are not UTF-8 cannot be addressed through this API: skip them.
                    if let Ok(key) = String::from_utf8(key) {
                        if key.starts_with(prefix) {
                            seen.insert(key);
                        }
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(seen.into_iter().collect())
    }

    pub(super) async fn list_push(&self, key: &str, value: &str) -> StoreResult<u64> {
        check_size(key, key.len() + value.len())?;
        let n = self
            .int("RPUSH", redis::cmd("RPUSH").arg(key).arg(value), key)
            .await?;
        u64::try_from(n).map_err(|_| unexpected("RPUSH", key, &Value::Int(n)))
    }

    pub(super) async fn list_range(&self, key: &str) -> StoreResult<Vec<String>> {
        let v = self
            .query(redis::cmd("LRANGE").arg(key).arg(0).arg(-1), key)
            .await?;
        strings("LRANGE", v, key)
    }

    pub(super) async fn list_remove(&self, key: &str, value: &str) -> StoreResult<u64> {
        let n = self
            .int("LREM", redis::cmd("LREM").arg(key).arg(0).arg(value), key)
            .await?;
        u64::try_from(n).map_err(|_| unexpected("LREM", key, &Value::Int(n)))
    }

    pub(super) async fn set_add(&self, key: &str, member: &str) -> StoreResult<bool> {
        check_size(key, key.len() + member.len())?;
        self.int("SADD", redis::cmd("SADD").arg(key).arg(member), key)
            .await
            .map(|n| n > 0)
    }

    pub(super) async fn set_remove(&self, key: &str, member: &str) -> StoreResult<bool> {
        self.int("SREM", redis::cmd("SREM").arg(key).arg(member), key)
            .await
            .map(|n| n > 0)
    }

    pub(super) async fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        let v = self.query(redis::cmd("SMEMBERS").arg(key), key).await?;
        strings("SMEMBERS", v, key)
    }

    pub(super) async fn publish(&self, channel: &str, payload: &str) -> StoreResult<()> {
        self.int(
            "PUBLISH",
            redis::cmd("PUBLISH").arg(channel).arg(payload),
            channel,
        )
        .await
        .map(|_| ())
    }

    pub(super) async fn ping(&self) -> StoreResult<()> {
        self.shared
            .query(&redis::cmd("PING"), None, "")
            .await
            .map(|_| ())
    }

    async fn int(&self, name: &str, cmd: &Cmd, key: &str) -> StoreResult<i64> {
        match self.query(cmd, key).await? {
            Value::Int(n) => Ok(n),
            other => Err(unexpected(name, key, &other)),
        }
    }
}

/// `Store::incr_window` for the keys of one hash slot. `ARGV` holds `by, ttl_ms` per key
/// (`ttl_ms` 0: no TTL). Each counter is created with its TTL if missing (`SET … NX`, which
/// leaves an existing key alone whatever its type) and then incremented; a script runs
/// atomically, so no counter can expire between the two. An `INCRBY` error is returned as the
/// last element (a string) instead of aborting with a generic script error, so the caller knows
/// which key failed; the items after it are not applied.
const INCR_WINDOW_LUA: &str = r"
local out = {}
for i = 1, #KEYS do
  local ttl = ARGV[2 * i]
  if ttl ~= '0' then
    redis.call('SET', KEYS[i], '0', 'PX', ttl, 'NX')
  end
  local n = redis.pcall('INCRBY', KEYS[i], ARGV[2 * i - 1])
  if type(n) == 'table' and n.err then
    out[#out + 1] = n.err
    return out
  end
  out[#out + 1] = n
end
return out
";

fn incr_window_script() -> &'static LuaScript {
    static SCRIPT: OnceLock<LuaScript> = OnceLock::new();
    SCRIPT.get_or_init(|| LuaScript::new(INCR_WINDOW_LUA))
}

/// The script's reply: one integer per key, or integers followed by the error of the next key.
fn parse_incr_window(reply: Value, keys: &[&str]) -> StoreResult<Vec<i64>> {
    let label = keys.first().copied().unwrap_or_default();
    let Value::Array(items) = reply else {
        return Err(unexpected("EVALSHA", label, &reply));
    };
    let mut values = Vec::with_capacity(keys.len());
    for (item, key) in items.into_iter().zip(keys) {
        match item {
            Value::Int(n) => values.push(n),
            Value::BulkString(message) => {
                return Err(script_error(key, &String::from_utf8_lossy(&message)))
            }
            Value::SimpleString(message) => return Err(script_error(key, &message)),
            other => return Err(unexpected("EVALSHA", key, &other)),
        }
    }
    if values.len() != keys.len() {
        return Err(StoreError::Backend(format!(
            "the counter script answered {} values for {} keys",
            values.len(),
            keys.len()
        )));
    }
    Ok(values)
}

/// An `INCRBY` error reported by the counter script, as `INCRBY` itself would map it.
fn script_error(key: &str, message: &str) -> StoreError {
    let key = key.to_owned();
    if message.starts_with("WRONGTYPE") {
        StoreError::WrongType { key }
    } else if message.contains("not an integer or out of range") {
        StoreError::NotInteger { key }
    } else if message.contains("would overflow") {
        StoreError::Overflow { key }
    } else {
        StoreError::Backend(format!("Redis: INCRBY of `{key}`: {message}"))
    }
}

/// `prefix` with Redis glob metacharacters escaped, followed by `*`.
fn glob_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// A TTL in whole milliseconds, rounded up and capped at [`MAX_TTL`]; zero is refused.
fn ttl_ms(key: &str, ttl: Duration) -> StoreResult<u64> {
    if ttl.is_zero() {
        return Err(StoreError::InvalidTtl {
            key: key.to_owned(),
        });
    }
    let ms = ttl.min(MAX_TTL).as_nanos().div_ceil(1_000_000);
    Ok(u64::try_from(ms).unwrap_or(u64::MAX))
}

fn check_size(key: &str, size: usize) -> StoreResult<()> {
    if size > MAX_RECORD_BYTES {
        return Err(StoreError::TooLarge {
            key: key.to_owned(),
            size,
            limit: MAX_RECORD_BYTES,
        });
    }
    Ok(())
}

/// A bulk string or nil, as `GET`/`MGET` answer.
fn string_or_nil(v: Value, key: &str) -> StoreResult<Option<String>> {
    match v {
        Value::Nil => Ok(None),
        Value::BulkString(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| corrupt(key, "the value is not UTF-8")),
        Value::SimpleString(s) => Ok(Some(s)),
        other => Err(unexpected("GET", key, &other)),
    }
}

/// An array of bulk strings, as `LRANGE`/`SMEMBERS` answer.
fn strings(name: &str, v: Value, key: &str) -> StoreResult<Vec<String>> {
    let items = match v {
        Value::Array(items) | Value::Set(items) => items,
        other => return Err(unexpected(name, key, &other)),
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::BulkString(bytes) => {
                String::from_utf8(bytes).map_err(|_| corrupt(key, "an element is not UTF-8"))
            }
            Value::SimpleString(s) => Ok(s),
            other => Err(unexpected(name, key, &other)),
        })
        .collect()
}

/// `SCAN`'s `[cursor, [key…]]`.
fn parse_scan(v: Value, prefix: &str) -> StoreResult<(u64, Vec<Vec<u8>>)> {
    let bad = |v: &Value| unexpected("SCAN", prefix, v);
    let Value::Array(mut parts) = v else {
        return Err(bad(&v));
    };
    if parts.len() != 2 {
        return Err(bad(&Value::Array(parts)));
    }
    let keys = parts.pop().unwrap_or(Value::Nil);
    let cursor = parts.pop().unwrap_or(Value::Nil);
    let cursor = match &cursor {
        Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()),
        Value::SimpleString(s) => s.parse().ok(),
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    }
    .ok_or_else(|| bad(&cursor))?;
    let Value::Array(keys) = keys else {
        return Err(bad(&keys));
    };
    let keys = keys
        .into_iter()
        .map(|k| match k {
            Value::BulkString(b) => Ok(b),
            Value::SimpleString(s) => Ok(s.into_bytes()),
            other => Err(bad(&other)),
        })
        .collect::<StoreResult<_>>()?;
    Ok((cursor, keys))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(glob_prefix(""), "*");
        assert_eq!(glob_prefix("apikey-"), "apikey-*");
        assert_eq!(glob_prefix("a*b?[c]\\d^"), "a\\*b\\?\\[c\\]\\\\d^*");
    }

    #[test]
    fn ttls_round_up_and_are_capped() {
        assert!(ttl_ms("k", Duration::ZERO).is_err());
        assert_eq!(ttl_ms("k", Duration::from_micros(1)).unwrap(), 1);
        assert_eq!(ttl_ms("k", Duration::from_micros(1001)).unwrap(), 2);
        assert_eq!(ttl_ms("k", Duration::from_secs(2)).unwrap(), 2000);
        assert_eq!(
            ttl_ms("k", Duration::MAX).unwrap(),
            u64::try_from(MAX_TTL.as_millis()).unwrap()
        );
    }

    #[test]
    fn odd_replies_are_errors_not_panics() {
        for v in [
            Value::Nil,
            Value::Int(3),
            Value::Array(vec![]),
            Value::Array(vec![Value::Int(-1), Value::Array(vec![])]),
            Value::Array(vec![Value::BulkString(b"x".to_vec()), Value::Array(vec![])]),
            Value::Array(vec![
                Value::BulkString(b"0".to_vec()),
                Value::Array(vec![Value::Int(1)]),
            ]),
        ] {
            assert!(parse_scan(v.clone(), "p").is_err(), "{v:?}");
        }
        let ok = Value::Array(vec![
            Value::BulkString(b"17".to_vec()),
            Value::Array(vec![Value::BulkString(vec![0xff, b'a'])]),
        ]);
        assert_eq!(parse_scan(ok, "p").unwrap(), (17, vec![vec![0xff, b'a']]));
        assert!(matches!(
            string_or_nil(Value::BulkString(vec![0xc3]), "k"),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            string_or_nil(Value::Int(1), "k"),
            Err(StoreError::Backend(_))
        ));
        assert!(strings("LRANGE", Value::Int(1), "k").is_err());
        assert!(strings("LRANGE", Value::Array(vec![Value::Nil]), "k").is_err());
    }
}
