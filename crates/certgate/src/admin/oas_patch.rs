//! `PATCH /tyk/apis/oas/{apiID}` (Tyk's `apiOASPatchHandler`): replaces the OpenAPI part
//! of a stored Tyk OAS API. The body's `x-tyk-api-gateway` is used when it has one, else
//! the stored extension is kept; the swagger's query parameters then adjust the extension
//! as Tyk's `BuildDefaultTykExtension` does. The result goes through the same validation
//! and write as `PUT`, so a refused patch changes nothing.
//!
//! Parameters certgate cannot honour are refused with a 400 naming them, never stored
//! unenforced: `allowList`, `validateRequest` and `mockResponse` with `true` (those
//! middlewares are not implemented; `false` switches off the entries already present),
//! and a boolean that is not one (Tyk ignores it).

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Map, Value};

use super::{read_body, ApiError, Gw};
use crate::apidef::{self, TYK_EXTENSION};

/// Tyk's `ErrAPINotMigrated`.
const NOT_MIGRATED: &str =
    "the requested API definition is in Tyk classic format, please use old api endpoint";

pub(super) async fn patch(
    Extension(gw): Gw,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let id = id.trim().to_owned();
    if id.is_empty() {
        return Err(ApiError::bad_request("Must specify an apiID to patch"));
    }
    apidef::validate_api_id(&id).map_err(|_| ApiError::not_found("API not found"))?;
    let stored_ext = {
        let snap = gw.snapshot();
        let api = snap
            .api(&id)
            .ok_or_else(|| ApiError::not_found("API not found"))?;
        match &api.def.oas {
            Some(doc) => doc.get(TYK_EXTENSION).cloned().unwrap_or(Value::Null),
            None => return Err(ApiError::bad_request(NOT_MIGRATED)),
        }
    };
    let bytes = read_body(body).await?;
    let mut doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("request malformed: {e}")))?;
    let Some(obj) = doc.as_object_mut() else {
        return Err(ApiError::bad_request(
            "request malformed: an OAS document must be a JSON object",
        ));
    };
    let params = Params::from_query(query.as_deref())?;
    let has_ext = obj.get(TYK_EXTENSION).is_some_and(|v| !v.is_null());
    if has_ext && params.is_none() {
        return super::apis::update_oas_bytes(&gw, &id, &bytes).await;
    }
    if !has_ext {
        obj.insert(TYK_EXTENSION.to_owned(), stored_ext);
    }
    if let Some(params) = params {
        params.apply(&mut doc)?;
    }
    let bytes = serde_json::to_vec(&doc).map_err(|e| ApiError::internal(e.to_string()))?;
    super::apis::update_oas_bytes(&gw, &id, &bytes).await
}

/// The swagger's query parameters of the operation (Tyk's `TykExtensionConfigParams`,
/// plus `apiID`, which Tyk's code also reads). Empty values count as absent, as in Tyk.
#[derive(Debug, Default, PartialEq)]
struct Params {
    upstream_url: Option<String>,
    listen_path: Option<String>,
    custom_domain: Option<String>,
    api_id: Option<String>,
    authentication: Option<bool>,
    allow_list: Option<bool>,
    validate_request: Option<bool>,
    mock_response: Option<bool>,
}

impl Params {
    /// `None` when no parameter is given.
    fn from_query(query: Option<&str>) -> Result<Option<Self>, ApiError> {
        let pairs = decode_query(query.unwrap_or(""))?;
        // Go's `Query().Get`: the first value of a name.
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let flag = |name: &str| -> Result<Option<bool>, ApiError> {
            match get(name) {
                None => Ok(None),
                Some(v) => match v.as_str() {
                    "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Some(true)),
                    "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Some(false)),
                    _ => Err(ApiError::bad_request(format!(
                        "query parameter {name} must be true or false, got {v:?}"
                    ))),
                },
            }
        };
        let p = Self {
            upstream_url: get("upstreamURL"),
            listen_path: get("listenPath"),
            custom_domain: get("customDomain"),
            api_id: get("apiID"),
            authentication: flag("authentication")?,
            allow_list: flag("allowList")?,
            validate_request: flag("validateRequest")?,
            mock_response: flag("mockResponse")?,
        };
        Ok((p != Self::default()).then_some(p))
    }

    /// Tyk's `BuildDefaultTykExtension(params, false)` on the document.
    fn apply(&self, doc: &mut Value) -> Result<(), ApiError> {
        let title = doc
            .pointer("/info/title")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let first_server = doc
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .map(str::to_owned);
        for (param, value, middleware) in [
            ("allowList", self.allow_list, "allow"),
            ("validateRequest", self.validate_request, "validateRequest"),
            ("mockResponse", self.mock_response, "mockResponse"),
        ] {
            match value {
                Some(true) => {
                    return Err(ApiError::bad_request(format!(
                        "query parameter {param}: the {middleware} middleware is not implemented by certgate; \
                         refused rather than stored unenforced"
                    )))
                }
                Some(false) => disable_middleware(doc, middleware)?,
                None => {}
            }
        }
        if let Some(enable) = self.authentication {
            import_authentication(doc, enable)?;
        }
        let ext = extension(doc)?;
        let info = object_at(ext, "info", "x-tyk-api-gateway.info")?;
        if info
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            info.insert("name".to_owned(), Value::from(title));
        }
        if let Some(id) = &self.api_id {
            info.insert("id".to_owned(), Value::from(id.as_str()));
        }
        let server = object_at(ext, "server", "x-tyk-api-gateway.server")?;
        let listen = object_at(server, "listenPath", "x-tyk-api-gateway.server.listenPath")?;
        match &self.listen_path {
            Some(path) => {
                listen.insert("value".to_owned(), Value::from(path.as_str()));
            }
            None if listen
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty() =>
            {
                listen.insert("value".to_owned(), Value::from("/"));
            }
            None => {}
        }
        if let Some(domain) = &self.custom_domain {
            if server.get("customDomain").is_none_or(Value::is_null) {
                server.insert("customDomain".to_owned(), json!({"enabled": true}));
            }
            let custom = object_at(
                server,
                "customDomain",
                "x-tyk-api-gateway.server.customDomain",
            )?;
            custom.insert("name".to_owned(), Value::from(domain.as_str()));
        }
        let upstream = object_at(ext, "upstream", "x-tyk-api-gateway.upstream")?;
        let url = match &self.upstream_url {
            Some(url) if !is_absolute(url) => {
                return Err(ApiError::bad_request("invalid upstream URL"))
            }
            Some(url) => Some(url.clone()),
            None if upstream
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty() =>
            {
                let url = first_server
                    .ok_or_else(|| ApiError::bad_request("servers object is empty in OAS"))?;
                if !is_absolute(&url) {
                    return Err(ApiError::bad_request(format!(
                        "error validating servers entry in OAS: Please update {url:?} to be a valid url \
                         or pass a valid url with upstreamURL query param"
                    )));
                }
                Some(url)
            }
            None => None,
        };
        if let Some(url) = url {
            upstream.insert("url".to_owned(), Value::from(url));
        }
        Ok(())
    }
}

/// Go's `url.Parse(s).IsAbs()`: a scheme is present.
fn is_absolute(url: &str) -> bool {
    match url.split_once(':') {
        Some((scheme, _)) => {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// The object under `key` of `parent`, created when absent or null; another type is a
/// 400 naming it.
fn object_at<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
    name: &str,
) -> Result<&'a mut Map<String, Value>, ApiError> {
    let slot = parent
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().ok_or_else(|| {
        ApiError::bad_request(format!("request malformed: {name} must be an object"))
    })
}

/// The document's `x-tyk-api-gateway` object.
fn extension(doc: &mut Value) -> Result<&mut Map<String, Value>, ApiError> {
    let root = doc.as_object_mut().ok_or_else(|| {
        ApiError::bad_request("request malformed: an OAS document must be a JSON object")
    })?;
    object_at(root, TYK_EXTENSION, TYK_EXTENSION)
}

/// `allowList=false` and friends: every operation's entry of that middleware is switched
/// off (certgate runs none of them; the document says so too).
fn disable_middleware(doc: &mut Value, middleware: &str) -> Result<(), ApiError> {
    let Some(ops) = doc
        .pointer_mut("/x-tyk-api-gateway/middleware/operations")
        .and_then(Value::as_object_mut)
    else {
        return Ok(());
    };
    for op in ops.values_mut() {
        if let Some(entry) = op.get_mut(middleware).and_then(Value::as_object_mut) {
            entry.insert("enabled".to_owned(), Value::Bool(false));
        }
    }
    Ok(())
}

/// Tyk's `importAuthentication`: the first security requirement's schemes are switched on
/// (or off) in the extension, with `server.authentication.enabled`.
fn import_authentication(doc: &mut Value, enable: bool) -> Result<(), ApiError> {
    let requirement = match doc.pointer("/security/0") {
        Some(Value::Object(r)) => r.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "request malformed: security[0] must be an object",
            ))
        }
        None => return Err(ApiError::bad_request("security object is empty in OAS")),
    };
    let native = doc
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let ext = extension(doc)?;
    let server = object_at(ext, "server", "x-tyk-api-gateway.server")?;
    let auth = object_at(
        server,
        "authentication",
        "x-tyk-api-gateway.server.authentication",
    )?;
    auth.insert("enabled".to_owned(), Value::Bool(enable));
    let schemes = object_at(
        auth,
        "securitySchemes",
        "x-tyk-api-gateway.server.authentication.securitySchemes",
    )?;
    let (mut token, mut jwt) = (false, false);
    for name in requirement.keys() {
        let scheme = native.get(name);
        let field = |k: &str| scheme.and_then(|s| s.get(k)).and_then(Value::as_str);
        let source = match (field("type"), field("scheme")) {
            (Some("apiKey"), _) => {
                token = true;
                field("in").filter(|i| matches!(*i, "header" | "query" | "cookie"))
            }
            (Some("http"), Some("bearer")) if field("bearerFormat") == Some("JWT") => {
                jwt = true;
                None
            }
            (Some("http"), Some("basic")) | (Some("oauth2"), _) => None,
            // Tyk logs "unsupported security scheme" and goes on.
            _ => continue,
        };
        let path = format!("x-tyk-api-gateway.server.authentication.securitySchemes.{name}");
        let entry = object_at(schemes, name, &path)?;
        entry.insert("enabled".to_owned(), Value::Bool(enable));
        if let Some(source) = source {
            entry.insert(source.to_owned(), json!({"enabled": true}));
        }
    }
    let provider = match (schemes.len() >= 2, token, jwt) {
        (false, _, _) => "",
        (true, true, _) => "auth_token",
        (true, false, true) => "jwt_claim",
        (true, false, false) => "oauth_key",
    };
    if provider.is_empty() {
        auth.remove("baseIdentityProvider");
    } else {
        auth.insert("baseIdentityProvider".to_owned(), Value::from(provider));
    }
    Ok(())
}

/// Decodes `application/x-www-form-urlencoded` pairs; bytes that are not UTF-8 are a 400.
fn decode_query(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    let decode = |s: &str| {
        let plus = s.replace('+', " ");
        percent_encoding::percent_decode_str(&plus)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| ApiError::bad_request("the query string is not valid UTF-8"))
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_parse_like_go() {
        assert_eq!(Params::from_query(None).unwrap(), None);
        assert_eq!(
            Params::from_query(Some("other=1&listenPath=")).unwrap(),
            None
        );
        let p = Params::from_query(Some(
            "upstreamURL=http%3A%2F%2Fa%3A1&listenPath=+%2Fx%2F+&authentication=F&listenPath=/y/",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(p.upstream_url.as_deref(), Some("http://a:1"));
        assert_eq!(p.listen_path.as_deref(), Some("/x/"));
        assert_eq!(p.authentication, Some(false));
        let e = Params::from_query(Some("validateRequest=yes")).unwrap_err();
        assert!(format!("{e:?}").contains("validateRequest"), "{e:?}");
        assert!(Params::from_query(Some("listenPath=%FF")).is_err());
    }

    #[test]
    fn authentication_imports_the_first_security_requirement() {
        let mut doc = json!({
            "openapi": "3.0.3",
            "info": {"title": "t", "version": "1"},
            "security": [{"key": [], "jwt": []}],
            "components": {"securitySchemes": {
                "key": {"type": "apiKey", "in": "query", "name": "k"},
                "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }},
            "x-tyk-api-gateway": {"info": {"name": ""}, "upstream": {"url": "http://u"},
                "server": {"authentication": {"enabled": false,
                    "securitySchemes": {"key": {"enabled": false, "query": {"enabled": false, "name": "k"}}}}}}
        });
        let p = Params {
            authentication: Some(true),
            ..Params::default()
        };
        p.apply(&mut doc).unwrap();
        let ext = &doc["x-tyk-api-gateway"];
        let auth = &ext["server"]["authentication"];
        assert_eq!(auth["enabled"], true);
        assert_eq!(
            auth["securitySchemes"]["key"],
            json!({"enabled": true, "query": {"enabled": true}})
        );
        assert_eq!(auth["securitySchemes"]["jwt"], json!({"enabled": true}));
        assert_eq!(auth["baseIdentityProvider"], "auth_token");
        // The defaults of BuildDefaultTykExtension: the name from the title, listen path `/`.
        assert_eq!(ext["info"]["name"], "t");
        assert_eq!(ext["server"]["listenPath"]["value"], "/");
        assert_eq!(ext["upstream"]["url"], "http://u");

        let mut no_security = json!({"x-tyk-api-gateway": {}});
        let e = p.apply(&mut no_security).unwrap_err();
        assert!(format!("{e:?}").contains("security object is empty in OAS"));
        let mut wrong = json!({"security": [{}], "x-tyk-api-gateway": {"server": 3}});
        let e = p.apply(&mut wrong).unwrap_err();
        assert!(
            format!("{e:?}").contains("x-tyk-api-gateway.server must be an object"),
            "{e:?}"
        );
    }

    #[test]
    fn upstream_falls_back_to_the_first_server() {
        let p = Params {
            listen_path: Some("/l/".into()),
            ..Params::default()
        };
        let mut doc =
            json!({"servers": [{"url": "https://up.example/base"}], "x-tyk-api-gateway": {}});
        p.apply(&mut doc).unwrap();
        assert_eq!(
            doc["x-tyk-api-gateway"]["upstream"]["url"],
            "https://up.example/base"
        );
        let mut doc = json!({"x-tyk-api-gateway": {}});
        let e = p.apply(&mut doc).unwrap_err();
        assert!(format!("{e:?}").contains("servers object is empty in OAS"));
        let mut doc = json!({"servers": [{"url": "/relative"}], "x-tyk-api-gateway": {}});
        let e = p.apply(&mut doc).unwrap_err();
        assert!(format!("{e:?}").contains("error validating servers entry in OAS"));
    }

    #[test]
    fn absolute_urls_have_a_scheme() {
        assert!(is_absolute("http://a"));
        assert!(is_absolute("tcp://a:1"));
        assert!(!is_absolute("/relative"));
        assert!(!is_absolute("a.example.com"));
        assert!(!is_absolute("1http://a"));
    }
}
