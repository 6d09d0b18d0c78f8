//! Real Redis servers for tests: a standalone server ([`RedisServer`]) or a Redis Cluster of
//! masters ([`RedisCluster`]), each started on free loopback ports in a temporary directory,
//! with no persistence, and killed (by PID, never by name) when dropped.
//!
//! Lives in the dev-only `certgate-testkit` crate, outside the library, so both the
//! library's unit tests and the integration tests use it. It is for tests: failures panic
//! with the server's log, and a missing `redis-server` is a failure, never a skip. The binary is
//! `redis-server` from `PATH`, or the path in `CERTGATE_REDIS_SERVER`.
//!
//! Ports: a free port is found by binding `127.0.0.1:0`; the server is then started on it. If
//! another process took it meanwhile, the server exits and another port is tried. Cluster
//! nodes need their bus port (`port + 10000`) free too, so they use ports below 55536.
//!
//! A cluster needs about two seconds to start (Redis waits that long before a new master
//! accepts writes). [`RedisCluster::shared`] lets many tests share one cluster, one test at
//! a time, flushed in between.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to answer after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cluster may take to reach `cluster_state:ok` on every node.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at starting a server on a fresh port when the chosen one was taken.
const PORT_ATTEMPTS: usize = 10;
const SLOTS: u16 = 16384;

/// A `redis-server` process on `127.0.0.1`, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    password: Option<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a standalone server on a free port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (e.g. `["--requirepass", "pw"]`).
    /// A `--requirepass` given here is used by this harness's own connections.
    pub fn start_with(args: &[&str]) -> Self {
        Self::start_on_free_port(args, false)
    }

    /// Starts a server on `port` (e.g. one a store was pointed at before Redis existed).
    pub fn start_on(port: u16, args: &[&str]) -> Self {
        let mut server = Self::new(port, args);
        if let Err(e) = server.spawn() {
            panic!("cannot start redis-server on port {port}: {e}");
        }
        server
    }

    fn start_on_free_port(args: &[&str], cluster_bus: bool) -> Self {
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let mut server = Self::new(free_port(cluster_bus), args);
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("cannot start redis-server after {PORT_ATTEMPTS} attempts: {last}");
    }

    fn new(port: u16, args: &[&str]) -> Self {
        let dir = temp_dir(port);
        let password = args
            .iter()
            .position(|a| *a == "--requirepass")
            .and_then(|i| args.get(i + 1))
            .map(|p| (*p).to_owned());
        Self {
            port,
            dir,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            password,
            child: None,
        }
    }

    /// Spawns the process and waits until it answers; on failure the process is gone.
    fn spawn(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let log = self.dir.join("redis.log");
        let binary =
            std::env::var("CERTGATE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {binary:?} (install Redis, or set CERTGATE_REDIS_SERVER): {e}")
            });
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "redis-server on port {} exited ({status}); log:\n{}",
                        self.port,
                        self.log()
                    ));
                }
            }
            if answers_ping(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "redis-server on port {} did not answer within {START_TIMEOUT:?}; log:\n{}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server's port on `127.0.0.1`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, as `certgate::store::RedisOptions::addrs` takes it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// Kills the server (`SIGKILL`, no shutdown: unsaved data is lost) and waits for it.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts the server again on the same port and directory after [`Self::stop`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        if let Err(e) = self.spawn() {
            panic!("cannot restart redis-server on port {}: {e}", self.port);
        }
    }

    /// [`Self::stop`] then [`Self::start_again`].
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Freezes the server (`SIGSTOP`): connections stay open but nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Resumes a server frozen by [`Self::pause`] (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the server is not running");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL also ends a SIGSTOPped process.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs one command on a fresh connection (authenticated if the server has a password).
    pub fn query(&self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        let mut info = redis::RedisConnectionInfo::default();
        if let Some(p) = &self.password {
            info = info.set_password(p);
        }
        let conn_info = redis::IntoConnectionInfo::into_connection_info(("127.0.0.1", self.port))?
            .set_redis_settings(info);
        let client = redis::Client::open(conn_info)?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(5))?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        cmd.query(&mut conn)
    }

    /// Runs one command and returns its reply as text; panics on an error.
    pub fn query_text(&self, cmd: &redis::Cmd) -> String {
        match self.query(cmd) {
            Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(redis::Value::SimpleString(s)) => s,
            Ok(redis::Value::VerbatimString { text, .. }) => text,
            Ok(redis::Value::Okay) => "OK".into(),
            Ok(other) => format!("{other:?}"),
            Err(e) => panic!("redis on port {}: {e}", self.port),
        }
    }

    /// `INFO commandstats` as command name → number of calls (`get`, `mget`, `client|setinfo`…),
    /// to prove how many commands something sent.
    pub fn command_stats(&self) -> BTreeMap<String, u64> {
        let info = self.query_text(redis::cmd("INFO").arg("commandstats"));
        parse_command_stats(&info)
    }

    /// `CONFIG RESETSTAT`: zeroes the command statistics.
    pub fn reset_stats(&self) {
        self.query_text(redis::cmd("CONFIG").arg("RESETSTAT"));
    }

    /// `FLUSHALL`.
    pub fn flush_all(&self) {
        self.query_text(&redis::cmd("FLUSHALL"));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of masters only (no replicas) on `127.0.0.1`, killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` nodes (at least 1), splits the 16384 slots evenly between them,
    /// introduces them to each other and waits until every node reports `cluster_state:ok`.
    pub fn start(masters: usize) -> Self {
        assert!(masters >= 1, "a cluster needs a master");
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| {
                RedisServer::start_on_free_port(
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                    ],
                    true,
                )
            })
            .collect();
        let cluster = Self { nodes };
        let per_node = SLOTS / u16::try_from(masters).expect("a sane number of masters");
        for (i, node) in cluster.nodes.iter().enumerate() {
            let i = u16::try_from(i).expect("a sane number of masters");
            let first = i * per_node;
            let last = if usize::from(i) + 1 == masters {
                SLOTS - 1
            } else {
                first + per_node - 1
            };
            node.query_text(
                redis::cmd("CLUSTER")
                    .arg("ADDSLOTS")
                    .arg((first..=last).collect::<Vec<_>>()),
            );
        }
        let first = &cluster.nodes[0];
        for node in &cluster.nodes[1..] {
            first.query_text(
                redis::cmd("CLUSTER")
                    .arg("MEET")
                    .arg("127.0.0.1")
                    .arg(node.port()),
            );
        }
        cluster.wait_until_ok(masters);
        cluster
    }

    fn wait_until_ok(&self, masters: usize) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        let known = format!("cluster_known_nodes:{masters}");
        loop {
            let ready = self.nodes.iter().all(|n| {
                let info = n.query_text(redis::cmd("CLUSTER").arg("INFO"));
                info.contains("cluster_state:ok") && info.contains(&known)
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok within {CLUSTER_TIMEOUT:?}; first node's log:\n{}",
                self.nodes[0].log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The nodes (all masters), in slot order.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes' `127.0.0.1:<port>` addresses.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::addr).collect()
    }

    /// `FLUSHALL` on every node.
    pub fn flush_all(&self) {
        for n in &self.nodes {
            n.flush_all();
        }
    }

    /// [`RedisServer::command_stats`] summed over the nodes.
    pub fn command_stats(&self) -> BTreeMap<String, u64> {
        let mut total = BTreeMap::new();
        for n in &self.nodes {
            for (cmd, calls) in n.command_stats() {
                *total.entry(cmd).or_insert(0) += calls;
            }
        }
        total
    }

    /// A 3-master cluster shared by the tests of this process, for the caller's exclusive use
    /// until the guard is dropped, flushed. Started on first use and killed when no test holds
    /// it any more (a later test then starts a new one).
    pub async fn shared() -> SharedCluster {
        static TURN: OnceLock<Arc<tokio::sync::Mutex<()>>> = OnceLock::new();
        static CLUSTER: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());
        // Hold the cluster while waiting for the turn, so that it outlives the current user.
        let cluster = {
            let mut slot = CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
            match slot.upgrade() {
                Some(c) => c,
                None => {
                    let c = Arc::new(RedisCluster::start(3));
                    *slot = Arc::downgrade(&c);
                    c
                }
            }
        };
        let turn = Arc::clone(TURN.get_or_init(|| Arc::new(tokio::sync::Mutex::new(()))));
        let turn = turn.lock_owned().await;
        cluster.flush_all();
        SharedCluster {
            cluster,
            _turn: turn,
        }
    }
}

/// Exclusive use of the shared cluster; see [`RedisCluster::shared`].
#[derive(Debug)]
pub struct SharedCluster {
    cluster: Arc<RedisCluster>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl std::ops::Deref for SharedCluster {
    type Target = RedisCluster;
    fn deref(&self) -> &RedisCluster {
        &self.cluster
    }
}

/// A loopback port that was free a moment ago (below 55536 if `cluster_bus`, with
/// `port + 10000` free too).
pub fn free_port(cluster_bus: bool) -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        if !cluster_bus {
            return port;
        }
        if port < 55536 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

/// Whether something on `port` answers `PING` like Redis (`+PONG`, or an error such as
/// `-NOAUTH` from a server with a password).
fn answers_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut first = [0u8; 1];
    s.write_all(b"PING\r\n").is_ok()
        && s.read_exact(&mut first).is_ok()
        && matches!(first[0], b'+' | b'-')
}

fn temp_dir(port: u16) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!(
        "certgate-redis-{}-{port}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// `cmdstat_get:calls=3,usec=…` lines → `get` → 3.
fn parse_command_stats(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

#[cfg(test)]
mod unit {
    use super::parse_command_stats;

    #[test]
    fn command_stats_parse() {
        let info = "# Commandstats\r\ncmdstat_get:calls=3,usec=10,usec_per_call=3.33,rejected_calls=0\r\ncmdstat_client|setinfo:calls=2,usec=1\r\nnoise\r\n";
        let stats = parse_command_stats(info);
        assert_eq!(stats.get("get"), Some(&3));
        assert_eq!(stats.get("client|setinfo"), Some(&2));
        assert_eq!(stats.len(), 2);
    }
}
