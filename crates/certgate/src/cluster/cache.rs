//! The node-local caches and their revocation guard.
//!
//! A cache fill is a store read followed by an insert; an invalidation (a local change,
//! a cluster notification, a gap in the subscription) may land between the two. Every
//! cache therefore keeps an **epoch**, bumped by every invalidation *before* it removes
//! anything: a filler takes a [`Ticket`] (the epoch) before its store read and inserts
//! only if the epoch is unchanged, checked under the shard's write lock. Either the
//! invalidation's bump is visible to that check (the fill is dropped), or the insert
//! happened before the invalidation took the lock (and the invalidation removes it).
//! A stale "present" entry cannot survive an invalidation.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::{Message, CERTIFICATE_ADDED, CERTIFICATE_REMOVED, KEY_SPACE_UPDATE};
use crate::config::Config;
use crate::session::SessionState;

/// foldhash, randomly seeded per map: a fraction of SipHash's cost on the per-request
/// lookups, still keyed so clients cannot choose colliding keys.
type FastHash = foldhash::fast::RandomState;

/// One shard of a [`TtlCache`]: key → (insertion time, value).
type Shard<V> = RwLock<HashMap<String, (Instant, V), FastHash>>;

const SHARDS: usize = 16;
/// Entries per shard before the shard is cleared (a crude bound; entries are cheap
/// to refetch).
const MAX_PER_SHARD: usize = 64 * 1024;

/// The epoch a filler saw before its store read (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Ticket(u64);

/// A small sharded map with a per-entry age limit and an invalidation epoch.
#[derive(Debug)]
pub struct TtlCache<V> {
    shards: Vec<Shard<V>>,
    hasher: FastHash,
    ttl: Duration,
    enabled: bool,
    /// Bumped by every invalidation, before it removes anything.
    epoch: AtomicU64,
    /// False while notifications cannot arrive (no fill is accepted then).
    online: AtomicBool,
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
            epoch: AtomicU64::new(0),
            online: AtomicBool::new(true),
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

    /// Take this **before** the store read whose answer will be inserted.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.epoch.load(Ordering::SeqCst))
    }

    /// The number of invalidations so far (increases with each one).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Stores a value read after `ticket` was taken, unless an invalidation happened
    /// since. True if stored.
    pub fn insert_if(&self, ticket: Ticket, key: &str, v: V) -> bool {
        self.insert_for_if(ticket, key, v, self.ttl)
    }

    /// [`Self::insert_if`] for at most `max_age` (shorter than the cache's TTL when the
    /// underlying record expires sooner).
    pub fn insert_for_if(&self, ticket: Ticket, key: &str, v: V, max_age: Duration) -> bool {
        if !self.enabled {
            return false;
        }
        // Entries are stamped so that `get`'s age check ends them after `max_age`.
        let stamp = match self.ttl.checked_sub(max_age) {
            Some(head_start) if !head_start.is_zero() => Instant::now()
                .checked_sub(head_start)
                .unwrap_or_else(Instant::now),
            _ => Instant::now(),
        };
        let Ok(mut shard) = self.shard(key).write() else {
            return false;
        };
        // Under the write lock: an invalidation either bumped the epoch before this
        // check (the fill is dropped) or takes the lock after us (and removes it).
        if self.epoch.load(Ordering::SeqCst) != ticket.0 || !self.online.load(Ordering::SeqCst) {
            return false;
        }
        if shard.len() >= MAX_PER_SHARD {
            let ttl = self.ttl;
            shard.retain(|_, (at, _)| at.elapsed() < ttl);
            if shard.len() >= MAX_PER_SHARD {
                shard.clear();
            }
        }
        shard.insert(key.to_owned(), (stamp, v));
        true
    }

    /// Drops `key` (an invalidation: fills in flight are dropped too).
    pub fn remove(&self, key: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut shard) = self.shard(key).write() {
            shard.remove(key);
        }
    }

    /// Drops everything (an invalidation).
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for s in &self.shards {
            if let Ok(mut s) = s.write() {
                s.clear();
            }
        }
    }

    /// Online: fills are accepted. Offline: everything is dropped and no fill is
    /// accepted until back online.
    pub fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::SeqCst);
        // Both ways an invalidation: going offline empties the cache; coming back,
        // fills that started while offline (or before) are dropped.
        self.clear();
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

    /// Applies a notification (received, or made here); true if it asks for a reload.
    pub fn apply(&self, m: &Message) -> bool {
        match m.command.as_str() {
            KEY_SPACE_UPDATE => {
                for part in m.payload.split(',') {
                    // Tyk drops anything after a ':' in each element.
                    let key = part.split(':').next().unwrap_or("").trim();
                    if !key.is_empty() {
                        self.sessions
                            .remove(&crate::tokens::session_store_key_of(key));
                    }
                }
                false
            }
            CERTIFICATE_REMOVED | CERTIFICATE_ADDED => {
                self.certs.remove(&m.payload);
                // Allow lists and server certificates are part of the snapshot.
                true
            }
            "ApiUpdated" | "ApiAdded" | "ApiRemoved" | "PolicyChanged" | super::GROUP_RELOAD => {
                true
            }
            _ => false,
        }
    }

    /// Drops everything (after a missed-notification window).
    pub fn clear(&self) {
        self.sessions.clear();
        self.certs.clear();
    }

    /// Whether notifications can currently arrive (see [`TtlCache::set_online`]).
    pub fn set_online(&self, online: bool) {
        self.sessions.set_online(online);
        self.certs.set_online(online);
    }

    /// Increases with every invalidation this node applied (for tests and metrics).
    pub fn epoch(&self) -> u64 {
        self.sessions.epoch() + self.certs.epoch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caches() -> Caches {
        let cfg = Config::from_json(&serde_json::json!({}), std::path::Path::new("/")).unwrap();
        Caches::new(&cfg)
    }

    #[test]
    fn key_space_updates_evict_each_listed_key() {
        let caches = caches();
        let s = Arc::new(SessionState::default());
        for k in ["apikey-a", "apikey-b", "apikey-c"] {
            let t = caches.sessions.ticket();
            assert!(caches.sessions.insert_if(t, k, s.clone()));
        }
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
        assert!(c.insert_if(c.ticket(), "k", 1));
        assert_eq!(c.get("k"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get("k"), None);
        let off: TtlCache<u8> = TtlCache::new(Duration::from_secs(10), false);
        assert!(!off.insert_if(off.ticket(), "k", 1));
        assert_eq!(off.get("k"), None);
    }

    /// The revocation race, step by step: a filler reads the store (the key is still
    /// there), the key is deleted and its entry invalidated, then the filler inserts
    /// what it read. The stale entry must not appear.
    #[test]
    fn a_fill_that_started_before_an_invalidation_is_dropped() {
        let c: TtlCache<u8> = TtlCache::new(Duration::from_secs(300), true);
        // Read → invalidate (DELETE) → insert.
        let t = c.ticket();
        c.remove("apikey-k");
        assert!(!c.insert_if(t, "apikey-k", 1));
        assert_eq!(c.get("apikey-k"), None, "a revoked entry was cached");
        // The same with an invalidation of another key and with a clear: the epoch is
        // per cache, so any invalidation drops fills in flight.
        let t = c.ticket();
        c.remove("apikey-other");
        assert!(!c.insert_if(t, "apikey-k", 1));
        let t = c.ticket();
        c.clear();
        assert!(!c.insert_for_if(t, "apikey-k", 1, Duration::from_secs(1)));
        assert_eq!(c.get("apikey-k"), None);
        // A fill with no invalidation in between is kept.
        let t = c.ticket();
        assert!(c.insert_if(t, "apikey-k", 1));
        assert_eq!(c.get("apikey-k"), Some(1));
        // Insert first, invalidate after: the invalidation removes it.
        c.remove("apikey-k");
        assert_eq!(c.get("apikey-k"), None);
    }

    #[test]
    fn an_offline_cache_is_empty_and_accepts_no_fill() {
        let c: TtlCache<u8> = TtlCache::new(Duration::from_secs(300), true);
        assert!(c.insert_if(c.ticket(), "k", 1));
        let before = c.ticket();
        c.set_online(false);
        assert_eq!(c.get("k"), None);
        assert!(!c.insert_if(c.ticket(), "k", 1), "filled while offline");
        c.set_online(true);
        assert!(!c.insert_if(before, "k", 1), "a fill from before the gap");
        assert!(c.insert_if(c.ticket(), "k", 1));
        assert_eq!(c.get("k"), Some(1));
    }

    #[test]
    fn concurrent_invalidations_never_leave_a_stale_entry() {
        // Threads fill "k" with the epoch they saw; another invalidates repeatedly.
        // After each invalidation returns, any entry present must come from a fill
        // whose ticket was taken after it.
        let c = Arc::new(TtlCache::<u64>::new(Duration::from_secs(300), true));
        let stop = Arc::new(AtomicBool::new(false));
        let fillers: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let t = c.ticket();
                        let _ = c.insert_if(t, "k", t.0);
                    }
                })
            })
            .collect();
        for _ in 0..2000 {
            c.remove("k");
            let after = c.epoch();
            if let Some(v) = c.get("k") {
                assert!(
                    v >= after,
                    "entry from epoch {v} survived invalidation {after}"
                );
            }
        }
        stop.store(true, Ordering::Relaxed);
        for f in fillers {
            f.join().unwrap();
        }
    }
}
