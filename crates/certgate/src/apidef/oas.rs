//! Tyk OAS API definitions: an OpenAPI 3 document with `x-tyk-api-gateway`, converted to the
//! Classic form as Tyk does internally (spec §5.2).

use serde_json::{json, Map, Value};

use super::classic::{auth_strip, check_auth_sources, RawAuthConfig, OTHER_AUTH_FLAGS};
use super::field::{parse_json, Fields, Obj};
use super::paths;
use super::{
    normalize_listen_path, port_from, ApiDefError, ApiDefinition, ApiSpec, GlobalRateLimit,
    Versioning, TYK_EXTENSION,
};

/// Parses and validates a full OAS document carrying `x-tyk-api-gateway`.
///
/// `classic` is the converted Classic form (marked `"is_oas": true`); `oas` is the document as
/// submitted.
pub fn parse_oas(bytes: &[u8]) -> Result<ApiDefinition, ApiDefError> {
    let doc = parse_json(bytes)?;
    let (spec, token) = spec_from_oas(&doc)?;
    if let Some(ext) = doc.get(TYK_EXTENSION).and_then(Value::as_object) {
        let findings = crate::audit::audit(super::fields::OAS_FIELDS, "x-tyk-api-gateway.", ext);
        if let Some(reason) = crate::audit::first_refusal(findings, "OAS API definition") {
            return Err(ApiDefError::Validation(reason));
        }
    }
    let classic = classic_json(&spec, token.as_ref());
    spec.validate()?;
    Ok(ApiDefinition {
        spec,
        classic,
        oas: Some(doc),
    })
}

/// The spec and the `auth_configs.authToken` entry (if any) of an OAS document.
fn spec_from_oas(doc: &Value) -> Result<(ApiSpec, Option<RawAuthConfig>), ApiDefError> {
    let root_obj = Obj::root(doc)?;
    let root = root_obj.fields();
    if !root.has(TYK_EXTENSION) {
        return Err(ApiDefError::MissingTykExtension);
    }
    check_openapi(root)?;

    let ext_obj = root.req_obj(TYK_EXTENSION)?;
    let ext = ext_obj.fields();

    let info_obj = ext.req_obj("info")?;
    let info = info_obj.fields();
    let name = info.req_str("name")?;
    require_non_blank(info, "name", name)?;
    let state_obj = info.req_obj("state")?;
    let state = state_obj.fields();
    let active = state.req_bool("active")?;
    let internal = state.bool("internal")?;

    let upstream_obj = ext.req_obj("upstream")?;
    let upstream = upstream_obj.fields();
    let target_url = upstream.req_str("url")?.to_owned();

    let server_obj = ext.req_obj("server")?;
    let server = server_obj.fields();
    let listen_path_obj = server.req_obj("listenPath")?;
    let listen_path = listen_path_obj.fields();
    let listen_path_value = listen_path.req_str("value")?;
    require_non_blank(listen_path, "value", listen_path_value)?;

    let (use_mutual_tls_auth, client_certificates) = match server.opt_obj("clientCertificates")? {
        Some(certs) => {
            let certs = certs.fields();
            (certs.bool("enabled")?, certs.str_list("allowlist")?)
        }
        None => (false, Vec::new()),
    };
    // An absent customDomain extracts as a disabled, empty one.
    let (domain, domain_disabled, certificates) = match server.opt_obj("customDomain")? {
        Some(custom) => {
            let custom = custom.fields();
            let enabled = custom.req_bool("enabled")?;
            let name = custom.req_str("name")?.to_owned();
            (name, !enabled, custom.str_list("certificates")?)
        }
        None => (String::new(), true, Vec::new()),
    };

    let mut spec = ApiSpec {
        api_id: info.string("id")?,
        org_id: info.string("orgId")?,
        name: name.to_owned(),
        active,
        internal,
        listen_path: normalize_listen_path(listen_path_value),
        strip_listen_path: listen_path.bool("strip")?,
        target_url,
        domain,
        domain_disabled,
        certificates,
        listen_port: port_from(server.opt_i64("port")?, &server.path_of("port"))?,
        protocol: server.string("protocol")?,
        // No authentication block: keyless, as in Tyk.
        use_keyless: true,
        use_mutual_tls_auth,
        client_certificates,
        global_rate_limit: rate_limit(upstream)?,
        versioning: oas_versioning(root, ext)?,
        ..ApiSpec::default()
    };

    let mut token = None;
    if let Some(auth) = server.opt_obj("authentication")? {
        token = extract_authentication(root, auth.fields(), &mut spec)?;
    }
    if let Some(token) = &token {
        spec.auth = token.resolve();
        spec.handshake_use_certificate = token.use_certificate;
    }
    // The Classic form carries `auth_configs.authToken` only (or nothing: the defaults).
    let configs = [token.clone().unwrap_or_default()];
    spec.auth_strip = auth_strip(&configs, &spec.auth);
    Ok((spec, token))
}

/// OAS APIs are not versioned; `middleware.operations` allow / block / ignoreAuthentication
/// become the lists of the single `Default` version, as in Tyk's Classic conversion.
fn oas_versioning(root: Fields<'_>, ext: Fields<'_>) -> Result<Versioning, ApiDefError> {
    let info = ext.req_obj("info")?;
    let mut versioning = Versioning {
        not_versioned: true,
        expiration: paths::expiry_field(info.fields(), "expiration")?,
        ..Versioning::default()
    };
    let Some(middleware) = ext.opt_obj("middleware")? else {
        return Ok(versioning);
    };
    let middleware = middleware.fields();
    if let Some(operations) = middleware.opt_obj("operations")? {
        let rules = paths::oas_rules(root, operations.fields())?;
        if !rules.rules.is_empty() {
            versioning.versions.push(rules.name.clone());
            versioning.rules.push(rules);
        }
    }
    Ok(versioning)
}

/// The OpenAPI part Tyk's schema validation requires before looking at the extension.
fn check_openapi(root: Fields<'_>) -> Result<(), ApiDefError> {
    let version = root.req_str("openapi")?;
    let is_30 = version == "3.0" || version.starts_with("3.0.");
    let is_31 = version == "3.1" || version.starts_with("3.1.");
    if !is_30 && !is_31 {
        return Err(ApiDefError::Schema(format!(
            "Schema not found for version {version:?}"
        )));
    }
    let info_obj = root.req_obj("info")?;
    let info = info_obj.fields();
    info.req_str("title")?;
    info.req_str("version")?;
    if is_30 {
        root.req_obj("paths")?;
    }
    Ok(())
}

/// The schema's `"pattern": "\\S+"` on names and listen paths.
fn require_non_blank(obj: Fields<'_>, key: &str, value: &str) -> Result<(), ApiDefError> {
    if value.chars().all(char::is_whitespace) {
        return Err(ApiDefError::Schema(format!(
            "{}: Does not match pattern '\\S+'",
            obj.path_of(key)
        )));
    }
    Ok(())
}

/// `upstream.rateLimit` → `global_rate_limit`; absent extracts as disabled, as in Tyk.
fn rate_limit(upstream: Fields<'_>) -> Result<GlobalRateLimit, ApiDefError> {
    let Some(limit) = upstream.opt_obj("rateLimit")? else {
        return Ok(GlobalRateLimit {
            disabled: true,
            ..GlobalRateLimit::default()
        });
    };
    let limit = limit.fields();
    Ok(GlobalRateLimit {
        rate: limit.f64("rate")?,
        per: limit.opt_duration("per")?.unwrap_or(0.0),
        disabled: !limit.bool("enabled")?,
    })
}

/// `server.authentication` → keyless flag, identity provider, key lifetime, certificate auth
/// and the token scheme of the first security requirement. Returns `auth_configs.authToken`.
fn extract_authentication(
    root: Fields<'_>,
    auth: Fields<'_>,
    spec: &mut ApiSpec,
) -> Result<Option<RawAuthConfig>, ApiDefError> {
    spec.use_keyless = !auth.req_bool("enabled")?;
    spec.strip_auth_data = auth.bool("stripAuthorizationData")?;
    spec.base_identity_provided_by = auth.string("baseIdentityProvider")?;

    if let Some(lifetime) = auth.opt_obj("customKeyLifetime")? {
        let lifetime = lifetime.fields();
        let enabled = lifetime.req_bool("enabled")?;
        let seconds = lifetime.opt_duration("value")?.unwrap_or(0.0);
        // Go truncates `Duration.Seconds()` to int64; `as` saturates instead of wrapping.
        spec.session_lifetime = if enabled { seconds as i64 } else { 0 };
        spec.session_lifetime_respects_key_expiration = lifetime.bool("respectValidity")?;
    }

    for (key, method) in [
        ("hmac", "hmac"),
        ("oidc", "oidc"),
        ("custom", "custom_plugin"),
    ] {
        if let Some(block) = auth.opt_obj(key)? {
            if block.fields().bool("enabled")? {
                spec.other_auth_methods.push(method.to_owned());
            }
        }
    }

    // An explicit certificateAuth decides use_certificate, even `enabled: false` (§5.2).
    let certificate_auth = match auth.opt_obj("certificateAuth")? {
        Some(block) => Some(block.fields().bool("enabled")?),
        None => None,
    };
    let tyk_schemes_obj = auth.opt_obj("securitySchemes")?;
    let tyk_schemes = tyk_schemes_obj.as_ref().map(Obj::fields);
    let token = extract_token(root, tyk_schemes, certificate_auth, spec)?;
    Ok(token.or_else(|| {
        certificate_auth.map(|enabled| RawAuthConfig {
            use_certificate: enabled,
            ..RawAuthConfig::default()
        })
    }))
}

/// Tyk's legacy security processing: only when the document has a top-level `security`
/// requirement and `components.securitySchemes`, and only the first requirement counts.
/// Returns the token config of the `apiKey` scheme chosen there, if any.
fn extract_token(
    root: Fields<'_>,
    tyk_schemes: Option<Fields<'_>>,
    certificate_auth: Option<bool>,
    spec: &mut ApiSpec,
) -> Result<Option<RawAuthConfig>, ApiDefError> {
    let Some(first) = root.opt_array("security")?.and_then(<[Value]>::first) else {
        return Ok(None);
    };
    let Some(components) = root.opt_obj("components")? else {
        return Ok(None);
    };
    let components = components.fields();
    let Some(oas_schemes_obj) = components.opt_obj("securitySchemes")? else {
        return Ok(None);
    };
    let oas_schemes = oas_schemes_obj.fields();
    let requirement_obj = Obj::at(first, root.path_of("security[0]"))?;
    let requirement = requirement_obj.fields();

    let tyk_enabled = |name: &str| -> Result<bool, ApiDefError> {
        match tyk_schemes.map(|t| t.opt_obj(name)).transpose()?.flatten() {
            Some(scheme) => scheme.fields().bool("enabled"),
            None => Ok(false),
        }
    };

    // apiKey schemes of the requirement, in document order: (name, in, key name).
    let mut api_keys: Vec<(String, String, String)> = Vec::new();
    for name in requirement.keys() {
        let Some(scheme) = oas_schemes.opt_obj(name)? else {
            continue;
        };
        let scheme = scheme.fields();
        let other = match (
            scheme.string("type")?.as_str(),
            scheme.string("scheme")?.as_str(),
        ) {
            ("apiKey", _) => {
                api_keys.push((name.clone(), scheme.string("in")?, scheme.string("name")?));
                None
            }
            ("http", "bearer") if scheme.string("bearerFormat")? == "JWT" => Some("jwt"),
            ("http", "basic") => Some("basic"),
            ("oauth2", _) => Some("oauth2"),
            _ => None,
        };
        if let Some(method) = other {
            if tyk_enabled(name)? {
                spec.other_auth_methods.push(method.to_owned());
            }
        }
    }

    // Only one token scheme can be active: prefer an enabled one, else the first.
    let mut chosen = api_keys.first();
    if api_keys.len() > 1 {
        for candidate in &api_keys {
            if tyk_enabled(&candidate.0)? {
                chosen = Some(candidate);
                break;
            }
        }
    }
    let Some((name, location, key_name)) = chosen else {
        return Ok(None);
    };

    let mut config = RawAuthConfig {
        name: name.clone(),
        disable_header: true,
        ..RawAuthConfig::default()
    };
    let mut legacy_flag = false;
    let token_obj = match tyk_schemes {
        Some(schemes) => schemes.opt_obj(name)?,
        None => None,
    };
    if let Some(token) = &token_obj {
        let token = token.fields();
        spec.use_standard_auth = token.bool("enabled")?;
        legacy_flag = token.bool("enableClientCertificate")?;
        if let Some(header) = token.opt_obj("header")? {
            let header = header.fields();
            config.disable_header = !header.bool("enabled")?;
            config.auth_header_name = header.string("name")?;
        }
        if let Some(query) = token.opt_obj("query")? {
            let query = query.fields();
            config.use_param = query.bool("enabled")?;
            config.param_name = query.string("name")?;
        }
        if let Some(cookie) = token.opt_obj("cookie")? {
            let cookie = cookie.fields();
            config.use_cookie = cookie.bool("enabled")?;
            config.cookie_name = cookie.string("name")?;
        }
    }
    // The legacy flag counts only when certificateAuth is absent (§5.2 precedence).
    config.use_certificate = certificate_auth.unwrap_or(legacy_flag);

    match location.as_str() {
        "header" => {
            config.auth_header_name = key_name.clone();
            config.disable_header = false;
        }
        "query" => {
            config.param_name = key_name.clone();
            config.use_param = true;
        }
        "cookie" => {
            config.cookie_name = key_name.clone();
            config.use_cookie = true;
        }
        _ => {}
    }
    check_auth_sources("authToken", spec.use_standard_auth, &config)?;
    Ok(Some(config))
}

/// The Classic JSON `GET /tyk/apis` returns for an OAS API. Re-parsing it as Classic yields
/// the same [`ApiSpec`].
fn classic_json(spec: &ApiSpec, token: Option<&RawAuthConfig>) -> Value {
    let mut auth_configs = Map::new();
    if let Some(token) = token {
        auth_configs.insert("authToken".to_owned(), token.to_json());
    }
    let mut classic = json!({
        "api_id": spec.api_id,
        "org_id": spec.org_id,
        "name": spec.name,
        "active": spec.active,
        "internal": spec.internal,
        "is_oas": true,
        "use_keyless": spec.use_keyless,
        "use_standard_auth": spec.use_standard_auth,
        "base_identity_provided_by": spec.base_identity_provided_by,
        "strip_auth_data": spec.strip_auth_data,
        "auth_configs": auth_configs,
        "use_mutual_tls_auth": spec.use_mutual_tls_auth,
        "client_certificates": spec.client_certificates,
        "proxy": {
            "listen_path": spec.listen_path,
            "strip_listen_path": spec.strip_listen_path,
            "target_url": spec.target_url,
        },
        "domain": spec.domain,
        "domain_disabled": spec.domain_disabled,
        "certificates": spec.certificates,
        "listen_port": spec.listen_port,
        "protocol": spec.protocol,
        "session_lifetime": spec.session_lifetime,
        "session_lifetime_respects_key_expiration": spec.session_lifetime_respects_key_expiration,
        "disable_rate_limit": spec.disable_rate_limit,
        "disable_quota": spec.disable_quota,
        "global_rate_limit": {
            "rate": spec.global_rate_limit.rate,
            "per": spec.global_rate_limit.per,
            "disabled": spec.global_rate_limit.disabled,
        },
        "version_data": {
            "not_versioned": true,
            "default_version": "",
            "versions": {},
        },
    });
    if let (Some(at), Some(map)) = (spec.versioning.expiration, classic.as_object_mut()) {
        map.insert(
            "expiration".to_owned(),
            Value::from(paths::format_expiry(at)),
        );
    }
    // The operations' lists, as the `Default` version (re-parsed as Classic, they give
    // the same rules).
    if let Some(versions) = classic
        .pointer_mut("/version_data/versions")
        .and_then(Value::as_object_mut)
    {
        for rules in &spec.versioning.rules {
            versions.insert(rules.name.clone(), rules.to_classic_json());
        }
    }
    if let Some(map) = classic.as_object_mut() {
        for (flag, method) in OTHER_AUTH_FLAGS {
            if spec.other_auth_methods.iter().any(|m| m == method) {
                map.insert(flag.to_owned(), Value::Bool(true));
            }
        }
    }
    classic
}
