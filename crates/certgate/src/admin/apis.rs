//! `/tyk/apis` (Tyk Classic) and `/tyk/apis/oas` (Tyk OAS), as §4.5: definitions are
//! written to `app_path` and go live on the next reload; reads answer from the loaded
//! set. `POST` with an existing id replaces that API, whatever its flavour, as Tyk does;
//! `PATCH /tyk/apis/oas/{id}` lives in `oas_patch.rs`.

use axum::body::Body;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::Value;

use super::{json_response, modified, read_body, ApiError, Gw};
use crate::apidef::{self, ApiDefError, ApiDefinition};
use crate::gateway::{self, Gateway};

pub(super) fn routes() -> Router {
    Router::new()
        .route("/tyk/apis", get(list_classic).post(create_classic))
        .route("/tyk/apis/oas", get(list_oas).post(create_oas))
        .route(
            "/tyk/apis/oas/{id}",
            get(get_oas)
                .put(update_oas)
                .patch(super::oas_patch::patch)
                .delete(delete_api),
        )
        .route(
            "/tyk/apis/{id}",
            get(get_classic).put(update_classic).delete(delete_api),
        )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Classic,
    Oas,
}

async fn list_classic(Extension(gw): Gw) -> Response {
    let snap = gw.snapshot();
    let all: Vec<&Value> = snap.apis.iter().map(|a| &a.def.classic).collect();
    json_response(StatusCode::OK, &all)
}

async fn list_oas(Extension(gw): Gw) -> Response {
    let snap = gw.snapshot();
    let all: Vec<&Value> = snap
        .apis
        .iter()
        .filter_map(|a| a.def.oas.as_ref())
        .collect();
    json_response(StatusCode::OK, &all)
}

async fn get_classic(Extension(gw): Gw, Path(id): Path<String>) -> Result<Response, ApiError> {
    let snap = gw.snapshot();
    let api = snap
        .api(&id)
        .ok_or_else(|| ApiError::not_found("API not found"))?;
    Ok(json_response(StatusCode::OK, &api.def.classic))
}

async fn get_oas(Extension(gw): Gw, Path(id): Path<String>) -> Result<Response, ApiError> {
    let snap = gw.snapshot();
    let api = snap
        .api(&id)
        .ok_or_else(|| ApiError::not_found("API not found"))?;
    match &api.def.oas {
        Some(doc) => Ok(json_response(StatusCode::OK, doc)),
        None => Err(ApiError::bad_request(
            "the requested API definition is in Tyk classic format, please use old api endpoint",
        )),
    }
}

/// Parses a request body as the given flavour, with Tyk's messages.
fn parse(bytes: &[u8], flavour: Flavour) -> Result<ApiDefinition, ApiError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Request malformed: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "Request malformed: the API definition must be a JSON object",
        ));
    }
    let is_oas = apidef::is_oas_document(&v);
    let parsed = match (flavour, is_oas) {
        (Flavour::Classic, true) => {
            return Err(ApiError::bad_request(
                "the supplied API definition is in OAS format, please use the Tyk classic format for this API",
            ))
        }
        (Flavour::Classic, false) => apidef::parse_classic(bytes),
        (Flavour::Oas, _) => {
            if v.get("x-tyk-api-gateway").is_none() {
                return Err(ApiError::bad_request(
                    "the payload should contain x-tyk-api-gateway",
                ));
            }
            apidef::parse_oas(bytes)
        }
    };
    parsed.map_err(|e| ApiError::bad_request(validation_message(&e)))
}

fn validation_message(e: &ApiDefError) -> String {
    match e {
        ApiDefError::Validation(_) => e.to_string(),
        e if e.is_malformed() => format!("Request malformed: {}", e.reason()),
        e => e.reason(),
    }
}

async fn create_classic(Extension(gw): Gw, body: Body) -> Result<Response, ApiError> {
    create(gw, body, Flavour::Classic).await
}

async fn create_oas(Extension(gw): Gw, body: Body) -> Result<Response, ApiError> {
    create(gw, body, Flavour::Oas).await
}

async fn create(
    gw: std::sync::Arc<Gateway>,
    body: Body,
    flavour: Flavour,
) -> Result<Response, ApiError> {
    let bytes = read_body(body).await?;
    let mut def = parse(&bytes, flavour)?;
    if def.spec.api_id.is_empty() {
        let id = apidef::new_api_id();
        def.set_api_id(&id);
    }
    let id = def.spec.api_id.clone();
    apidef::validate_api_id(&id).map_err(|e| ApiError::bad_request(validation_message(&e)))?;
    // An existing API of this id is replaced, whatever its flavour, as in Tyk: the
    // definition was validated whole above, so a refused one leaves the files untouched.
    write(&gw, &def).await?;
    Ok(modified(&id, "added"))
}

async fn update_classic(
    Extension(gw): Gw,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    update(gw, id, body, Flavour::Classic).await
}

async fn update_oas(
    Extension(gw): Gw,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    update(gw, id, body, Flavour::Oas).await
}

async fn update(
    gw: std::sync::Arc<Gateway>,
    id: String,
    body: Body,
    flavour: Flavour,
) -> Result<Response, ApiError> {
    apidef::validate_api_id(&id).map_err(|_| ApiError::not_found("API not found"))?;
    let bytes = read_body(body).await?;
    update_with(&gw, &id, &bytes, flavour).await
}

/// `PUT` of an OAS document (also the last step of `PATCH`).
pub(super) async fn update_oas_bytes(
    gw: &Gateway,
    id: &str,
    bytes: &[u8],
) -> Result<Response, ApiError> {
    update_with(gw, id, bytes, Flavour::Oas).await
}

async fn update_with(
    gw: &Gateway,
    id: &str,
    bytes: &[u8],
    flavour: Flavour,
) -> Result<Response, ApiError> {
    let id = id.to_owned();
    let mut def = parse(bytes, flavour)?;
    if def.spec.api_id.is_empty() {
        def.set_api_id(&id);
    } else if def.spec.api_id != id {
        return Err(ApiError::bad_request(
            "Request APIID does not match that in Definition! For Update operations these must match.",
        ));
    }
    let snap = gw.snapshot();
    let existing = snap
        .api(&id)
        .ok_or_else(|| ApiError::not_found("API not found"))?;
    match (flavour, existing.def.oas.is_some()) {
        (Flavour::Classic, true) => {
            return Err(ApiError::bad_request(
                "this API endpoint only supports Tyk Classic APIs; please use the appropriate Tyk OAS API endpoint",
            ))
        }
        (Flavour::Oas, false) => {
            return Err(ApiError::bad_request(
                "the requested API definition is in Tyk classic format, please use old api endpoint",
            ))
        }
        _ => {}
    }
    drop(snap);
    write(gw, &def).await?;
    Ok(modified(&id, "modified"))
}

async fn delete_api(Extension(gw): Gw, Path(id): Path<String>) -> Result<Response, ApiError> {
    apidef::validate_api_id(&id).map_err(|_| ApiError::not_found("API not found"))?;
    let loaded = gw.snapshot().api(&id).is_some();
    if !loaded && !files_exist(&gw, &id) {
        return Err(ApiError::not_found("API not found"));
    }
    gateway::remove_api_files(&gw.config.app_path, &id)
        .await
        .map_err(|e| ApiError::internal(format!("Delete failed: {e}")))?;
    Ok(modified(&id, "deleted"))
}

fn files_exist(gw: &Gateway, id: &str) -> bool {
    let (classic, oas) = apidef::file_names(id, true);
    std::iter::once(classic)
        .chain(oas)
        .any(|n| gw.config.app_path.join(n).exists())
}

async fn write(gw: &Gateway, def: &ApiDefinition) -> Result<(), ApiError> {
    gateway::write_api_files(&gw.config.app_path, def)
        .await
        .map_err(|e| ApiError::internal(format!("file object creation failed, write error: {e}")))
}
