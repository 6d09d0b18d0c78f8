//! The embedded store: Redis-like primitives persisted in one redb file, `<dir>/certgate.redb`.
//!
//! # Layout
//!
//! - table `kv`: key → encoded record (type tag, absolute expiry, payload; see `record.rs`).
//!   A list or set is one record, rewritten as a whole on each change: the gateway's
//!   collections (per-org certificate indexes) are small, and this keeps every command a
//!   single-key read-modify-write.
//! - table `expiry`: `(expiry unix ms, key)` → `()`, an index of the keys that expire, so the
//!   background purge reads only what is due instead of scanning every key.
//! - table `meta`: `format` → layout version, so a future layout change is detected.
//!
//! # Expiry
//!
//! Expiry is absolute wall-clock time (unix milliseconds), so it survives a restart: a key
//! that expired while the gateway was down is gone when it comes back. Every read checks the
//! expiry, so an expired key is invisible the moment its time passes; the purge only
//! reclaims space. An index entry whose record has since changed is simply dropped by the
//! purge, which deletes a record only if it still carries the expiry that was indexed.
//!
//! # Writes: one writer thread, group commit
//!
//! redb runs one write transaction at a time, and a durable commit costs an fsync. Every
//! write is therefore sent over a channel to a dedicated writer thread, which takes whatever
//! requests are queued (up to 256), applies them one after another in ONE write
//! transaction, commits it with `Durability::Immediate`, and only then answers each caller.
//! Compared with `spawn_blocking` per write (each blocked on redb's writer lock, one fsync
//! each), this shares one fsync among concurrent writers and never parks more than one
//! thread on the lock.
//!
//! # Counters: in memory, written behind
//!
//! Rate-limit and quota counters (`incr_window`), which change on every request, do not go
//! to the writer per change: they are held in this process's memory, which is
//! authoritative because redb lets only one process open the file, and saved every 100 ms
//! by the writer thread in one transaction. See `counters.rs` for how every other command
//! stays consistent with them. Each command is still
//! atomic and serialised (INCR, SETNX, LREM are read-modify-writes inside the transaction),
//! so no update is lost. A command that fails logically (`WRONGTYPE`, not an integer…) has
//! checked everything before writing anything, so it does not affect the rest of the batch;
//! an engine error aborts the transaction and every command of the batch gets the error, so
//! nothing unacknowledged is half-applied and nothing acknowledged is lost.
//!
//! The writer thread also runs the periodic purge. It stops when the store is dropped: the
//! channel closes, the thread finishes the queued requests and exits, and `Drop` joins it so
//! the database file is closed (and its lock released) when the last handle goes away.
//!
//! A write whose caller stops waiting (its future dropped) after it was queued still happens,
//! as a command sent to Redis does.
//!
//! # Reads
//!
//! Point reads run inline on the caller's task: a read transaction is a snapshot that never
//! waits for the writer, and a lookup in the B-tree is served from redb's cache or the OS page
//! cache. Scans (`keys_with_prefix`), whose cost grows with the data, run on
//! `spawn_blocking`.
//!
//! # Locking
//!
//! redb locks the file: a second process (or a second store in this process) opening the same
//! directory gets [`StoreError::AlreadyOpen`] instead of sharing and corrupting it.

mod counters;
mod writer;

#[cfg(test)]
pub(crate) use counters::COUNTER_FLUSH;

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError, TableDefinition,
};
use tokio::sync::{broadcast, oneshot};

use super::record::{self, Value};
use super::{CounterIncr, Notification, StoreError, StoreResult, Ttl};
use counters::{Counter, Counters, IncrOutcome};
use writer::{writer_loop, Op, Reply, Request};

/// The database file inside the store directory.
pub const FILE_NAME: &str = "certgate.redb";
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const FORMAT_VERSION: u64 = 1;
/// Capacity of the notification channel; a subscriber further behind than this lags.
const NOTIFY_CAPACITY: usize = 1024;
/// Longest a counter load waits for in-flight writes before the store is reported
/// unavailable (the writer normally commits within milliseconds).
const LOAD_WAIT: Duration = Duration::from_secs(5);
/// Largest key plus value accepted: Redis's own limit for a string (`proto-max-bulk-len`).
pub const MAX_RECORD_BYTES: usize = 512 * 1024 * 1024;

/// Tuning of the embedded store.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// How often expired keys are physically removed (clamped to 10 ms ..= 1 day). Reads
    /// never see an expired key regardless.
    pub purge_interval: Duration,
    /// redb's page cache, in bytes.
    pub cache_size: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            purge_interval: Duration::from_secs(5),
            cache_size: 64 * 1024 * 1024,
        }
    }
}

/// When a `SET` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SetCondition {
    /// Plain `SET`.
    Always,
    /// `SET … NX`.
    IfAbsent,
    /// `SET … XX`.
    IfPresent,
}

/// The embedded persistent store. Use it through [`super::Store`].
pub struct EmbeddedStore {
    path: PathBuf,
    db: Arc<Database>,
    /// `None` only while dropping.
    writer: Option<std_mpsc::Sender<Request>>,
    writer_thread: Option<JoinHandle<()>>,
    notify: broadcast::Sender<Notification>,
    /// Counters held in memory (see `counters.rs`).
    counters: Arc<Counters>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Closing the channel stops the writer after the queued requests; joining it makes
        // the file closed (lock released) once the last handle is gone.
        drop(self.writer.take());
        if let Some(thread) = self.writer_thread.take() {
            if thread.join().is_err() {
                tracing::error!(path = %self.path.display(), "embedded store writer thread panicked");
            }
        }
    }
}

impl EmbeddedStore {
    /// Opens the store in `dir` (created if missing), repairing the file if the previous
    /// process died mid-write, and starts its writer thread.
    pub async fn open(dir: &Path, options: EmbeddedOptions) -> StoreResult<Self> {
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(dir, options))
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening the embedded store: {e}")))?
    }

    fn open_blocking(dir: PathBuf, options: EmbeddedOptions) -> StoreResult<Self> {
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let db = redb::Builder::new()
            .set_cache_size(options.cache_size)
            .create(&path)
            .map_err(|e| match e {
                DatabaseError::DatabaseAlreadyOpen => {
                    StoreError::AlreadyOpen { path: path.clone() }
                }
                DatabaseError::Storage(StorageError::Io(source)) => StoreError::Io {
                    path: path.clone(),
                    source,
                },
                other => StoreError::Backend(format!("opening {}: {other}", path.display())),
            })?;
        init_schema(&db).map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        let db = Arc::new(db);
        let interval = options
            .purge_interval
            .clamp(Duration::from_millis(10), Duration::from_secs(86_400));
        let (writer, requests) = std_mpsc::channel();
        let counters = Arc::new(Counters::default());
        let writer_thread = std::thread::Builder::new()
            .name("certgate-store".into())
            .spawn({
                let db = Arc::clone(&db);
                let counters = Arc::clone(&counters);
                move || writer_loop(&db, &requests, interval, &counters)
            })
            .map_err(|e| StoreError::Unavailable(format!("starting the store writer: {e}")))?;
        let (notify, _) = broadcast::channel(NOTIFY_CAPACITY);
        tracing::debug!(path = %path.display(), "embedded store open");
        Ok(Self {
            path,
            db,
            writer: Some(writer),
            writer_thread: Some(writer_thread),
            notify,
            counters,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    // ---- reads -------------------------------------------------------------------------

    /// Runs `f` on a snapshot of the `kv` table, with the current time.
    fn read<T>(&self, f: impl FnOnce(&KvRead, u64) -> StoreResult<T>) -> StoreResult<T> {
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(KV).map_err(backend)?;
        f(&table, now_ms())
    }

    pub(super) fn get(&self, key: &str) -> StoreResult<Option<String>> {
        if let Some(held) = self.counters.lock().get(key, now_ms()) {
            return Ok(held.map(|c| c.value.to_string()));
        }
        self.read(|t, now| match live_string(t, key, now)? {
            Some(Some(s)) => Ok(Some(s)),
            Some(None) => Err(wrong_type(key)),
            None => Ok(None),
        })
    }

    pub(super) fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<String>>> {
        let now = now_ms();
        let held: Vec<_> = {
            let mut counters = self.counters.lock();
            keys.iter().map(|key| counters.get(key, now)).collect()
        };
        self.read(|t, now| {
            keys.iter()
                .zip(held)
                .map(|(key, held)| match held {
                    Some(c) => Ok(c.map(|c| c.value.to_string())),
                    None => Ok(live_string(t, key, now)?.flatten()),
                })
                .collect()
        })
    }

    pub(super) fn exists(&self, key: &str) -> StoreResult<bool> {
        Ok(self.ttl(key)? != Ttl::Missing)
    }

    pub(super) fn ttl(&self, key: &str) -> StoreResult<Ttl> {
        if let Some(ttl) = self.counters.lock().ttl(key, now_ms()) {
            return Ok(ttl);
        }
        self.read(|t, now| {
            let Some(guard) = t.get(key).map_err(backend)? else {
                return Ok(Ttl::Missing);
            };
            let h = record::header(guard.value()).map_err(|r| corrupt(key, r))?;
            Ok(match h.expiry {
                0 => Ttl::Persistent,
                e if e <= now => Ttl::Missing,
                e => Ttl::Expires(Duration::from_millis(e - now)),
            })
        })
    }

    pub(super) fn list_range(&self, key: &str) -> StoreResult<Vec<String>> {
        self.read(|t, now| match live_record(t, key, now)? {
            None => Ok(Vec::new()),
            Some(Value::List(items)) => Ok(items),
            Some(_) => Err(wrong_type(key)),
        })
    }

    pub(super) fn set_members(&self, key: &str) -> StoreResult<Vec<String>> {
        self.read(|t, now| match live_record(t, key, now)? {
            None => Ok(Vec::new()),
            Some(Value::Set(items)) => Ok(items.into_iter().collect()),
            Some(_) => Err(wrong_type(key)),
        })
    }

    pub(super) async fn keys_with_prefix(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let db = Arc::clone(&self.db);
        let owned = prefix.to_owned();
        let keys = tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(backend)?;
            let table = txn.open_table(KV).map_err(backend)?;
            let now = now_ms();
            let mut keys = Vec::new();
            for entry in table.range(owned.as_str()..).map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                let k = k.value();
                if !k.starts_with(owned.as_str()) {
                    break;
                }
                // A record with a damaged header still exists; list it so it can be deleted.
                if !record::header(v.value()).is_ok_and(|h| h.expired(now)) {
                    keys.push(k.to_owned());
                }
            }
            Ok(keys)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("scanning keys: {e}")))??;
        // Held counters are the truth for their keys.
        let (live, gone) = self.counters.lock().scan(prefix, now_ms());
        if live.is_empty() && gone.is_empty() {
            return Ok(keys);
        }
        let gone: std::collections::HashSet<String> = gone.into_iter().collect();
        let mut keys: Vec<String> = keys.into_iter().filter(|k| !gone.contains(k)).collect();
        let listed: std::collections::HashSet<String> = keys.iter().cloned().collect();
        keys.extend(live.into_iter().filter(|k| !listed.contains(k)));
        Ok(keys)
    }

    pub(super) fn ping(&self) -> StoreResult<()> {
        self.read(|_, _| Ok(()))?;
        match &self.writer_thread {
            Some(t) if !t.is_finished() => Ok(()),
            _ => Err(StoreError::Unavailable(
                "the embedded store's writer thread has stopped".into(),
            )),
        }
    }

    // ---- notifications -----------------------------------------------------------------

    pub(super) fn publish(&self, channel: &str, payload: &str) {
        // An error only means nobody is subscribed, which Redis PUBLISH also accepts.
        let _ = self.notify.send(Notification {
            channel: channel.to_owned(),
            payload: payload.to_owned(),
        });
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.notify.subscribe()
    }

    // ---- writes ------------------------------------------------------------------------

    /// Queues `op` on `key` for the writer thread and waits for its durable result. `key`, if it is a
    /// held counter, is handed back to redb first (its unsaved value queued ahead of `op`).
    async fn submit(&self, op: Op, key: &str) -> StoreResult<Reply> {
        let answer = {
            let mut counters = self.counters.lock();
            if let Some(state) = counters.hand_back(key) {
                let key = key.into();
                // Nobody waits for this answer; the command after it is acknowledged later.
                let (reply, _) = oneshot::channel();
                self.send(&mut counters, Op::Restore { key, state }, reply)?;
            }
            let (reply, answer) = oneshot::channel();
            self.send(&mut counters, op, reply)?;
            answer
        };
        answer.await.map_err(|_| {
            StoreError::Unavailable("the embedded store's writer stopped before answering".into())
        })?
    }

    /// Sends one request to the writer, counted as in flight (call with the counters locked).
    fn send(
        &self,
        counters: &mut counters::Inner,
        op: Op,
        reply: oneshot::Sender<StoreResult<Reply>>,
    ) -> StoreResult<()> {
        let writer = self
            .writer
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the embedded store is closed".into()))?;
        writer.send(Request { op, reply }).map_err(|_| {
            StoreError::Unavailable("the embedded store's writer thread has stopped".into())
        })?;
        counters.sending();
        Ok(())
    }

    /// A counter's stored value, for loading it into memory.
    fn load_counter(&self, key: &str) -> counters::Loaded {
        self.read(|t, now| {
            let Some(guard) = t.get(key).map_err(backend)? else {
                return Ok(None);
            };
            let bytes = guard.value();
            let h = record::header(bytes).map_err(|r| corrupt(key, r))?;
            if h.expired(now) {
                return Ok(None);
            }
            let s = record::string_payload(bytes)
                .map_err(|r| corrupt(key, r))?
                .ok_or_else(|| wrong_type(key))?;
            let value = writer::parse_canonical_i64(s)
                .ok_or_else(|| StoreError::NotInteger { key: key.into() })?;
            Ok(Some(Counter {
                value,
                expiry: h.expiry,
            }))
        })
    }

    pub(super) async fn set(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
        cond: SetCondition,
    ) -> StoreResult<bool> {
        if ttl == Some(Duration::ZERO) {
            return Err(StoreError::InvalidTtl { key: key.into() });
        }
        check_size(key, key.len() + value.len())?;
        let op = Op::Set {
            key: key.into(),
            value: value.into(),
            ttl,
            cond,
        };
        as_bool(self.submit(op, key).await?)
    }

    pub(super) async fn delete(&self, key: &str) -> StoreResult<bool> {
        let answer = {
            let mut counters = self.counters.lock();
            if let Some(existed) = counters.delete(key, now_ms()) {
                return Ok(existed);
            }
            let (reply, answer) = oneshot::channel();
            self.send(&mut counters, Op::Delete { key: key.into() }, reply)?;
            answer
        };
        as_bool(answer.await.map_err(|_| {
            StoreError::Unavailable("the embedded store's writer stopped before answering".into())
        })??)
    }

    pub(super) async fn expire(&self, key: &str, ttl: Duration) -> StoreResult<bool> {
        let op = Op::Expire {
            key: key.into(),
            ttl,
        };
        as_bool(self.submit(op, key).await?)
    }

    pub(super) async fn incr_by(&self, key: &str, by: i64) -> StoreResult<i64> {
        let answer = {
            let mut counters = self.counters.lock();
            if let Some(result) = counters.incr_by(key, by, now_ms()) {
                return result;
            }
            let (reply, answer) = oneshot::channel();
            let op = Op::IncrBy {
                key: key.into(),
                by,
            };
            self.send(&mut counters, op, reply)?;
            answer
        };
        match answer.await.map_err(|_| {
            StoreError::Unavailable("the embedded store's writer stopped before answering".into())
        })?? {
            Reply::Int(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    /// Counted in memory (see `counters.rs`): no writer round trip once the counters are
    /// held.
    pub(super) async fn incr_window(&self, items: &[CounterIncr]) -> StoreResult<Vec<i64>> {
        for item in items {
            // The value is at most 20 bytes; the key is what could be too large.
            check_size(&item.key, item.key.len() + 20)?;
        }
        let deadline = tokio::time::Instant::now() + LOAD_WAIT;
        loop {
            let idle = self.counters.idle().notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            let outcome = self
                .counters
                .lock()
                .incr(items, now_ms(), &|key| self.load_counter(key))?;
            match outcome {
                IncrOutcome::Done(values) => return Ok(values),
                IncrOutcome::MustWait => {
                    if tokio::time::timeout_at(deadline, idle).await.is_err() {
                        return Err(StoreError::Unavailable(
                            "the embedded store's writer has not committed for 5 s".into(),
                        ));
                    }
                }
            }
        }
    }

    pub(super) async fn list_push(&self, key: &str, value: &str) -> StoreResult<u64> {
        check_size(key, key.len() + value.len())?;
        let op = Op::ListPush {
            key: key.into(),
            value: value.into(),
        };
        as_count(self.submit(op, key).await?)
    }

    pub(super) async fn list_remove(&self, key: &str, value: &str) -> StoreResult<u64> {
        let op = Op::ListRemove {
            key: key.into(),
            value: value.into(),
        };
        as_count(self.submit(op, key).await?)
    }

    pub(super) async fn set_add(&self, key: &str, member: &str) -> StoreResult<bool> {
        check_size(key, key.len() + member.len())?;
        let op = Op::SetAdd {
            key: key.into(),
            member: member.into(),
        };
        as_bool(self.submit(op, key).await?)
    }

    pub(super) async fn set_remove(&self, key: &str, member: &str) -> StoreResult<bool> {
        let op = Op::SetRemove {
            key: key.into(),
            member: member.into(),
        };
        as_bool(self.submit(op, key).await?)
    }
}

// ---- read helpers --------------------------------------------------------------------------

type KvRead = redb::ReadOnlyTable<&'static str, &'static [u8]>;

/// `None`: no live key; `Some(None)`: a live key that is not a string; `Some(Some(s))`.
fn live_string(t: &KvRead, key: &str, now: u64) -> StoreResult<Option<Option<String>>> {
    let Some(guard) = t.get(key).map_err(backend)? else {
        return Ok(None);
    };
    let bytes = guard.value();
    let h = record::header(bytes).map_err(|r| corrupt(key, r))?;
    if h.expired(now) {
        return Ok(None);
    }
    let s = record::string_payload(bytes).map_err(|r| corrupt(key, r))?;
    Ok(Some(s.map(str::to_owned)))
}

/// The decoded value of a live key.
fn live_record(t: &KvRead, key: &str, now: u64) -> StoreResult<Option<Value>> {
    let Some(guard) = t.get(key).map_err(backend)? else {
        return Ok(None);
    };
    let bytes = guard.value();
    if record::header(bytes)
        .map_err(|r| corrupt(key, r))?
        .expired(now)
    {
        return Ok(None);
    }
    Ok(Some(
        record::decode(bytes).map_err(|r| corrupt(key, r))?.value,
    ))
}

fn init_schema(db: &Database) -> Result<(), String> {
    let run = || -> Result<(), redb::Error> {
        let txn = db.begin_write()?;
        {
            txn.open_table(KV)?;
            txn.open_table(EXPIRY)?;
            let mut meta = txn.open_table(META)?;
            let format = meta.get("format")?.map(|v| v.value());
            match format {
                None => {
                    meta.insert("format", FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(redb::Error::Corrupted(format!(
                        "store format {other} is not supported (this build reads format \
                         {FORMAT_VERSION})"
                    )))
                }
            }
        }
        txn.commit()?;
        Ok(())
    };
    run().map_err(|e| e.to_string())
}

// ---- small helpers ---------------------------------------------------------------------------

/// Wall-clock now in unix milliseconds (0 if the clock is before 1970).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn check_size(key: &str, size: usize) -> StoreResult<()> {
    if size > MAX_RECORD_BYTES {
        return Err(StoreError::TooLarge {
            key: key.into(),
            size,
            limit: MAX_RECORD_BYTES,
        });
    }
    Ok(())
}

fn backend(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Backend(e.into().to_string())
}

fn wrong_type(key: &str) -> StoreError {
    StoreError::WrongType { key: key.into() }
}

fn corrupt(key: &str, reason: String) -> StoreError {
    StoreError::Corrupt {
        key: key.into(),
        reason,
    }
}

fn unexpected(reply: &Reply) -> StoreError {
    StoreError::Backend(format!("internal error: unexpected writer reply {reply:?}"))
}

fn as_bool(reply: Reply) -> StoreResult<bool> {
    match reply {
        Reply::Bool(b) => Ok(b),
        other => Err(unexpected(&other)),
    }
}

fn as_count(reply: Reply) -> StoreResult<u64> {
    match reply {
        Reply::Count(n) => Ok(n),
        other => Err(unexpected(&other)),
    }
}
