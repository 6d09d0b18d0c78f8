//! The embedded store's writer thread: batched, durable, atomic write commands and the
//! periodic purge of expired keys. See the parent module's documentation for why writes go
//! through one thread.

use std::sync::mpsc::{self as std_mpsc, RecvTimeoutError};
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table};
use tokio::sync::oneshot;

use super::counters::{expiry_at, Counter, Counters, Save, COUNTER_FLUSH, IDLE_EVICTION};
use super::{check_size, corrupt, now_ms, wrong_type, SetCondition, EXPIRY, KV};
use crate::store::record::{self, Record, Value};
use crate::store::{StoreError, StoreResult};

/// Most write commands applied in one transaction.
const MAX_BATCH: usize = 256;
/// Most expired keys removed by one purge transaction (keeps writers from waiting long).
const PURGE_CHUNK: usize = 1000;

/// A write command for the writer thread. Owned, so values move into the record uncopied.
#[derive(Debug)]
pub(super) enum Op {
    Set {
        key: String,
        value: String,
        ttl: Option<Duration>,
        cond: SetCondition,
    },
    Delete {
        key: String,
    },
    Expire {
        key: String,
        ttl: Duration,
    },
    IncrBy {
        key: String,
        by: i64,
    },
    /// A held counter handed back (see `counters.rs`): its state, `None` to delete it.
    Restore {
        key: String,
        state: Option<Counter>,
    },
    ListPush {
        key: String,
        value: String,
    },
    ListRemove {
        key: String,
        value: String,
    },
    SetAdd {
        key: String,
        member: String,
    },
    SetRemove {
        key: String,
        member: String,
    },
}

/// A write command's answer.
#[derive(Debug)]
pub(super) enum Reply {
    Bool(bool),
    Int(i64),
    Count(u64),
}

pub(super) struct Request {
    pub(super) op: Op,
    pub(super) reply: oneshot::Sender<StoreResult<Reply>>,
}

pub(super) fn writer_loop(
    db: &Database,
    requests: &std_mpsc::Receiver<Request>,
    purge_interval: Duration,
    counters: &Counters,
) {
    let mut next_purge = Instant::now();
    let mut next_flush = Instant::now() + COUNTER_FLUSH;
    let mut next_idle_scan = Instant::now() + IDLE_SCAN;
    loop {
        if Instant::now() >= next_flush {
            let idle_before = (Instant::now() >= next_idle_scan).then(|| {
                next_idle_scan = Instant::now() + IDLE_SCAN;
                now_ms().saturating_sub(IDLE_EVICTION.as_millis() as u64)
            });
            save_counters(db, counters, idle_before);
            next_flush = Instant::now() + COUNTER_FLUSH;
        }
        if Instant::now() >= next_purge {
            let more = purge_expired(db, now_ms(), PURGE_CHUNK).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "purging expired keys from the embedded store failed");
                false
            });
            // A full chunk means more are due: go again as soon as the queue is served.
            next_purge = Instant::now() + if more { Duration::ZERO } else { purge_interval };
        }
        let wait = next_flush
            .min(next_purge)
            .saturating_duration_since(Instant::now());
        let first = match requests.recv_timeout(wait) {
            Ok(request) => request,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                save_counters(db, counters, None);
                return;
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let n = batch.len();
        run_batch(db, batch);
        counters.committed(n);
    }
}

/// How often held counters unused for [`IDLE_EVICTION`] are let go.
const IDLE_SCAN: Duration = Duration::from_secs(10);

/// Saves the held counters changed since the last call in one durable transaction.
fn save_counters(db: &Database, counters: &Counters, idle_before: Option<u64>) {
    let saves = counters.lock().take_dirty();
    if saves.is_empty() && idle_before.is_none() {
        return;
    }
    if !saves.is_empty() {
        if let Err(e) = write_counters(db, &saves) {
            tracing::error!(error = %e, "saving counters to the embedded store failed; retrying");
            counters.lock().requeue(&saves);
            return;
        }
    }
    counters.lock().saved(&saves, now_ms(), idle_before);
}

fn write_counters(db: &Database, saves: &[Save]) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(engine)?;
    txn.set_durability(Durability::Immediate).map_err(engine)?;
    let now = now_ms();
    {
        let mut t = Tables {
            kv: txn.open_table(KV).map_err(engine)?,
            exp: txn.open_table(EXPIRY).map_err(engine)?,
        };
        for (key, state, _) in saves {
            let result = restore(&mut t, key, *state, now);
            match result {
                Ok(_) => {}
                Err(OpError::Fatal(m)) => return Err(m),
                Err(OpError::Logical(e)) => {
                    tracing::error!(key = %key, error = %e, "a counter could not be saved");
                }
            }
        }
    }
    txn.commit().map_err(engine)
}

/// Stores a held counter's state (`None`: removes the key).
fn restore(
    t: &mut Tables<'_>,
    key: &str,
    state: Option<Counter>,
    now: u64,
) -> Result<Reply, OpError> {
    let slot = t.slot(key, now)?;
    match state {
        Some(c) if c.expiry == 0 || c.expiry > now => {
            let rec = Record {
                expiry: c.expiry,
                value: Value::Str(c.value.to_string()),
            };
            t.put(key, slot.stored_expiry, &rec)?;
        }
        _ => {
            if slot.stored {
                t.remove(key, slot.stored_expiry)?;
            }
        }
    }
    Ok(Reply::Bool(true))
}

/// Applies a batch in one durable transaction, then answers every caller.
fn run_batch(db: &Database, batch: Vec<Request>) {
    let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
    match apply_batch(db, ops) {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                // The caller may have stopped waiting; the write stands regardless.
                let _ = reply.send(result);
            }
        }
        Err(message) => {
            tracing::error!(error = %message, "embedded store write transaction failed");
            for reply in replies {
                let _ = reply.send(Err(StoreError::Backend(message.clone())));
            }
        }
    }
}

/// An error applying one command: `Logical` is that command's answer (nothing was written);
/// `Fatal` is an engine error that aborts the whole transaction.
enum OpError {
    Logical(StoreError),
    Fatal(String),
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Logical(e)
    }
}

fn fatal(e: impl Into<redb::Error>) -> OpError {
    OpError::Fatal(engine(e))
}

fn engine(e: impl Into<redb::Error>) -> String {
    e.into().to_string()
}

fn apply_batch(db: &Database, ops: Vec<Op>) -> Result<Vec<StoreResult<Reply>>, String> {
    let mut txn = db.begin_write().map_err(engine)?;
    txn.set_durability(Durability::Immediate).map_err(engine)?;
    let now = now_ms();
    let mut results = Vec::with_capacity(ops.len());
    {
        let mut t = Tables {
            kv: txn.open_table(KV).map_err(engine)?,
            exp: txn.open_table(EXPIRY).map_err(engine)?,
        };
        for op in ops {
            match apply(&mut t, op, now) {
                Ok(reply) => results.push(Ok(reply)),
                Err(OpError::Logical(e)) => results.push(Err(e)),
                Err(OpError::Fatal(m)) => return Err(m),
            }
        }
    }
    txn.commit().map_err(engine)?;
    Ok(results)
}

/// The two tables a write transaction works on.
struct Tables<'txn> {
    kv: Table<'txn, &'static str, &'static [u8]>,
    exp: Table<'txn, (u64, &'static str), ()>,
}

/// What is physically stored under a key, as a write sees it.
struct Slot {
    /// The expiry recorded (0 if none, or no record) — to keep the expiry index in step.
    stored_expiry: u64,
    /// Whether a record is stored at all (even expired).
    stored: bool,
    /// Whether the key exists for commands (stored and not expired).
    live: bool,
}

impl Tables<'_> {
    fn slot(&self, key: &str, now: u64) -> Result<Slot, OpError> {
        let Some(guard) = self.kv.get(key).map_err(fatal)? else {
            return Ok(Slot {
                stored_expiry: 0,
                stored: false,
                live: false,
            });
        };
        // A damaged header counts as a live key, so SET/DEL can replace or remove it.
        Ok(match record::header(guard.value()) {
            Ok(h) => Slot {
                stored_expiry: h.expiry,
                stored: true,
                live: !h.expired(now),
            },
            Err(_) => Slot {
                stored_expiry: 0,
                stored: true,
                live: true,
            },
        })
    }

    /// The stored expiry and the live, decoded record (if any).
    fn load(&self, key: &str, now: u64) -> Result<(u64, Option<Record>), OpError> {
        let Some(guard) = self.kv.get(key).map_err(fatal)? else {
            return Ok((0, None));
        };
        let bytes = guard.value();
        let h = record::header(bytes).map_err(|r| corrupt(key, r))?;
        if h.expired(now) {
            return Ok((h.expiry, None));
        }
        let rec = record::decode(bytes).map_err(|r| corrupt(key, r))?;
        Ok((h.expiry, Some(rec)))
    }

    /// Stores `rec`; encodes and checks it before touching the tables.
    fn put(&mut self, key: &str, old_expiry: u64, rec: &Record) -> Result<(), OpError> {
        let bytes = record::encode(rec)
            .map_err(|r| StoreError::Backend(format!("cannot encode the value of `{key}`: {r}")))?;
        self.put_bytes(key, old_expiry, rec.expiry, &bytes)
    }

    fn put_bytes(&mut self, key: &str, old: u64, new: u64, bytes: &[u8]) -> Result<(), OpError> {
        check_size(key, key.len() + bytes.len())?;
        self.kv.insert(key, bytes).map_err(fatal)?;
        self.reindex(key, old, new)
    }

    fn remove(&mut self, key: &str, old_expiry: u64) -> Result<(), OpError> {
        self.kv.remove(key).map_err(fatal)?;
        self.reindex(key, old_expiry, 0)
    }

    fn reindex(&mut self, key: &str, old: u64, new: u64) -> Result<(), OpError> {
        if old != new {
            if old != 0 {
                self.exp.remove((old, key)).map_err(fatal)?;
            }
            if new != 0 {
                self.exp.insert((new, key), ()).map_err(fatal)?;
            }
        }
        Ok(())
    }
}

fn apply(t: &mut Tables<'_>, op: Op, now: u64) -> Result<Reply, OpError> {
    match op {
        Op::Set {
            key,
            value,
            ttl,
            cond,
        } => {
            let slot = t.slot(&key, now)?;
            let write = match cond {
                SetCondition::Always => true,
                SetCondition::IfAbsent => !slot.live,
                SetCondition::IfPresent => slot.live,
            };
            if write {
                let expiry = ttl.map_or(0, |d| expiry_at(now, d));
                let rec = Record {
                    expiry,
                    value: Value::Str(value),
                };
                t.put(&key, slot.stored_expiry, &rec)?;
            }
            Ok(Reply::Bool(write))
        }
        Op::Delete { key } => {
            let slot = t.slot(&key, now)?;
            if slot.stored {
                t.remove(&key, slot.stored_expiry)?;
            }
            Ok(Reply::Bool(slot.live))
        }
        Op::Expire { key, ttl } => {
            let slot = t.slot(&key, now)?;
            if !slot.live {
                return Ok(Reply::Bool(false));
            }
            if ttl.is_zero() {
                t.remove(&key, slot.stored_expiry)?;
                return Ok(Reply::Bool(true));
            }
            let expiry = expiry_at(now, ttl);
            let bytes = match t.kv.get(key.as_str()).map_err(fatal)? {
                Some(guard) => record::with_expiry(guard.value(), expiry),
                None => return Ok(Reply::Bool(false)),
            };
            let bytes = bytes.map_err(|r| corrupt(&key, r))?;
            t.put_bytes(&key, slot.stored_expiry, expiry, &bytes)?;
            Ok(Reply::Bool(true))
        }
        Op::IncrBy { key, by } => {
            let (old, rec) = t.load(&key, now)?;
            let (current, expiry) = counter(&key, rec)?.unwrap_or((0, 0));
            let n = current
                .checked_add(by)
                .ok_or_else(|| StoreError::Overflow { key: key.clone() })?;
            let rec = Record {
                expiry,
                value: Value::Str(n.to_string()),
            };
            t.put(&key, old, &rec)?;
            Ok(Reply::Int(n))
        }
        Op::Restore { key, state } => restore(t, &key, state, now),
        Op::ListPush { key, value } => {
            let (old, rec) = t.load(&key, now)?;
            let (mut items, expiry) = match rec {
                None => (Vec::new(), 0),
                Some(Record {
                    expiry,
                    value: Value::List(items),
                }) => (items, expiry),
                Some(_) => return Err(wrong_type(&key).into()),
            };
            items.push(value);
            let len = items.len() as u64;
            let rec = Record {
                expiry,
                value: Value::List(items),
            };
            t.put(&key, old, &rec)?;
            Ok(Reply::Count(len))
        }
        Op::ListRemove { key, value } => {
            let (old, rec) = t.load(&key, now)?;
            let (mut items, expiry) = match rec {
                None => return Ok(Reply::Count(0)),
                Some(Record {
                    expiry,
                    value: Value::List(items),
                }) => (items, expiry),
                Some(_) => return Err(wrong_type(&key).into()),
            };
            let before = items.len();
            items.retain(|item| *item != value);
            let removed = (before - items.len()) as u64;
            if removed > 0 {
                if items.is_empty() {
                    t.remove(&key, old)?;
                } else {
                    let rec = Record {
                        expiry,
                        value: Value::List(items),
                    };
                    t.put(&key, old, &rec)?;
                }
            }
            Ok(Reply::Count(removed))
        }
        Op::SetAdd { key, member } => {
            let (old, rec) = t.load(&key, now)?;
            let (mut members, expiry) = match rec {
                None => (Default::default(), 0),
                Some(Record {
                    expiry,
                    value: Value::Set(members),
                }) => (members, expiry),
                Some(_) => return Err(wrong_type(&key).into()),
            };
            let added = members.insert(member);
            if added {
                let rec = Record {
                    expiry,
                    value: Value::Set(members),
                };
                t.put(&key, old, &rec)?;
            }
            Ok(Reply::Bool(added))
        }
        Op::SetRemove { key, member } => {
            let (old, rec) = t.load(&key, now)?;
            let (mut members, expiry) = match rec {
                None => return Ok(Reply::Bool(false)),
                Some(Record {
                    expiry,
                    value: Value::Set(members),
                }) => (members, expiry),
                Some(_) => return Err(wrong_type(&key).into()),
            };
            let removed = members.remove(&member);
            if removed {
                if members.is_empty() {
                    t.remove(&key, old)?;
                } else {
                    let rec = Record {
                        expiry,
                        value: Value::Set(members),
                    };
                    t.put(&key, old, &rec)?;
                }
            }
            Ok(Reply::Bool(removed))
        }
    }
}

/// The integer and expiry of a live counter record; `None` if there is none.
fn counter(key: &str, rec: Option<Record>) -> Result<Option<(i64, u64)>, OpError> {
    match rec {
        None => Ok(None),
        Some(Record {
            expiry,
            value: Value::Str(s),
        }) => {
            let n = parse_canonical_i64(&s)
                .ok_or_else(|| StoreError::NotInteger { key: key.into() })?;
            Ok(Some((n, expiry)))
        }
        Some(_) => Err(wrong_type(key).into()),
    }
}

/// Removes up to `limit` keys whose expiry is at or before `now`. `Ok(true)` if more are due.
fn purge_expired(db: &Database, now: u64, limit: usize) -> Result<bool, redb::Error> {
    // Entries (e, key) with e <= now sort before (now + 1, ""). u64::MAX never expires.
    let bound = (now.saturating_add(1), "");
    {
        // Most ticks have nothing due: find out without a write transaction and its fsync.
        let txn = db.begin_read()?;
        let exp = txn.open_table(EXPIRY)?;
        if exp.range(..bound)?.next().is_none() {
            return Ok(false);
        }
    }
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    let more = {
        let mut exp = txn.open_table(EXPIRY)?;
        let mut kv = txn.open_table(KV)?;
        let mut due = Vec::new();
        for entry in exp.range(..bound)?.take(limit.saturating_add(1)) {
            let (k, _) = entry?;
            let (e, key) = k.value();
            due.push((e, key.to_owned()));
        }
        let more = due.len() > limit;
        for (e, key) in due.into_iter().take(limit) {
            exp.remove((e, key.as_str()))?;
            // Delete the value only if it still carries the expiry that was indexed.
            let current = match kv.get(key.as_str())? {
                Some(v) => record::header(v.value()).is_ok_and(|h| h.expiry == e),
                None => false,
            };
            if current {
                kv.remove(key.as_str())?;
            }
        }
        more
    };
    txn.commit()?;
    Ok(more)
}

/// Redis accepts only the canonical decimal form of an integer ("01", "+1", " 1" are not).
pub(super) fn parse_canonical_i64(s: &str) -> Option<i64> {
    let n: i64 = s.parse().ok()?;
    (n.to_string() == s).then_some(n)
}
