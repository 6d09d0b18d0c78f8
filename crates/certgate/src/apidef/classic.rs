//! Tyk Classic API definitions (`apidef.APIDefinition`, spec §5.1).

use serde_json::{json, Value};

use super::field::{parse_json, Fields, Obj};
use super::paths;
use super::{
    normalize_listen_path, port_from, ApiDefError, ApiDefinition, ApiSpec, AuthStrip,
    AuthTokenConfig, GlobalRateLimit, Versioning, DEFAULT_AUTH_HEADER,
};

/// `auth_configs` entries that Tyk's validator checks, with the flag that enables each
/// (`RuleAtLeastEnableOneAuthSource`), sorted by name as Tyk iterates them.
const AUTH_SOURCE_FLAGS: [(&str, &str); 6] = [
    ("authToken", "use_standard_auth"),
    ("coprocess", "enable_coprocess_auth"),
    ("hmac", "enable_signature_checking"),
    ("jwt", "enable_jwt"),
    ("oauth", "use_oauth2"),
    ("oidc", "use_openid"),
];

/// Top-level flags of authentication methods certgate does not implement, and their names in
/// [`ApiSpec::other_auth_methods`].
pub(super) const OTHER_AUTH_FLAGS: [(&str, &str); 8] = [
    ("enable_jwt", "jwt"),
    ("use_basic_auth", "basic"),
    ("use_oauth2", "oauth2"),
    ("enable_signature_checking", "hmac"),
    ("use_openid", "oidc"),
    ("enable_coprocess_auth", "coprocess"),
    ("use_go_plugin_auth", "go_plugin"),
    ("custom_plugin_auth_enabled", "custom_plugin"),
];

/// Parses and validates a Classic API definition. `classic` keeps the document as submitted.
pub fn parse_classic(bytes: &[u8]) -> Result<ApiDefinition, ApiDefError> {
    let classic = parse_json(bytes)?;
    let spec = spec_from_classic(&classic)?;
    if let Some(map) = classic.as_object() {
        let findings = crate::audit::audit(super::fields::CLASSIC_FIELDS, "", map);
        if let Some(reason) = crate::audit::first_refusal(findings, "classic API definition") {
            return Err(ApiDefError::Validation(reason));
        }
    }
    spec.validate()?;
    Ok(ApiDefinition {
        spec,
        classic,
        oas: None,
    })
}

/// Reads the typed spec out of a Classic document (no validation beyond types and the
/// auth-source rule).
pub(super) fn spec_from_classic(value: &Value) -> Result<ApiSpec, ApiDefError> {
    let root_obj = Obj::root(value)?;
    let root = root_obj.fields();

    let (listen_path, strip_listen_path, target_url) = match root.opt_obj("proxy")? {
        Some(proxy) => {
            let proxy = proxy.fields();
            (
                proxy.string("listen_path")?,
                proxy.bool("strip_listen_path")?,
                proxy.string("target_url")?,
            )
        }
        None => Default::default(),
    };

    let (auth, handshake_use_certificate, auth_strip) = effective_auth(root)?;
    let mut other_auth_methods = Vec::new();
    for (flag, name) in OTHER_AUTH_FLAGS {
        if root.bool(flag)? {
            other_auth_methods.push(name.to_owned());
        }
    }
    if let Some(external) = root.opt_obj("external_oauth")? {
        if external.fields().bool("enabled")? {
            other_auth_methods.push("external_oauth".to_owned());
        }
    }

    let global_rate_limit = match root.opt_obj("global_rate_limit")? {
        Some(limit) => {
            let limit = limit.fields();
            GlobalRateLimit {
                rate: limit.f64("rate")?,
                per: limit.f64("per")?,
                disabled: limit.bool("disabled")?,
            }
        }
        None => GlobalRateLimit::default(),
    };

    Ok(ApiSpec {
        api_id: root.string("api_id")?,
        org_id: root.string("org_id")?,
        name: root.string("name")?,
        active: root.bool("active")?,
        internal: root.bool("internal")?,
        listen_path: normalize_listen_path(&listen_path),
        strip_listen_path,
        target_url,
        domain: root.string("domain")?,
        domain_disabled: root.bool("domain_disabled")?,
        certificates: root.str_list("certificates")?,
        listen_port: port_from(root.opt_i64("listen_port")?, "listen_port")?,
        protocol: root.string("protocol")?,
        use_keyless: root.bool("use_keyless")?,
        use_standard_auth: root.bool("use_standard_auth")?,
        auth,
        handshake_use_certificate,
        other_auth_methods,
        base_identity_provided_by: root.string("base_identity_provided_by")?,
        use_mutual_tls_auth: root.bool("use_mutual_tls_auth")?,
        client_certificates: root.str_list("client_certificates")?,
        strip_auth_data: root.bool("strip_auth_data")?,
        auth_strip,
        session_lifetime: root.opt_i64("session_lifetime")?.unwrap_or(0),
        session_lifetime_respects_key_expiration: root
            .bool("session_lifetime_respects_key_expiration")?,
        disable_rate_limit: root.bool("disable_rate_limit")?,
        disable_quota: root.bool("disable_quota")?,
        global_rate_limit,
        versioning: versioning(root)?,
    })
}

/// The effective token config (`auth_configs.authToken`, else the deprecated `auth`), the
/// handshake flag (`auth.use_certificate || auth_configs.authToken.use_certificate`) and
/// what `strip_auth_data` removes. Also type-checks every `auth_configs` entry and applies
/// Tyk's "at least one auth source" rule.
fn effective_auth(root: Fields<'_>) -> Result<(AuthTokenConfig, bool, AuthStrip), ApiDefError> {
    let legacy = match root.opt_obj("auth")? {
        Some(auth) => RawAuthConfig::read(auth.fields())?,
        None => RawAuthConfig::default(),
    };
    let mut token = None;
    let mut all = Vec::new();
    if let Some(configs) = root.opt_obj("auth_configs")? {
        let configs = configs.fields();
        let mut names: Vec<&String> = configs.keys().collect();
        names.sort();
        for name in names {
            // Go decodes `"authToken": null` into a present, zero-valued entry.
            let raw = match configs.opt_obj(name)? {
                Some(entry) => RawAuthConfig::read(entry.fields())?,
                None => RawAuthConfig::default(),
            };
            if let Some((_, flag)) = AUTH_SOURCE_FLAGS.iter().find(|(n, _)| *n == name.as_str()) {
                check_auth_sources(name, root.bool(flag)?, &raw)?;
            }
            if name == "authToken" {
                token = Some(raw.clone());
            }
            all.push(raw);
        }
    }
    let handshake = legacy.use_certificate || token.as_ref().is_some_and(|t| t.use_certificate);
    let effective = token.as_ref().unwrap_or(&legacy).resolve();
    if all.is_empty() {
        all.push(legacy);
    }
    let strip = auth_strip(&all, &effective);
    Ok((effective, handshake, strip))
}

/// What `strip_auth_data` removes (see [`AuthStrip`]): Tyk's StripAuth names for each of
/// `configs` (the `auth_configs` entries, or the deprecated `auth` when there is none),
/// plus the names `effective` reads from.
pub(super) fn auth_strip(configs: &[RawAuthConfig], effective: &AuthTokenConfig) -> AuthStrip {
    let mut strip = AuthStrip::default();
    for c in configs {
        let header = non_empty_or(&c.auth_header_name, DEFAULT_AUTH_HEADER);
        strip.add_header(header);
        if c.use_param {
            AuthStrip::add(&mut strip.params, non_empty_or(&c.param_name, header));
        }
        AuthStrip::add(&mut strip.cookies, non_empty_or(&c.cookie_name, header));
    }
    strip.add_effective(effective);
    strip
}

fn versioning(root: Fields<'_>) -> Result<Versioning, ApiDefError> {
    let mut versioning = Versioning {
        expiration: paths::expiry_field(root, "expiration")?,
        ..Versioning::default()
    };
    if let Some(data) = root.opt_obj("version_data")? {
        let data = data.fields();
        versioning.not_versioned = data.bool("not_versioned")?;
        versioning.default_version = data.string("default_version")?;
        if let Some(versions) = data.opt_obj("versions")? {
            let versions = versions.fields();
            let mut names = Vec::new();
            for key in versions.keys() {
                let entry = versions.req_obj(key)?;
                let entry = entry.fields();
                names.push(entry.string("name")?);
                versioning.versions.push(key.clone());
                versioning.rules.push(paths::classic_version(key, entry)?);
            }
            check_version_names(&versioning, &names, versions)?;
        }
    }
    if let Some(definition) = root.opt_obj("definition")? {
        let definition = definition.fields();
        versioning.location = definition.string("location")?;
        versioning.key = definition.string("key")?;
        versioning.fallback_to_default = definition.bool("fallback_to_default")?;
        for flag in ["enabled", "strip_path", "strip_versioning_data"] {
            if definition.bool(flag)? {
                return Err(ApiDefError::Validation(format!(
                    "{} is not supported by certgate",
                    definition.path_of(flag)
                )));
            }
        }
    }
    Ok(versioning)
}

/// Tyk keys a version's compiled lists by its `name` field and, for an API that is not
/// versioned, applies whichever version its map iteration yields first: refuse definitions
/// where either would make the lists applied a matter of chance.
fn check_version_names(
    v: &Versioning,
    names: &[String],
    versions: Fields<'_>,
) -> Result<(), ApiDefError> {
    if names.len() < 2 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(ApiDefError::Validation(format!(
            "{}: two versions have the name {dup:?}; Tyk would apply the lists of only one",
            versions.path_of("<version>.name")
        )));
    }
    let restricted = v.rules.iter().any(|r| !r.rules.is_empty());
    if v.not_versioned && restricted {
        return Err(ApiDefError::Validation(
            "version_data.versions: an API that is not versioned (not_versioned) must have \
             a single version when it has endpoint lists; Tyk would pick one at random"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Tyk's `RuleAtLeastEnableOneAuthSource`: an enabled method must read at least one of
/// header, query or cookie.
pub(super) fn check_auth_sources(
    name: &str,
    enabled: bool,
    raw: &RawAuthConfig,
) -> Result<(), ApiDefError> {
    if enabled && raw.disable_header && !raw.use_param && !raw.use_cookie {
        return Err(ApiDefError::Validation(format!(
            "all auth sources are disabled for {name}, at least one of header/cookie/query must be enabled"
        )));
    }
    Ok(())
}

/// An `AuthConfig` as written in a definition, before Tyk's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct RawAuthConfig {
    pub(super) name: String,
    pub(super) auth_header_name: String,
    pub(super) use_param: bool,
    pub(super) param_name: String,
    pub(super) use_cookie: bool,
    pub(super) cookie_name: String,
    pub(super) disable_header: bool,
    pub(super) use_certificate: bool,
}

impl RawAuthConfig {
    fn read(f: Fields<'_>) -> Result<Self, ApiDefError> {
        Ok(Self {
            name: f.string("name")?,
            auth_header_name: f.string("auth_header_name")?,
            use_param: f.bool("use_param")?,
            param_name: f.string("param_name")?,
            use_cookie: f.bool("use_cookie")?,
            cookie_name: f.string("cookie_name")?,
            disable_header: f.bool("disable_header")?,
            use_certificate: f.bool("use_certificate")?,
        })
    }

    /// Applies Tyk's name defaults (`gateway/middleware.go` `getAuthToken`): the header name
    /// defaults to `Authorization`; parameter and cookie names default to the header name, or
    /// to `Authorization` when the header is disabled.
    pub(super) fn resolve(&self) -> AuthTokenConfig {
        let header = non_empty_or(&self.auth_header_name, DEFAULT_AUTH_HEADER);
        let fallback = if self.disable_header {
            DEFAULT_AUTH_HEADER
        } else {
            header
        };
        AuthTokenConfig {
            auth_header_name: header.to_owned(),
            use_param: self.use_param,
            param_name: non_empty_or(&self.param_name, fallback).to_owned(),
            use_cookie: self.use_cookie,
            cookie_name: non_empty_or(&self.cookie_name, fallback).to_owned(),
            disable_header: self.disable_header,
            use_certificate: self.use_certificate,
        }
    }

    /// The Classic JSON of this entry (field names as in Tyk's `AuthConfig`).
    pub(super) fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "use_param": self.use_param,
            "param_name": self.param_name,
            "use_cookie": self.use_cookie,
            "cookie_name": self.cookie_name,
            "disable_header": self.disable_header,
            "auth_header_name": self.auth_header_name,
            "use_certificate": self.use_certificate,
        })
    }
}

fn non_empty_or<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() {
        default
    } else {
        value
    }
}
