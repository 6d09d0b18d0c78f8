//! Certificate Authentication (Tyk's AuthKey steps C–E, §1.7): the client certificate
//! alone is the credential.
//!
//! The connection already computed the certificate's SHA-256 and NotAfter; here they
//! become `certHash = <API org> + hex(sha256)`, the session is read under
//! `generateToken(org, certHash)` (then the raw hash, then the fallback hash
//! functions, in one round trip), and the certificate store must still hold
//! `cert-raw-<certHash>` (uncached), so deleting the key or the certificate revokes at
//! once.
//!
//! Deliberate differences from Tyk (docs/compatibility.md): a token alone never
//! authenticates unless `allow_unsafe_dynamic_mtls_token` is on — on plain HTTP too —,
//! legacy mode never rewrites another session's `certificate`, and secure mode never
//! rewrites any: a session found under a certificate's name that names another
//! certificate is refused (changing a key's certificate is the Gateway API's PUT).

use std::sync::Arc;

use super::{lookup_prepared, lookup_session, store_failure, Authenticated, RequestCtx};
use crate::apidef::ApiSpec;
use crate::errors::{ProxyError, Refusal};
use crate::session::SessionState;
use crate::store::Ttl;
use crate::tls::PeerCert;
use crate::tokens;

/// `<API org> + hex(sha256(leaf))` (§2.2).
pub fn cert_hash(org: &str, sha256_hex: &str) -> String {
    let mut h = String::with_capacity(org.len() + sha256_hex.len());
    h.push_str(org);
    h.push_str(sha256_hex);
    h
}

/// The session bound to a certificate: `generateToken(org, certHash)`, the raw hash,
/// then `generateToken` with each fallback hash function.
async fn lookup_by_certificate(
    ctx: &RequestCtx<'_>,
    org: &str,
    hash: &str,
) -> Result<Option<Authenticated>, ProxyError> {
    let keys = match ctx.cert_lookup {
        Some(memo) => memo.get_or_derive(ctx.cfg, org, hash),
        None => Arc::new(CertLookup::derive(ctx.cfg, org, hash)),
    };
    lookup_prepared(
        ctx.store,
        Some(ctx.caches),
        &keys.candidates,
        &keys.store_keys,
    )
    .await
}

/// The session keys a certificate maps to for one organisation: derived once per
/// connection (token generation and hashing are not repeated per request).
#[derive(Debug)]
pub struct CertLookup {
    org: String,
    hash: String,
    candidates: Vec<String>,
    store_keys: Vec<String>,
}

impl CertLookup {
    fn derive(cfg: &crate::config::Config, org: &str, hash: &str) -> Self {
        let mut candidates = Vec::with_capacity(2 + cfg.hash_key_function_fallback.len());
        candidates.push(tokens::generate_token(org, hash, &cfg.hash_key_function));
        candidates.push(hash.to_owned());
        for alg in &cfg.hash_key_function_fallback {
            candidates.push(tokens::generate_token(org, hash, alg));
        }
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|t| seen.insert(t.clone()));
        let store_keys = candidates
            .iter()
            .map(|t| super::session_store_key(cfg, t))
            .collect();
        Self {
            org: org.to_owned(),
            hash: hash.to_owned(),
            candidates,
            store_keys,
        }
    }
}

/// CertificateCheckMW (§1.6): the API's static allow list ([`crate::tls::trust`]), also
/// for keyless APIs.
pub(super) fn allow_list(
    ctx: &RequestCtx<'_>,
    api: &crate::gateway::LoadedApi,
    now: i64,
) -> Result<(), ProxyError> {
    if let Some(list) = &api.allow_list {
        let skew = ctx.cfg.security.client_cert_not_before_skew;
        list.check(ctx.tls, ctx.peer, now, skew)?;
    }
    Ok(())
}

/// A connection's memo of its certificate's [`CertLookup`] (for the last organisation
/// asked; APIs on one connection almost always share it).
#[derive(Debug, Default)]
pub struct CertLookupCache(std::sync::Mutex<Option<Arc<CertLookup>>>);

impl CertLookupCache {
    fn get_or_derive(&self, cfg: &crate::config::Config, org: &str, hash: &str) -> Arc<CertLookup> {
        if let Ok(slot) = self.0.lock() {
            if let Some(l) = slot.as_ref().filter(|l| l.org == org && l.hash == hash) {
                return l.clone();
            }
        }
        let l = Arc::new(CertLookup::derive(cfg, org, hash));
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(l.clone());
        }
        l
    }
}

/// Whether the certificate store holds `id`: a cached "yes" (evicted on every
/// certificate change announced in the cluster), else an uncached read.
async fn in_store(ctx: &RequestCtx<'_>, id: &str) -> Result<bool, ProxyError> {
    if ctx.caches.certs.get(id).is_some() {
        return Ok(true);
    }
    // Taken before the read: a fill that raced with a removal is dropped.
    let ticket = ctx.caches.certs.ticket();
    let present = ctx.certs.exists(id).await.map_err(|e| {
        tracing::error!(error = %e, "certificate store unavailable on the request path");
        ProxyError::from(Refusal::StoreUnavailable)
    })?;
    if present {
        ctx.caches.certs.insert_if(ticket, id, ());
    }
    Ok(present)
}

/// AuthKey for an API with `use_certificate`.
pub(super) async fn authenticate(
    ctx: &RequestCtx<'_>,
    spec: &ApiSpec,
    token: &str,
    now: i64,
) -> Result<Authenticated, ProxyError> {
    let unsafe_mode = ctx.cfg.security.allow_unsafe_dynamic_mtls_token;
    let peer = if ctx.tls { ctx.peer } else { None };
    // Step C1: an expired certificate is refused before anything else, and (certgate)
    // so is one that is not valid yet.
    let hash = match peer {
        Some(p) => {
            validity(ctx, p, now)?;
            Some(cert_hash(&spec.org_id, &p.sha256_hex))
        }
        None => None,
    };

    let (found, by_certificate) = if !unsafe_mode {
        // Secure default: the certificate is the only credential; any token is ignored.
        let Some(hash) = hash.as_deref() else {
            return Err(ProxyError::from(Refusal::CertificateRequired));
        };
        match lookup_by_certificate(ctx, &spec.org_id, hash).await? {
            Some(f) => (f, true),
            None => return Err(ProxyError::from(Refusal::CertificateUnknown)),
        }
    } else {
        // Legacy dynamic mTLS: a certificate, if sent, must have a session; a token,
        // if sent, then decides the session.
        let by_cert = match hash.as_deref() {
            Some(h) => match lookup_by_certificate(ctx, &spec.org_id, h).await? {
                Some(f) => Some(f),
                None => return Err(ProxyError::from(Refusal::CertificateUnknown)),
            },
            None => None,
        };
        if !token.is_empty() {
            match lookup_session(ctx.cfg, ctx.store, Some(ctx.caches), &spec.org_id, token).await? {
                Some(f) => {
                    let same = by_cert.as_ref().is_some_and(|c| c.store_key == f.store_key);
                    (f, same)
                }
                None => return Err(ProxyError::from(Refusal::Disallowed)),
            }
        } else if let Some(c) = by_cert {
            (c, true)
        } else if ctx.tls {
            // Neither certificate nor token over TLS: Tyk's placeholder session is
            // inactive.
            return Err(ProxyError::from(Refusal::KeyInactive));
        } else {
            // Plain HTTP (step D): the empty token is not found.
            return Err(ProxyError::from(Refusal::Disallowed));
        }
    };

    // Step E: certificate validation.
    let binding = binding_mode(spec, &found.session);
    match hash.as_deref() {
        Some(h) if binding => {
            if !found
                .session
                .mtls_static_certificate_bindings
                .iter()
                .any(|b| b == h)
            {
                return Err(ProxyError::from(Refusal::CertificateUnknown));
            }
            Ok(found)
        }
        Some(h) => {
            let mut found = found;
            if found.session.certificate != h {
                if !by_certificate {
                    // Another session's binding is never rewritten (legacy mode): a
                    // token bound to a different certificate is refused.
                    if !found.session.certificate.is_empty() {
                        return Err(ProxyError::from(Refusal::CertificateUnknown));
                    }
                } else if !unsafe_mode {
                    // Secure mode: the session stored under this certificate's name
                    // names another certificate (or none). The binding is the Gateway
                    // API's to change (a PUT moves it); the request path never rewrites
                    // it, so the session is not this certificate's.
                    return Err(ProxyError::from(Refusal::CertificateUnknown));
                } else {
                    found = rebind(ctx, found, h).await?;
                }
            }
            if !in_store(ctx, h).await? {
                return Err(ProxyError::from(Refusal::Disallowed));
            }
            Ok(found)
        }
        None => {
            let bound = &found.session.certificate;
            if !bound.is_empty() && !in_store(ctx, bound).await? {
                return Err(ProxyError::from(Refusal::Disallowed));
            }
            Ok(found)
        }
    }
}

/// The client certificate's validity period at `now`: expired (Tyk's check) or not
/// valid yet beyond `security.certgate_client_cert_not_before_skew` (certgate's) ⇒ 403.
fn validity(ctx: &RequestCtx<'_>, p: &PeerCert, now: i64) -> Result<(), ProxyError> {
    if now > p.not_after {
        return Err(ProxyError::from(Refusal::CertificateExpired));
    }
    if p.not_yet_valid(now, ctx.cfg.security.client_cert_not_before_skew) {
        return Err(ProxyError::from(Refusal::CertificateNotYetValid));
    }
    Ok(())
}

fn binding_mode(spec: &ApiSpec, s: &SessionState) -> bool {
    spec.use_mutual_tls_auth && !s.mtls_static_certificate_bindings.is_empty()
}

/// The session found under this certificate's own token names another certificate
/// (e.g. edited by hand): point it back at the certificate it is stored under, only
/// if it still exists (Tyk's `SET … XX`), keeping its TTL.
async fn rebind(
    ctx: &RequestCtx<'_>,
    found: Authenticated,
    hash: &str,
) -> Result<Authenticated, ProxyError> {
    let mut s = (*found.session).clone();
    s.certificate = hash.to_owned();
    let json = String::from_utf8(s.to_json()).unwrap_or_default();
    let ttl = match ctx
        .store
        .ttl(&found.store_key)
        .await
        .map_err(store_failure)?
    {
        Ttl::Expires(d) => Some(d),
        Ttl::Persistent | Ttl::Missing => None,
    };
    ctx.store
        .set_xx(&found.store_key, &json, ttl)
        .await
        .map_err(store_failure)?;
    ctx.caches.sessions.remove(&found.store_key);
    let suffix = &found.store_key[super::SESSION_PREFIX.len()..];
    crate::gateway::publish_key_space_update(ctx.cfg, ctx.store, suffix).await;
    Ok(Authenticated {
        session: Arc::new(s),
        ..found
    })
}

/// Certificate–token binding for token APIs (§1.11): a session with
/// `mtls_static_certificate_bindings` only works together with one of its bound
/// certificates. On an API with a static allow list the answers are Tyk's; elsewhere
/// (where Tyk would accept the token alone) the binding is enforced too and a token
/// without a bound certificate gets the answer an unknown key gets.
pub(super) fn check_binding(
    ctx: &RequestCtx<'_>,
    spec: &ApiSpec,
    s: &SessionState,
    now: i64,
) -> Result<(), ProxyError> {
    if s.mtls_static_certificate_bindings.is_empty() {
        return Ok(());
    }
    let peer = ctx.peer.filter(|_| ctx.tls);
    if !binding_mode(spec, s) {
        let bound = peer.filter(|p| {
            let h = cert_hash(&spec.org_id, &p.sha256_hex);
            s.mtls_static_certificate_bindings.contains(&h)
        });
        return match bound {
            None => Err(ProxyError::from(Refusal::Disallowed)),
            Some(p) => validity(ctx, p, now),
        };
    }
    let Some(p) = peer else {
        return Err(ProxyError::from(Refusal::ClientTlsRequired));
    };
    validity(ctx, p, now)?;
    let h = cert_hash(&spec.org_id, &p.sha256_hex);
    if s.mtls_static_certificate_bindings.contains(&h) {
        Ok(())
    } else {
        Err(ProxyError::from(Refusal::CertificateUnknown))
    }
}
