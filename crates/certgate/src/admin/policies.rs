//! `/tyk/policies` (§4.6): policy files in `policies.policy_path`, one JSON object per
//! file, live after the next reload. How policies apply to sessions lives with
//! authorisation; this is only their storage and the Gateway API over it.

use axum::body::Body;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::Value;

use super::{json_response, modified, read_body, ApiError, Gw};
use crate::gateway::{self, Gateway};

pub(super) fn routes() -> Router {
    Router::new()
        .route("/tyk/policies", get(list).post(create))
        .route("/tyk/policies/{id}", get(read).put(update).delete(remove))
}

async fn list(Extension(gw): Gw) -> Response {
    let snap = gw.snapshot();
    let all: Vec<&Value> = snap.policies.values().collect();
    json_response(StatusCode::OK, &all)
}

async fn read(Extension(gw): Gw, Path(id): Path<String>) -> Result<Response, ApiError> {
    let snap = gw.snapshot();
    let p = snap
        .policies
        .get(&id)
        .ok_or_else(|| ApiError::not_found("Policy not found"))?;
    Ok(json_response(StatusCode::OK, p))
}

fn policy_dir(gw: &Gateway) -> Result<&std::path::Path, ApiError> {
    gw.config.policies.policy_path.as_deref().ok_or_else(|| {
        ApiError::bad_request("policies.policy_path is not configured; policies cannot be stored")
    })
}

fn parse(bytes: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Request malformed: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "Request malformed: a policy must be a JSON object",
        ));
    }
    if let Some(id) = v.get("id") {
        // `null` is Go's zero value, an empty id.
        if !id.is_string() && !id.is_null() {
            return Err(ApiError::bad_request(
                "Request malformed: id must be a string",
            ));
        }
    }
    Ok(v)
}

fn valid_id(id: &str) -> Result<(), ApiError> {
    gateway::validate_file_id(id).map_err(|reason| {
        ApiError::bad_request(format!("Validation of policy failed. Reason: {reason}."))
    })
}

/// The whole document must be a policy the gateway can load; a policy that would be
/// skipped at the next reload is refused now, with the reason.
fn check_policy(v: &Value) -> Result<String, ApiError> {
    crate::policy::parse_policy(v)
        .map(|p| p.id)
        .map_err(|e| ApiError::bad_request(format!("Request malformed: {e}")))
}

/// Whether the document names its policy: a non-empty `id`, or the legacy `_id`.
fn has_id(v: &Value) -> bool {
    let present = |k: &str| match v.get(k) {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    };
    present("id") || present("_id")
}

/// `POST /tyk/policies`: writes `<id>.json`, replacing a policy of the same id, as Tyk
/// does. The id is the document's `id`, else its legacy `_id`; a policy with neither is
/// refused (Tyk: 400 `Unable to create policy without id.`).
async fn create(Extension(gw): Gw, body: Body) -> Result<Response, ApiError> {
    let dir = policy_dir(&gw)?.to_owned();
    let v = parse(&read_body(body).await?)?;
    if !has_id(&v) {
        return Err(ApiError::bad_request("Unable to create policy without id."));
    }
    let id = check_policy(&v)?;
    valid_id(&id)?;
    gateway::write_json_file(&dir, &format!("{id}.json"), &v)
        .await
        .map_err(|e| ApiError::internal(format!("policy could not be written: {e}")))?;
    Ok(modified(&id, "added"))
}

/// `PUT /tyk/policies/{id}`: the body's `id` must be the path's (Tyk: 400 otherwise, a
/// missing `id` included); writes `<id>.json` whether or not it existed, as Tyk does.
async fn update(
    Extension(gw): Gw,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let dir = policy_dir(&gw)?.to_owned();
    let v = parse(&read_body(body).await?)?;
    if v.get("id").and_then(Value::as_str) != Some(id.as_str()) {
        return Err(ApiError::bad_request(
            "Request ID does not match that in policy! For Update operations these must match.",
        ));
    }
    valid_id(&id)?;
    check_policy(&v)?;
    gateway::write_json_file(&dir, &format!("{id}.json"), &v)
        .await
        .map_err(|e| ApiError::internal(format!("policy could not be written: {e}")))?;
    Ok(modified(&id, "modified"))
}

async fn remove(Extension(gw): Gw, Path(id): Path<String>) -> Result<Response, ApiError> {
    let dir = policy_dir(&gw)?.to_owned();
    valid_id(&id).map_err(|_| ApiError::not_found("Policy not found"))?;
    match tokio::fs::remove_file(dir.join(format!("{id}.json"))).await {
        Ok(()) => Ok(modified(&id, "deleted")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ApiError::not_found("Policy not found"))
        }
        Err(e) => Err(ApiError::internal(format!("Delete failed: {e}"))),
    }
}
