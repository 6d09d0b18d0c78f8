//! Several gateways, one store: Tyk's cluster notifications and the node-local caches
//! they keep correct.
//!
//! Every node keeps a short-lived local cache of sessions (by store key) and of
//! certificate-store answers (by certificate ID), so a known client costs no store
//! round trip. Every change a node makes evicts its own entry *before* the Gateway
//! API answers (revocation is immediate on that node) and is then published on
//! `tyk.cluster.notifications` in Tyk's format (§7.1), signed with `node_secret`;
//! every node evicts on receipt. A node whose subscription was interrupted drops all
//! its caches when it reconnects, because it may have missed evictions. The cache
//! timeout (`local_session_cache.cached_session_timeout`, Tyk's 10 s) bounds how long
//! an entry can outlive a change nobody announced (e.g. a Tyk node deleting a
//! certificate, which Tyk does not publish) — see `docs/operations.md`.

use std::collections::HashMap;

/// foldhash, randomly seeded per map: a fraction of SipHash's cost on the per-request
/// lookups, still keyed so clients cannot choose colliding keys.
type FastHash = foldhash::fast::RandomState;

/// One shard of a [`TtlCache`]: key → (insertion time, value).
type Shard<V> = RwLock<HashMap<String, (Instant, V), FastHash>>;
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::session::SessionState;

/// Tyk's cluster channel.
pub const CHANNEL: &str = "tyk.cluster.notifications";

/// A session changed or was removed; payload: comma-separated store-key suffixes
/// (`HashKey(token)`).
pub const KEY_SPACE_UPDATE: &str = "KeySpaceUpdateNotification";
/// Reload APIs and policies on every node.
pub const GROUP_RELOAD: &str = "GroupReload";
/// **certgate**: a certificate was removed from the store; payload: its ID. Tyk nodes
/// ignore commands they do not know.
pub const CERTIFICATE_REMOVED: &str = "CertificateRemoved";
/// **certgate**: a certificate was added; payload: its ID.
pub const CERTIFICATE_ADDED: &str = "CertificateAdded";

/// The store's own notice that its subscription came back after an interruption.
pub const STORE_RECONNECTED: &str = crate::store::RECONNECTED_CHANNEL;

/// Go's `crypto.SHA256` enum value, Tyk's signature algorithm marker.
const ALGORITHM_SHA256: i64 = 5;

/// The wire message (`{"command","payload","signature","algorithm"}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Message {
    /// What happened.
    pub command: String,
    /// Its argument.
    #[serde(default)]
    pub payload: String,
    /// hex(SHA-256(command + payload + node_secret)).
    #[serde(default)]
    pub signature: String,
    /// 5 = SHA-256.
    #[serde(default)]
    pub algorithm: i64,
}

fn signature(command: &str, payload: &str, secret: &str) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(command.as_bytes());
    ctx.update(payload.as_bytes());
    ctx.update(secret.as_bytes());
    hex::encode(ctx.finish())
}

/// Encodes a signed message.
pub fn encode(cfg: &Config, command: &str, payload: &str) -> String {
    let m = Message {
        command: command.to_owned(),
        payload: payload.to_owned(),
        signature: signature(command, payload, &cfg.node_secret),
        algorithm: ALGORITHM_SHA256,
    };
    serde_json::to_string(&m).unwrap_or_default()
}

/// Decodes and verifies a message; `None` for malformed or badly signed ones (unless
/// `allow_insecure_configs`, as Tyk).
pub fn decode(cfg: &Config, raw: &str) -> Option<Message> {
    let m: Message = serde_json::from_str(raw).ok()?;
    if cfg.allow_insecure_configs {
        return Some(m);
    }
    let want = signature(&m.command, &m.payload, &cfg.node_secret);
    let ok = m.algorithm == ALGORITHM_SHA256
        && subtle::ConstantTimeEq::ct_eq(want.as_bytes(), m.signature.as_bytes()).into();
    if !ok {
        tracing::warn!(command = %m.command, "cluster notification with a bad signature dropped");
        return None;
    }
    Some(m)
}

const SHARDS: usize = 16;
/// Entries per shard before the shard is cleared (a crude bound; entries are cheap
/// to refetch).
const MAX_PER_SHARD: usize = 64 * 1024;

/// A small sharded map with a per-entry age limit.
#[derive(Debug)]
pub struct TtlCache<V> {
    shards: Vec<Shard<V>>,
    hasher: FastHash,
    ttl: Duration,
    enabled: bool,
}

impl<V: Clone> TtlCache<V> {
    /// A cache whose entries live `ttl`; a disabled cache stores nothing.
    pub fn new(ttl: Duration, enabled: bool) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::with_hasher(FastHash::default())))
                .collect(),
            hasher: FastHash::default(),
            ttl,
            enabled,
        }
    }

    fn shard(&self, key: &str) -> &Shard<V> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// The value for `key` if present and fresh.
    pub fn get(&self, key: &str) -> Option<V> {
        if !self.enabled {
            return None;
        }
        let shard = self.shard(key).read().ok()?;
        let (at, v) = shard.get(key)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    /// Stores a value.
    pub fn insert(&self, key: &str, v: V) {
        self.insert_for(key, v, self.ttl);
    }

    /// Stores a value for at most `max_age` (shorter than the cache's TTL when the
    /// underlying record expires sooner).
    pub fn insert_for(&self, key: &str, v: V, max_age: Duration) {
        if !self.enabled {
            return;
        }
        // Entries are stamped so that `get`'s age check ends them after `max_age`.
        let stamp = match self.ttl.checked_sub(max_age) {
            Some(head_start) if !head_start.is_zero() => Instant::now()
                .checked_sub(head_start)
                .unwrap_or_else(Instant::now),
            _ => Instant::now(),
        };
        if let Ok(mut shard) = self.shard(key).write() {
            if shard.len() >= MAX_PER_SHARD {
                let ttl = self.ttl;
                shard.retain(|_, (at, _)| at.elapsed() < ttl);
                if shard.len() >= MAX_PER_SHARD {
                    shard.clear();
                }
            }
            shard.insert(key.to_owned(), (stamp, v));
        }
    }

    /// Drops `key`.
    pub fn remove(&self, key: &str) {
        if let Ok(mut shard) = self.shard(key).write() {
            shard.remove(key);
        }
    }

    /// Drops everything.
    pub fn clear(&self) {
        for s in &self.shards {
            if let Ok(mut s) = s.write() {
                s.clear();
            }
        }
    }
}

/// The node-local caches.
#[derive(Debug)]
pub struct Caches {
    /// Sessions by store key (`apikey-…`).
    pub sessions: TtlCache<Arc<SessionState>>,
    /// Certificate IDs known to be in the store.
    pub certs: TtlCache<()>,
}

impl Caches {
    /// Caches configured by `local_session_cache`.
    pub fn new(cfg: &Config) -> Self {
        let on = !cfg.local_cache.disabled;
        Self {
            sessions: TtlCache::new(cfg.local_cache.timeout, on),
            certs: TtlCache::new(cfg.local_cache.timeout, on),
        }
    }

    /// Applies a received notification; true if it asks for a reload.
    pub fn apply(&self, m: &Message) -> bool {
        match m.command.as_str() {
            KEY_SPACE_UPDATE => {
                for part in m.payload.split(',') {
                    // Tyk drops anything after a ':' in each element.
                    let key = part.split(':').next().unwrap_or("").trim();
                    if !key.is_empty() {
                        self.sessions
                            .remove(&format!("{}{key}", crate::auth::SESSION_PREFIX));
                    }
                }
                false
            }
            CERTIFICATE_REMOVED | CERTIFICATE_ADDED => {
                self.certs.remove(&m.payload);
                // Allow lists and server certificates are part of the snapshot.
                true
            }
            "ApiUpdated" | "ApiAdded" | "ApiRemoved" | "PolicyChanged" | GROUP_RELOAD => true,
            _ => false,
        }
    }

    /// Drops everything (after a missed-notification window).
    pub fn clear(&self) {
        self.sessions.clear();
        self.certs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(secret: &str, insecure: bool) -> Config {
        let mut v = json!({"node_secret": secret});
        if insecure {
            v["allow_insecure_configs"] = json!(true);
        }
        Config::from_json(&v, std::path::Path::new("/")).unwrap()
    }

    #[test]
    fn messages_are_signed_as_tyk_signs_them() {
        let c = cfg("s3cret", false);
        let raw = encode(&c, KEY_SPACE_UPDATE, "abc");
        let m: Message = serde_json::from_str(&raw).unwrap();
        assert_eq!(m.algorithm, 5);
        // hex(SHA-256("KeySpaceUpdateNotification" + "abc" + "s3cret"))
        let want = crate::tokens::sha256_hex(b"KeySpaceUpdateNotificationabcs3cret");
        assert_eq!(m.signature, want);
        assert_eq!(decode(&c, &raw).unwrap(), m);
        assert!(decode(&cfg("other", false), &raw).is_none());
        assert!(decode(&cfg("other", true), &raw).is_some());
        assert!(decode(&c, "not json").is_none());
        let unsigned = json!({"command": GROUP_RELOAD, "payload": ""}).to_string();
        assert!(decode(&c, &unsigned).is_none());
    }

    #[test]
    fn key_space_updates_evict_each_listed_key() {
        let caches = Caches::new(&cfg("", false));
        let s = Arc::new(SessionState::default());
        caches.sessions.insert("apikey-a", s.clone());
        caches.sessions.insert("apikey-b", s.clone());
        caches.sessions.insert("apikey-c", s);
        let m = Message {
            command: KEY_SPACE_UPDATE.into(),
            payload: "a,b:extra".into(),
            signature: String::new(),
            algorithm: 5,
        };
        assert!(!caches.apply(&m));
        assert!(caches.sessions.get("apikey-a").is_none());
        assert!(caches.sessions.get("apikey-b").is_none());
        assert!(caches.sessions.get("apikey-c").is_some());
    }

    #[test]
    fn entries_expire_and_disabled_caches_store_nothing() {
        let c: TtlCache<u8> = TtlCache::new(Duration::from_millis(30), true);
        c.insert("k", 1);
        assert_eq!(c.get("k"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get("k"), None);
        let off: TtlCache<u8> = TtlCache::new(Duration::from_secs(10), false);
        off.insert("k", 1);
        assert_eq!(off.get("k"), None);
    }
}
