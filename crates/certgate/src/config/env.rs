//! `TYK_GW_*` environment overrides.
//!
//! Tyk reads its environment with envconfig: the prefix `TYK_GW_`, then the Go field
//! names upper-cased and joined by `_` per nesting level. Go field names are not always
//! the JSON names without underscores (`ssl_ciphers` is `Ciphers`, `certificates.apis`
//! is `API`), so the mapping is an explicit table rather than a rule.

use serde_json::{Map, Number, Value};

use super::{issue, ConfigIssue};

/// Where environment variables come from (injected so tests need not touch the
/// process environment).
pub trait EnvSource {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Float,
    Bool,
    /// Comma-separated list of strings.
    List,
    /// A JSON document (Tyk: `http_server_options.certificates`).
    Json,
}

/// (JSON path, env suffix after `TYK_GW_`, kind).
const TABLE: &[(&str, &str, Kind)] = &[
    ("listen_address", "LISTENADDRESS", Kind::Str),
    ("listen_port", "LISTENPORT", Kind::Int),
    ("secret", "SECRET", Kind::Str),
    ("node_secret", "NODESECRET", Kind::Str),
    ("control_api_port", "CONTROLAPIPORT", Kind::Int),
    ("control_api_hostname", "CONTROLAPIHOSTNAME", Kind::Str),
    ("hostname", "HOSTNAME", Kind::Str),
    ("enable_custom_domains", "ENABLECUSTOMDOMAINS", Kind::Bool),
    ("app_path", "APPPATH", Kind::Str),
    ("policies.policy_source", "POLICIES_POLICYSOURCE", Kind::Str),
    ("policies.policy_path", "POLICIES_POLICYPATH", Kind::Str),
    (
        "http_server_options.use_ssl",
        "HTTPSERVEROPTIONS_USESSL",
        Kind::Bool,
    ),
    (
        "http_server_options.certificates",
        "HTTPSERVEROPTIONS_CERTIFICATES",
        Kind::Json,
    ),
    (
        "http_server_options.ssl_certificates",
        "HTTPSERVEROPTIONS_SSLCERTIFICATES",
        Kind::List,
    ),
    (
        "http_server_options.min_version",
        "HTTPSERVEROPTIONS_MINVERSION",
        Kind::Int,
    ),
    (
        "http_server_options.max_version",
        "HTTPSERVEROPTIONS_MAXVERSION",
        Kind::Int,
    ),
    (
        "http_server_options.enable_http2",
        "HTTPSERVEROPTIONS_ENABLEHTTP2",
        Kind::Bool,
    ),
    (
        "http_server_options.skip_client_ca_announcement",
        "HTTPSERVEROPTIONS_SKIPCLIENTCAANNOUNCEMENT",
        Kind::Bool,
    ),
    (
        "http_server_options.ssl_ciphers",
        "HTTPSERVEROPTIONS_CIPHERS",
        Kind::List,
    ),
    (
        "http_server_options.max_request_body_size",
        "HTTPSERVEROPTIONS_MAXREQUESTBODYSIZE",
        Kind::Int,
    ),
    (
        "http_server_options.read_timeout",
        "HTTPSERVEROPTIONS_READTIMEOUT",
        Kind::Int,
    ),
    (
        "http_server_options.write_timeout",
        "HTTPSERVEROPTIONS_WRITETIMEOUT",
        Kind::Int,
    ),
    (
        "http_server_options.certgate_body_read_timeout",
        "HTTPSERVEROPTIONS_CERTGATEBODYREADTIMEOUT",
        Kind::Int,
    ),
    (
        "http_server_options.certgate_min_body_rate",
        "HTTPSERVEROPTIONS_CERTGATEMINBODYRATE",
        Kind::Int,
    ),
    (
        "strip_client_identity_headers",
        "STRIPCLIENTIDENTITYHEADERS",
        Kind::List,
    ),
    (
        "http_server_options.read_header_timeout",
        "HTTPSERVEROPTIONS_READHEADERTIMEOUT",
        Kind::Int,
    ),
    (
        "security.allow_unsafe_dynamic_mtls_token",
        "SECURITY_ALLOWUNSAFEDYNAMICMTLSTOKEN",
        Kind::Bool,
    ),
    (
        "security.control_api_use_mutual_tls",
        "SECURITY_CONTROLAPIUSEMUTUALTLS",
        Kind::Bool,
    ),
    (
        "security.private_certificate_encoding_secret",
        "SECURITY_PRIVATECERTIFICATEENCODINGSECRET",
        Kind::Str,
    ),
    (
        "security.certificates.apis",
        "SECURITY_CERTIFICATES_API",
        Kind::List,
    ),
    (
        "security.certificates.control_api",
        "SECURITY_CERTIFICATES_CONTROLAPI",
        Kind::List,
    ),
    (
        "security.certgate_client_cert_not_before_skew",
        "SECURITY_CERTGATECLIENTCERTNOTBEFORESKEW",
        Kind::Int,
    ),
    ("hash_keys", "HASHKEYS", Kind::Bool),
    ("hash_key_function", "HASHKEYFUNCTION", Kind::Str),
    (
        "hash_key_function_fallback",
        "HASHKEYFUNCTIONFALLBACK",
        Kind::List,
    ),
    (
        "enable_hashed_keys_listing",
        "ENABLEHASHEDKEYSLISTING",
        Kind::Bool,
    ),
    ("min_token_length", "MINTOKENLENGTH", Kind::Int),
    ("allow_master_keys", "ALLOWMASTERKEYS", Kind::Bool),
    ("hide_generator_header", "HIDEGENERATORHEADER", Kind::Bool),
    (
        "health_check_endpoint_name",
        "HEALTHCHECKENDPOINTNAME",
        Kind::Str,
    ),
    ("proxy_default_timeout", "PROXYDEFAULTTIMEOUT", Kind::Float),
    (
        "graceful_shutdown_timeout_duration",
        "GRACEFULSHUTDOWNTIMEOUTDURATION",
        Kind::Int,
    ),
    ("storage.type", "STORAGE_TYPE", Kind::Str),
    ("storage.host", "STORAGE_HOST", Kind::Str),
    ("storage.port", "STORAGE_PORT", Kind::Int),
    ("storage.addrs", "STORAGE_ADDRS", Kind::List),
    ("storage.username", "STORAGE_USERNAME", Kind::Str),
    ("storage.password", "STORAGE_PASSWORD", Kind::Str),
    ("storage.database", "STORAGE_DATABASE", Kind::Int),
    (
        "storage.enable_cluster",
        "STORAGE_ENABLECLUSTER",
        Kind::Bool,
    ),
    ("storage.use_ssl", "STORAGE_USESSL", Kind::Bool),
    ("storage.path", "STORAGE_PATH", Kind::Str),
    (
        "local_session_cache.disable_cached_session_state",
        "LOCALSESSIONCACHE_DISABLECACHESESSIONSTATE",
        Kind::Bool,
    ),
    (
        "local_session_cache.cached_session_timeout",
        "LOCALSESSIONCACHE_CACHEDSESSIONTIMEOUT",
        Kind::Int,
    ),
    ("allow_insecure_configs", "ALLOWINSECURECONFIGS", Kind::Bool),
    (
        "suppress_redis_signal_reload",
        "SUPPRESSREDISSIGNALRELOAD",
        Kind::Bool,
    ),
];

/// Writes every set `TYK_GW_*` variable of the table over `root`.
pub(super) fn overlay(root: &mut Value, env: &dyn EnvSource, issues: &mut Vec<ConfigIssue>) {
    for (path, suffix, kind) in TABLE {
        let name = format!("TYK_GW_{suffix}");
        let Some(raw) = env.get(&name) else { continue };
        match convert(&raw, *kind) {
            Ok(v) => set_path(root, path, v),
            Err(reason) => issues.push(issue(&name, format!("{reason} (overrides {path})"))),
        }
    }
}

fn convert(raw: &str, kind: Kind) -> Result<Value, String> {
    let t = raw.trim();
    Ok(match kind {
        Kind::Str => Value::String(raw.to_owned()),
        Kind::Int => Value::Number(
            t.parse::<i64>()
                .map_err(|_| format!("\"{raw}\" is not an integer"))?
                .into(),
        ),
        Kind::Float => {
            let f = t
                .parse::<f64>()
                .map_err(|_| format!("\"{raw}\" is not a number"))?;
            Value::Number(Number::from_f64(f).ok_or_else(|| format!("\"{raw}\" is not finite"))?)
        }
        // Go's strconv.ParseBool.
        Kind::Bool => match t {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Value::Bool(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Value::Bool(false),
            _ => return Err(format!("\"{raw}\" is not a boolean (true/false)")),
        },
        Kind::List => Value::Array(
            t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        Kind::Json => serde_json::from_str(t).map_err(|e| format!("is not valid JSON: {e}"))?,
    })
}

fn set_path(root: &mut Value, path: &str, v: Value) {
    let mut cur = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(obj) = cur else { return };
        if parts.peek().is_none() {
            obj.insert(part.to_owned(), v);
            return;
        }
        cur = obj
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}
