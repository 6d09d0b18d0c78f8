//! `/tyk/certs`: the certificate store (§3). Add errors are 403 as in Tyk; private keys
//! are encrypted at rest and never returned. Adding or deleting a certificate
//! refreshes the snapshot (allow lists, server certificates) in the background; the
//! certificate-auth check itself reads the store on every request, so a deletion
//! revokes at once.

use axum::body::Body;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_response, read_body, ApiError, Gw, Query};
use crate::certs::CertError;
use crate::gateway::Gateway;

pub(super) fn routes() -> Router {
    Router::new()
        .route("/tyk/certs", get(list).post(add))
        .route(
            "/tyk/certs/{ids}",
            get(read).post(add_with_path).delete(remove),
        )
}

#[derive(Debug, Default, Deserialize)]
struct CertQuery {
    org_id: Option<String>,
    mode: Option<String>,
}

fn cert_error(e: CertError) -> ApiError {
    if e.is_client_error() {
        ApiError::new(StatusCode::FORBIDDEN, e.to_string())
    } else {
        tracing::error!(error = %e, "certificate store failure");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

async fn add(
    Extension(gw): Gw,
    Query(q): Query<CertQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let pem = read_body(body).await?;
    let org = q.org_id.unwrap_or_default();
    let id = gw.certs.add(&pem, &org).await.map_err(cert_error)?;
    // Certificates feed allow lists and server certificates: every node reloads.
    gw.announce(crate::cluster::CERTIFICATE_ADDED, &id).await;
    Ok(json_response(
        StatusCode::OK,
        &json!({"id": id, "status": "ok", "message": "Certificate added"}),
    ))
}

/// `POST /tyk/certs/{anything}`: the path id is ignored, as in Tyk.
async fn add_with_path(
    gw: Gw,
    Path(_ignored): Path<String>,
    q: Query<CertQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    add(gw, q, body).await
}

async fn list(Extension(gw): Gw, Query(q): Query<CertQuery>) -> Result<Response, ApiError> {
    let org = q.org_id.unwrap_or_default();
    let ids = gw.certs.list_ids(&org).await.map_err(cert_error)?;
    if q.mode.as_deref() == Some("detailed") {
        let mut out: Vec<Value> = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(c) = lookup(&gw, id).await? {
                out.push(c.basics_json());
            }
        }
        return Ok(json_response(StatusCode::OK, &json!({ "certs": out })));
    }
    let certs = if ids.is_empty() {
        Value::Null
    } else {
        json!(ids)
    };
    Ok(json_response(StatusCode::OK, &json!({ "certs": certs })))
}

/// A stored certificate, or None when it is absent or no longer parses (Tyk's `List`
/// answers nil for both; the parse failure is logged).
async fn lookup(gw: &Gateway, id: &str) -> Result<Option<crate::certs::StoredCert>, ApiError> {
    match gw.certs.get(id).await {
        Ok(c) => Ok(c),
        Err(e) if e.is_client_error() => {
            tracing::error!(id, error = %e, "stored certificate cannot be parsed");
            Ok(None)
        }
        Err(e) => Err(cert_error(e)),
    }
}

async fn read(Extension(gw): Gw, Path(ids): Path<String>) -> Result<Response, ApiError> {
    let ids: Vec<&str> = ids.split(',').filter(|s| !s.is_empty()).collect();
    if ids.len() == 1 {
        return match lookup(&gw, ids[0]).await? {
            Some(c) => Ok(json_response(StatusCode::OK, &c.meta_json())),
            None => Err(ApiError::not_found(
                "Certificate with given SHA256 fingerprint not found",
            )),
        };
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(match lookup(&gw, id).await? {
            Some(c) => c.meta_json(),
            None => Value::Null,
        });
    }
    Ok(json_response(StatusCode::OK, &out))
}

async fn remove(
    Extension(gw): Gw,
    Path(id): Path<String>,
    Query(q): Query<CertQuery>,
) -> Result<Response, ApiError> {
    gw.certs
        .delete(&id, q.org_id.as_deref())
        .await
        .map_err(cert_error)?;
    // Evicts the certificate from every node's cache, then every node reloads.
    gw.announce(crate::cluster::CERTIFICATE_REMOVED, &id).await;
    Ok(json_response(
        StatusCode::OK,
        &json!({"status": "ok", "message": "removed"}),
    ))
}
