//! Authentication and the post-auth checks of the request pipeline.
//!
//! Phases, in Tyk's order (§1.5): CertificateCheckMW (static allow list, [`crate::tls::trust`])
//! → AuthKey (token, §1.7 step B, or certificate, steps C–E) → KeyExpired (§1.9) →
//! AccessRightsCheck (§1.9). Keyless APIs skip all but the first. Every refusal is a
//! [`ProxyError`] carrying Tyk's status and message.

use std::sync::Arc;

use http::request::Parts;
use http::StatusCode;

pub mod access;
pub mod certificate;
pub mod strip;

use crate::apidef::{ApiSpec, AuthTokenConfig, EndpointStatus};
use crate::certs::CertManager;
use crate::cluster::Caches;
use crate::config::Config;
use crate::errors::{msg, ProxyError};
use crate::gateway::LoadedApi;
use crate::limits::{self, RateHeaders};
use crate::policy::PolicySet;
use crate::session::SessionState;
use crate::store::Store;
use crate::tls::PeerCert;
use crate::tokens;
pub use crate::tokens::{session_store_key, SESSION_PREFIX};

/// An authenticated session and the key name it was found under.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The key name (token) the session was found under.
    pub key: String,
    /// The store key of the session (`apikey-…`).
    pub store_key: String,
    /// The session.
    pub session: Arc<SessionState>,
}

/// Extracts the token as Tyk's AuthKey does: header (unless disabled), then a
/// non-empty query parameter, then a non-empty cookie; a leading `Bearer ` is
/// removed.
pub fn extract_token(auth: &AuthTokenConfig, parts: &Parts) -> String {
    let header_name = if auth.auth_header_name.is_empty() {
        "Authorization"
    } else {
        auth.auth_header_name.as_str()
    };
    let mut token = String::new();
    if !auth.disable_header {
        if let Some(v) = parts.headers.get(header_name) {
            token = String::from_utf8_lossy(v.as_bytes()).into_owned();
        }
    }
    if auth.use_param {
        let name = if auth.param_name.is_empty() {
            header_name
        } else {
            auth.param_name.as_str()
        };
        if let Some(v) = query_param(parts.uri.query().unwrap_or(""), name) {
            if !v.is_empty() {
                token = v;
            }
        }
    }
    if auth.use_cookie {
        let name = if auth.cookie_name.is_empty() {
            header_name
        } else {
            auth.cookie_name.as_str()
        };
        if let Some(v) = cookie(parts, name) {
            if !v.is_empty() {
                token = v;
            }
        }
    }
    strip_bearer(token)
}

fn strip_bearer(token: String) -> String {
    if token.len() > 6 && token.as_bytes()[..7].eq_ignore_ascii_case(b"bearer ") {
        token[7..].to_owned()
    } else {
        token
    }
}

/// A query component decoded as the token lookup reads it: `+` is a space, then
/// percent-decoding (lenient: an invalid escape stays as written).
pub(crate) fn decode_query_component(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['+', '%']) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned(),
    )
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_query_component(k) == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then(|| v.trim_matches('"').to_owned())
        })
}

/// Looks a key up as Tyk's session lookup does (§1.8): too-short keys are not found;
/// a key whose embedded org is the API's org is read directly; otherwise the
/// candidates `generateToken(org, key)`, the key itself and one per fallback hash
/// function are read in one round trip, first hit wins.
///
/// A store failure is an error (the caller refuses the request: fail closed).
pub async fn lookup_session(
    cfg: &Config,
    store: &Store,
    caches: Option<&Caches>,
    org: &str,
    key: &str,
) -> Result<Option<Authenticated>, ProxyError> {
    if key.len() < cfg.min_token_length {
        return Ok(None);
    }
    let candidates: Vec<String> = if tokens::token_org(key) == org {
        vec![key.to_owned()]
    } else {
        derived_candidates(cfg, org, key)
    };
    lookup_candidates(cfg, store, caches, candidates).await
}

/// `generateToken(org, key)`, the key itself, then `generateToken` with each fallback
/// hash function, without duplicates.
pub(crate) fn derived_candidates(cfg: &Config, org: &str, key: &str) -> Vec<String> {
    let mut c = Vec::with_capacity(2 + cfg.hash_key_function_fallback.len());
    c.push(tokens::generate_token(org, key, &cfg.hash_key_function));
    c.push(key.to_owned());
    for alg in &cfg.hash_key_function_fallback {
        c.push(tokens::generate_token(org, key, alg));
    }
    let mut seen = std::collections::HashSet::new();
    c.retain(|t| seen.insert(t.clone()));
    c
}

/// Reads the sessions stored under `candidates`: from the node-local cache when one
/// is cached (no store round trip), else in one round trip; the first one present and
/// valid wins and is cached.
async fn lookup_candidates(
    cfg: &Config,
    store: &Store,
    caches: Option<&Caches>,
    candidates: Vec<String>,
) -> Result<Option<Authenticated>, ProxyError> {
    let store_keys: Vec<String> = candidates
        .iter()
        .map(|t| session_store_key(cfg, t))
        .collect();
    lookup_prepared(store, caches, &candidates, &store_keys).await
}

/// [`lookup_candidates`] with the store keys already derived (the certificate path
/// derives them once per connection).
async fn lookup_prepared(
    store: &Store,
    caches: Option<&Caches>,
    candidates: &[String],
    store_keys: &[String],
) -> Result<Option<Authenticated>, ProxyError> {
    if let Some(c) = caches {
        for (token, store_key) in candidates.iter().zip(store_keys) {
            if let Some(session) = c.sessions.get(store_key) {
                return Ok(Some(Authenticated {
                    key: token.clone(),
                    store_key: store_key.clone(),
                    session,
                }));
            }
        }
    }
    // Taken before the read: a fill that raced with an invalidation is dropped.
    let ticket = caches.map(|c| c.sessions.ticket());
    let found = store.get_many(store_keys).await.map_err(store_failure)?;
    for ((token, store_key), value) in candidates
        .iter()
        .cloned()
        .zip(store_keys.iter().cloned())
        .zip(found)
    {
        let Some(json) = value else { continue };
        match SessionState::from_json(json.as_bytes()) {
            Ok(s) => {
                let session = Arc::new(s);
                if let (Some(c), Some(ticket)) = (caches, ticket) {
                    // A session with a lifetime must not outlive its record in the
                    // cache: one TTL read per cache fill.
                    match store.ttl(&store_key).await.map_err(store_failure)? {
                        crate::store::Ttl::Expires(d) => {
                            c.sessions
                                .insert_for_if(ticket, &store_key, session.clone(), d);
                        }
                        crate::store::Ttl::Persistent => {
                            c.sessions.insert_if(ticket, &store_key, session.clone());
                        }
                        crate::store::Ttl::Missing => {}
                    }
                }
                return Ok(Some(Authenticated {
                    key: token,
                    store_key,
                    session,
                }));
            }
            Err(e) => {
                // A corrupt session authenticates nobody.
                tracing::error!(error = %e, "stored session is not valid JSON; treated as absent");
            }
        }
    }
    Ok(None)
}

pub(crate) fn store_failure(e: crate::store::StoreError) -> ProxyError {
    tracing::error!(error = %e, "store unavailable on the request path");
    ProxyError::new(StatusCode::SERVICE_UNAVAILABLE, msg::STORE_UNAVAILABLE)
}

/// What the request path knows about the connection and the gateway.
#[derive(Debug, Clone, Copy)]
pub struct RequestCtx<'a> {
    /// Configuration.
    pub cfg: &'a Config,
    /// Storage.
    pub store: &'a Store,
    /// Certificate store.
    pub certs: &'a CertManager,
    /// Node-local caches.
    pub caches: &'a Caches,
    /// The snapshot's policies.
    pub policies: &'a PolicySet,
    /// Per-connection memo of the certificate's session keys.
    pub cert_lookup: Option<&'a certificate::CertLookupCache>,
    /// True on a TLS connection.
    pub tls: bool,
    /// The client certificate of the connection.
    pub peer: Option<&'a PeerCert>,
}

/// The request phases before forwarding (§1.5): CertificateCheckMW (static allow
/// list, also for keyless APIs) → AuthKey (token or certificate) → KeyExpired →
/// AccessRightsCheck. Keyless APIs return `Ok(None)`.
pub async fn authenticate(
    ctx: &RequestCtx<'_>,
    api: &LoadedApi,
    parts: &Parts,
    upstream_path: &str,
) -> Result<Authorized, ProxyError> {
    let spec = api.spec();
    let now = now_unix();
    let version = access::requested_version(spec, parts, upstream_path)?;
    // Tyk matches endpoint lists and `allowed_urls` against Go's `r.URL.Path`, the
    // decoded path. The path is canonical (`crate::path`): no escaped `/`, `\` or NUL,
    // escapes are UTF-8, so decoding cannot move a segment boundary. Borrowed when
    // nothing is escaped.
    let path = percent_encoding::percent_decode_str(parts.uri.path()).decode_utf8_lossy();
    // VersionCheck: expiry and the version's ignored / black / white lists.
    let matching = ctx.cfg.http_server_options.path_matching;
    let endpoint =
        access::endpoint_status(spec, version.as_ref(), &parts.method, &path, now, matching)?;
    // API-global rate limit (Tyk's RateCheckMW, before authentication).
    let g = &spec.global_rate_limit;
    if !g.disabled && g.rate > 0.0 && g.per > 0.0 {
        let refused = limits::check_global(
            ctx.store,
            &spec.api_id,
            g.rate,
            g.per,
            std::time::SystemTime::now(),
        )
        .await
        .map_err(store_failure)?;
        if let Some((code, message)) = refused {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
            return Err(ProxyError::new(status, message));
        }
    }
    if endpoint == EndpointStatus::Ignored {
        // An `ignored` endpoint skips every authentication phase, as in Tyk
        // (CertificateCheckMW, AuthKey, KeyExpired, AccessRights, quotas).
        return Ok(Authorized::default());
    }
    if let Some(list) = &api.allow_list {
        let skew = ctx.cfg.security.client_cert_not_before_skew;
        list.check(ctx.tls, ctx.peer, now, skew)?;
    }
    if spec.use_keyless {
        return Ok(Authorized::default());
    }
    if !spec.runs_auth_key() || !spec.other_auth_methods.is_empty() {
        // An authentication method certgate does not implement (alone or chained with
        // tokens): refuse rather than check only part of it (fail closed).
        return Err(ProxyError::new(StatusCode::FORBIDDEN, msg::DISALLOWED));
    }
    let token = extract_token(&spec.auth, parts);
    let found = if spec.auth.use_certificate {
        certificate::authenticate(ctx, spec, &token, now).await?
    } else {
        if token.is_empty() {
            return Err(ProxyError::new(
                StatusCode::UNAUTHORIZED,
                msg::AUTH_FIELD_MISSING,
            ));
        }
        let Some(found) =
            lookup_session(ctx.cfg, ctx.store, Some(ctx.caches), &spec.org_id, &token).await?
        else {
            return Err(ProxyError::new(StatusCode::FORBIDDEN, msg::DISALLOWED));
        };
        // A certificate-bound session is never a bearer token: its name derives from
        // the (public) certificate. It answers as an unknown key.
        if !found.session.certificate.is_empty() {
            return Err(ProxyError::new(StatusCode::FORBIDDEN, msg::DISALLOWED));
        }
        certificate::check_binding(ctx, spec, &found.session, now)?;
        found
    };
    // The effective session: the stored one with its policies applied (a policy
    // error makes the key count as not found, as in Tyk).
    let effective = if needs_policy_application(&found.session) {
        match crate::policy::apply_for_api(&found.session, ctx.policies, &spec.org_id) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::warn!(error = %e, "policies could not be applied; key refused");
                return Err(ProxyError::new(StatusCode::FORBIDDEN, msg::DISALLOWED));
            }
        }
    } else {
        // Nothing for Tyk's rules to change: no per-request copy.
        found.session.clone()
    };
    post_auth_checks(spec, &effective, now)?;
    // Empty access rights grant every API (Tyk's master key): only when the gateway
    // allows master keys. Otherwise such a session (written by hand, or left empty by
    // its policies) reaches nothing.
    if effective.access_rights.is_empty() && !ctx.cfg.allow_master_keys {
        return Err(ProxyError::new(StatusCode::FORBIDDEN, msg::DISALLOWED));
    }
    let requested = version.as_ref().map(|v| v.requested.as_str());
    access::check(spec, &effective, requested, &parts.method, &path, matching)?;
    let headers = rate_and_quota(ctx, spec, &found.key, &effective).await?;
    Ok(Authorized {
        session: Some(Authenticated {
            session: effective,
            ..found
        }),
        rate_headers: headers,
    })
}

/// Whether applying policies could change the session: it names policies (also
/// embedded ones in `meta_data.policies`), or has per-API limits whose counter scope
/// the rules set. Otherwise the stored session is already the effective one.
fn needs_policy_application(s: &SessionState) -> bool {
    !s.apply_policies.is_empty()
        || !s.apply_policy_id.is_empty()
        || s.meta_data.contains_key("policies")
        || s.access_rights
            .values()
            .any(|a| !a.limit.is_empty() && a.allowance_scope.is_empty())
        || has_duplicate_tags(s)
}

fn has_duplicate_tags(s: &SessionState) -> bool {
    s.tags.len() > 1 && {
        let mut seen = std::collections::HashSet::new();
        !s.tags.iter().all(|t| seen.insert(t))
    }
}

/// What the request path learned: the effective session (None for keyless APIs) and
/// the `X-RateLimit-*` values to return.
#[derive(Debug, Default)]
pub struct Authorized {
    /// The session with its policies applied.
    pub session: Option<Authenticated>,
    /// Rate-limit headers for the response.
    pub rate_headers: Option<RateHeaders>,
}

/// RateLimitAndQuotaCheck (§5.4): one store round trip for both counters.
async fn rate_and_quota(
    ctx: &RequestCtx<'_>,
    spec: &ApiSpec,
    token: &str,
    s: &SessionState,
) -> Result<Option<RateHeaders>, ProxyError> {
    if spec.disable_rate_limit && spec.disable_quota {
        return Ok(None);
    }
    let limit = s.effective_limit(&spec.api_id);
    let limited = (limit.rate > 0.0 && limit.per > 0.0 && !spec.disable_rate_limit)
        || (limit.quota_max > 0 && !spec.disable_quota);
    if !limited {
        return Ok(None);
    }
    let scope = s
        .access_rights
        .get(&spec.api_id)
        .map_or("", |a| a.allowance_scope.as_str());
    let key = tokens::hash_key(token, ctx.cfg.hash_keys);
    let d = limits::check(
        ctx.store,
        &key,
        &spec.api_id,
        &limit,
        scope,
        spec.disable_rate_limit,
        spec.disable_quota,
        std::time::SystemTime::now(),
    )
    .await
    .map_err(store_failure)?;
    if let Some((code, message)) = d.error {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN);
        let mut e = ProxyError::new(status, message);
        e.rate_headers = Some(if status == StatusCode::TOO_MANY_REQUESTS {
            d.rate_headers.unwrap_or(d.headers)
        } else {
            d.headers
        });
        return Err(e);
    }
    Ok(Some(d.headers))
}

/// KeyExpired (§1.9).
pub fn post_auth_checks(_spec: &ApiSpec, s: &SessionState, now: i64) -> Result<(), ProxyError> {
    if s.is_inactive {
        return Err(ProxyError::new(StatusCode::FORBIDDEN, msg::KEY_INACTIVE));
    }
    if s.is_expired(now) {
        return Err(ProxyError::new(StatusCode::UNAUTHORIZED, msg::KEY_EXPIRED));
    }
    Ok(())
}

/// Current unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn token_sources_in_tyks_order() {
        let mut a = AuthTokenConfig {
            auth_header_name: "Authorization".into(),
            ..Default::default()
        };
        let p = parts(
            "/x?tok=fromparam",
            &[
                ("authorization", "Bearer abcdef"),
                ("cookie", "c=fromcookie"),
            ],
        );
        assert_eq!(extract_token(&a, &p), "abcdef");
        a.use_param = true;
        a.param_name = "tok".into();
        assert_eq!(extract_token(&a, &p), "fromparam");
        a.use_cookie = true;
        a.cookie_name = "c".into();
        assert_eq!(extract_token(&a, &p), "fromcookie");
        a.disable_header = true;
        a.use_param = false;
        a.use_cookie = false;
        assert_eq!(extract_token(&a, &p), "");
        // "Bearer" alone (6 chars) is not stripped.
        let a = AuthTokenConfig::default();
        assert_eq!(
            extract_token(&a, &parts("/", &[("authorization", "Bearer")])),
            "Bearer"
        );
        assert_eq!(
            extract_token(&a, &parts("/", &[("authorization", "bEaReR k")])),
            "k"
        );
    }
}
