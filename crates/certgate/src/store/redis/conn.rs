//! The connection to Redis, its health, and how Redis errors become [`StoreError`]s.
//!
//! # Connections
//!
//! - Standalone: one redis-rs `ConnectionManager`, created lazily (it does not need Redis to
//!   be up), multiplexing every command over one TCP connection and replacing it when it
//!   breaks. Its own retry loop is off (0 retries): reconnecting is driven by the health
//!   monitor below, so that a command never waits through a back-off schedule.
//! - Cluster: one redis-rs `cluster_async::ClusterConnection`, which follows the slot map,
//!   redirections and node reconnections itself. Creating it needs a reachable node, so the
//!   health monitor creates it (and re-creates it after three failed probes in a row, in case
//!   the cluster was rebuilt under it).
//!
//! # Health: connected or not
//!
//! The store keeps one flag, "connected" (what [`super::RedisStore::is_connected`] reports).
//!
//! - While it is **false**, every command fails at once with [`StoreError::Unavailable`]
//!   without touching the network, so a gateway whose Redis is down answers quickly instead
//!   of making every request wait for a timeout.
//! - It turns false only when a **probe** (`PING`; cluster: `PING` to every master) fails.
//!   A probe runs when a command fails with a transport error (refused, reset, timed out,
//!   `CLUSTERDOWN`, `LOADING`, authentication…), when the subscriber loses its connection,
//!   and at start. A failed command alone does not close the gate: one slow reply does not
//!   take the store down.
//! - While it is false the monitor probes again after 250 ms, then 500 ms, then every
//!   second, so the store is back within about a second of Redis answering again.
//!
//! # Bounded time
//!
//! Each round trip (a command, a probe, a connection attempt) is bounded by
//! `connect_timeout + response_timeout` on top of redis-rs's own connect and response
//! timeouts, so nothing waits forever on a server that accepts connections but does not
//! answer (frozen, `SIGSTOP`ped, or behind a black hole).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    Client, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, ServerErrorKind, Value,
};
use tokio::sync::{broadcast, Notify};

use super::super::{Notification, StoreError, StoreResult};
use super::RedisOptions;

/// Capacity of the notification channel; a subscriber further behind than this lags.
pub(in crate::store) const NOTIFY_CAPACITY: usize = 1024;
/// First wait between failed probes; doubled up to [`PROBE_MAX_DELAY`].
const PROBE_MIN_DELAY: Duration = Duration::from_millis(250);
const PROBE_MAX_DELAY: Duration = Duration::from_secs(1);
/// Cluster: failed probes in a row after which the cluster connection is rebuilt.
const CLUSTER_REBUILD_AFTER: u32 = 3;
/// Cluster: redis-rs retries of one command (redirections, reconnections) and their waits.
const CLUSTER_RETRIES: u32 = 2;
const CLUSTER_RETRY_MIN_WAIT_MS: u64 = 20;
const CLUSTER_RETRY_MAX_WAIT_MS: u64 = 200;

/// A Lua script and its SHA-1 (what `EVALSHA` names it by).
pub(super) struct LuaScript {
    pub(super) source: &'static str,
    pub(super) sha: String,
}

impl LuaScript {
    pub(super) fn new(source: &'static str) -> Self {
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            source.as_bytes(),
        );
        Self {
            source,
            sha: hex::encode(digest.as_ref()),
        }
    }
}

/// The message of [`StoreError::Unavailable`] while the gate is closed.
const DISCONNECTED: &str = "Redis is not reachable (the store reconnects by itself)";

enum Conn {
    Standalone(ConnectionManager),
    Cluster {
        client: Box<ClusterClient>,
        conn: ArcSwapOption<ClusterConnection>,
    },
}

/// Why a round trip failed.
enum Failure {
    Redis(RedisError),
    Timeout(Duration),
    NotConnected,
}

/// State shared by the store and its background tasks.
pub(in crate::store) struct Shared {
    conn: Conn,
    connected: AtomicBool,
    /// Asks the monitor to probe.
    probe_wanted: Notify,
    /// Asks the subscriber to check its connection (after the store reconnected).
    pub(super) sub_check: Notify,
    notify: broadcast::Sender<Notification>,
    call_timeout: Duration,
    /// The subscriber connection is established (true when there is none to make).
    subscribed: AtomicBool,
}

impl Shared {
    /// Builds the clients (no I/O). Also returns one plain client per address, for the
    /// subscriber.
    pub(super) fn new(
        opts: &RedisOptions,
        notify: broadcast::Sender<Notification>,
    ) -> StoreResult<(Self, Vec<Client>)> {
        if opts.addrs.is_empty() {
            return Err(config("no Redis address given"));
        }
        if !opts.cluster && opts.addrs.len() > 1 {
            return Err(config(
                "several Redis addresses are only meaningful in cluster mode",
            ));
        }
        if opts.cluster && opts.database != 0 {
            return Err(config("Redis Cluster has only database 0"));
        }
        if opts.connect_timeout.is_zero() || opts.response_timeout.is_zero() {
            return Err(config("Redis timeouts must be positive"));
        }
        let infos = opts
            .addrs
            .iter()
            .map(|a| connection_info(a, opts))
            .collect::<StoreResult<Vec<_>>>()?;
        let plain = infos
            .iter()
            .map(|i| Client::open(i.clone()).map_err(|e| config(&e.to_string())))
            .collect::<StoreResult<Vec<_>>>()?;
        let conn = if opts.cluster {
            let client = ClusterClientBuilder::new(infos)
                .connection_timeout(opts.connect_timeout)
                .response_timeout(opts.response_timeout)
                .overall_response_timeout(Some(opts.connect_timeout + opts.response_timeout))
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(CLUSTER_RETRY_MIN_WAIT_MS)
                .max_retry_wait(CLUSTER_RETRY_MAX_WAIT_MS)
                .build()
                .map_err(|e| config(&e.to_string()))?;
            Conn::Cluster {
                client: Box::new(client),
                conn: ArcSwapOption::empty(),
            }
        } else {
            let config_ = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(opts.connect_timeout))
                .set_response_timeout(Some(opts.response_timeout))
                .set_number_of_retries(0);
            let client = plain.first().cloned().ok_or_else(|| config("no address"))?;
            let manager = ConnectionManager::new_lazy_with_config(client, config_)
                .map_err(|e| config(&e.to_string()))?;
            Conn::Standalone(manager)
        };
        let shared = Self {
            conn,
            connected: AtomicBool::new(false),
            probe_wanted: Notify::new(),
            sub_check: Notify::new(),
            notify,
            call_timeout: opts.connect_timeout + opts.response_timeout,
            subscribed: AtomicBool::new(opts.channels.is_empty()),
        };
        Ok((shared, plain))
    }

    /// Bound of one round trip.
    pub(super) fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster { .. })
    }

    pub(super) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub(super) fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::SeqCst)
    }

    /// Records the subscription state; true if it changed.
    pub(super) fn set_subscribed(&self, up: bool) -> bool {
        self.subscribed.swap(up, Ordering::SeqCst) != up
    }

    pub(super) fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Release);
    }

    /// Wakes the monitor to check Redis (coalesced: one pending request at most).
    pub(super) fn request_probe(&self) {
        self.probe_wanted.notify_one();
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.notify.subscribe()
    }

    /// Delivers a notification to the local subscribers (none is fine).
    pub(super) fn deliver(&self, n: Notification) {
        let _ = self.notify.send(n);
    }

    /// Sends `cmd` (to `route` in cluster mode, else where redis-rs routes it), unless the
    /// store is known to be disconnected. `key` names the key in errors.
    pub(super) async fn query(
        &self,
        cmd: &Cmd,
        route: Option<RoutingInfo>,
        key: &str,
    ) -> StoreResult<Value> {
        if !self.is_connected() {
            return Err(StoreError::Unavailable(DISCONNECTED.into()));
        }
        self.raw(cmd, route).await.map_err(|f| self.fail(f, key))
    }

    /// Runs a Lua script with `EVALSHA` (redis-rs routes it by its first key in a cluster, so
    /// every key must be in one hash slot), falling back once to `EVAL`, which also loads it,
    /// if Redis does not have it (first use, restart, `SCRIPT FLUSH`). `key` names the key in
    /// errors.
    pub(super) async fn eval(
        &self,
        script: &LuaScript,
        keys: &[&str],
        args: &[String],
        key: &str,
    ) -> StoreResult<Value> {
        if !self.is_connected() {
            return Err(StoreError::Unavailable(DISCONNECTED.into()));
        }
        let call = |command: &str, body: &str| {
            let mut cmd = redis::cmd(command);
            cmd.arg(body).arg(keys.len()).arg(keys).arg(args);
            cmd
        };
        let result = match self.raw(&call("EVALSHA", &script.sha), None).await {
            Err(Failure::Redis(e)) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.raw(&call("EVAL", script.source), None).await
            }
            other => other,
        };
        result.map_err(|f| self.fail(f, key))
    }

    /// The error of a failed round trip; asks for a probe if Redis seems unreachable.
    fn fail(&self, f: Failure, key: &str) -> StoreError {
        let err = to_store_error(f, key);
        if matches!(err, StoreError::Unavailable(_)) {
            self.request_probe();
        }
        err
    }

    /// One bounded round trip, whatever the gate says.
    async fn raw(&self, cmd: &Cmd, route: Option<RoutingInfo>) -> Result<Value, Failure> {
        let call = async {
            match &self.conn {
                Conn::Standalone(manager) => cmd
                    .query_async::<Value>(&mut manager.clone())
                    .await
                    .map_err(Failure::Redis),
                Conn::Cluster { conn, .. } => {
                    let Some(conn) = conn.load_full() else {
                        return Err(Failure::NotConnected);
                    };
                    let mut conn = ClusterConnection::clone(&conn);
                    match route {
                        Some(route) => conn
                            .route_command(cmd.clone(), route)
                            .await
                            .and_then(Value::extract_error),
                        None => cmd.query_async::<Value>(&mut conn).await,
                    }
                    .map_err(Failure::Redis)
                }
            }
        };
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout(self.call_timeout)),
        }
    }

    /// Checks that Redis answers (`PING`; cluster: every master), connecting if needed.
    pub(super) async fn probe(&self) -> Result<(), String> {
        let ping = redis::cmd("PING");
        match &self.conn {
            Conn::Standalone(_) => match self.raw(&ping, None).await {
                Ok(_) => Ok(()),
                // A broken connection is noticed by this first command, which makes the
                // manager start a new connection; the second PING waits for that one.
                Err(Failure::Redis(e)) if !e.is_timeout() => self
                    .raw(&ping, None)
                    .await
                    .map(|_| ())
                    .map_err(|f| describe(&f)),
                Err(f) => Err(describe(&f)),
            },
            Conn::Cluster { client, conn } => {
                if conn.load().is_none() {
                    let fresh =
                        tokio::time::timeout(self.call_timeout, client.get_async_connection())
                            .await
                            .map_err(|_| describe(&Failure::Timeout(self.call_timeout)))?
                            .map_err(|e| describe(&Failure::Redis(e)))?;
                    conn.store(Some(Arc::new(fresh)));
                }
                self.raw(&ping, None)
                    .await
                    .map(|_| ())
                    .map_err(|f| describe(&f))
            }
        }
    }

    /// Cluster: forgets the cluster connection so the next probe builds a new one.
    fn drop_cluster_connection(&self) {
        if let Conn::Cluster { conn, .. } = &self.conn {
            conn.store(None);
        }
    }

    /// Cluster: the `(host, port)` of every master, from `CLUSTER SLOTS`.
    pub(super) async fn cluster_masters(&self, label: &str) -> StoreResult<Vec<(String, u16)>> {
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
        let reply = self
            .query(redis::cmd("CLUSTER").arg("SLOTS"), Some(route), label)
            .await?;
        parse_cluster_slots(&reply).ok_or_else(|| unexpected("CLUSTER SLOTS", label, &reply))
    }
}

/// The health monitor: waits for a probe request, then probes until Redis answers, closing
/// the gate while it does not. Runs until the store is dropped (aborted).
pub(super) async fn monitor(shared: Arc<Shared>) {
    loop {
        shared.probe_wanted.notified().await;
        let mut delay = PROBE_MIN_DELAY;
        let mut failures = 0u32;
        loop {
            match shared.probe().await {
                Ok(()) => {
                    if !shared.connected.swap(true, Ordering::AcqRel) {
                        tracing::info!("Redis answers again; store reconnected");
                        // The subscriber may sit on a dead connection that never reported it.
                        shared.sub_check.notify_one();
                    }
                    break;
                }
                Err(e) => {
                    if shared.connected.swap(false, Ordering::AcqRel) {
                        tracing::warn!(error = %e, "Redis unreachable; store commands fail until it answers");
                    } else {
                        tracing::debug!(error = %e, "Redis still unreachable");
                    }
                    failures += 1;
                    if failures.is_multiple_of(CLUSTER_REBUILD_AFTER) {
                        shared.drop_cluster_connection();
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(PROBE_MAX_DELAY);
                }
            }
        }
    }
}

/// Parses `host:port` (IPv6: `[addr]:port`) into redis-rs's connection info.
fn connection_info(addr: &str, opts: &RedisOptions) -> StoreResult<ConnectionInfo> {
    let bad = || {
        config(&format!(
            "invalid Redis address {addr:?}: expected host:port"
        ))
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad());
    }
    let host = host.to_owned();
    let addr = if opts.tls {
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    };
    let mut redis = RedisConnectionInfo::default().set_db(opts.database);
    if let Some(user) = &opts.username {
        redis = redis.set_username(user);
    }
    if let Some(password) = &opts.password {
        redis = redis.set_password(password);
    }
    Ok(addr
        .into_connection_info()
        .map_err(|e| config(&e.to_string()))?
        .set_redis_settings(redis))
}

/// `CLUSTER SLOTS` → the distinct masters; `None` if the reply is not shaped as documented.
fn parse_cluster_slots(reply: &Value) -> Option<Vec<(String, u16)>> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    let mut masters = BTreeSet::new();
    for range in ranges {
        let Value::Array(parts) = range else {
            return None;
        };
        let Some(Value::Array(master)) = parts.get(2) else {
            return None;
        };
        let host = match master.first()? {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok()?,
            Value::SimpleString(s) => s.clone(),
            _ => return None,
        };
        let port = match master.get(1)? {
            Value::Int(p) => u16::try_from(*p).ok()?,
            _ => return None,
        };
        if host.is_empty() || host == "?" {
            return None;
        }
        masters.insert((host, port));
    }
    Some(masters.into_iter().collect())
}

fn config(msg: &str) -> StoreError {
    StoreError::Config(msg.to_owned())
}

pub(super) fn corrupt(key: &str, reason: &str) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A reply of a shape the command never returns.
pub(super) fn unexpected(command: &str, key: &str, reply: &Value) -> StoreError {
    let shape = match reply {
        Value::Nil => "nil".to_owned(),
        Value::Int(n) => format!("integer {n}"),
        Value::BulkString(b) => format!("a string of {} bytes", b.len()),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::SimpleString(_) => "a status".to_owned(),
        Value::Okay => "OK".to_owned(),
        _ => "a RESP3 value".to_owned(),
    };
    StoreError::Backend(format!(
        "unexpected reply to {command} for key `{key}`: {shape}"
    ))
}

fn describe(f: &Failure) -> String {
    match f {
        Failure::Redis(e) => e.to_string(),
        Failure::Timeout(d) => format!("no reply from Redis within {d:?}"),
        Failure::NotConnected => "not connected to the Redis cluster yet".into(),
    }
}

/// Whether `e` means Redis cannot serve at all right now (rather than refusing a command).
fn is_transport(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::AuthenticationFailed
                | ErrorKind::Parse
                | ErrorKind::Server(
                    ServerErrorKind::ClusterDown
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::BusyLoading
                )
        )
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS"))
}

fn to_store_error(f: Failure, key: &str) -> StoreError {
    let e = match f {
        Failure::Redis(e) => e,
        other => return StoreError::Unavailable(describe(&other)),
    };
    let key = || key.to_owned();
    if e.code() == Some("WRONGTYPE") {
        return StoreError::WrongType { key: key() };
    }
    if e.kind() == ErrorKind::Server(ServerErrorKind::ResponseError) {
        let text = e.to_string();
        if text.contains("not an integer or out of range") {
            return StoreError::NotInteger { key: key() };
        }
        if text.contains("would overflow") {
            return StoreError::Overflow { key: key() };
        }
        if text.contains("invalid expire time") {
            return StoreError::InvalidTtl { key: key() };
        }
    }
    if is_transport(&e) {
        StoreError::Unavailable(format!("Redis: {e}"))
    } else {
        StoreError::Backend(format!("Redis: {e}"))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn opts() -> RedisOptions {
        RedisOptions::default()
    }

    #[test]
    fn addresses_parse() {
        for good in ["127.0.0.1:6379", "redis.local:1", "[::1]:7000"] {
            connection_info(good, &opts()).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["", "host", ":6379", "host:", "host:70000", "host:x", "[]:1"] {
            assert!(
                matches!(connection_info(bad, &opts()), Err(StoreError::Config(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cluster_slots_parse_without_panicking() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let range = |m: Value| Value::Array(vec![Value::Int(0), Value::Int(1), m]);
        let good = Value::Array(vec![
            range(node("127.0.0.1", 7001)),
            range(node("127.0.0.1", 7000)),
            range(node("127.0.0.1", 7001)),
        ]);
        assert_eq!(
            parse_cluster_slots(&good).unwrap(),
            vec![("127.0.0.1".into(), 7000), ("127.0.0.1".into(), 7001)]
        );
        for bad in [
            Value::Nil,
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![Value::Int(0)])]),
            Value::Array(vec![range(node("", 7000))]),
            Value::Array(vec![range(node("h", 70000))]),
            Value::Array(vec![range(Value::Array(vec![]))]),
        ] {
            assert!(parse_cluster_slots(&bad).is_none(), "{bad:?}");
        }
    }
}
