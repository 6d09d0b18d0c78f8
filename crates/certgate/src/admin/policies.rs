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
        if !id.is_string() {
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

async fn create(Extension(gw): Gw, body: Body) -> Result<Response, ApiError> {
    let dir = policy_dir(&gw)?.to_owned();
    let mut v = parse(&read_body(body).await?)?;
    let id = match v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(id) => id.to_owned(),
        None => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            v["id"] = Value::String(id.clone());
            id
        }
    };
    valid_id(&id)?;
    let path = dir.join(format!("{id}.json"));
    if gw.snapshot().policies.contains_key(&id) || path.exists() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Policy with ID {id} already exists; use PUT to update it"),
        ));
    }
    gateway::write_json_file(&dir, &format!("{id}.json"), &v)
        .await
        .map_err(|e| ApiError::internal(format!("policy could not be written: {e}")))?;
    Ok(modified(&id, "added"))
}

async fn update(
    Extension(gw): Gw,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let dir = policy_dir(&gw)?.to_owned();
    valid_id(&id).map_err(|_| ApiError::not_found("Policy not found"))?;
    let mut v = parse(&read_body(body).await?)?;
    match v.get("id").and_then(Value::as_str) {
        Some(body_id) if !body_id.is_empty() && body_id != id => {
            return Err(ApiError::bad_request(
                "Request ID does not match that in policy! For Update operations these must match.",
            ))
        }
        _ => v["id"] = Value::String(id.clone()),
    }
    if !gw.snapshot().policies.contains_key(&id) && !dir.join(format!("{id}.json")).exists() {
        return Err(ApiError::not_found("Policy not found"));
    }
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
