//! AuthKey with a token (§1.7 step B, §1.8): the token from header, query parameter or
//! cookie, and the session lookup (also used by Certificate Authentication and the
//! Gateway API).

use std::sync::Arc;

use http::request::Parts;

use super::{store_failure, Authenticated, RequestCtx};
use crate::apidef::{ApiSpec, AuthTokenConfig};
use crate::cluster::Caches;
use crate::config::Config;
use crate::errors::{ProxyError, Refusal};
use crate::session::SessionState;
use crate::store::Store;
use crate::tokens::{self, session_store_key};

/// The token phase: a token is required, its session must exist and must not be bound to
/// a certificate (such a session is never a bearer token). The certificate–token binding
/// follows ([`super::certificate::check_binding`]).
pub(crate) async fn authenticate(
    ctx: &RequestCtx<'_>,
    spec: &ApiSpec,
    parts: &Parts,
) -> Result<Authenticated, ProxyError> {
    let token = extract_token(&spec.auth, parts);
    if token.is_empty() {
        return Err(ProxyError::from(Refusal::AuthFieldMissing));
    }
    let Some(found) =
        lookup_session(ctx.cfg, ctx.store, Some(ctx.caches), &spec.org_id, &token).await?
    else {
        return Err(ProxyError::from(Refusal::Disallowed));
    };
    // A certificate-bound session is never a bearer token: its name derives from
    // the (public) certificate. It answers as an unknown key.
    if !found.session.certificate.is_empty() {
        return Err(ProxyError::from(Refusal::Disallowed));
    }
    Ok(found)
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
pub(crate) async fn lookup_prepared(
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
