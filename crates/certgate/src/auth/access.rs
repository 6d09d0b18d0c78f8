//! VersionCheck, AccessRightsCheck and GranularAccess (§1.9): which APIs, versions and
//! method+path combinations a session may use.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use http::request::Parts;
use http::StatusCode;
use regex::Regex;

use crate::apidef::ApiSpec;
use crate::errors::{msg, ProxyError};
use crate::session::SessionState;

/// Tyk's VersionCheck for a versioned Classic API: the requested version (header,
/// query parameter or first path segment after the listen path, else the default)
/// must be one of the API's versions. `None` for APIs that are not versioned.
pub fn requested_version(
    spec: &ApiSpec,
    parts: &Parts,
    upstream_path: &str,
) -> Result<Option<String>, ProxyError> {
    let v = &spec.versioning;
    if v.not_versioned {
        return Ok(None);
    }
    let from_request = match v.location.as_str() {
        "header" => parts
            .headers
            .get(v.key.as_str())
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
        "url-param" => parts.uri.query().and_then(|q| {
            q.split('&').find_map(|pair| {
                let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
                (k == v.key).then(|| val.to_owned())
            })
        }),
        "url" => upstream_path
            .trim_start_matches('/')
            .split('/')
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        _ => None,
    }
    .filter(|s| !s.is_empty());
    let version = match from_request {
        Some(v) => v,
        None if !v.default_version.is_empty() => v.default_version.clone(),
        None => {
            return Err(ProxyError::new(
                StatusCode::FORBIDDEN,
                msg::VERSION_NOT_FOUND,
            ))
        }
    };
    if !v.versions.contains(&version) {
        return Err(ProxyError::new(StatusCode::FORBIDDEN, msg::VERSION_UNKNOWN));
    }
    Ok(Some(version))
}

/// AccessRightsCheck and GranularAccess.
pub fn check(
    spec: &ApiSpec,
    s: &SessionState,
    version: Option<&str>,
    method: &http::Method,
    path: &str,
) -> Result<(), ProxyError> {
    // Empty access rights: every API (Tyk).
    if s.access_rights.is_empty() {
        return Ok(());
    }
    let Some(ar) = s.access_rights.get(&spec.api_id) else {
        return Err(ProxyError::new(StatusCode::FORBIDDEN, msg::DISALLOWED));
    };
    if let Some(v) = version {
        if !ar.versions.iter().any(|x| x == v) {
            return Err(ProxyError::new(StatusCode::FORBIDDEN, msg::DISALLOWED));
        }
    }
    if ar.allowed_urls.is_empty() {
        return Ok(());
    }
    let allowed = ar.allowed_urls.iter().any(|u| {
        u.methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method.as_str()))
            && regex_for(&u.url).is_some_and(|re| re.is_match(path))
    });
    if allowed {
        Ok(())
    } else {
        Err(ProxyError::new(
            StatusCode::FORBIDDEN,
            msg::RESOURCE_DISALLOWED,
        ))
    }
}

const REGEX_CACHE_MAX: usize = 4096;

/// Compiled `allowed_urls` patterns, shared by all requests. An invalid pattern
/// matches nothing (fail closed).
fn regex_for(pattern: &str) -> Option<Arc<Regex>> {
    static CACHE: OnceLock<RwLock<HashMap<String, Option<Arc<Regex>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| RwLock::new(HashMap::new()));
    if let Ok(c) = cache.read() {
        if let Some(r) = c.get(pattern) {
            return r.clone();
        }
    }
    let compiled = regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .ok()
        .map(Arc::new);
    if let Ok(mut c) = cache.write() {
        if c.len() >= REGEX_CACHE_MAX {
            c.clear();
        }
        c.insert(pattern.to_owned(), compiled.clone());
    }
    compiled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{AccessDefinition, AccessSpec};

    fn spec() -> ApiSpec {
        ApiSpec {
            api_id: "a".into(),
            ..Default::default()
        }
    }

    fn session(urls: Vec<AccessSpec>, versions: Vec<&str>) -> SessionState {
        let mut s = SessionState::default();
        s.access_rights.insert(
            "a".into(),
            AccessDefinition {
                api_id: "a".into(),
                versions: versions.into_iter().map(String::from).collect(),
                allowed_urls: urls,
                ..Default::default()
            },
        );
        s
    }

    fn url(pattern: &str, methods: &[&str]) -> AccessSpec {
        AccessSpec {
            url: pattern.into(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn allowed_urls_need_method_and_path() {
        let s = session(vec![url("/users/[0-9]+", &["GET"])], vec![]);
        let get = http::Method::GET;
        assert!(check(&spec(), &s, None, &get, "/api/users/12").is_ok());
        let e = check(&spec(), &s, None, &http::Method::POST, "/api/users/12").unwrap_err();
        assert_eq!(e.message, msg::RESOURCE_DISALLOWED);
        assert!(check(&spec(), &s, None, &get, "/api/orders").is_err());
        // An invalid pattern allows nothing.
        let s = session(vec![url("(", &["GET"])], vec![]);
        assert!(check(&spec(), &s, None, &get, "/(").is_err());
    }

    #[test]
    fn versions_must_be_granted() {
        let s = session(vec![], vec!["v1"]);
        assert!(check(&spec(), &s, Some("v1"), &http::Method::GET, "/").is_ok());
        assert!(check(&spec(), &s, Some("v2"), &http::Method::GET, "/").is_err());
        let mut other = spec();
        other.api_id = "b".into();
        assert_eq!(
            check(&other, &s, None, &http::Method::GET, "/")
                .unwrap_err()
                .message,
            msg::DISALLOWED
        );
        assert!(check(
            &other,
            &SessionState::default(),
            None,
            &http::Method::GET,
            "/"
        )
        .is_ok());
    }
}
