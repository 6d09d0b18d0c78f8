//! The data plane's phases after routing, in Tyk's order (§1.5), listed one line each in
//! [`authenticate`]; each phase lives in its own file:
//!
//! | phase (Tyk) | file |
//! |---|---|
//! | VersionCheck: version, expiry, ignored / black / white lists | [`access`] |
//! | RateCheckMW: the API-global rate limit | `limits.rs` |
//! | CertificateCheckMW: the static allow list ([`crate::tls::trust`]) | [`certificate`] |
//! | AuthKey with a token (§1.7 step B, §1.8) | `token.rs` |
//! | AuthKey with the certificate (Certificate Authentication, steps C–E) | [`certificate`] |
//! | KeyExpired, AccessRightsCheck (§1.9) | [`access`] |
//! | RateLimitAndQuotaCheck (§5.4) | `limits.rs` |
//! | StripAuth (`strip_auth_data`) | [`strip`] |
//!
//! Before them `server::handle` canonicalises the path, lets the control plane answer,
//! checks the Host against the SNI and routes; after them it forwards ([`crate::proxy`]).
//! Every refusal is a [`Refusal`](crate::errors::Refusal): the one place a status and
//! Tyk's message are chosen.

use std::sync::Arc;

use http::request::Parts;

pub mod access;
pub mod certificate;
mod limits;
pub mod strip;
mod token;

pub use access::post_auth_checks;
pub(crate) use token::{decode_query_component, derived_candidates, lookup_prepared};
pub use token::{extract_token, lookup_session};

use crate::apidef::{ApiSpec, EndpointStatus};
use crate::certs::CertManager;
use crate::cluster::Caches;
use crate::config::Config;
use crate::errors::{ProxyError, Refusal};
use crate::gateway::LoadedApi;
use crate::limits::RateHeaders;
use crate::policy::PolicySet;
use crate::session::SessionState;
use crate::store::Store;
use crate::tls::PeerCert;
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

pub(crate) fn store_failure(e: crate::store::StoreError) -> ProxyError {
    tracing::error!(error = %e, "store unavailable on the request path");
    ProxyError::from(Refusal::StoreUnavailable)
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

/// The phase list, in Tyk's order (§1.5): VersionCheck → RateCheckMW → (ignored
/// endpoints stop here) → CertificateCheckMW (also for keyless APIs, which stop here) →
/// AuthKey (token or certificate) → policies applied → KeyExpired → AccessRightsCheck →
/// RateLimitAndQuotaCheck. Keyless APIs return no session.
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
    // RateCheckMW: the API-global rate limit, before authentication.
    limits::global(ctx, spec).await?;
    if endpoint == EndpointStatus::Ignored {
        // An `ignored` endpoint skips every authentication phase, as in Tyk
        // (CertificateCheckMW, AuthKey, KeyExpired, AccessRights, quotas).
        return Ok(Authorized::default());
    }
    // CertificateCheckMW: the static allow list (also for keyless APIs).
    certificate::allow_list(ctx, api, now)?;
    if spec.use_keyless {
        return Ok(Authorized::default());
    }
    if !spec.runs_auth_key() || !spec.other_auth_methods.is_empty() {
        // An authentication method certgate does not implement (alone or chained with
        // tokens): refuse rather than check only part of it (fail closed).
        return Err(ProxyError::from(Refusal::Disallowed));
    }
    // AuthKey: the certificate (Certificate Authentication) or the token.
    let found = if spec.auth.use_certificate {
        let token = extract_token(&spec.auth, parts);
        certificate::authenticate(ctx, spec, &token, now).await?
    } else {
        let found = token::authenticate(ctx, spec, parts).await?;
        certificate::check_binding(ctx, spec, &found.session, now)?;
        found
    };
    // The effective session: the stored one with its policies applied.
    let effective = effective_session(ctx, spec, &found)?;
    // KeyExpired.
    access::post_auth_checks(spec, &effective, now)?;
    // AccessRightsCheck: the API and version granted, allowed_urls.
    access::rights(
        ctx.cfg,
        spec,
        &effective,
        version.as_ref(),
        parts,
        &path,
        matching,
    )?;
    // RateLimitAndQuota.
    let headers = limits::rate_and_quota(ctx, spec, &found.key, &effective).await?;
    Ok(Authorized {
        session: Some(Authenticated {
            session: effective,
            ..found
        }),
        rate_headers: headers,
    })
}

/// The effective session: the stored one with its policies applied (a policy error makes
/// the key count as not found, as in Tyk).
fn effective_session(
    ctx: &RequestCtx<'_>,
    spec: &ApiSpec,
    found: &Authenticated,
) -> Result<Arc<SessionState>, ProxyError> {
    if !needs_policy_application(&found.session) {
        // Nothing for Tyk's rules to change: no per-request copy.
        return Ok(found.session.clone());
    }
    match crate::policy::apply_for_api(&found.session, ctx.policies, &spec.org_id) {
        Ok(s) => Ok(Arc::new(s)),
        Err(e) => {
            tracing::warn!(error = %e, "policies could not be applied; key refused");
            Err(ProxyError::from(Refusal::Disallowed))
        }
    }
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

/// Current unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
