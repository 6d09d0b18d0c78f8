//! Starting and stopping a gateway: open the store, build the first snapshot, bind the
//! listeners, and on shutdown stop accepting and drain in-flight requests.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError, StorageKind};
use crate::gateway::{Gateway, StartError};
use crate::server::{self, Drain, Role};
use crate::store::{Store, StoreError};

mod keyhash;
pub use keyhash::{KeyHashingMismatch, KEY_HASHING_RECORD};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration cannot be run (a weak `secret` or `node_secret`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store's keys were written with another `hash_keys` setting.
    #[error(transparent)]
    KeyHashing(#[from] KeyHashingMismatch),
    /// The store could not be opened.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// Snapshot or TLS set-up failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl AppError {
    /// The process exit status for this error: 2 for a configuration the operator must
    /// change (as for a configuration that does not load), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Config(_) | AppError::KeyHashing(_) => 2,
            _ => 1,
        }
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct Running {
    /// Shared state (for reloads and tests).
    pub gw: Arc<Gateway>,
    /// Bound gateway address.
    pub addr: SocketAddr,
    /// Bound Gateway API address when `control_api_port` is set.
    pub control_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    accept_tasks: Vec<JoinHandle<()>>,
    drain: Arc<Drain>,
}

/// Opens the store named by the configuration.
pub async fn open_store(cfg: &Config) -> Result<Store, AppError> {
    match cfg.storage.kind {
        StorageKind::Embedded => Ok(Store::open_embedded(&cfg.storage.path).await?),
        StorageKind::Redis => {
            let s = &cfg.storage;
            let addrs = if s.enable_cluster || !s.addrs.is_empty() {
                if s.enable_cluster {
                    s.addrs.clone()
                } else {
                    s.addrs[..1].to_vec()
                }
            } else {
                vec![format!("{}:{}", s.host, s.port)]
            };
            let opts = crate::store::RedisOptions {
                addrs,
                username: Some(s.username.clone()).filter(|u| !u.is_empty()),
                password: Some(s.password.clone()).filter(|p| !p.is_empty()),
                database: s.database,
                cluster: s.enable_cluster,
                tls: s.use_ssl,
                connect_timeout: s.timeout.max(std::time::Duration::from_secs(2)),
                response_timeout: s.timeout,
                channels: if cfg.suppress_redis_signal_reload {
                    Vec::new()
                } else {
                    vec![crate::cluster::CHANNEL.to_owned()]
                },
            };
            // Does not fail when Redis is down: the gateway starts and reconnects.
            Ok(Store::open_redis(&opts).await?)
        }
    }
}

/// Starts a gateway with `config`.
pub async fn start(config: Config) -> Result<Running, AppError> {
    let issues = config.secret_issues();
    if !issues.is_empty() {
        return Err(ConfigError::Invalid(issues).into());
    }
    if let Some(warning) = config.weak_key_hash_warning() {
        tracing::warn!("{warning}");
    }
    let config = Arc::new(config);
    let store = open_store(&config).await?;
    keyhash::check(&store, config.hash_keys).await?;
    let gw = Gateway::new(config.clone(), store).await?;
    let (shutdown, rx) = watch::channel(false);
    if !config.suppress_redis_signal_reload {
        tokio::spawn(Gateway::listen(Arc::downgrade(&gw), rx.clone()));
    }
    let bind = |addr: String| async move {
        server::bind(&addr)
            .await
            .map_err(|source| AppError::Bind { addr, source })
    };
    let main = bind(config.listen_addr()).await?;
    let control = match config.control_addr() {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let addr = main.local_addr().map_err(|source| AppError::Bind {
        addr: config.listen_addr(),
        source,
    })?;
    let control_addr = control.as_ref().and_then(|l| l.local_addr().ok());
    let drain = Arc::new(Drain::default());
    let mut accept_tasks = vec![tokio::spawn(server::serve(
        gw.clone(),
        main,
        Role::Gateway,
        rx.clone(),
        drain.clone(),
    ))];
    if let Some(l) = control {
        accept_tasks.push(tokio::spawn(server::serve(
            gw.clone(),
            l,
            Role::Control,
            rx,
            drain.clone(),
        )));
    }
    Ok(Running {
        gw,
        addr,
        control_addr,
        shutdown,
        accept_tasks,
        drain,
    })
}

impl Running {
    /// Connections open now (accepted and not yet closed).
    pub fn open_connections(&self) -> usize {
        self.drain.live()
    }

    /// Stops accepting, lets in-flight requests finish (bounded by
    /// `graceful_shutdown_timeout_duration`), then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.accept_tasks {
            let _ = t.await;
        }
        let grace = self.gw.config.graceful_shutdown_timeout;
        if server::within(grace, self.drain.wait()).await.is_none() {
            tracing::warn!(
                open = self.drain.live(),
                "grace period over; closing remaining connections"
            );
        }
    }
}
