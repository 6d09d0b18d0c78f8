//! The gateway's shared state and its immutable snapshots.
//!
//! A [`Snapshot`] holds everything a request needs that changes on reload: the loaded
//! APIs, the routing table, the client-certificate policy table and the TLS server
//! configs. A reload builds a complete new snapshot off the request path and swaps it
//! in atomically ([`ArcSwap`]); a request or handshake works on the one snapshot it
//! loaded, so no request ever sees a half-loaded set.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::Value;

use crate::apidef::{ApiDefinition, ApiSpec};
use crate::certs::CertManager;
use crate::cluster::{self, Caches};
use crate::config::Config;
use crate::policy::PolicySet;
use crate::proxy::{Target, Upstream};
use crate::router::Router;
use crate::store::Store;
use crate::tls::trust::AllowList;
use crate::tls::{self, CertStore, ClientAuthTable, TlsError, TlsSettings};

mod files;

use files::load_policies;
pub use files::{
    load_app_path, remove_api_files, validate_file_id, write_api_files, write_json_file,
};

/// An API ready to serve.
#[derive(Debug)]
pub struct LoadedApi {
    /// The definition as loaded (both JSON forms and the internal spec).
    pub def: ApiDefinition,
    /// The parsed upstream.
    pub target: Target,
    /// The resolved static allow list when the API uses `use_mutual_tls_auth`.
    pub allow_list: Option<Arc<AllowList>>,
}

impl LoadedApi {
    /// The internal form.
    pub fn spec(&self) -> &ApiSpec {
        &self.def.spec
    }
}

/// Everything that changes on reload.
#[derive(Debug)]
pub struct Snapshot {
    /// Loaded APIs in load order (file name order).
    pub apis: Vec<Arc<LoadedApi>>,
    by_id: HashMap<String, usize>,
    /// Routing table.
    pub router: Router,
    /// Per-SNI client certificate policy.
    pub client_auth: ClientAuthTable,
    /// The Gateway API's allow list when `security.control_api_use_mutual_tls`.
    pub control_allow_list: Option<Arc<AllowList>>,
    /// Policies by id, as loaded from `policies.policy_path` (the documents).
    pub policies: BTreeMap<String, Value>,
    /// The same policies, parsed for application to sessions.
    pub policy_set: PolicySet,
    /// TLS server configs (None on a plain-HTTP gateway).
    pub tls: Option<Arc<TlsSettings>>,
    /// Increases with every reload.
    pub generation: u64,
}

impl Snapshot {
    /// The API with this id.
    pub fn api(&self, id: &str) -> Option<&Arc<LoadedApi>> {
        self.by_id.get(id).map(|&i| &self.apis[i])
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Server certificates could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
}

/// The gateway: configuration, current snapshot, storage and the upstream client.
pub struct Gateway {
    /// The configuration (immutable).
    pub config: Arc<Config>,
    current: ArcSwap<Snapshot>,
    /// Storage (sessions, certificates, counters).
    pub store: Store,
    /// The certificate store.
    pub certs: CertManager,
    /// Node-local caches kept correct by cluster notifications.
    pub caches: Caches,
    /// Pooled upstream client.
    pub upstream: Upstream,
    session_storage: Arc<dyn rustls::server::StoresServerSessions>,
    reload_lock: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    /// Dashboard sign-in attempts per client address.
    pub(crate) sign_ins: crate::limits::signin::SignInLimiter,
    /// Signature, stamp and replay checks of cluster notifications.
    inbox: cluster::Inbox,
    /// Reloads asked for by notifications and Gateway API changes, coalesced.
    reloads: cluster::Coalescer,
    /// Cluster notifications accepted and applied.
    applied: AtomicU64,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What a reload did.
#[derive(Debug, Clone, Default)]
pub struct ReloadReport {
    /// APIs now live.
    pub loaded: usize,
    /// Files that were skipped, with the reason.
    pub errors: Vec<String>,
}

impl Gateway {
    /// Loads APIs and server certificates and builds the first snapshot.
    pub async fn new(config: Arc<Config>, store: Store) -> Result<Arc<Self>, StartError> {
        let session_storage: Arc<dyn rustls::server::StoresServerSessions> =
            rustls::server::ServerSessionMemoryCache::new(64 * 1024);
        let certs = CertManager::new(store.clone(), encoding_secret(&config));
        let (defs, mut errors) = load_app_path(&config.app_path).await;
        let policies = load_policies(&config, &mut errors).await;
        for e in &errors {
            tracing::error!("{e}");
        }
        let tls = if config.http_server_options.use_ssl {
            let api_certs = api_server_certs(&defs);
            Some(Arc::new(
                build_tls(&config, &certs, &api_certs, session_storage.clone()).await?,
            ))
        } else {
            None
        };
        let snapshot = build_snapshot(&config, &certs, defs, policies, tls, 1).await;
        tracing::info!(apis = snapshot.apis.len(), "API definitions loaded");
        let gw = Arc::new(Self {
            upstream: Upstream::new(config.proxy_default_timeout),
            current: ArcSwap::from_pointee(snapshot),
            caches: Caches::new(&config),
            config,
            store,
            certs,
            session_storage,
            reload_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(1),
            sign_ins: Default::default(),
            inbox: cluster::Inbox::default(),
            reloads: cluster::Coalescer::default(),
            applied: AtomicU64::new(0),
        });
        tokio::spawn(reconcile(Arc::downgrade(&gw)));
        Ok(gw)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Announces a change this node made: applies it to the local caches first (so
    /// the change is effective here before the Gateway API answers) and schedules the
    /// reload it needs here, then publishes it to every node (stamped: this node ignores
    /// its own message when it comes back). A removed certificate also waits for that
    /// reload, so that static allow lists no longer hold it when the Gateway API
    /// answers. A failed publish is logged: the change itself is stored, and other
    /// nodes' caches expire within `cached_session_timeout`.
    pub async fn announce(self: &Arc<Self>, command: &str, payload: &str) {
        let local = cluster::Message {
            command: command.to_owned(),
            payload: payload.to_owned(),
            signature: String::new(),
            algorithm: 0,
        };
        let ticket = self
            .caches
            .apply(&local)
            .then(|| self.schedule_reload(true));
        let msg = self.inbox.outgoing(&self.config, command, payload);
        if let Err(e) = self.store.publish(cluster::CHANNEL, &msg).await {
            tracing::warn!(error = %e, command, "cluster notification not published");
        }
        if let (cluster::CERTIFICATE_REMOVED, Some(ticket)) = (command, ticket) {
            self.reloads.wait(ticket).await;
        }
    }

    /// Asks for a coalesced reload (see [`cluster::reload`]); `urgent` skips the
    /// one-second spacing. Returns the ticket to wait for.
    fn schedule_reload(self: &Arc<Self>, urgent: bool) -> u64 {
        let (ticket, start) = self.reloads.request(urgent);
        if start {
            let gw = self.clone();
            tokio::spawn(async move {
                gw.reloads
                    .run(|| {
                        let gw = gw.clone();
                        async move {
                            gw.reload().await;
                        }
                    })
                    .await;
            });
        }
        ticket
    }

    /// Reloads asked for so far through notifications, Gateway API changes and
    /// reconciliation (each may share a reload with others).
    pub fn reload_requests(&self) -> u64 {
        self.reloads.requested()
    }

    /// Cluster notifications received and applied so far (this node's own messages
    /// coming back excluded).
    pub fn notifications_applied(&self) -> u64 {
        self.applied.load(Ordering::SeqCst)
    }

    /// Cluster notifications refused so far (bad signature, replayed, stale…).
    pub fn rejected_notifications(&self) -> u64 {
        self.inbox.rejected()
    }

    /// Whether every static allow list still holds what the certificate store says
    /// (`None`: the store cannot answer now).
    async fn allow_lists_current(&self) -> Option<bool> {
        let snap = self.snapshot();
        let mut memo = std::collections::HashMap::new();
        let lists = snap
            .apis
            .iter()
            .filter_map(|a| a.allow_list.as_ref())
            .chain(snap.control_allow_list.as_ref());
        for list in lists {
            if !list.is_current(&self.certs, &mut memo).await? {
                return Some(false);
            }
        }
        Some(true)
    }

    /// Listens to cluster notifications until the store's channel closes: evicts cache
    /// entries, reloads on request (coalesced), and while the subscription is down —
    /// notifications may be missed — keeps the caches empty and unfilled; they are
    /// dropped again when it is back, and when notifications were lost locally.
    pub async fn listen(
        gw: std::sync::Weak<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        let mut rx = match gw.upgrade() {
            Some(g) => {
                let rx = g.store.subscribe();
                // After subscribing: a later change of the flag arrives as a notice.
                g.caches.set_online(g.store.is_subscribed());
                rx
            }
            None => return,
        };
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            // The listener must not keep a stopped gateway (and its store) alive.
            let Some(this) = gw.upgrade() else { return };
            match received {
                Ok(n) if n.channel == cluster::CHANNEL => {
                    let Some(r) = this.inbox.accept(&this.config, &n.payload) else {
                        continue;
                    };
                    if this.caches.apply(&r.message) {
                        this.schedule_reload(false);
                    }
                    this.applied.fetch_add(1, Ordering::SeqCst);
                }
                Ok(n) if n.channel == cluster::STORE_SUBSCRIPTION_LOST => {
                    tracing::warn!(
                        "cluster notifications interrupted: local caches dropped and off until they resume"
                    );
                    this.caches.set_online(false);
                }
                Ok(n) if n.channel == cluster::STORE_RECONNECTED => {
                    tracing::info!(
                        "cluster notifications resumed: local caches dropped, reloading"
                    );
                    this.caches.set_online(true);
                    // Allow lists and store-held server certificates may have failed
                    // to load (or changed) while the store was away.
                    this.schedule_reload(false);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "cluster notifications lost: local caches dropped"
                    );
                    this.caches.clear();
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// Reloads API definitions (and server certificates) from disk and swaps the
    /// snapshot. Concurrent reloads are serialised; one bad file is skipped, the rest
    /// load. If server certificates fail to load, the previous TLS settings stay.
    pub async fn reload(&self) -> ReloadReport {
        let _guard = self.reload_lock.lock().await;
        let (defs, mut errors) = load_app_path(&self.config.app_path).await;
        let policies = load_policies(&self.config, &mut errors).await;
        let tls = if self.config.http_server_options.use_ssl {
            let api_certs = api_server_certs(&defs);
            match build_tls(
                &self.config,
                &self.certs,
                &api_certs,
                self.session_storage.clone(),
            )
            .await
            {
                Ok(t) => Some(Arc::new(t)),
                Err(e) => {
                    errors.push(format!("server certificates not reloaded: {e}"));
                    self.current.load().tls.clone()
                }
            }
        } else {
            None
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot =
            build_snapshot(&self.config, &self.certs, defs, policies, tls, generation).await;
        let loaded = snapshot.apis.len();
        self.current.store(Arc::new(snapshot));
        for e in &errors {
            tracing::error!("{e}");
        }
        tracing::info!(apis = loaded, generation, "reloaded");
        ReloadReport { loaded, errors }
    }
}

/// How often static allow lists are compared with the certificate store: every
/// `cached_session_timeout`, at most 10 s (an unannounced removal is honoured within the
/// same bound as for cached sessions).
fn reconcile_period(config: &Config) -> std::time::Duration {
    config.local_cache.timeout.clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(10),
    )
}

/// Periodically reloads when an allow-list entry no longer resolves to what the current
/// snapshot holds (removed or replaced in the store without a notification). Ends with
/// the gateway.
async fn reconcile(gw: std::sync::Weak<Gateway>) {
    let period = match gw.upgrade() {
        Some(g) => reconcile_period(&g.config),
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(g) = gw.upgrade() else { return };
        if g.allow_lists_current().await == Some(false) {
            tracing::info!("an allow-list certificate changed in the store unannounced; reloading");
            g.schedule_reload(true);
        }
    }
}

/// The password private keys in the certificate store are encrypted with.
fn encoding_secret(config: &Config) -> String {
    if config
        .security
        .private_certificate_encoding_secret
        .is_empty()
    {
        config.secret.clone()
    } else {
        config.security.private_certificate_encoding_secret.clone()
    }
}

async fn build_snapshot(
    config: &Config,
    certs: &CertManager,
    defs: Vec<ApiDefinition>,
    policies: BTreeMap<String, Value>,
    tls: Option<Arc<TlsSettings>>,
    generation: u64,
) -> Snapshot {
    let mut apis = Vec::with_capacity(defs.len());
    let mut by_id = HashMap::with_capacity(defs.len());
    for def in defs {
        let target = match Target::parse(&def.spec.target_url) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(api_id = %def.spec.api_id, "API skipped: {e}");
                continue;
            }
        };
        if by_id.contains_key(&def.spec.api_id) {
            tracing::error!(api_id = %def.spec.api_id, "API skipped: duplicate api_id");
            continue;
        }
        let allow_list = if def.spec.use_mutual_tls_auth {
            let mut entries = def.spec.client_certificates.clone();
            entries.extend(config.security.certificates_apis.iter().cloned());
            Some(Arc::new(AllowList::resolve(certs, &entries).await))
        } else {
            None
        };
        if def.spec.versioning.has_ignored() && !def.spec.use_keyless {
            // A deliberate operator setting, honoured as Tyk does; said at every load so
            // an open endpoint on an authenticated API is never a surprise.
            let paths: Vec<&str> = def
                .spec
                .versioning
                .rules
                .iter()
                .flat_map(|v| &v.rules)
                .filter(|r| r.kind == crate::apidef::RuleKind::Ignored)
                .map(|r| r.path.as_str())
                .collect();
            tracing::warn!(
                api_id = %def.spec.api_id,
                ?paths,
                "ignored endpoints: requests to them skip authentication (no certificate or key needed)"
            );
        }
        by_id.insert(def.spec.api_id.clone(), apis.len());
        apis.push(Arc::new(LoadedApi {
            def,
            target,
            allow_list,
        }));
    }
    let specs: Vec<&ApiSpec> = apis.iter().map(|a| a.spec()).collect();
    let router = Router::new(config, &specs);
    let control_allow_list = if config.security.control_api_use_mutual_tls {
        Some(Arc::new(
            AllowList::resolve(certs, &config.security.certificates_control_api).await,
        ))
    } else {
        None
    };
    let with_lists: Vec<(&ApiSpec, Option<&AllowList>)> = apis
        .iter()
        .map(|a| (a.spec(), a.allow_list.as_deref()))
        .collect();
    let control_pool = control_allow_list
        .as_ref()
        .map(|l| l.pool.clone())
        .unwrap_or_default();
    let client_auth = ClientAuthTable::new(config, &with_lists, &control_pool, tls.as_deref());
    let (policy_set, policy_errors) =
        PolicySet::new(policies.iter().map(|(id, v)| (id.clone(), v.clone())));
    for e in policy_errors {
        tracing::error!("policy skipped: {e}");
    }
    Snapshot {
        apis,
        by_id,
        router,
        client_auth,
        control_allow_list,
        policies,
        policy_set,
        tls,
        generation,
    }
}

/// Reads the server certificates named by the configuration.
/// Server certificates named by APIs (`certificates`, OAS
/// `server.customDomain.certificates`) whose domain is enabled (§1.2 step 3).
fn api_server_certs(defs: &[ApiDefinition]) -> Vec<String> {
    defs.iter()
        .filter(|d| !d.spec.domain_disabled)
        .flat_map(|d| d.spec.certificates.iter().cloned())
        .collect()
}

async fn build_tls(
    config: &Config,
    certs: &CertManager,
    api_certs: &[String],
    session_storage: Arc<dyn rustls::server::StoresServerSessions>,
) -> Result<TlsSettings, TlsError> {
    let mut server = CertStore::default();
    let opts = &config.http_server_options;
    for pair in &opts.certificates {
        let cert = read_file("server certificate file", &pair.cert_file).await?;
        let key = read_file("server key file", &pair.key_file).await?;
        let (ck, mut names) = tls::certified_key_from_pem(&cert, &key)
            .map_err(|e| TlsError::Pem(format!("{}: {e}", pair.cert_file.display())))?;
        names.insert(0, pair.domain_name.clone());
        server.add(ck, &names);
    }
    for entry in opts.ssl_certificates.iter().chain(api_certs) {
        match server_cert_entry(certs, entry).await {
            Some((ck, names)) => server.add(ck, &names),
            None => tracing::warn!(
                entry = %short(entry),
                "ssl_certificates entry is not a usable certificate with a private key (store ID, file or inline PEM); skipped"
            ),
        }
    }
    if server.is_empty() {
        tracing::warn!(
            "use_ssl is on but no server certificate is available; handshakes are refused with unrecognized_name"
        );
    }
    TlsSettings::build(config, server, session_storage)
}

/// A server certificate with its private key from a certificate-store ID, a file
/// path or inline PEM (§1.2 step 2).
async fn server_cert_entry(
    certs: &CertManager,
    entry: &str,
) -> Option<(Arc<rustls::sign::CertifiedKey>, Vec<String>)> {
    if entry.contains("-----BEGIN") {
        return tls::certified_key_from_pem(entry.as_bytes(), entry.as_bytes()).ok();
    }
    if let Ok(Some(stored)) = certs.get(entry).await {
        return tls::certified_key_from_stored(&stored);
    }
    let path = Path::new(entry);
    if path.is_file() {
        let pem = tokio::fs::read(path).await.ok()?;
        return tls::certified_key_from_pem(&pem, &pem).ok();
    }
    None
}

fn short(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

async fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| TlsError::Read {
            what,
            path: path.display().to_string(),
            source,
        })
}

/// Tells the other nodes that the session stored under `apikey-<hashed_name>` changed
/// (Tyk's `KeySpaceUpdate`), for a change made on the request path (a session rebound to
/// its certificate): the pipeline tells the cluster through the gateway, never itself.
pub(crate) async fn publish_key_space_update(cfg: &Config, store: &Store, hashed_name: &str) {
    let msg = cluster::encode(cfg, cluster::KEY_SPACE_UPDATE, hashed_name);
    if let Err(e) = store.publish(cluster::CHANNEL, &msg).await {
        tracing::warn!(error = %e, "cluster notification not published");
    }
}
