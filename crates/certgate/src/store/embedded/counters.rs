//! The embedded store's counters: kept in memory, written behind to redb.
//!
//! Rate-limit and quota counters change on every request. Sending each change to the writer
//! thread and waiting for its transaction cost two context switches and a redb
//! copy-on-write per request, which was most of the gateway's CPU under load. One process
//! owns the embedded store (redb locks the file), so a counter held in this process's
//! memory is authoritative: [`Counters`] holds every counter that `incr_window` has touched,
//! the writer thread saves the changed ones every [`COUNTER_FLUSH`] in one durable
//! transaction, and a crash loses at most that much counting.
//!
//! # Consistency with the rest of the store
//!
//! A key held here is answered from here by every command: reads (`GET`, `TTL`, `EXISTS`,
//! key scans) look here first, and `DEL` / `INCRBY` change the held value. Any other write to
//! a held key (`SET`, `EXPIRE`, list and set commands) first *hands the key back*: the held
//! value, if not saved yet, is queued to the writer ahead of the command, and the key is
//! no longer held.
//!
//! A counter is loaded from redb on its first use, inline. That read must see every write
//! sent to the writer before it, so every request sent to the writer is counted in
//! `in_flight` (incremented under this lock as it is sent, decremented once its transaction
//! is committed) and a load waits while any is in flight. Writes are rare next to requests
//! (operator changes), so the wait is too.
//!
//! An entry leaves memory only once its last value is on disk, when it has expired, was
//! deleted, or has not been used for [`IDLE_EVICTION`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::store::{CounterIncr, StoreError, StoreResult, Ttl};

/// How long a counter change may stay in memory before it is saved (a crash loses at most
/// this much counting).
pub(crate) const COUNTER_FLUSH: Duration = Duration::from_millis(100);

/// A saved counter unused this long leaves memory (it is loaded again on its next use).
pub(super) const IDLE_EVICTION: Duration = Duration::from_secs(60);

/// A counter's value and absolute expiry (unix ms, 0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counter {
    pub(super) value: i64,
    pub(super) expiry: u64,
}

impl Counter {
    fn live(self, now: u64) -> bool {
        self.expiry == 0 || self.expiry > now
    }
}

/// One held key.
#[derive(Debug)]
struct Entry {
    /// `None`: no such key (deleted, or never existed); its stored copy, if any, must go.
    state: Option<Counter>,
    /// Bumped on every change.
    version: u64,
    /// The version known to be on disk.
    saved: u64,
    /// Whether the key is in the dirty list.
    queued: bool,
    /// Last use, unix ms.
    touched: u64,
}

impl Entry {
    fn live(&self, now: u64) -> Option<Counter> {
        self.state.filter(|c| c.live(now))
    }

    fn clean(&self) -> bool {
        self.version == self.saved
    }
}

/// What a load found in redb for a key.
pub(super) type Loaded = StoreResult<Option<Counter>>;

/// The held counters (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct Counters {
    inner: Mutex<Inner>,
    /// Signalled when `in_flight` drops to zero.
    idle: Notify,
}

#[derive(Debug, Default)]
pub(super) struct Inner {
    /// foldhash (randomly seeded): this map is looked up on every request.
    map: HashMap<Box<str>, Entry, foldhash::fast::RandomState>,
    dirty: Vec<Box<str>>,
    /// Requests sent to the writer and not yet committed.
    in_flight: usize,
}

/// A change to save: the key, its state, and the version it is.
pub(super) type Save = (Box<str>, Option<Counter>, u64);

/// Why `incr` could not finish under the lock.
pub(super) enum IncrOutcome {
    Done(Vec<i64>),
    /// Some keys are not held and writes are in flight: wait for [`Counters::idle`].
    MustWait,
}

impl Counters {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave an entry half-changed (every change
        // is one assignment), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A future that completes once no write is in flight; create it (and `enable` it)
    /// before checking under the lock so the signal cannot be missed.
    pub(super) fn idle(&self) -> &Notify {
        &self.idle
    }

    /// Called by the writer after committing (or failing) `n` requests.
    pub(super) fn committed(&self, n: usize) {
        let mut inner = self.lock();
        inner.in_flight = inner.in_flight.saturating_sub(n);
        if inner.in_flight == 0 {
            self.idle.notify_waiters();
        }
    }
}

impl Inner {
    /// Counts a request about to be sent to the writer (call with the lock held, and send
    /// before releasing it).
    pub(super) fn sending(&mut self) {
        self.in_flight += 1;
    }

    /// Whether `key` is held, and its state if it is live.
    pub(super) fn get(&mut self, key: &str, now: u64) -> Option<Option<Counter>> {
        self.map.get(key).map(|e| e.live(now))
    }

    /// `TTL` of a held key.
    pub(super) fn ttl(&self, key: &str, now: u64) -> Option<Ttl> {
        let e = self.map.get(key)?;
        Some(match e.live(now) {
            None => Ttl::Missing,
            Some(Counter { expiry: 0, .. }) => Ttl::Persistent,
            Some(c) => Ttl::Expires(Duration::from_millis(c.expiry - now)),
        })
    }

    /// `DEL` of a held key: `Some(existed)`; `None` if not held.
    pub(super) fn delete(&mut self, key: &str, now: u64) -> Option<bool> {
        let e = self.map.get(key)?;
        let existed = e.live(now).is_some();
        if e.state.is_some() {
            self.change(key, None, now);
        }
        Some(existed)
    }

    /// `INCRBY` of a held key (a missing one starts at 0, persistent); `None` if not held.
    pub(super) fn incr_by(&mut self, key: &str, by: i64, now: u64) -> Option<StoreResult<i64>> {
        let e = self.map.get(key)?;
        let c = e.live(now).unwrap_or(Counter {
            value: 0,
            expiry: 0,
        });
        Some(match c.value.checked_add(by) {
            Some(value) => {
                self.change(key, Some(Counter { value, ..c }), now);
                Ok(value)
            }
            None => Err(StoreError::Overflow { key: key.into() }),
        })
    }

    /// Stops holding `key`; returns its state if it must be saved before the next command
    /// on it (`Some(None)`: its stored copy must be deleted).
    pub(super) fn hand_back(&mut self, key: &str) -> Option<Option<Counter>> {
        let e = self.map.remove(key)?;
        // Its key stays in the dirty list; the flush skips keys no longer held.
        (!e.clean()).then_some(e.state)
    }

    /// The held live keys starting with `prefix`, and the held keys that do not exist.
    pub(super) fn scan(&self, prefix: &str, now: u64) -> (Vec<String>, Vec<String>) {
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (k, e) in self.map.iter().filter(|(k, _)| k.starts_with(prefix)) {
            if e.live(now).is_some() {
                live.push(k.to_string());
            } else {
                gone.push(k.to_string());
            }
        }
        (live, gone)
    }

    /// `Store::incr_window` (the caller has checked the TTLs and sizes). Keys not held are
    /// loaded with `load` first, unless writes are in flight. One lookup per item to
    /// compute and one to apply.
    pub(super) fn incr(
        &mut self,
        items: &[CounterIncr],
        now: u64,
        load: &dyn Fn(&str) -> Loaded,
    ) -> StoreResult<IncrOutcome> {
        // Compute every new value first (a key may appear twice, each occurrence seeing the
        // previous), so a failing item leaves the whole command unapplied.
        let mut next: Vec<(&str, Counter)> = Vec::with_capacity(items.len());
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            let key = item.key.as_str();
            let current = match next.iter().rposition(|(k, _)| *k == key) {
                Some(i) => Some(next[i].1),
                None => match self.map.get(key) {
                    Some(e) => e.live(now),
                    None => return self.load_then_incr(items, now, load),
                },
            };
            let c = current.unwrap_or_else(|| Counter {
                value: 0,
                expiry: item.ttl_if_new.map_or(0, |d| expiry_at(now, d)),
            });
            let value = c
                .value
                .checked_add(item.by)
                .ok_or_else(|| StoreError::Overflow { key: key.into() })?;
            values.push(value);
            next.push((key, Counter { value, ..c }));
        }
        for (key, c) in next {
            let Some(e) = self.map.get_mut(key) else {
                continue;
            };
            e.touched = now;
            if e.live(now) != Some(c) {
                e.state = Some(c);
                e.version += 1;
                if !e.queued {
                    e.queued = true;
                    self.dirty.push(key.into());
                }
            }
        }
        Ok(IncrOutcome::Done(values))
    }

    /// Loads the keys of `items` that are not held (unless writes are in flight), then
    /// counts.
    fn load_then_incr(
        &mut self,
        items: &[CounterIncr],
        now: u64,
        load: &dyn Fn(&str) -> Loaded,
    ) -> StoreResult<IncrOutcome> {
        if self.in_flight > 0 {
            return Ok(IncrOutcome::MustWait);
        }
        for item in items {
            if !self.map.contains_key(item.key.as_str()) {
                let state = load(&item.key)?;
                self.map.insert(
                    item.key.as_str().into(),
                    Entry {
                        state,
                        version: 0,
                        saved: 0,
                        queued: false,
                        touched: now,
                    },
                );
            }
        }
        // Every key is held now: the computation cannot come back here.
        self.incr(items, now, &|_| Ok(None))
    }

    fn change(&mut self, key: &str, state: Option<Counter>, now: u64) {
        let Some(e) = self.map.get_mut(key) else {
            return;
        };
        e.state = state;
        e.version += 1;
        e.touched = now;
        if !e.queued {
            e.queued = true;
            self.dirty.push(key.into());
        }
    }

    /// The changes to save now, and whether the dirty list was empty.
    pub(super) fn take_dirty(&mut self) -> Vec<Save> {
        let keys = std::mem::take(&mut self.dirty);
        let mut saves = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(e) = self.map.get_mut(&key) {
                e.queued = false;
                if !e.clean() {
                    saves.push((key, e.state, e.version));
                }
            }
        }
        saves
    }

    /// Puts `saves` back in the dirty list after a failed save.
    pub(super) fn requeue(&mut self, saves: &[Save]) {
        for (key, _, _) in saves {
            if let Some(e) = self.map.get_mut(key) {
                if !e.clean() && !e.queued {
                    e.queued = true;
                    self.dirty.push(key.clone());
                }
            }
        }
    }

    /// Records that `saves` are on disk, and lets go of the entries that no longer need
    /// memory: saved and deleted or expired, or (when `idle_before` is given) saved and
    /// unused since then.
    pub(super) fn saved(&mut self, saves: &[Save], now: u64, idle_before: Option<u64>) {
        for (key, _, version) in saves {
            if let Some(e) = self.map.get_mut(key) {
                e.saved = e.saved.max(*version);
                if e.clean() && e.live(now).is_none() {
                    self.map.remove(key);
                }
            }
        }
        if let Some(before) = idle_before {
            self.map
                .retain(|_, e| !(e.clean() && (e.touched < before || e.live(now).is_none())));
        }
    }
}

/// Absolute expiry for a TTL starting at `now`; sub-millisecond remainders round up, so a
/// positive TTL never expires immediately. Never 0 (which means "no expiry").
pub(super) fn expiry_at(now: u64, ttl: Duration) -> u64 {
    let mut ms = ttl.as_millis();
    if !ttl.subsec_nanos().is_multiple_of(1_000_000) {
        ms += 1;
    }
    now.saturating_add(u64::try_from(ms).unwrap_or(u64::MAX))
        .max(1)
}
