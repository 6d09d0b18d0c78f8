//! `tyk.conf`: the gateway configuration.
//!
//! The file is Tyk's JSON; keys certgate does not use are ignored, as Tyk ignores
//! unknown keys. Loading goes raw → overlaid → checked → immutable:
//!
//! 1. the file is read as a JSON value (unless `TYK_GW_OMITCONFIGFILE=true`);
//! 2. `TYK_GW_*` environment variables are written over it at their JSON paths
//!    ([`env`], Tyk's envconfig names);
//! 3. every key certgate honours is extracted with its type checked, collecting **all**
//!    problems, each naming its field, before anything listens;
//! 4. the result is a [`Config`] that is never mutated; reloads build new snapshots.

mod edge;
mod env;
pub mod fields;
mod secrets;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

pub use edge::{DEFAULT_BODY_READ_TIMEOUT, DEFAULT_IDENTITY_HEADERS, DEFAULT_MIN_BODY_RATE};
pub use env::{EnvSource, ProcessEnv};
pub use secrets::{secret_weakness, MIN_SECRET_LEN, PUBLISHED_SECRETS, TYK_DEFAULT_SECRET};

/// TLS 1.2 as Tyk numbers it.
pub const TLS12: u16 = 771;
/// TLS 1.3 as Tyk numbers it.
pub const TLS13: u16 = 772;

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// JSON path of the field, e.g. `http_server_options.min_version`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("config file {path} is not valid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error (with line and column).
        source: serde_json::Error,
    },
    /// One or more fields are invalid; all of them are listed.
    #[error("invalid configuration:\n{}", list_issues(.0))]
    Invalid(Vec<ConfigIssue>),
}

fn list_issues(issues: &[ConfigIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A server certificate given as a file pair (`http_server_options.certificates`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFilePair {
    /// SNI name this certificate is registered under (may be empty).
    pub domain_name: String,
    /// PEM certificate (chain) file.
    pub cert_file: PathBuf,
    /// PEM private key file.
    pub key_file: PathBuf,
}

/// `http_server_options`.
#[derive(Debug, Clone)]
pub struct HttpServerOptions {
    /// Serve HTTPS.
    pub use_ssl: bool,
    /// Server certificates as file pairs.
    pub certificates: Vec<CertFilePair>,
    /// Server certificates as file paths, inline PEM or certificate-store IDs.
    pub ssl_certificates: Vec<String>,
    /// Lowest TLS version (771 or 772).
    pub min_version: u16,
    /// Highest TLS version (771 or 772).
    pub max_version: u16,
    /// Offer h2 by ALPN.
    pub enable_http2: bool,
    /// Send an empty CA list in the CertificateRequest.
    pub skip_client_ca_announcement: bool,
    /// Go cipher suite names (unknown names are skipped, as Tyk does).
    pub ssl_ciphers: Vec<String>,
    /// Largest request body accepted on the data plane (0 = unlimited).
    pub max_request_body_size: u64,
    /// **certgate**: a client that has not completed its TLS handshake and request
    /// headers within this time is dropped (default 30 s).
    pub read_header_timeout: Duration,
    /// Idle keep-alive connections are closed after this long (Tyk `read_timeout`,
    /// default 120 s).
    pub idle_timeout: Duration,
    /// Request body deadlines (`read_timeout`, `certgate_body_read_timeout`,
    /// `certgate_min_body_rate`).
    pub body_limits: crate::body::BodyLimits,
    /// A response write stalled this long closes the connection (`write_timeout`).
    pub write_timeout: Duration,
    /// **certgate**: TLS session resumption (tickets and the session cache); default on.
    pub session_resumption: bool,
    /// `enable_path_prefix_matching` / `enable_path_suffix_matching`: how endpoint
    /// lists and `allowed_urls` patterns are anchored.
    pub path_matching: crate::apidef::PathMatching,
}

/// `security`.
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// Legacy dynamic-mTLS mode: a token alone authenticates a certificate-auth API.
    pub allow_unsafe_dynamic_mtls_token: bool,
    /// Require client certificates on the Gateway API.
    pub control_api_use_mutual_tls: bool,
    /// Password used to encrypt private keys in the certificate store.
    pub private_certificate_encoding_secret: String,
    /// Global static allow list added to every static-mTLS API.
    pub certificates_apis: Vec<String>,
    /// Allow list for the Gateway API when `control_api_use_mutual_tls`.
    pub certificates_control_api: Vec<String>,
    /// **certgate**: seconds a client certificate is accepted before its notBefore.
    pub client_cert_not_before_skew: i64,
}

/// `policies`.
#[derive(Debug, Clone, Default)]
pub struct PoliciesConfig {
    /// `file` (the only source certgate supports) or empty.
    pub policy_source: String,
    /// Directory of policy files.
    pub policy_path: Option<PathBuf>,
}

/// Which storage backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// **certgate**: the persistent embedded store (single node).
    Embedded,
    /// Redis (standalone or cluster).
    Redis,
}

/// `storage`.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Backend.
    pub kind: StorageKind,
    /// Redis host.
    pub host: String,
    /// Redis port.
    pub port: u16,
    /// Redis `host:port` list (cluster).
    pub addrs: Vec<String>,
    /// Redis user name.
    pub username: String,
    /// Redis password.
    pub password: String,
    /// Redis database number.
    pub database: i64,
    /// Redis Cluster mode.
    pub enable_cluster: bool,
    /// TLS to Redis.
    pub use_ssl: bool,
    /// Redis response timeout (`storage.timeout` seconds; 0 = 2 s).
    pub timeout: Duration,
    /// **certgate**: directory of the embedded store.
    pub path: PathBuf,
}

/// The whole gateway configuration, immutable once loaded.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind (empty = all interfaces).
    pub listen_address: String,
    /// Gateway port.
    pub listen_port: u16,
    /// Gateway API secret (`X-Tyk-Authorization`).
    pub secret: String,
    /// Signs cluster notifications.
    pub node_secret: String,
    /// Separate Gateway API port (0 = the gateway port).
    pub control_api_port: u16,
    /// Host name the Gateway API answers on (empty = any).
    pub control_api_hostname: String,
    /// Global host name routes must match (empty = any).
    pub hostname: String,
    /// Route by API `domain`.
    pub enable_custom_domains: bool,
    /// Directory of API definitions.
    pub app_path: PathBuf,
    /// Policies.
    pub policies: PoliciesConfig,
    /// HTTP server options.
    pub http_server_options: HttpServerOptions,
    /// Security options.
    pub security: SecurityConfig,
    /// Store sessions under hashed key names.
    pub hash_keys: bool,
    /// Token format/hash algorithm (`murmur64`, `murmur128`, `sha256`, `murmur32`, or empty).
    pub hash_key_function: String,
    /// Extra algorithms tried when looking up keys.
    pub hash_key_function_fallback: Vec<String>,
    /// Allow `GET /tyk/keys` when keys are hashed.
    pub enable_hashed_keys_listing: bool,
    /// Shortest token looked up (0 means 3, as Tyk).
    pub min_token_length: usize,
    /// Keys without access rights get access to every API.
    pub allow_master_keys: bool,
    /// Omit `X-Generator: tyk.io` from error responses.
    pub hide_generator_header: bool,
    /// Path of the health endpoint (`hello`).
    pub health_check_endpoint_name: String,
    /// Upstream timeout in seconds (Tyk `proxy_default_timeout`).
    pub proxy_default_timeout: Duration,
    /// Storage backend.
    pub storage: StorageConfig,
    /// Grace period for in-flight requests on shutdown.
    pub graceful_shutdown_timeout: Duration,
    /// Local session/certificate cache (`local_session_cache`).
    pub local_cache: LocalCacheConfig,
    /// Accept unsigned cluster notifications (`allow_insecure_configs`).
    pub allow_insecure_configs: bool,
    /// Do not listen to cluster notifications (`suppress_redis_signal_reload`).
    pub suppress_redis_signal_reload: bool,
    /// **certgate**: client-sent identity headers removed before proxying.
    pub strip_client_identity_headers: Vec<http::HeaderName>,
}

/// `local_session_cache`.
#[derive(Debug, Clone)]
pub struct LocalCacheConfig {
    /// No local caching: every request reads the store.
    pub disabled: bool,
    /// How long a cached session or certificate answer is used (default 10 s).
    pub timeout: Duration,
}

impl Config {
    /// Loads `path` (the file may be absent only if `TYK_GW_OMITCONFIGFILE=true`),
    /// overlays the environment and checks every field.
    pub fn load(path: &Path, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let omit = env
            .get("TYK_GW_OMITCONFIGFILE")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let mut root = if omit {
            Value::Object(Map::new())
        } else {
            let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            serde_json::from_slice(&bytes).map_err(|source| ConfigError::Json {
                path: path.to_owned(),
                source,
            })?
        };
        let mut issues = Vec::new();
        if !root.is_object() {
            issues.push(issue("(root)", "the configuration must be a JSON object"));
            return Err(ConfigError::Invalid(issues));
        }
        env::overlay(&mut root, env, &mut issues);
        let base = path.parent().unwrap_or(Path::new("."));
        match Self::from_value(&root, base, issues, true) {
            Ok(c) => Ok(c),
            Err(issues) => Err(ConfigError::Invalid(issues)),
        }
    }

    /// Builds a configuration from an already parsed JSON value. Relative paths are
    /// resolved against `base` (the config file's directory), as operators expect
    /// when starting the gateway from elsewhere.
    ///
    /// Unlike [`Config::load`], this does not check `secret` and `node_secret`
    /// ([`Config::secret_issues`]), so partial configurations can be built for tests;
    /// [`crate::app::start`] checks them before anything listens.
    pub fn from_json(root: &Value, base: &Path) -> Result<Self, ConfigError> {
        Self::from_value(root, base, Vec::new(), false).map_err(ConfigError::Invalid)
    }

    fn from_value(
        root: &Value,
        base: &Path,
        mut issues: Vec<ConfigIssue>,
        check_secrets: bool,
    ) -> Result<Self, Vec<ConfigIssue>> {
        if let Some(map) = root.as_object() {
            for finding in crate::audit::audit(fields::CONFIG_FIELDS, "", map) {
                match finding {
                    crate::audit::Finding::Warning(w) => tracing::warn!(source = "tyk.conf", "{w}"),
                    crate::audit::Finding::Refused(reason) => {
                        let field = reason.split(' ').next().unwrap_or_default().to_owned();
                        let why = reason[field.len()..].trim_start().to_owned();
                        issues.push(ConfigIssue { field, reason: why });
                    }
                }
            }
        }
        let mut r = Reader {
            root,
            issues: &mut issues,
        };
        let listen_address = r.string("listen_address", "");
        let listen_port = r.port("listen_port", 8080);
        // No default: Tyk falls back to its published example secret (issue 11 #5).
        let secret = r.string("secret", "");
        let node_secret = r.string("node_secret", "");
        let control_api_port = r.port("control_api_port", 0);
        let control_api_hostname = r.string("control_api_hostname", "");
        let hostname = r.string("hostname", "");
        let enable_custom_domains = r.bool("enable_custom_domains", false);
        let app_path = resolve(base, &r.string("app_path", "apps/"));
        let policies = PoliciesConfig {
            policy_source: r.string("policies.policy_source", ""),
            policy_path: r
                .opt_string("policies.policy_path")
                .filter(|p| !p.is_empty())
                .map(|p| resolve(base, &p)),
        };
        if !matches!(policies.policy_source.as_str(), "" | "file") {
            r.fail(
                "policies.policy_source",
                format!(
                    "\"{}\" is not supported; use \"file\" with policies.policy_path",
                    policies.policy_source
                ),
            );
        }

        let certificates = r.cert_pairs("http_server_options.certificates", base);
        let min_version = r.u16("http_server_options.min_version", 0);
        let max_version = r.u16("http_server_options.max_version", 0);
        let (min_version, max_version) = tls_versions(&mut r, min_version, max_version);
        let body_limits = edge::body_limits(&mut r);
        let http_server_options = HttpServerOptions {
            use_ssl: r.bool("http_server_options.use_ssl", false),
            certificates,
            ssl_certificates: r.strings("http_server_options.ssl_certificates"),
            min_version,
            max_version,
            enable_http2: r.bool("http_server_options.enable_http2", false),
            path_matching: crate::apidef::PathMatching {
                prefix: r.bool("http_server_options.enable_path_prefix_matching", false),
                suffix: r.bool("http_server_options.enable_path_suffix_matching", false),
            },
            skip_client_ca_announcement: r
                .bool("http_server_options.skip_client_ca_announcement", false),
            ssl_ciphers: r.strings("http_server_options.ssl_ciphers"),
            max_request_body_size: r.u64("http_server_options.max_request_body_size", 0),
            read_header_timeout: Duration::from_secs(
                r.u64("http_server_options.read_header_timeout", 30).max(1),
            ),
            // Go's http.Server: no IdleTimeout means ReadTimeout.
            idle_timeout: body_limits.total,
            session_resumption: r.bool("http_server_options.enable_session_resumption", true),
            body_limits,
            write_timeout: edge::write_timeout(&mut r),
        };

        let security = SecurityConfig {
            allow_unsafe_dynamic_mtls_token: r
                .bool("security.allow_unsafe_dynamic_mtls_token", false),
            control_api_use_mutual_tls: r.bool("security.control_api_use_mutual_tls", false),
            private_certificate_encoding_secret: r
                .string("security.private_certificate_encoding_secret", ""),
            certificates_apis: r.strings("security.certificates.apis"),
            certificates_control_api: r.strings("security.certificates.control_api"),
            client_cert_not_before_skew: edge::not_before_skew(&mut r),
        };

        let hash_key_function = r.string("hash_key_function", "");
        if !matches!(
            hash_key_function.as_str(),
            "" | "murmur32" | "murmur64" | "murmur128" | "sha256"
        ) {
            r.fail(
                "hash_key_function",
                format!(
                    "\"{hash_key_function}\" is not one of murmur32, murmur64, murmur128, sha256 (or empty)"
                ),
            );
        }
        let hash_key_function_fallback = r.strings("hash_key_function_fallback");
        for f in &hash_key_function_fallback {
            if !matches!(f.as_str(), "murmur32" | "murmur64" | "murmur128" | "sha256") {
                r.fail(
                    "hash_key_function_fallback",
                    format!("\"{f}\" is not one of murmur32, murmur64, murmur128, sha256"),
                );
            }
        }
        let min_token_length = r.u64("min_token_length", 0) as usize;

        let storage = storage(&mut r, base);
        let health = r.string("health_check_endpoint_name", "hello");
        let proxy_timeout = r.f64("proxy_default_timeout", 30.0);
        let proxy_default_timeout = if proxy_timeout > 0.0 && proxy_timeout.is_finite() {
            Duration::from_secs_f64(proxy_timeout.min(86_400.0))
        } else {
            Duration::from_secs(30)
        };
        let grace = r.u64("graceful_shutdown_timeout_duration", 30);

        let cfg = Config {
            listen_address,
            listen_port,
            secret,
            node_secret,
            control_api_port,
            control_api_hostname,
            hostname,
            enable_custom_domains,
            app_path,
            policies,
            http_server_options,
            security,
            hash_keys: r.bool("hash_keys", false),
            hash_key_function,
            hash_key_function_fallback,
            enable_hashed_keys_listing: r.bool("enable_hashed_keys_listing", false),
            min_token_length: if min_token_length == 0 {
                3
            } else {
                min_token_length
            },
            allow_master_keys: r.bool("allow_master_keys", false),
            hide_generator_header: r.bool("hide_generator_header", false),
            health_check_endpoint_name: health.trim_matches('/').to_owned(),
            proxy_default_timeout,
            storage,
            graceful_shutdown_timeout: Duration::from_secs(grace.clamp(1, 3600)),
            local_cache: LocalCacheConfig {
                disabled: r.bool("local_session_cache.disable_cached_session_state", false),
                timeout: Duration::from_secs(
                    match r.u64("local_session_cache.cached_session_timeout", 10) {
                        0 => 10,
                        n => n.min(86_400),
                    },
                ),
            },
            allow_insecure_configs: r.bool("allow_insecure_configs", false),
            suppress_redis_signal_reload: r.bool("suppress_redis_signal_reload", false),
            strip_client_identity_headers: edge::identity_headers(&mut r),
        };
        cfg.cross_checks(&mut r);
        if check_secrets {
            issues.extend(cfg.secret_issues());
        }
        if issues.is_empty() {
            Ok(cfg)
        } else {
            Err(issues)
        }
    }

    fn cross_checks(&self, r: &mut Reader<'_>) {
        if self.control_api_port != 0 && self.control_api_port == self.listen_port {
            r.fail(
                "control_api_port",
                "must differ from listen_port (leave it 0 to serve the Gateway API on the gateway port)",
            );
        }
        if self.health_check_endpoint_name.is_empty()
            || self.health_check_endpoint_name.contains('/')
        {
            r.fail(
                "health_check_endpoint_name",
                "must be a single non-empty path segment",
            );
        }
    }

    /// The address the gateway listener binds.
    pub fn listen_addr(&self) -> String {
        let host = if self.listen_address.is_empty() {
            "0.0.0.0"
        } else {
            self.listen_address.as_str()
        };
        join_host_port(host, self.listen_port)
    }

    /// The address the separate Gateway API listener binds, if any.
    pub fn control_addr(&self) -> Option<String> {
        if self.control_api_port == 0 {
            return None;
        }
        let host = if self.listen_address.is_empty() {
            "0.0.0.0"
        } else {
            self.listen_address.as_str()
        };
        Some(join_host_port(host, self.control_api_port))
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

fn tls_versions(r: &mut Reader<'_>, min: u16, max: u16) -> (u16, u16) {
    let field_ok = |v: u16| v == 0 || v == TLS12 || v == TLS13;
    let mut ok = true;
    for (name, v) in [("min_version", min), ("max_version", max)] {
        if !field_ok(v) {
            ok = false;
            r.fail(
                &format!("http_server_options.{name}"),
                format!("{v} is not supported; use 771 (TLS 1.2) or 772 (TLS 1.3)"),
            );
        }
    }
    let min = if min == 0 { TLS12 } else { min };
    let max = if max == 0 { TLS13 } else { max };
    if ok && min > max {
        r.fail(
            "http_server_options.min_version",
            format!("{min} is above max_version {max}"),
        );
    }
    (min, max)
}

fn storage(r: &mut Reader<'_>, base: &Path) -> StorageConfig {
    let explicit = r.opt_string("storage.type");
    let has_redis_address =
        r.lookup("storage.host").is_some() || r.lookup("storage.addrs").is_some();
    let kind = match explicit.as_deref() {
        Some("embedded") => StorageKind::Embedded,
        Some("redis") => StorageKind::Redis,
        None | Some("") if has_redis_address => StorageKind::Redis,
        None | Some("") => StorageKind::Embedded,
        Some(other) => {
            r.fail(
                "storage.type",
                format!("\"{other}\" is not supported; use \"embedded\" or \"redis\""),
            );
            StorageKind::Embedded
        }
    };
    let cfg = StorageConfig {
        kind,
        host: r.string("storage.host", "localhost"),
        port: r.port("storage.port", 6379),
        addrs: r.strings("storage.addrs"),
        username: r.string("storage.username", ""),
        password: r.string("storage.password", ""),
        database: r.i64("storage.database", 0),
        enable_cluster: r.bool("storage.enable_cluster", false),
        use_ssl: r.bool("storage.use_ssl", false),
        timeout: Duration::from_secs(match r.u64("storage.timeout", 0) {
            0 => 2,
            n => n.min(60),
        }),
        path: resolve(base, &r.string("storage.path", "certgate-data")),
    };
    if kind == StorageKind::Redis && cfg.enable_cluster && cfg.addrs.is_empty() {
        r.fail(
            "storage.addrs",
            "enable_cluster needs the cluster's host:port addresses in storage.addrs",
        );
    }
    for (i, a) in cfg.addrs.iter().enumerate() {
        if a.rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            r.fail(
                &format!("storage.addrs[{i}]"),
                format!("\"{a}\" is not host:port"),
            );
        }
    }
    cfg
}

/// Typed extraction with error collection.
struct Reader<'a> {
    root: &'a Value,
    issues: &'a mut Vec<ConfigIssue>,
}

fn issue(field: &str, reason: impl Into<String>) -> ConfigIssue {
    ConfigIssue {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Reader<'_> {
    fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.issues.push(issue(field, reason));
    }

    /// The value at a dotted path; `null` counts as absent (as Go's decoder does).
    fn lookup(&self, path: &str) -> Option<&Value> {
        let mut cur = self.root;
        for part in path.split('.') {
            cur = cur.as_object()?.get(part)?;
        }
        (!cur.is_null()).then_some(cur)
    }

    fn wrong(&mut self, path: &str, want: &str, got: &Value) {
        let got = type_name(got);
        self.fail(path, format!("must be {want}, found {got}"));
    }

    fn opt_string(&mut self, path: &str) -> Option<String> {
        match self.lookup(path)? {
            Value::String(s) => Some(s.clone()),
            other => {
                let other = other.clone();
                self.wrong(path, "a string", &other);
                None
            }
        }
    }

    fn string(&mut self, path: &str, default: &str) -> String {
        self.opt_string(path).unwrap_or_else(|| default.to_owned())
    }

    fn bool(&mut self, path: &str, default: bool) -> bool {
        match self.lookup(path) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                let other = other.clone();
                self.wrong(path, "true or false", &other);
                default
            }
        }
    }

    fn i64(&mut self, path: &str, default: i64) -> i64 {
        match self.lookup(path) {
            None => default,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or(default),
            Some(other) => {
                let other = other.clone();
                self.wrong(path, "an integer", &other);
                default
            }
        }
    }

    fn f64(&mut self, path: &str, default: f64) -> f64 {
        match self.lookup(path) {
            None => default,
            Some(Value::Number(n)) => n.as_f64().unwrap_or(default),
            Some(other) => {
                let other = other.clone();
                self.wrong(path, "a number", &other);
                default
            }
        }
    }

    fn u64(&mut self, path: &str, default: u64) -> u64 {
        let v = self.i64(path, default as i64);
        if v < 0 {
            self.fail(path, format!("must not be negative, found {v}"));
            return default;
        }
        v as u64
    }

    fn u16(&mut self, path: &str, default: u16) -> u16 {
        let v = self.u64(path, u64::from(default));
        match u16::try_from(v) {
            Ok(v) => v,
            Err(_) => {
                self.fail(path, format!("{v} is out of range"));
                default
            }
        }
    }

    fn port(&mut self, path: &str, default: u16) -> u16 {
        let v = self.i64(path, i64::from(default));
        match u16::try_from(v) {
            Ok(p) => p,
            Err(_) => {
                self.fail(path, format!("{v} is not a TCP port (0-65535)"));
                default
            }
        }
    }

    fn strings(&mut self, path: &str) -> Vec<String> {
        match self.lookup(path) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                let mut bad = None;
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => bad = Some((i, type_name(other))),
                    }
                }
                if let Some((i, t)) = bad {
                    self.fail(
                        &format!("{path}[{i}]"),
                        format!("must be a string, found {t}"),
                    );
                }
                out
            }
            Some(other) => {
                let other = other.clone();
                self.wrong(path, "an array of strings", &other);
                Vec::new()
            }
        }
    }

    fn cert_pairs(&mut self, path: &str, base: &Path) -> Vec<CertFilePair> {
        let items = match self.lookup(path) {
            None => return Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(other) => {
                let other = other.clone();
                self.wrong(
                    path,
                    "an array of {domain_name, cert_file, key_file}",
                    &other,
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let Some(obj) = item.as_object() else {
                self.wrong(&at, "an object", item);
                continue;
            };
            let mut field = |name: &str, required: bool| -> Option<String> {
                match obj.get(name) {
                    Some(Value::String(s)) if !s.is_empty() || !required => Some(s.clone()),
                    None | Some(Value::Null) if !required => Some(String::new()),
                    Some(Value::String(_)) | None | Some(Value::Null) => {
                        self.issues
                            .push(issue(&format!("{at}.{name}"), "is required"));
                        None
                    }
                    Some(other) => {
                        let t = type_name(other);
                        self.issues.push(issue(
                            &format!("{at}.{name}"),
                            format!("must be a string, found {t}"),
                        ));
                        None
                    }
                }
            };
            let domain = field("domain_name", false);
            let cert = field("cert_file", true);
            let key = field("key_file", true);
            if let (Some(domain_name), Some(cert), Some(key)) = (domain, cert, key) {
                out.push(CertFilePair {
                    domain_name,
                    cert_file: resolve(base, &cert),
                    key_file: resolve(base, &key),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
