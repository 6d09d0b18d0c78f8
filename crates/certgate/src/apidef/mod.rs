//! Tyk API definitions — Classic and OAS — parsed into one internal form.
//!
//! # The internal form
//!
//! Every API, whatever its flavour, becomes an [`ApiDefinition`]:
//!
//! - [`ApiDefinition::spec`] is the typed [`ApiSpec`] the gateway runs on: routing, upstream,
//!   custom domain, static mTLS, and the *effective* token configuration ([`AuthTokenConfig`],
//!   with Tyk's defaults and its `auth_configs.authToken` → deprecated `auth` fallback already
//!   applied, spec §1.7). Nothing downstream re-reads the JSON.
//! - [`ApiDefinition::classic`] is the Classic JSON that `GET /tyk/apis` returns. For a Classic
//!   API it is the document exactly as submitted (unknown fields preserved). For an OAS API it
//!   is the Classic form converted from `x-tyk-api-gateway` (spec §5.2), marked `"is_oas": true`
//!   as Tyk marks the `<id>.json` file that sits beside `<id>-oas.json`.
//! - [`ApiDefinition::oas`] is the full OAS document for OAS APIs. It is the source of truth for
//!   `GET /tyk/apis/oas/{id}` (the "fill" direction): it is returned as stored, with only
//!   `x-tyk-api-gateway.info.id` kept in step by [`ApiDefinition::set_api_id`]. Because it is
//!   returned as stored, a document that used the legacy `enableClientCertificate` flag keeps it
//!   and one that used `certificateAuth` keeps that, as Tyk's fill does.
//!
//! Parsing reads a `serde_json::Value` with typed extraction (`field.rs`), so a wrong type is a
//! field-named error and never a panic, whatever the input.
//!
//! # Layout
//! - `classic.rs`: [`parse_classic`], Classic fields and the token-config fallback.
//! - `oas.rs`: [`parse_oas`], the `x-tyk-api-gateway` → Classic conversion.
//! - `field.rs`: typed reads with field-named errors, Go duration syntax.
//!
//! # Decisions the router and admin layers rely on
//! - **`listen_path`**: a path without a leading `/` gets one prepended in [`ApiSpec::listen_path`]
//!   (the stored JSON is left as submitted); an empty path, or one containing whitespace or
//!   control characters, is a validation error. Tyk would mount an empty listen path at the root
//!   of the host, silently capturing every other API.
//! - **`target_url`** must be an absolute `http` or `https` URL with a host, for every API
//!   (service discovery, load balancing and `tyk://` looping are not supported).
//! - **API ids** must be safe file names ([`validate_api_id`]); ids ending in `-oas` are refused
//!   because Tyk's file loader skips `*-oas.json` when it looks for Classic files.
//! - **`use_keyless`**: an OAS API without `server.authentication` is keyless (as in Tyk).
//!   A keyless API that also asks for certificate authentication is refused
//!   ([`KEYLESS_CERTIFICATE`]); Tyk serves it open to anyone.
//! - **OAS token config**: an explicit `certificateAuth` always decides `use_certificate`, even
//!   when the first security requirement names an `apiKey` scheme without a Tyk token scheme.
//! - Parsing validates ([`ApiSpec::validate`]); a missing `api_id` is allowed and left empty for
//!   the admin layer to fill with [`new_api_id`] and [`ApiDefinition::set_api_id`].

mod classic;
mod field;
pub mod fields;
mod oas;
mod paths;
#[cfg(test)]
mod tests;

pub use classic::parse_classic;
pub use oas::parse_oas;
pub use paths::{
    anchored, cached_regex, parse_expiry, prepare_pattern, EndpointStatus, PathMatching, PathRule,
    RuleKind, RuleMethods, VersionRules, EXPIRY_FORMAT,
};

use serde_json::Value;

/// The OAS extension that carries Tyk's configuration.
pub const TYK_EXTENSION: &str = "x-tyk-api-gateway";

/// The header Tyk reads a token from when `auth_header_name` is empty.
pub const DEFAULT_AUTH_HEADER: &str = "Authorization";

/// Why a keyless API marked for certificate authentication is refused.
pub const KEYLESS_CERTIFICATE: &str = "an API with certificate authentication \
     (auth_configs.authToken.use_certificate or auth.use_certificate; OAS: \
     server.authentication.certificateAuth.enabled) must not be keyless (use_keyless; OAS: \
     server.authentication.enabled false): it would be open to every client";

/// Longest accepted API id (a common file-name limit).
const MAX_API_ID_LEN: usize = 255;

/// A parsed API definition of either flavour.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiDefinition {
    /// What the gateway runs on.
    pub spec: ApiSpec,
    /// The Classic JSON returned by `GET /tyk/apis` (for OAS APIs: the converted form).
    pub classic: Value,
    /// The full OAS document if the API is OAS (returned by `GET /tyk/apis/oas/{id}`).
    pub oas: Option<Value>,
}

impl ApiDefinition {
    /// Whether this API was defined as a Tyk OAS document.
    pub fn is_oas(&self) -> bool {
        self.oas.is_some()
    }

    /// Sets the API id everywhere it is stored: the spec, the Classic JSON (`api_id`) and, for
    /// OAS APIs, `x-tyk-api-gateway.info.id`. The caller validates `id` first
    /// ([`validate_api_id`]).
    pub fn set_api_id(&mut self, id: &str) {
        self.spec.api_id = id.to_owned();
        if let Some(classic) = self.classic.as_object_mut() {
            classic.insert("api_id".to_owned(), Value::from(id));
        }
        let info = self
            .oas
            .as_mut()
            .and_then(|doc| doc.get_mut(TYK_EXTENSION))
            .and_then(Value::as_object_mut)
            .map(|ext| {
                ext.entry("info")
                    .or_insert_with(|| Value::Object(Default::default()))
            })
            .and_then(Value::as_object_mut);
        if let Some(info) = info {
            info.insert("id".to_owned(), Value::from(id));
        }
    }

    /// Validates the spec (see [`ApiSpec::validate`]).
    pub fn validate(&self) -> Result<(), ApiDefError> {
        self.spec.validate()
    }
}

/// The typed view of an API definition that the gateway runs on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiSpec {
    /// `api_id`; may be empty straight after parsing a definition that has none.
    pub api_id: String,
    /// `org_id`: the prefix of certificate hashes and the org sessions must belong to (§1.8, §2.2).
    pub org_id: String,
    /// `name`.
    pub name: String,
    /// `active` / `info.state.active`: informational only, Tyk OSS serves inactive APIs (§1.4).
    pub active: bool,
    /// `internal` / `info.state.internal`: reachable only by Tyk's internal looping.
    pub internal: bool,
    /// `proxy.listen_path`, always starting with `/` (see the module docs).
    pub listen_path: String,
    /// `proxy.strip_listen_path`.
    pub strip_listen_path: bool,
    /// `proxy.target_url`: an absolute `http` or `https` URL.
    pub target_url: String,
    /// `domain`: the custom domain (raw, even when disabled — TLS policy uses it anyway, §1.3).
    pub domain: String,
    /// `domain_disabled`: routing ignores `domain` when true.
    pub domain_disabled: bool,
    /// `certificates`: server certificates for the custom domain.
    pub certificates: Vec<String>,
    /// `listen_port`: an extra listener for this API; 0 means the main listener.
    pub listen_port: u16,
    /// `protocol` of the extra listener (`""`, `http`, `https`, `h2c`, `tls`, `tcp`).
    pub protocol: String,
    /// `use_keyless`: no authentication middleware at all (static mTLS still applies).
    pub use_keyless: bool,
    /// `use_standard_auth`: forces token authentication even if other methods are enabled.
    pub use_standard_auth: bool,
    /// Effective token configuration: `auth_configs.authToken`, else the deprecated `auth`.
    pub auth: AuthTokenConfig,
    /// Whether the TLS handshake should request a client certificate for certificate auth:
    /// `auth.use_certificate` OR `auth_configs.authToken.use_certificate` (§1.3 step 5) —
    /// independent of the fallback above and of `use_keyless`.
    pub handshake_use_certificate: bool,
    /// Enabled authentication methods other than the token one (`jwt`, `basic`, `oauth2`,
    /// `hmac`, `oidc`, `coprocess`, `go_plugin`, `custom_plugin`, `external_oauth`), which
    /// certgate does not implement. Decides whether AuthKey runs (see [`ApiSpec::runs_auth_key`]).
    pub other_auth_methods: Vec<String>,
    /// `base_identity_provided_by`: AuthKey publishes the session only if `auth_token` or empty.
    pub base_identity_provided_by: String,
    /// `use_mutual_tls_auth`: static client-certificate allow list.
    pub use_mutual_tls_auth: bool,
    /// `client_certificates`: the static allow list (ids, paths or inline PEM).
    pub client_certificates: Vec<String>,
    /// `strip_auth_data`: remove the credential before proxying (see [`ApiSpec::strips_auth`]).
    pub strip_auth_data: bool,
    /// What `strip_auth_data` removes, from every auth config of the API.
    pub auth_strip: AuthStrip,
    /// `session_lifetime` in seconds (0: keys keep their own expiry).
    pub session_lifetime: i64,
    /// `session_lifetime_respects_key_expiration`.
    pub session_lifetime_respects_key_expiration: bool,
    /// `disable_rate_limit`.
    pub disable_rate_limit: bool,
    /// `disable_quota`.
    pub disable_quota: bool,
    /// `global_rate_limit`: the API-wide limit.
    pub global_rate_limit: GlobalRateLimit,
    /// Versioning data used by the access-rights check.
    pub versioning: Versioning,
}

impl ApiSpec {
    /// Whether requests are authenticated by client certificate: `!use_keyless && use_certificate`.
    pub fn uses_certificate_auth(&self) -> bool {
        !self.use_keyless && self.auth.use_certificate
    }

    /// Whether credentials are removed before proxying: `strip_auth_data` on an API that
    /// authenticates (Tyk's StripAuth sits in the chain of non-keyless APIs only).
    pub fn strips_auth(&self) -> bool {
        self.strip_auth_data && !self.use_keyless
    }

    /// Whether the AuthKey (token / certificate) middleware runs: not keyless, and either
    /// `use_standard_auth` or no other authentication method is enabled (§1.5).
    pub fn runs_auth_key(&self) -> bool {
        !self.use_keyless && (self.use_standard_auth || self.other_auth_methods.is_empty())
    }

    /// Checks what a definition must satisfy to be served; see the module docs.
    pub fn validate(&self) -> Result<(), ApiDefError> {
        if !self.api_id.is_empty() {
            validate_api_id(&self.api_id)?;
        }
        if self.listen_path.is_empty() {
            return Err(invalid("proxy.listen_path is required"));
        }
        if !self.listen_path.starts_with('/') {
            return Err(invalid("proxy.listen_path must start with \"/\""));
        }
        if self
            .listen_path
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                "proxy.listen_path must not contain whitespace or control characters",
            ));
        }
        validate_target_url(&self.target_url)?;
        if self.use_keyless && (self.auth.use_certificate || self.handshake_use_certificate) {
            // Tyk serves such an API open to anyone (issue 11 #10).
            return Err(invalid(KEYLESS_CERTIFICATE));
        }
        if !matches!(
            self.protocol.as_str(),
            "" | "http" | "https" | "h2c" | "tls" | "tcp"
        ) {
            return Err(invalid(
                "protocol must be one of \"http\", \"https\", \"h2c\", \"tls\", \"tcp\"",
            ));
        }
        Ok(())
    }
}

/// The effective `authToken` configuration, with Tyk's name defaults resolved (§1.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthTokenConfig {
    /// Header carrying the token; `Authorization` when the definition leaves it empty.
    pub auth_header_name: String,
    /// Also read the token from a query parameter.
    pub use_param: bool,
    /// The query parameter; defaults to the header name (or `Authorization` if the header is
    /// disabled), as in Tyk.
    pub param_name: String,
    /// Also read the token from a cookie.
    pub use_cookie: bool,
    /// The cookie; defaults like `param_name`.
    pub cookie_name: String,
    /// Do not read the header.
    pub disable_header: bool,
    /// Certificate authentication: the client certificate is the credential.
    pub use_certificate: bool,
}

impl Default for AuthTokenConfig {
    fn default() -> Self {
        Self {
            auth_header_name: DEFAULT_AUTH_HEADER.to_owned(),
            use_param: false,
            param_name: DEFAULT_AUTH_HEADER.to_owned(),
            use_cookie: false,
            cookie_name: DEFAULT_AUTH_HEADER.to_owned(),
            disable_header: false,
            use_certificate: false,
        }
    }
}

/// What `strip_auth_data` removes before proxying, as Tyk's StripAuth does for every
/// `auth_configs` entry (the deprecated `auth` when there is none): the header
/// (`auth_header_name`, default `Authorization`), the query parameter when `use_param`
/// (`param_name`, else the header name), and the cookie (`cookie_name`, else the header
/// name). The names the effective token config reads from ([`AuthTokenConfig`]) are
/// always included, so the credential that authenticated is removed whatever Tyk's
/// defaults would pick. Names are unique; a header name that cannot occur in a request is
/// left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthStrip {
    /// Headers removed (every value).
    pub headers: Vec<http::HeaderName>,
    /// Query parameters removed (every pair whose decoded name matches exactly).
    pub params: Vec<String>,
    /// Cookies removed (every pair with exactly this name).
    pub cookies: Vec<String>,
}

impl AuthStrip {
    fn add_header(&mut self, name: &str) {
        if let Ok(n) = http::HeaderName::from_bytes(name.as_bytes()) {
            if !self.headers.contains(&n) {
                self.headers.push(n);
            }
        }
    }

    fn add(list: &mut Vec<String>, name: &str) {
        if !name.is_empty() && !list.iter().any(|n| n == name) {
            list.push(name.to_owned());
        }
    }

    /// Adds what the effective token config reads from.
    fn add_effective(&mut self, auth: &AuthTokenConfig) {
        self.add_header(&auth.auth_header_name);
        if auth.use_param {
            Self::add(&mut self.params, &auth.param_name);
        }
        Self::add(&mut self.cookies, &auth.cookie_name);
    }
}

/// `global_rate_limit`: the API-wide rate limit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GlobalRateLimit {
    /// Requests allowed per `per` seconds; no limit when `<= 0`.
    pub rate: f64,
    /// The window in seconds.
    pub per: f64,
    /// `global_rate_limit.disabled` (OAS: `!upstream.rateLimit.enabled`).
    pub disabled: bool,
}

/// The versioning data the access-rights check needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Versioning {
    /// `version_data.not_versioned` (always true for OAS APIs).
    pub not_versioned: bool,
    /// `version_data.default_version`.
    pub default_version: String,
    /// `definition.location`: `header`, `url-param` or `url`.
    pub location: String,
    /// `definition.key`: the header or parameter carrying the version name.
    pub key: String,
    /// The names under `version_data.versions`, in document order.
    pub versions: Vec<String>,
    /// `definition.fallback_to_default`: an unknown version is served as the default one.
    pub fallback_to_default: bool,
    /// `expiration` (unix seconds): the API's expiry, checked when it is not versioned.
    pub expiration: Option<i64>,
    /// Each version's `expires` and endpoint lists, in the order of `versions`.
    pub rules: Vec<VersionRules>,
}

impl Versioning {
    /// The rules of the version named `name`.
    pub fn rules_of(&self, name: &str) -> Option<&VersionRules> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The version whose rules apply to a request on an API that is not versioned: the
    /// only one (the loader refuses several with rules, where Tyk would pick one at random).
    pub fn unversioned_rules(&self) -> Option<&VersionRules> {
        self.rules.first()
    }

    /// Whether any version has an `ignored` rule (requests there skip authentication).
    pub fn has_ignored(&self) -> bool {
        self.rules.iter().any(VersionRules::has_ignored)
    }
}

/// Why an API definition was refused.
///
/// How Tyk answers each on its Gateway API (all 400): `InvalidJson` and `WrongType` are
/// `Request malformed` (Classic) / `request malformed` (OAS) — [`ApiDefError::is_malformed`];
/// `MissingField`, `Schema` and `MissingTykExtension` are returned verbatim (OAS schema checks);
/// `Validation` is `Validation of API Definition failed. Reason: <reason>.`, which is its
/// `Display`; [`ApiDefError::reason`] gives the bare reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiDefError {
    /// The bytes are not JSON.
    #[error("invalid JSON: {message}")]
    InvalidJson {
        /// serde's message, which ends with the position.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// A field has the wrong JSON type, e.g. `proxy.listen_path must be a string`.
    #[error("{field} must be {expected}")]
    WrongType {
        /// Dotted path of the field.
        field: String,
        /// What it should have been (`a string`, `an object`, …).
        expected: &'static str,
    },
    /// A required field is missing, in Tyk's schema-validator wording:
    /// `x-tyk-api-gateway.info.state: active is required`.
    #[error("{parent}: {name} is required")]
    MissingField {
        /// Dotted path of the enclosing object (`(root)` for the document).
        parent: String,
        /// The missing key.
        name: String,
    },
    /// An OAS document without the Tyk extension.
    #[error("the payload should contain x-tyk-api-gateway")]
    MissingTykExtension,
    /// Another OAS schema violation, in Tyk's schema-validator wording.
    #[error("{0}")]
    Schema(String),
    /// The definition parsed but cannot be served.
    #[error("Validation of API Definition failed. Reason: {0}.")]
    Validation(String),
}

impl ApiDefError {
    /// The message without Tyk's `Validation of API Definition failed` wrapper.
    pub fn reason(&self) -> String {
        match self {
            Self::Validation(reason) => reason.clone(),
            other => other.to_string(),
        }
    }

    /// Whether the body could not be decoded at all (bad JSON or a wrong field type), which Tyk
    /// answers with `Request malformed`.
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::InvalidJson { .. } | Self::WrongType { .. })
    }
}

/// Whether a JSON document is a Tyk OAS definition (has `openapi` or `x-tyk-api-gateway`).
pub fn is_oas_document(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.contains_key("openapi") || m.contains_key(TYK_EXTENSION))
}

/// Whether a stored Classic JSON is the converted form of an OAS API (`"is_oas": true`), i.e.
/// whether the loader must read `<id>-oas.json` beside it.
pub fn classic_is_oas(classic: &Value) -> bool {
    classic.get("is_oas").and_then(Value::as_bool) == Some(true)
}

/// Checks that an API id is safe as a file name: 1 to 255 characters from `A-Z a-z 0-9 _ . -`,
/// not `.` or `..`, and not ending in `-oas`. Rejects `../../etc/passwd`.
pub fn validate_api_id(id: &str) -> Result<(), ApiDefError> {
    let charset_ok = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if id.is_empty() || id.len() > MAX_API_ID_LEN || !charset_ok {
        return Err(invalid(
            "api_id must be 1 to 255 characters from A-Z, a-z, 0-9, '_', '.' and '-'",
        ));
    }
    if id == "." || id == ".." {
        return Err(invalid("api_id must not be \".\" or \"..\""));
    }
    if id.ends_with("-oas") {
        return Err(invalid("api_id must not end with \"-oas\""));
    }
    Ok(())
}

/// The files an API is stored in under `app_path`: `<id>.json`, plus `<id>-oas.json` for OAS.
/// The caller validates `api_id` first ([`validate_api_id`]).
pub fn file_names(api_id: &str, is_oas: bool) -> (String, Option<String>) {
    (
        format!("{api_id}.json"),
        is_oas.then(|| format!("{api_id}-oas.json")),
    )
}

/// A fresh API id as Tyk generates one: a v4 UUID in hex without dashes.
pub fn new_api_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Prepends `/` to a listen path that lacks it; an empty path stays empty (and fails validation).
fn normalize_listen_path(path: &str) -> String {
    if path.is_empty() || path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// Converts a JSON integer port into `u16`, or a validation error naming `field`.
fn port_from(value: Option<i64>, field: &str) -> Result<u16, ApiDefError> {
    match value {
        None => Ok(0),
        Some(n) => {
            u16::try_from(n).map_err(|_| invalid(&format!("{field} must be between 0 and 65535")))
        }
    }
}

fn validate_target_url(url: &str) -> Result<(), ApiDefError> {
    const REASON: &str = "proxy.target_url must be an absolute http or https URL with a host";
    if url.is_empty() {
        return Err(invalid("proxy.target_url is required"));
    }
    let uri: http::Uri = url.parse().map_err(|_| invalid(REASON))?;
    let scheme_ok = uri
        .scheme_str()
        .is_some_and(|s| ["http", "https"].contains(&s.to_ascii_lowercase().as_str()));
    let host_ok = uri.host().is_some_and(|h| !h.is_empty());
    if scheme_ok && host_ok {
        Ok(())
    } else {
        Err(invalid(REASON))
    }
}

fn invalid(reason: &str) -> ApiDefError {
    ApiDefError::Validation(reason.to_owned())
}
