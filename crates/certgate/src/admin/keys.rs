//! `/tyk/keys`: create, read, update, delete and list sessions (§4.2, §4.4).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::json;

use super::{json_response, read_body, ApiError, Gw, Query};
use crate::gateway::Gateway;
use crate::pipeline;
use crate::session::SessionState;
use crate::tokens::{self, session_store_key, SESSION_PREFIX};

pub(super) fn routes() -> Router {
    Router::new()
        .route("/tyk/keys", get(list).post(create_custom_root))
        .route("/tyk/keys/create", post(create))
        .route(
            "/tyk/keys/{key}",
            get(read).post(create_custom).put(update).delete(remove),
        )
}

#[derive(Debug, Default, Deserialize)]
struct KeyQuery {
    api_id: Option<String>,
    org_id: Option<String>,
    hashed: Option<String>,
    filter: Option<String>,
    suppress_reset: Option<String>,
}

impl KeyQuery {
    fn hashed(&self) -> bool {
        self.hashed.as_deref().is_some_and(|h| !h.is_empty())
    }
}

fn parse_session(bytes: &[u8], malformed: &str) -> Result<SessionState, ApiError> {
    SessionState::from_json(bytes).map_err(|e| ApiError::bad_request(format!("{malformed}: {e}")))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The TTL a session is stored with (§2.6): the key's `session_lifetime`, else the
/// largest `session_lifetime` of the APIs it can access; none = persist.
fn lifetime(gw: &Gateway, s: &SessionState) -> Option<Duration> {
    if s.session_lifetime > 0 {
        return Some(Duration::from_secs(s.session_lifetime as u64));
    }
    let snap = gw.snapshot();
    let mut best: i64 = 0;
    for id in s.access_rights.keys() {
        if let Some(api) = snap.api(id) {
            let l = api.spec().session_lifetime;
            if l < 0 {
                return None;
            }
            best = best.max(l);
        }
    }
    (best > 0).then(|| Duration::from_secs(best as u64))
}

/// Checks the session's policies against the loaded ones and returns the effective
/// session (Tyk answers 500 `Failed to create key - <error>`; this is input, so 400).
fn effective(gw: &Gateway, s: &SessionState) -> Result<SessionState, ApiError> {
    crate::policy::apply(s, &gw.snapshot().policy_set)
        .map_err(|e| ApiError::bad_request(format!("Failed to create key - {e}")))
}

/// Applies the policies' `key_expires_in` to a new key without its own expiry.
fn policy_expiry(gw: &Gateway, s: &mut SessionState) {
    if s.expires <= 0 {
        if let Some(secs) = crate::policy::key_expires_in(s, &gw.snapshot().policy_set) {
            if secs > 0 {
                s.expires = pipeline::now_unix().saturating_add(secs);
            }
        }
    }
}

/// Tyk resets a key's quota and rate counters when it is created or deleted.
async fn reset_counters(gw: &Gateway, key: &str, s: &SessionState) -> Result<(), ApiError> {
    let name = tokens::hash_key(key, gw.config.hash_keys);
    crate::limits::reset_counters(&gw.store, &name, s).await?;
    Ok(())
}

/// Prepares a new session the way Tyk's create paths do.
fn prepare_new(s: &mut SessionState) {
    let now = pipeline::now_unix();
    s.last_updated = now.to_string();
    s.date_created = now_rfc3339();
    if s.quota_renewal_rate > 0 {
        s.quota_renews = now.saturating_add(s.quota_renewal_rate);
    }
    for ar in s.access_rights.values_mut() {
        if ar.limit.quota_renewal_rate > 0 {
            ar.limit.quota_renews = now.saturating_add(ar.limit.quota_renewal_rate);
        }
    }
}

fn added(gw: &Gateway, key: &str) -> Response {
    let mut body = json!({"key": key, "status": "ok", "action": "added"});
    if gw.config.hash_keys {
        body["key_hash"] = json!(tokens::hash_str(key, None));
    }
    json_response(StatusCode::OK, &body)
}

/// Tells every node (this one first) that the session under `store_key` changed.
async fn announce(gw: &Arc<Gateway>, store_key: &str) {
    gw.announce(crate::cluster::KEY_SPACE_UPDATE, suffix(store_key))
        .await;
}

/// A store key without `apikey-` (what notifications carry).
fn suffix(store_key: &str) -> &str {
    store_key.strip_prefix(SESSION_PREFIX).unwrap_or(store_key)
}

/// Stores a new session only if no session exists under `key` (atomic). False if
/// one does.
async fn save_new(gw: &Gateway, key: &str, s: &SessionState) -> Result<bool, ApiError> {
    let store_key = session_store_key(&gw.config, key);
    let json = String::from_utf8(s.to_json())
        .map_err(|_| ApiError::internal("session could not be encoded"))?;
    Ok(gw.store.set_nx(&store_key, &json, lifetime(gw, s)).await?)
}

async fn cert_exists(gw: &Gateway, id: &str) -> Result<bool, ApiError> {
    gw.certs.exists(id).await.map_err(|e| {
        tracing::error!(error = %e, "certificate store unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("storage unavailable: {e}"),
        )
    })
}

/// `mtls_static_certificate_bindings` (§4.2 step 3): every entry starts with the
/// session's org (when set) and exists in the certificate store. Entries already in
/// `previous` are not checked again (PUT validates only new ones, as Tyk).
async fn validate_bindings(
    gw: &Gateway,
    s: &SessionState,
    previous: &[String],
) -> Result<(), ApiError> {
    for id in &s.mtls_static_certificate_bindings {
        if previous.contains(id) {
            continue;
        }
        if !s.org_id.is_empty() && !id.starts_with(&s.org_id) {
            return Err(ApiError::bad_request(format!(
                "invalid certificate ID: {id}"
            )));
        }
        if !cert_exists(gw, id).await? {
            return Err(ApiError::bad_request(format!(
                "certificate not found: {id}"
            )));
        }
    }
    Ok(())
}

const NO_CERTIFICATE: &str = "Key must be used with an existent certificate";
const NO_ACCESS_RIGHTS: &str = "Failed to create key, ensure security settings are correct.";
const CERTIFICATE_NAME: &str = "custom key ID must not be a certificate ID or fingerprint; create a certificate's key with POST /tyk/keys/create and its \"certificate\" field";

/// Whether `name` ends with 64 hex digits: a certificate fingerprint, or a certificate
/// ID (`org + sha256`).
fn names_a_certificate(name: &str) -> bool {
    name.len() >= 64
        && name.as_bytes()[name.len() - 64..]
            .iter()
            .all(u8::is_ascii_hexdigit)
}

/// A key stored under its certificate's name (`POST /tyk/keys/create`) follows its
/// certificate: when `new` names another certificate, the key's new name (and store
/// key). `None` when the certificate is unchanged or the key is not named after it.
fn follows_certificate(
    gw: &Gateway,
    store_key: &str,
    old: &SessionState,
    new: &SessionState,
) -> Option<(String, String)> {
    let cfg = &gw.config;
    if new.certificate == old.certificate || old.certificate.is_empty() {
        return None;
    }
    let named_after = pipeline::derived_candidates(cfg, &old.org_id, &old.certificate)
        .iter()
        .any(|t| session_store_key(cfg, t) == store_key);
    if !named_after {
        return None;
    }
    let key = tokens::generate_token(&new.org_id, &new.certificate, &cfg.hash_key_function);
    let new_store_key = session_store_key(cfg, &key);
    (new_store_key != store_key).then_some((key, new_store_key))
}

/// `POST /tyk/keys/create`.
async fn create(Extension(gw): Gw, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(body).await?;
    let mut s = parse_session(&bytes, "Unmarshalling failed")?;
    let cfg = &gw.config;
    let key = if s.certificate.is_empty() {
        tokens::generate_token(&s.org_id, "", &cfg.hash_key_function)
    } else {
        let key = tokens::generate_token(&s.org_id, &s.certificate, &cfg.hash_key_function);
        if gw.store.exists(&session_store_key(cfg, &key)).await? {
            return Err(ApiError::internal(format!(
                "Failed to create key - Key with given certificate already found:{key}"
            )));
        }
        // Deliberately stricter than Tyk: a key for a certificate that is not in the
        // store could never authenticate.
        if !cert_exists(&gw, &s.certificate).await? {
            return Err(ApiError::bad_request(NO_CERTIFICATE));
        }
        key
    };
    validate_bindings(&gw, &s, &[]).await?;
    // Access rights may come from policies (applied, as Tyk does, before the check).
    if effective(&gw, &s)?.access_rights.is_empty() && !cfg.allow_master_keys {
        return Err(ApiError::bad_request(
            "Failed to create key, keys must have at least one Access Rights record set.",
        ));
    }
    policy_expiry(&gw, &mut s);
    prepare_new(&mut s);
    // Atomic: two concurrent creates for one certificate cannot both succeed.
    if !save_new(&gw, &key, &s).await? {
        return Err(ApiError::internal(format!(
            "Failed to create key - Key with given certificate already found:{key}"
        )));
    }
    reset_counters(&gw, &key, &s).await?;
    announce(&gw, &session_store_key(cfg, &key)).await;
    Ok(added(&gw, &key))
}

/// `POST /tyk/keys/{key}`.
async fn create_custom(
    Extension(gw): Gw,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    create_named(gw, name, body).await
}

/// `POST /tyk/keys` (random name).
async fn create_custom_root(Extension(gw): Gw, body: Body) -> Result<Response, ApiError> {
    create_named(gw, String::new(), body).await
}

async fn create_named(gw: Arc<Gateway>, name: String, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(body).await?;
    let mut s = parse_session(&bytes, "Request malformed")?;
    let cfg = &gw.config;
    if !name.is_empty() && name.len() < cfg.min_token_length {
        return Err(ApiError::bad_request(format!(
            "custom key ID length {} is less than min_token_length ({}); the key would be unreachable at auth time. Use an ID of at least min_token_length characters, or lower min_token_length in the gateway configuration.",
            name.len(),
            cfg.min_token_length
        )));
    }
    if effective(&gw, &s)?.access_rights.is_empty() && !cfg.allow_master_keys {
        return Err(ApiError::bad_request(NO_ACCESS_RIGHTS));
    }
    validate_bindings(&gw, &s, &[]).await?;
    let key = tokens::generate_token(&s.org_id, &name, &cfg.hash_key_function);
    // A name that is a certificate ID or fingerprint is the name the certificate path
    // reads for that certificate: a key under it would stand in for the certificate's
    // own session (§1.8). With legacy (unencoded) tokens the org is part of the name.
    if !name.is_empty()
        && (names_a_certificate(&name)
            || (cfg.hash_key_function.is_empty() && names_a_certificate(&key)))
    {
        return Err(ApiError::bad_request(CERTIFICATE_NAME));
    }
    policy_expiry(&gw, &mut s);
    if s.expires > 1 && s.expires < pipeline::now_unix() {
        s.expires = 0;
    }
    prepare_new(&mut s);
    // A create never overwrites (Tyk does): another key's rights, quota and binding
    // are not replaced by a POST.
    if !save_new(&gw, &key, &s).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Failed to create key - a key with this name already exists:{key}"),
        ));
    }
    reset_counters(&gw, &key, &s).await?;
    announce(&gw, &session_store_key(cfg, &key)).await;
    Ok(added(&gw, &key))
}

/// Finds a key for the Gateway API: by hash when `hashed`, else with the data plane's
/// lookup (§1.8) for the org of `api_id` or `org_id`.
async fn find(
    gw: &Gateway,
    name: &str,
    q: &KeyQuery,
) -> Result<Option<(String, String, SessionState)>, ApiError> {
    let cfg = &gw.config;
    if q.hashed() {
        if !cfg.hash_keys {
            return Err(ApiError::bad_request(
                "Key requested by hash but key hashing is not enabled",
            ));
        }
        let store_key = tokens::session_store_key_of(name);
        let Some(json) = gw.store.get(&store_key).await? else {
            return Ok(None);
        };
        let s = SessionState::from_json(json.as_bytes())
            .map_err(|e| ApiError::internal(format!("stored session is corrupt: {e}")))?;
        return Ok(Some((name.to_owned(), store_key, s)));
    }
    let org = q
        .api_id
        .as_deref()
        .and_then(|id| gw.snapshot().api(id).map(|a| a.spec().org_id.clone()))
        .or_else(|| q.org_id.clone())
        .unwrap_or_default();
    let found = pipeline::lookup_session(cfg, &gw.store, None, &org, name)
        .await
        .map_err(|e| ApiError::new(e.status, e.message))?;
    Ok(found.map(|a| {
        let store_key = session_store_key(cfg, &a.key);
        (a.key, store_key, Arc::unwrap_or_clone(a.session))
    }))
}

/// `GET /tyk/keys/{key}`.
async fn read(
    Extension(gw): Gw,
    Path(name): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<Response, ApiError> {
    let (key, _, stored) = find(&gw, &name, &q)
        .await?
        .ok_or_else(|| ApiError::not_found("Key not found"))?;
    // As Tyk: policies applied, quota_remaining recomputed from the counters.
    let mut s = crate::policy::apply(&stored, &gw.snapshot().policy_set).unwrap_or(stored);
    let counter = tokens::hash_key(&key, gw.config.hash_keys).into_owned();
    let root = s.effective_limit("");
    if root.quota_max > 0 {
        let (remaining, renews) =
            crate::limits::quota_remaining(&gw.store, &counter, "", &root).await?;
        s.quota_remaining = remaining;
        if renews > 0 {
            s.quota_renews = renews;
        }
    }
    for ar in s.access_rights.values_mut() {
        if ar.limit.quota_max > 0 {
            let (remaining, renews) =
                crate::limits::quota_remaining(&gw.store, &counter, &ar.allowance_scope, &ar.limit)
                    .await?;
            ar.limit.quota_remaining = remaining;
            if renews > 0 {
                ar.limit.quota_renews = renews;
            }
        }
    }
    let mut v = serde_json::from_slice::<serde_json::Value>(&s.to_json())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    // Basic-auth passwords are never returned.
    if let Some(b) = v.get_mut("basic_auth_data").and_then(|b| b.as_object_mut()) {
        b.remove("password");
    }
    Ok(json_response(StatusCode::OK, &v))
}

/// `PUT /tyk/keys/{key}`.
async fn update(
    Extension(gw): Gw,
    Path(name): Path<String>,
    Query(q): Query<KeyQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body).await?;
    let mut s = parse_session(&bytes, "Request malformed")?;
    let (key, store_key, old) = find(&gw, &name, &q)
        .await?
        .ok_or_else(|| ApiError::not_found("Key is not found"))?;
    if s.certificate != old.certificate {
        if s.certificate.is_empty() {
            return Err(ApiError::bad_request(
                "Key cannot be used without a certificate",
            ));
        }
        if !cert_exists(&gw, &s.certificate).await? {
            return Err(ApiError::bad_request(NO_CERTIFICATE));
        }
    }
    validate_bindings(&gw, &s, &old.mtls_static_certificate_bindings).await?;
    // As the create paths: no access rights (after policies) would be a master key.
    if effective(&gw, &s)?.access_rights.is_empty() && !gw.config.allow_master_keys {
        return Err(ApiError::bad_request(NO_ACCESS_RIGHTS));
    }
    s.date_created = old.date_created.clone();
    if q.suppress_reset.as_deref() == Some("1") {
        s.quota_renews = old.quota_renews;
        s.quota_remaining = old.quota_remaining;
    }
    s.last_updated = pipeline::now_unix().to_string();
    let json = String::from_utf8(s.to_json())
        .map_err(|_| ApiError::internal("session could not be encoded"))?;
    let ttl = lifetime(&gw, &s);
    if let Some((new_key, new_store_key)) = follows_certificate(&gw, &store_key, &old, &s) {
        return move_key(
            &gw,
            (&key, &store_key, &old),
            (&new_key, &new_store_key),
            &json,
            ttl,
        )
        .await;
    }
    // Only if it still exists: a concurrent delete must not be undone.
    if !gw.store.set_xx(&store_key, &json, ttl).await? {
        return Err(ApiError::not_found("Key is not found"));
    }
    announce(&gw, &store_key).await;
    Ok(json_response(
        StatusCode::OK,
        &json!({"key": key, "status": "ok", "action": "modified"}),
    ))
}

/// Moves a certificate's key to its new certificate's name: the old certificate's
/// name is gone (and evicted on every node) before the answer, so from then on only
/// the new certificate finds the session. The new name must be free (one key per
/// certificate); a key deleted meanwhile is not brought back.
async fn move_key(
    gw: &Arc<Gateway>,
    (key, store_key, old): (&str, &str, &SessionState),
    (new_key, new_store_key): (&str, &str),
    json: &str,
    ttl: Option<Duration>,
) -> Result<Response, ApiError> {
    if !gw.store.set_nx(new_store_key, json, ttl).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Failed to update key - Key with given certificate already found:{new_key}"),
        ));
    }
    if !gw.store.delete(store_key).await? {
        gw.store.delete(new_store_key).await?;
        announce(gw, new_store_key).await;
        return Err(ApiError::not_found("Key is not found"));
    }
    // The old name's counters would be orphaned.
    reset_counters(gw, key, old).await?;
    // One notification for both names.
    gw.announce(
        crate::cluster::KEY_SPACE_UPDATE,
        &format!("{},{}", suffix(store_key), suffix(new_store_key)),
    )
    .await;
    Ok(json_response(
        StatusCode::OK,
        &json!({"key": new_key, "status": "ok", "action": "modified"}),
    ))
}

/// `DELETE /tyk/keys/{key}`.
async fn remove(
    Extension(gw): Gw,
    Path(name): Path<String>,
    Query(q): Query<KeyQuery>,
) -> Result<Response, ApiError> {
    let q = KeyQuery { api_id: None, ..q };
    let Some((key, store_key, stored)) = find(&gw, &name, &q).await? else {
        return Err(ApiError::not_found("There is no such key found"));
    };
    reset_counters(&gw, &key, &stored).await?;
    gw.store.delete(&store_key).await?;
    announce(&gw, &store_key).await;
    // Tyk removes both the found name and generateToken(org, name).
    if !q.hashed() {
        let org = q.org_id.as_deref().unwrap_or("");
        let derived = tokens::generate_token(org, &name, &gw.config.hash_key_function);
        let alt = session_store_key(&gw.config, &derived);
        if alt != store_key && gw.store.delete(&alt).await? {
            announce(&gw, &alt).await;
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"key": key, "status": "ok", "action": "deleted"}),
    ))
}

/// `GET /tyk/keys`.
async fn list(Extension(gw): Gw, Query(q): Query<KeyQuery>) -> Result<Response, ApiError> {
    let cfg = &gw.config;
    if cfg.hash_keys && !cfg.enable_hashed_keys_listing {
        return Err(ApiError::not_found(
            "Hashed key listing is disabled in config (enable_hashed_keys_listing)",
        ));
    }
    if q.api_id.is_some() && q.filter.is_none() {
        return Err(ApiError::bad_request(
            "The 'filter' parameter (Org ID) is required when filtering by 'api_id' in legacy mode",
        ));
    }
    let mut keys: Vec<String> = gw
        .store
        .keys_with_prefix(SESSION_PREFIX)
        .await?
        .into_iter()
        .map(|k| k[SESSION_PREFIX.len()..].to_owned())
        .collect();
    if let Some(org) = q.filter.as_deref().filter(|f| !f.is_empty()) {
        keys.retain(|k| k.starts_with(org) || tokens::token_org(k) == org);
    }
    keys.sort();
    Ok(json_response(StatusCode::OK, &json!({ "keys": keys })))
}
