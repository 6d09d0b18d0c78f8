//! VersionCheck, AccessRightsCheck and GranularAccess (§1.9): which APIs, versions and
//! method+path combinations a session may use.

use std::borrow::Cow;

use http::request::Parts;

use crate::apidef::{
    anchored, cached_regex, prepare_pattern, ApiSpec, EndpointStatus, PathMatching,
};
use crate::errors::{ProxyError, Refusal};
use crate::session::SessionState;

/// Refusal of a version that is present but unreadable (not ASCII, bad escapes) or
/// given more than once with different readings.
pub use crate::errors::msg::VERSION_AMBIGUOUS;

fn ambiguous() -> ProxyError {
    ProxyError::from(Refusal::VersionAmbiguous)
}

/// The version a request asked for and the one whose lists apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedVersion {
    /// As requested (or the default when none was): what AccessRightsCheck compares
    /// with the session's `versions`, as Tyk does even after a fallback.
    pub requested: String,
    /// The version served: `requested`, or the default one when
    /// `definition.fallback_to_default` replaced an unknown version.
    pub effective: String,
}

/// Tyk's VersionCheck for a versioned Classic API: the requested version (header,
/// query parameter or first path segment after the listen path, else the default)
/// must be one of the API's versions, or, with `fallback_to_default`, the default
/// version stands in for an unknown one. `None` for APIs that are not versioned.
///
/// The version is read as the upstream will read it: a header must be present once
/// and readable; a query parameter is decoded as Go's `URL.Query().Get` does (first
/// value), and refused (400) when another reading of the same query (`;` as a
/// separator, lenient escapes, a later duplicate) would give another version.
/// `upstream_path` is the canonical path ([`crate::path`]).
pub fn requested_version(
    spec: &ApiSpec,
    parts: &Parts,
    upstream_path: &str,
) -> Result<Option<RequestedVersion>, ProxyError> {
    let v = &spec.versioning;
    if v.not_versioned {
        return Ok(None);
    }
    let from_request = match v.location.as_str() {
        "header" => header_version(&parts.headers, &v.key)?,
        "url-param" => query_version(parts.uri.query().unwrap_or(""), &v.key)?,
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
        None => return Err(ProxyError::from(Refusal::VersionNotFound)),
    };
    if v.versions.contains(&version) {
        return Ok(Some(RequestedVersion {
            effective: version.clone(),
            requested: version,
        }));
    }
    if v.fallback_to_default && v.versions.contains(&v.default_version) {
        return Ok(Some(RequestedVersion {
            requested: version,
            effective: v.default_version.clone(),
        }));
    }
    Err(ProxyError::from(Refusal::VersionUnknown))
}

/// The rest of Tyk's `RequestValid` once the version is known: expiry (the API's
/// `expiration`, then the version's `expires`), then the version's endpoint lists.
/// `path` is the decoded canonical path, listen path included (Tyk's `r.URL.Path`);
/// the lists are also tried against it with the listen path stripped, as Tyk does.
///
/// certgate enforces `expiration` on versioned APIs too (Tyk checks it only when the
/// API is not versioned): an expiry the operator set is never silently skipped.
pub fn endpoint_status(
    spec: &ApiSpec,
    version: Option<&RequestedVersion>,
    method: &http::Method,
    path: &str,
    now: i64,
    matching: PathMatching,
) -> Result<EndpointStatus, ProxyError> {
    let v = &spec.versioning;
    if v.expiration.is_some_and(|at| now >= at) {
        return Err(ProxyError::from(Refusal::ApiExpired));
    }
    let rules = match version {
        Some(rv) => {
            let rules = v.rules_of(&rv.effective);
            if rules.and_then(|r| r.expires).is_some_and(|at| now >= at) {
                return Err(ProxyError::from(Refusal::VersionExpired));
            }
            rules
        }
        None => v.unversioned_rules(),
    };
    let Some(rules) = rules.filter(|r| !r.rules.is_empty()) else {
        return Ok(EndpointStatus::Ok);
    };
    let clean = strip_listen_path(&spec.listen_path, path);
    match rules.evaluate(method.as_str(), &clean, path, matching) {
        EndpointStatus::Forbidden => Err(ProxyError::from(Refusal::EndpointForbidden)),
        status => Ok(status),
    }
}

/// Tyk's `StripListenPath`: the listen path removed as a prefix, then a leading `/`
/// ensured.
fn strip_listen_path<'a>(listen_path: &str, path: &'a str) -> Cow<'a, str> {
    let rest = path.strip_prefix(listen_path).unwrap_or(path);
    if rest.starts_with('/') {
        Cow::Borrowed(rest)
    } else {
        Cow::Owned(format!("/{rest}"))
    }
}

/// The version header: absent, or present exactly once with a visible-ASCII value.
fn header_version(headers: &http::HeaderMap, key: &str) -> Result<Option<String>, ProxyError> {
    let mut values = headers.get_all(key).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ambiguous());
    }
    first
        .to_str()
        .map(|s| Some(s.to_owned()))
        .map_err(|_| ambiguous())
}

/// The version query parameter: Go's `r.URL.Query().Get(key)` (pairs split on `&`, a
/// pair with `;` or a bad escape dropped, `+` is a space, first value), provided
/// every lenient reading of the query (`&` and `;` separators, bad escapes kept as
/// sent) finds only that same value.
fn query_version(query: &str, key: &str) -> Result<Option<String>, ProxyError> {
    let key = key.as_bytes();
    let mut go: Option<Cow<'_, [u8]>> = None;
    for pair in query.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(val)) = (unescape(k, true), unescape(val, true)) else {
            continue;
        };
        if *k == *key {
            go = Some(val);
            break;
        }
    }
    for pair in query.split(['&', ';']) {
        let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
        if unescape(k, false).is_some_and(|k| *k == *key) {
            let lenient = unescape(val, false);
            if go.as_deref() != lenient.as_deref() {
                return Err(ambiguous());
            }
        }
    }
    match go {
        None => Ok(None),
        Some(v) => String::from_utf8(v.into_owned())
            .map(Some)
            .map_err(|_| ambiguous()),
    }
}

/// Query unescaping (`+` is a space). `strict`: `None` on a bad escape, as Go does;
/// otherwise a bad escape is kept as sent.
fn unescape(s: &str, strict: bool) -> Option<Cow<'_, [u8]>> {
    let b = s.as_bytes();
    if !b.iter().any(|&c| c == b'%' || c == b'+') {
        return Some(Cow::Borrowed(b));
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = b.get(i + 1).and_then(|&c| (c as char).to_digit(16));
                let l = b.get(i + 2).and_then(|&c| (c as char).to_digit(16));
                match (h, l) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ if strict => return None,
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(Cow::Owned(out))
}

/// AccessRightsCheck and GranularAccess. `path` is the canonical request path
/// ([`crate::path`]), listen path included, as Tyk matches `r.URL.Path`.
///
/// With `enable_path_prefix_matching` (Tyk 5's GranularAccess), each pattern is
/// prepared as Tyk's `PreparePathRegexp` (`{id}`, `/*`, `^` and `$` per the flags) and
/// matched against the path with the listen path stripped and the full path; otherwise
/// the pattern is searched in the full path (`$` appended with suffix matching alone).
pub fn check(
    spec: &ApiSpec,
    s: &SessionState,
    version: Option<&str>,
    method: &http::Method,
    path: &str,
    matching: PathMatching,
) -> Result<(), ProxyError> {
    // Empty access rights: every API (Tyk).
    if s.access_rights.is_empty() {
        return Ok(());
    }
    let Some(ar) = s.access_rights.get(&spec.api_id) else {
        return Err(ProxyError::from(Refusal::Disallowed));
    };
    if let Some(v) = version {
        if !ar.versions.iter().any(|x| x == v) {
            return Err(ProxyError::from(Refusal::Disallowed));
        }
    }
    if ar.allowed_urls.is_empty() {
        return Ok(());
    }
    let clean = matching
        .prefix
        .then(|| strip_listen_path(&spec.listen_path, path));
    // Methods compare exactly, as Tyk's `method == r.Method`: `get` is not `GET`.
    let allowed = ar.allowed_urls.iter().any(|u| {
        if !u.methods.iter().any(|m| m == method.as_str()) {
            return false;
        }
        match &clean {
            Some(clean) => {
                let pattern = anchored(&prepare_pattern(&u.url, false), false, matching);
                [clean.as_ref(), path].iter().any(|p| {
                    *p == pattern
                        || pattern.strip_prefix('^').and_then(|x| x.strip_suffix('$')) == Some(*p)
                        || cached_regex(&pattern).is_some_and(|re| re.is_match(p))
                })
            }
            None if matching.suffix && !u.url.ends_with('$') => {
                cached_regex(&format!("{}$", u.url)).is_some_and(|re| re.is_match(path))
            }
            None => cached_regex(&u.url).is_some_and(|re| re.is_match(path)),
        }
    });
    if allowed {
        Ok(())
    } else {
        Err(ProxyError::from(Refusal::ResourceDisallowed))
    }
}

/// AccessRightsCheck (§1.9): empty access rights grant every API (Tyk's master key) only
/// when the gateway allows master keys, otherwise such a session (written by hand, or
/// left empty by its policies) reaches nothing; then [`check`].
pub(super) fn rights(
    cfg: &crate::config::Config,
    spec: &ApiSpec,
    s: &SessionState,
    version: Option<&RequestedVersion>,
    parts: &Parts,
    path: &str,
    matching: PathMatching,
) -> Result<(), ProxyError> {
    if s.access_rights.is_empty() && !cfg.allow_master_keys {
        return Err(ProxyError::from(Refusal::Disallowed));
    }
    let requested = version.map(|v| v.requested.as_str());
    check(spec, s, requested, &parts.method, path, matching)
}

/// KeyExpired (§1.9).
pub fn post_auth_checks(_spec: &ApiSpec, s: &SessionState, now: i64) -> Result<(), ProxyError> {
    if s.is_inactive {
        return Err(ProxyError::from(Refusal::KeyInactive));
    }
    if s.is_expired(now) {
        return Err(ProxyError::from(Refusal::KeyExpired));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;
    use crate::errors::msg;
    use crate::session::{AccessDefinition, AccessSpec};

    const D: PathMatching = PathMatching {
        prefix: false,
        suffix: false,
    };

    #[test]
    fn allowed_urls_follow_prefix_and_suffix_matching() {
        let s = session(vec![url("/users/{id}", &["GET"])], vec![]);
        let mut api = spec();
        api.listen_path = "/api/".into();
        let get = http::Method::GET;
        let both = PathMatching {
            prefix: true,
            suffix: true,
        };
        // Tyk's default: the raw pattern searched in the full path (no `{id}` rewrite).
        assert!(check(&api, &s, None, &get, "/api/users/7", D).is_err());
        assert!(check(&api, &s, None, &get, "/api/users/7", both).is_ok());
        assert!(check(&api, &s, None, &get, "/api/users/7/x", both).is_err());
        assert!(check(&api, &s, None, &get, "/api/x/users/7", both).is_err());
        let s = session(vec![url("/users", &["GET"])], vec![]);
        let suffix = PathMatching {
            prefix: false,
            suffix: true,
        };
        assert!(check(&api, &s, None, &get, "/api/users/7", D).is_ok());
        assert!(check(&api, &s, None, &get, "/api/users/7", suffix).is_err());
        assert!(check(&api, &s, None, &get, "/api/x/users", suffix).is_ok());
    }

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
        assert!(check(&spec(), &s, None, &get, "/api/users/12", D).is_ok());
        let e = check(&spec(), &s, None, &http::Method::POST, "/api/users/12", D).unwrap_err();
        assert_eq!(e.message, msg::RESOURCE_DISALLOWED);
        assert!(check(&spec(), &s, None, &get, "/api/orders", D).is_err());
        // An invalid pattern allows nothing.
        let s = session(vec![url("(", &["GET"])], vec![]);
        assert!(check(&spec(), &s, None, &get, "/(", D).is_err());
    }

    #[test]
    fn methods_compare_exactly() {
        let s = session(vec![url("/users", &["GET"])], vec![]);
        let lower = http::Method::from_bytes(b"get").unwrap();
        let e = check(&spec(), &s, None, &lower, "/users", D).unwrap_err();
        assert_eq!(e.message, msg::RESOURCE_DISALLOWED);
        assert!(check(&spec(), &s, None, &http::Method::GET, "/users", D).is_ok());
        // A rule listing a lower-case method allows exactly that method.
        let s = session(vec![url("/users", &["get"])], vec![]);
        assert!(check(&spec(), &s, None, &lower, "/users", D).is_ok());
        assert!(check(&spec(), &s, None, &http::Method::GET, "/users", D).is_err());
    }

    fn versioned(location: &str) -> ApiSpec {
        let mut s = spec();
        s.versioning = crate::apidef::Versioning {
            not_versioned: false,
            default_version: "v1".into(),
            location: location.into(),
            key: "version".into(),
            versions: vec!["v1".into(), "v2".into()],
            ..Default::default()
        };
        s
    }

    fn parts(uri: &str, headers: &[(&str, &[u8])]) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, http::HeaderValue::from_bytes(v).unwrap());
        }
        b.body(()).unwrap().into_parts().0
    }

    fn version_of(location: &str, uri: &str, headers: &[(&str, &[u8])]) -> Result<String, String> {
        requested_version(&versioned(location), &parts(uri, headers), "/")
            .map(|v| v.map(|v| v.requested).unwrap_or_default())
            .map_err(|e| format!("{} {}", e.status.as_u16(), e.message))
    }

    #[test]
    fn url_param_version_is_read_as_go_reads_it() {
        let q = |query: &str| version_of("url-param", &format!("/x?{query}"), &[]);
        assert_eq!(q("version=v2"), Ok("v2".into()));
        assert_eq!(q("a=1&version=v2&b"), Ok("v2".into()));
        // Escaped key or value: decoded before the check.
        assert_eq!(q("versio%6E=v2"), Ok("v2".into()));
        assert_eq!(q("version=%76%32"), Ok("v2".into()));
        assert_eq!(q("other=1"), Ok("v1".into()));
        assert_eq!(q("version="), Ok("v1".into()));
        assert_eq!(q("version=v1&version=v1"), Ok("v1".into()));
        // `+` is a space, as in Go: not a known version.
        assert_eq!(
            q("version=v2+"),
            Err(format!("403 {}", msg::VERSION_UNKNOWN))
        );
        // Two readings of the query disagree: refused.
        let refused = Err(format!("400 {VERSION_AMBIGUOUS}"));
        for query in [
            "versio%6E=v2&version=v1",
            "version=v1&versio%6E=v2",
            "version=v1&version=v2",
            "version=&version=v2",
            "version=v2;",
            "a=1;version=v2&version=v1",
            "version=v2%zz",
            "version=v1&version=v1%",
            "version=%ff",
        ] {
            assert_eq!(q(query), refused, "{query}");
        }
    }

    #[test]
    fn unknown_versions_fall_back_only_when_asked() {
        let mut spec = versioned("header");
        let p = parts("/x", &[("version", b"v9")]);
        let e = requested_version(&spec, &p, "/").unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (StatusCode::FORBIDDEN, msg::VERSION_UNKNOWN)
        );
        spec.versioning.fallback_to_default = true;
        let v = requested_version(&spec, &p, "/").unwrap().unwrap();
        assert_eq!((v.requested.as_str(), v.effective.as_str()), ("v9", "v1"));
        // A default that is not one of the versions cannot be fallen back to.
        spec.versioning.default_version = "v7".into();
        assert!(requested_version(&spec, &p, "/").is_err());
    }

    #[test]
    fn version_header_must_be_single_and_readable() {
        let h = |values: &[&[u8]]| {
            let hs: Vec<(&str, &[u8])> = values.iter().map(|v| ("version", *v)).collect();
            version_of("header", "/x", &hs)
        };
        assert_eq!(h(&[b"v2"]), Ok("v2".into()));
        assert_eq!(h(&[]), Ok("v1".into()));
        let refused = Err(format!("400 {VERSION_AMBIGUOUS}"));
        assert_eq!(h(&[b"v2", b"v1"]), refused);
        assert_eq!(h(&[b"v1", b"v1"]), refused);
        assert_eq!(h(&[b"v\xc3\xa92"]), refused);
    }

    #[test]
    fn versions_must_be_granted() {
        let s = session(vec![], vec!["v1"]);
        assert!(check(&spec(), &s, Some("v1"), &http::Method::GET, "/", D).is_ok());
        assert!(check(&spec(), &s, Some("v2"), &http::Method::GET, "/", D).is_err());
        let mut other = spec();
        other.api_id = "b".into();
        assert_eq!(
            check(&other, &s, None, &http::Method::GET, "/", D)
                .unwrap_err()
                .message,
            msg::DISALLOWED
        );
        assert!(check(
            &other,
            &SessionState::default(),
            None,
            &http::Method::GET,
            "/",
            D
        )
        .is_ok());
    }
}
