//! The gateway's storage: a small set of Redis-like primitives over string keys.
//!
//! Tyk keeps everything it shares between requests and between gateway nodes in Redis:
//! sessions (`apikey-<token>` → JSON), certificates (`cert-raw-<id>` → PEM), per-org
//! certificate indexes (`cert-<org>-index`, a LIST), quota counters (`quota-…`, `INCR` with a
//! TTL), rate-limiter data and cluster notifications (`tyk.cluster.notifications`). The layout
//! is described in the spec (`tyk-certificate-auth.md` §2.6).
//!
//! certgate must read and write that same layout, so this module exposes exactly the Redis
//! primitives the gateway needs, with Redis semantics, rather than a higher-level "session
//! store". Two backends implement them:
//!
//! - [`embedded`]: the default, a persistent single-node store on top of `redb`, so a gateway
//!   runs with no Redis at all.
//! - [`redis`](self::redis): a standalone Redis or a Redis Cluster shared with other
//!   gateways (Tyk or certgate); each method is the command named in its docs. It starts and
//!   keeps running when Redis is down (commands then fail with [`StoreError::Unavailable`])
//!   and reconnects by itself; see [`Store::is_connected`] and [`RECONNECTED_CHANNEL`].
//!
//! Both backends pass the same behaviour tests (`tests/suite.rs`); `certgate_testkit::testredis`
//! (a dev-only crate) starts the real Redis servers those tests (and the gateway's) run against.
//!
//! # Semantics both backends follow
//!
//! - **Types.** A key holds a string (counters are strings holding a canonical integer, as in
//!   Redis), a list or a set. A command meant for one type applied to a key holding another
//!   returns [`StoreError::WrongType`] (Redis `WRONGTYPE`), except where Redis itself does not
//!   care: [`Store::set`] overwrites any type, [`Store::get_many`] returns `None` for a non-string,
//!   and `delete`/`exists`/`ttl`/`expire`/`keys_with_prefix` work on every type.
//! - **Empty collections do not exist.** Removing the last element of a list or set deletes the
//!   key, as Redis does.
//! - **Expiry.** A key may carry a time to live. Once it passes, the key is gone for every
//!   command, immediately. Writing a key with [`Store::set`] (and its `_nx`/`_xx` variants)
//!   replaces its TTL with the one given (`None` = persist); `incr_by`, list and set commands
//!   keep the TTL; [`Store::incr_window`] sets one only on the counters it creates. A TTL
//!   must be positive: [`StoreError::InvalidTtl`] otherwise, as Redis refuses `SET … PX 0`.
//!   `expire` with a zero duration deletes the key, as Redis does.
//! - **Acknowledged writes are durable** (embedded: fsynced before the call returns; Redis:
//!   as durable as the server's own persistence settings make them).
//! - **Notifications** ([`Store::publish`]/[`Store::subscribe`]) are fire-and-forget pub/sub:
//!   a subscriber sees messages published after it subscribed, and a slow subscriber may lag
//!   (the receiver then reports how many it missed). Embedded: in-process. Redis: through
//!   Redis, so every node subscribed to the channel sees them (this one included); if the
//!   subscription to Redis was lost, a [`SUBSCRIPTION_LOST_CHANNEL`] notification says so at
//!   once and a [`RECONNECTED_CHANNEL`] notification follows its re-establishment.
//!
//! Every method is `async` even for the embedded backend, so the gateway's code is the same
//! for both.

pub mod embedded;
mod record;
pub mod redis;
#[cfg(test)]
mod tests;

pub use self::redis::{
    RedisOptions, RECONNECTED_CHANNEL, SUBSCRIPTION_LOST_CHANNEL, TYK_CLUSTER_CHANNEL,
};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

/// An error from the store.
///
/// Messages name the key involved where there is one. Keys may embed secrets (an un-hashed
/// `apikey-<token>`), so callers logging these errors at the edge should consider that.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot serve requests at all (closed, writer stopped, Redis unreachable).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store's configuration is invalid (e.g. a malformed Redis address).
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// The embedded store's directory is already in use by another process (or another open
    /// store in this process); redb's file lock refused the open.
    #[error(
        "store at {} is already open by another process (or another store in this process); \
         only one gateway may use an embedded store directory at a time",
        path.display()
    )]
    AlreadyOpen {
        /// The database file that is locked.
        path: PathBuf,
    },
    /// A filesystem operation on the store's directory failed.
    #[error("store I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The storage engine reported an error (embedded: redb; Redis: an error reply that has no
    /// variant of its own, or a reply of an unexpected shape).
    #[error("store backend error: {0}")]
    Backend(String),
    /// The key holds a value of a different type than the command needs (Redis `WRONGTYPE`).
    #[error("WRONGTYPE operation against key `{key}` holding the wrong kind of value")]
    WrongType {
        /// The key.
        key: String,
    },
    /// `incr_by` on a string that is not a canonical 64-bit integer.
    #[error("value at key `{key}` is not an integer or out of range")]
    NotInteger {
        /// The key.
        key: String,
    },
    /// `incr_by` would overflow a signed 64-bit integer.
    #[error("increment or decrement of key `{key}` would overflow")]
    Overflow {
        /// The key.
        key: String,
    },
    /// A TTL of zero was given to a write that needs a positive one.
    #[error("invalid expire time for key `{key}`: a TTL must be positive")]
    InvalidTtl {
        /// The key.
        key: String,
    },
    /// A key plus value larger than the store accepts (512 MiB, Redis's own string limit).
    #[error("value for key `{key}` is {size} bytes; the store's limit is {limit} bytes")]
    TooLarge {
        /// The key.
        key: String,
        /// Size of the key plus the value (for a list or set: all of its elements).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A stored record could not be decoded (damaged or written by an incompatible version).
    #[error("stored value at key `{key}` is corrupt: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// The result type of every store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// A change notification published on a channel (Tyk: `tyk.cluster.notifications`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The channel it was published on.
    pub channel: String,
    /// The message, verbatim.
    pub payload: String,
}

/// The remaining lifetime of a key, as Redis `PTTL` reports it (`-2`, `-1`, or a duration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist (or has expired). Redis: `-2`.
    Missing,
    /// The key exists and never expires. Redis: `-1`.
    Persistent,
    /// The key exists and expires after this duration (always non-zero).
    Expires(Duration),
}

impl Ttl {
    /// The remaining lifetime if the key exists and expires, `None` otherwise.
    pub fn remaining(self) -> Option<Duration> {
        match self {
            Ttl::Expires(d) => Some(d),
            Ttl::Missing | Ttl::Persistent => None,
        }
    }
}

/// One counter update of [`Store::incr_window`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterIncr {
    /// The counter's key.
    pub key: String,
    /// What to add (negative to subtract).
    pub by: i64,
    /// The TTL given to the counter if this call creates it (`None`: persistent). Never
    /// applied to an existing counter. Must not be zero.
    pub ttl_if_new: Option<Duration>,
}

impl CounterIncr {
    /// An update of `key` by `by`, with `ttl_if_new` if it creates the counter.
    pub fn new(key: impl Into<String>, by: i64, ttl_if_new: Option<Duration>) -> Self {
        Self {
            key: key.into(),
            by,
            ttl_if_new,
        }
    }
}

/// The storage used by the gateway.
///
/// An enum rather than a trait object so the hot path has no dynamic dispatch or boxed
/// futures. Cloning is cheap (an `Arc`), and all clones share one store; the Redis backend's
/// connections and background tasks end when the last clone is dropped.
#[derive(Clone)]
pub enum Store {
    /// The embedded persistent store (see [`embedded`]).
    Embedded(Arc<embedded::EmbeddedStore>),
    /// A Redis server or cluster (see [`redis`](self::redis)).
    Redis(Arc<self::redis::RedisStore>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Embedded(s) => f.debug_tuple("Store::Embedded").field(s).finish(),
            Store::Redis(s) => f.debug_tuple("Store::Redis").field(s).finish(),
        }
    }
}

impl Store {
    /// Opens (creating it if missing) the embedded store in directory `dir`, with default
    /// options. The database file is `<dir>/certgate.redb`.
    pub async fn open_embedded(dir: &Path) -> StoreResult<Store> {
        let store =
            embedded::EmbeddedStore::open(dir, embedded::EmbeddedOptions::default()).await?;
        Ok(Store::Embedded(Arc::new(store)))
    }

    /// Connects to Redis (standalone or cluster, per `opts`).
    ///
    /// Fails only on an invalid configuration ([`StoreError::Config`]). If Redis is
    /// unreachable, the store is returned anyway: its commands fail with
    /// [`StoreError::Unavailable`] until Redis answers, which it notices by itself within
    /// about a second. With Redis up, this returns once connected and subscribed; otherwise
    /// after at most about `connect_timeout + response_timeout`.
    pub async fn open_redis(opts: &RedisOptions) -> StoreResult<Store> {
        let store = self::redis::RedisStore::open(opts).await?;
        Ok(Store::Redis(Arc::new(store)))
    }

    /// Whether the store can currently reach its data, as last observed (for health checks;
    /// costs nothing). Embedded: always `true`. Redis: `false` from the moment a check finds
    /// Redis unreachable until it answers again.
    pub fn is_connected(&self) -> bool {
        match self {
            Store::Embedded(_) => true,
            Store::Redis(s) => s.is_connected(),
        }
    }

    /// Whether notifications published now will be received (costs nothing). Embedded:
    /// always. Redis: while the subscription is established (or when no channel was asked
    /// for); a change is announced on [`SUBSCRIPTION_LOST_CHANNEL`] / [`RECONNECTED_CHANNEL`]
    /// after the flag changes, so a subscriber that reads it after [`Store::subscribe`]
    /// misses no transition.
    pub fn is_subscribed(&self) -> bool {
        match self {
            Store::Embedded(_) => true,
            Store::Redis(s) => s.is_subscribed(),
        }
    }

    /// `GET`: the string at `key`, or `None` if it does not exist.
    /// [`StoreError::WrongType`] if the key holds a list or set.
    pub async fn get(&self, key: &str) -> StoreResult<Option<String>> {
        match self {
            Store::Embedded(s) => s.get(key),
            Store::Redis(s) => s.get(key).await,
        }
    }

    /// `MGET`: the strings at `keys`, in order; `None` for a key that is missing or does not
    /// hold a string (never an error for a wrong type, as in Redis).
    pub async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<String>>> {
        match self {
            Store::Embedded(s) => s.get_many(keys),
            Store::Redis(s) => s.get_many(keys).await,
        }
    }

    /// `SET key value [PX ttl]`: stores a string, replacing any value of any type and its TTL.
    /// `ttl = None` persists the key.
    pub async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> StoreResult<()> {
        match self {
            Store::Embedded(s) => s.set(key, value, ttl, embedded::SetCondition::Always).await,
            Store::Redis(s) => s.set(key, value, ttl, None).await,
        }
        .map(|_| ())
    }

    /// `SET … NX`: stores the string only if `key` does not exist. `true` if it was written.
    pub async fn set_nx(&self, key: &str, value: &str, ttl: Option<Duration>) -> StoreResult<bool> {
        match self {
            Store::Embedded(s) => {
                s.set(key, value, ttl, embedded::SetCondition::IfAbsent)
                    .await
            }
            Store::Redis(s) => s.set(key, value, ttl, Some("NX")).await,
        }
    }

    /// `SET … XX`: stores the string only if `key` exists (with any type). `true` if written.
    /// Tyk writes restored sessions this way so a concurrently deleted key is not resurrected.
    pub async fn set_xx(&self, key: &str, value: &str, ttl: Option<Duration>) -> StoreResult<bool> {
        match self {
            Store::Embedded(s) => {
                s.set(key, value, ttl, embedded::SetCondition::IfPresent)
                    .await
            }
            Store::Redis(s) => s.set(key, value, ttl, Some("XX")).await,
        }
    }

    /// `DEL`: removes `key` whatever its type. `true` if it existed.
    pub async fn delete(&self, key: &str) -> StoreResult<bool> {
        match self {
            Store::Embedded(s) => s.delete(key).await,
            Store::Redis(s) => s.delete(key).await,
        }
    }

    /// `EXISTS`: whether `key` exists (with any type).
    pub async fn exists(&self, key: &str) -> StoreResult<bool> {
        match self {
            Store::Embedded(s) => s.exists(key),
            Store::Redis(s) => s.exists(key).await,
        }
    }

    /// `PTTL`: the remaining lifetime of `key`.
    pub async fn ttl(&self, key: &str) -> StoreResult<Ttl> {
        match self {
            Store::Embedded(s) => s.ttl(key),
            Store::Redis(s) => s.ttl(key).await,
        }
    }

    /// `PEXPIRE`: sets the TTL of an existing key (any type). `true` if the key exists.
    /// A zero `ttl` deletes the key, as Redis does.
    pub async fn expire(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        match self {
            Store::Embedded(s) => s.expire(key, ttl).await,
            Store::Redis(s) => s.expire(key, ttl).await,
        }
    }

    /// `INCRBY`: adds `by` to the integer at `key` and returns the new value. A missing key
    /// starts at 0 (and is persistent); an existing key keeps its TTL.
    /// [`StoreError::NotInteger`] if the string is not a canonical integer,
    /// [`StoreError::Overflow`] on overflow, [`StoreError::WrongType`] for a list or set.
    pub async fn incr_by(&self, key: &str, by: i64) -> StoreResult<i64> {
        match self {
            Store::Embedded(s) => s.incr_by(key, by).await,
            Store::Redis(s) => s.incr_by(key, by).await,
        }
    }

    /// Updates several counters in ONE round trip (the gateway's rate-limit and quota counters of
    /// a request): for each item in order, atomically, "if `key` does not exist, create it with
    /// value 0 and TTL `ttl_if_new` (`None` = persistent); then `INCRBY key by`". Returns the new
    /// values, in the order of `items`. A key may appear more than once; each occurrence sees
    /// the ones before it.
    ///
    /// The TTL is set only when the counter is created: later calls never extend or clear it,
    /// so a counter created with a TTL of `d` disappears `d` after its creation and the next
    /// call starts it again from 0 (a fixed window, or a quota period). A negative `by` gives
    /// units back.
    ///
    /// Redis: one Lua script (`SET key 0 PX ttl NX` + `INCRBY` per item), sent as `EVALSHA`
    /// (`EVAL` once if Redis does not have it yet); in a cluster, one script per hash slot
    /// involved, all sent at once. Embedded: one command of the writer, so one transaction.
    ///
    /// Errors: [`StoreError::InvalidTtl`] for a zero `ttl_if_new` (nothing is sent);
    /// [`StoreError::WrongType`], [`StoreError::NotInteger`] or [`StoreError::Overflow`] for the
    /// first item that cannot be incremented. The embedded store then applies no item; Redis
    /// has applied the items of the same hash slot before the failing one (and, in a cluster,
    /// those of other slots), as a Redis script or pipeline would. The gateway's counters are
    /// its own keys, so these arise only from foreign data written under the same names.
    pub async fn incr_window(&self, items: &[CounterIncr]) -> StoreResult<Vec<i64>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(bad) = items.iter().find(|i| i.ttl_if_new == Some(Duration::ZERO)) {
            return Err(StoreError::InvalidTtl {
                key: bad.key.clone(),
            });
        }
        match self {
            Store::Embedded(s) => s.incr_window(items).await,
            Store::Redis(s) => s.incr_window(items).await,
        }
    }

    /// `SCAN 0 MATCH <prefix>*`: every existing key starting with `prefix`, any type, in no
    /// particular order. Redis: glob characters in `prefix` are escaped; cluster: every
    /// master is scanned; keys that are not UTF-8 are left out.
    pub async fn keys_with_prefix(&self, prefix: &str) -> StoreResult<Vec<String>> {
        match self {
            Store::Embedded(s) => s.keys_with_prefix(prefix).await,
            Store::Redis(s) => s.keys_with_prefix(prefix).await,
        }
    }

    /// `RPUSH`: appends `value` to the list at `key`, creating it if missing.
    pub async fn list_push(&self, key: &str, value: &str) -> StoreResult<()> {
        match self {
            Store::Embedded(s) => s.list_push(key, value).await,
            Store::Redis(s) => s.list_push(key, value).await,
        }
        .map(|_| ())
    }

    /// `LRANGE key 0 -1`: the whole list, in order; empty if the key is missing.
    pub async fn list_range(&self, key: &str) -> StoreResult<Vec<String>> {
        match self {
            Store::Embedded(s) => s.list_range(key),
            Store::Redis(s) => s.list_range(key).await,
        }
    }

    /// `LREM key 0 value`: removes every element equal to `value`; returns how many.
    pub async fn list_remove(&self, key: &str, value: &str) -> StoreResult<u64> {
        match self {
            Store::Embedded(s) => s.list_remove(key, value).await,
            Store::Redis(s) => s.list_remove(key, value).await,
        }
    }

    /// `SADD` of one member. `true` if it was not already in the set.
    pub async fn set_add(&self, key: &str, member: &str) -> StoreResult<bool> {
        match self {
            Store::Embedded(s) => s.set_add(key, member).await,
            Store::Redis(s) => s.set_add(key, member).await,
        }
    }

    /// `SREM` of one member. `true` if it was in the set.
    pub async fn set_remove(&self, key: &str, member: &str) -> StoreResult<bool> {
        match self {
            Store::Embedded(s) => s.set_remove(key, member).await,
            Store::Redis(s) => s.set_remove(key, member).await,
        }
    }

    /// `SMEMBERS`: the members of the set, in no particular order; empty if missing.
    pub async fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        match self {
            Store::Embedded(s) => s.set_members(key),
            Store::Redis(s) => s.set_members(key).await,
        }
    }

    /// `PUBLISH`: sends `payload` to the subscribers of `channel`. Succeeds with no subscribers.
    pub async fn publish(&self, channel: &str, payload: &str) -> StoreResult<()> {
        match self {
            Store::Embedded(s) => {
                s.publish(channel, payload);
                Ok(())
            }
            Store::Redis(s) => s.publish(channel, payload).await,
        }
    }

    /// Subscribes to every channel. Embedded: in-process only, since it is a single node.
    /// Redis: the channels in [`RedisOptions::channels`], plus [`SUBSCRIPTION_LOST_CHANNEL`]
    /// and [`RECONNECTED_CHANNEL`].
    pub fn subscribe(&self) -> broadcast::Receiver<Notification> {
        match self {
            Store::Embedded(s) => s.subscribe(),
            Store::Redis(s) => s.subscribe(),
        }
    }

    /// `PING`: checks that the store can serve reads and its writer is running (Redis: that
    /// Redis answers; fails at once while the store knows it is disconnected).
    pub async fn ping(&self) -> StoreResult<()> {
        match self {
            Store::Embedded(s) => s.ping(),
            Store::Redis(s) => s.ping().await,
        }
    }
}
