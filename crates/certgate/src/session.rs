//! The session (key) object, read and written in Tyk's JSON format.
//!
//! A session is what `/tyk/keys` accepts and returns and what is stored under `apikey-<token>`.
//! certgate reads sessions written by Tyk and Tyk reads sessions written by certgate, so this
//! module follows Go's `encoding/json` behaviour for Tyk's `user.SessionState` (spec §4.3):
//!
//! - field names and number types are Tyk's; a wrong JSON type is an error, a missing field or a
//!   `null` leaves the zero value;
//! - zero values are omitted on output (Tyk's `omitzero`/`omitempty`), fields come out in Tyk's
//!   struct order, map keys sorted, floats with integral values written as integers, and `<`,
//!   `>`, `&`, U+2028 and U+2029 escaped, as Go writes them;
//! - fields certgate does not know (newer Tyk versions, GraphQL/MCP settings) are kept and
//!   written back, so a session survives a read→write unchanged in content.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::gocompat::json::go_html_escape;

/// A session (Tyk `user.SessionState`): limits, access rights and identity of one key.
///
/// The key name itself is not part of the JSON.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(default)]
pub struct SessionState {
    /// Unix time of the last rate check (legacy limiter).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub last_check: i64,
    /// Current rate allowance.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    #[serde(serialize_with = "go_float")]
    pub allowance: f64,
    /// Requests allowed per `per` seconds; `<= 0` disables rate limiting.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    #[serde(serialize_with = "go_float")]
    pub rate: f64,
    /// Rate-limit interval in seconds.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    #[serde(serialize_with = "go_float")]
    pub per: f64,
    /// Seconds between throttled retries.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    #[serde(serialize_with = "go_float")]
    pub throttle_interval: f64,
    /// Number of throttled retries before a 429.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub throttle_retry_limit: i64,
    /// GraphQL query depth limit (`-1` = unlimited).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub max_query_depth: i64,
    /// Creation time, RFC 3339 (validated on input, kept verbatim; Go's zero time is omitted).
    #[serde(deserialize_with = "go_time", skip_serializing_if = "is_zero_time")]
    pub date_created: String,
    /// Unix time after which the key is expired; `0` or negative = never.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub expires: i64,
    /// Requests per quota window; `<= 0` = unlimited.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub quota_max: i64,
    /// Unix time the quota window renews.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub quota_renews: i64,
    /// Requests left in the current quota window.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub quota_remaining: i64,
    /// Quota window length in seconds.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub quota_renewal_rate: i64,
    /// Per-API access, keyed by API id; empty = access to every API.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub access_rights: BTreeMap<String, AccessDefinition>,
    /// Owning organisation.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub org_id: String,
    /// OAuth client the key was issued to.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub oauth_client_id: String,
    /// OAuth keys by client id.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub oauth_keys: BTreeMap<String, String>,
    /// Certificate-Store id (`org + sha256`) for certificate authentication.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub certificate: String,
    /// Certificate ids a token is bound to under static mTLS.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub mtls_static_certificate_bindings: Vec<String>,
    /// Basic-auth credentials.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub basic_auth_data: BasicAuthData,
    /// JWT shared secret.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub jwt_data: JwtData,
    /// HMAC request signing enabled.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub hmac_enabled: bool,
    /// HTTP signature validation enabled.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub enable_http_signature_validation: bool,
    /// HMAC secret.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub hmac_string: String,
    /// Certificate id of the RSA key for HTTP signatures.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub rsa_certificate_id: String,
    /// Disabled key: requests get 403 `Key is inactive, please renew`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub is_inactive: bool,
    /// Legacy single policy id.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub apply_policy_id: String,
    /// Policy ids applied to the key.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub apply_policies: Vec<String>,
    /// Analytics data expiry in seconds.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub data_expires: i64,
    /// Quota usage monitor.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub monitor: Monitor,
    /// Deprecated spelling of `enable_detailed_recording`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub enable_detail_recording: bool,
    /// Record request/response bodies in analytics.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub enable_detailed_recording: bool,
    /// Free-form metadata.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub meta_data: BTreeMap<String, Value>,
    /// Tags, e.g. for analytics.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub tags: Vec<String>,
    /// Human-readable alias.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub alias: String,
    /// Unix seconds of the last update, as a string.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub last_updated: String,
    /// Deadline for ID-extractor cached identities.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub id_extractor_deadline: i64,
    /// Storage TTL in seconds; `0` = use the API's or persist.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub session_lifetime: i64,
    /// What happens to the stored session after expiry: `retain` or `delete`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub post_expiry_action: String,
    /// Seconds to retain after expiry with `retain` (`-1` = forever).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub post_expiry_grace_period: i64,
    /// Session-level rate-limit smoothing (Go pointer: present even when all-zero).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoothing: Option<RateLimitSmoothing>,
    /// Fields certgate does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One API in a session's `access_rights` (Tyk `user.AccessDefinition`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(default)]
pub struct AccessDefinition {
    /// API name, informational.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub api_name: String,
    /// API id (the map key).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub api_id: String,
    /// Allowed versions of a versioned (Classic) API.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub versions: Vec<String>,
    /// Path/method allow list; empty = everything.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub allowed_urls: Vec<AccessSpec>,
    /// GraphQL restricted types, kept opaque.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub restricted_types: Vec<Value>,
    /// GraphQL allowed types, kept opaque.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub allowed_types: Vec<Value>,
    /// Per-API limits; when non-empty they replace the session-level ones for this API.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub limit: ApiLimit,
    /// GraphQL field access rights, kept opaque.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub field_access_rights: Vec<Value>,
    /// GraphQL introspection disabled.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub disable_introspection: bool,
    /// Quota/rate counter scope (`quota-<scope>-<key>`).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub allowance_scope: String,
    /// Per-endpoint rate limits.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub endpoints: Vec<Endpoint>,
    /// Fields certgate does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An `allowed_urls` entry (Tyk `user.AccessSpec`); both fields are always written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(default)]
pub struct AccessSpec {
    /// Path regex.
    #[serde(deserialize_with = "nullable")]
    pub url: String,
    /// Allowed HTTP methods.
    #[serde(deserialize_with = "nullable")]
    pub methods: Vec<String>,
    /// Fields certgate does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Per-API rate limit and quota (Tyk `user.APILimit`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(default)]
pub struct ApiLimit {
    /// Requests allowed per `per` seconds.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    #[serde(serialize_with = "go_float")]
    pub rate: f64,
    /// Rate-limit interval in seconds.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    #[serde(serialize_with = "go_float")]
    pub per: f64,
    /// Rate-limit smoothing (Go pointer: present even when all-zero).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoothing: Option<RateLimitSmoothing>,
    /// Seconds between throttled retries.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    #[serde(serialize_with = "go_float")]
    pub throttle_interval: f64,
    /// Number of throttled retries.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub throttle_retry_limit: i64,
    /// GraphQL query depth limit.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub max_query_depth: i64,
    /// Requests per quota window; `<= 0` = unlimited.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub quota_max: i64,
    /// Unix time the quota window renews.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub quota_renews: i64,
    /// Requests left in the current window.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub quota_remaining: i64,
    /// Quota window length in seconds.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub quota_renewal_rate: i64,
    /// Fields certgate does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Rate-limit smoothing settings (Tyk `apidef.RateLimitSmoothing`); all fields always written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(default)]
pub struct RateLimitSmoothing {
    /// Smoothing active.
    #[serde(deserialize_with = "nullable")]
    pub enabled: bool,
    /// Request rate above which smoothing applies.
    #[serde(deserialize_with = "nullable")]
    pub threshold: i64,
    /// Fraction of `step` at which smoothing events trigger.
    #[serde(deserialize_with = "nullable", serialize_with = "go_float")]
    pub trigger: f64,
    /// Allowance increment/decrement.
    #[serde(deserialize_with = "nullable")]
    pub step: i64,
    /// Seconds between allowance changes.
    #[serde(deserialize_with = "nullable")]
    pub delay: i64,
    /// Fields certgate does not model (e.g. a stored `allowance`), kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Per-endpoint rate limits of one path (Tyk `user.Endpoint`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(default)]
pub struct Endpoint {
    /// Request path.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub path: String,
    /// Limits per method.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub methods: Vec<EndpointMethod>,
    /// Fields certgate does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The rate limit of one method on an endpoint (Tyk `user.EndpointMethod`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(default)]
pub struct EndpointMethod {
    /// HTTP method.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub name: String,
    /// The limit; always written (Go's `omitempty` does not apply to structs).
    #[serde(deserialize_with = "nullable")]
    pub limit: RateLimit,
    /// Fields certgate does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A plain rate limit (Tyk `user.RateLimit`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(default)]
pub struct RateLimit {
    /// Requests allowed per `per` seconds.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    #[serde(serialize_with = "go_float")]
    pub rate: f64,
    /// Interval in seconds.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    #[serde(serialize_with = "go_float")]
    pub per: f64,
    /// Rate-limit smoothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoothing: Option<RateLimitSmoothing>,
    /// Fields certgate does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Basic-auth credentials (Tyk `user.BasicAuthData`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(default)]
pub struct BasicAuthData {
    /// Password, plain or hashed per `hash_type`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub password: String,
    /// `""` (plain text), `bcrypt`, `sha256`, `murmur32`, `murmur64` or `murmur128`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub hash_type: String,
    /// Fields certgate does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// JWT settings of a key (Tyk `user.JWTData`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(default)]
pub struct JwtData {
    /// Shared secret.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub secret: String,
    /// Fields certgate does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Quota usage monitor (Tyk `user.Monitor`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(default)]
pub struct Monitor {
    /// Quota-usage percentages that fire a trigger event.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    #[serde(serialize_with = "go_floats")]
    pub trigger_limits: Vec<f64>,
    /// Fields certgate does not model, kept for the round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A session body that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Not JSON, not an object, or a field of the wrong type (message has line and column).
    #[error("invalid session JSON: {0}")]
    Json(#[from] serde_json::Error),
}

// === impl SessionState ===

impl SessionState {
    /// Decodes a session the way Tyk's `json.Unmarshal` would: a top-level `null` is an empty
    /// session, duplicate keys keep the last value, invalid UTF-8 becomes U+FFFD.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SessionError> {
        let text = String::from_utf8_lossy(bytes);
        match serde_json::from_str::<Option<Self>>(&text) {
            Ok(session) => Ok(session.unwrap_or_default()),
            Err(err) if err.is_data() => {
                // serde rejects duplicate fields where Go keeps the last one; a `Value` already
                // holds only the last, so a second, slower pass settles it. Any other data error
                // fails again there, and the first error (with its position) is reported.
                let value: Value = serde_json::from_str(&text)?;
                Ok(Option::<Self>::deserialize(value)
                    .map_err(|_| err)?
                    .unwrap_or_default())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Encodes the session as compact JSON, byte-compatible with Go's `json.Marshal` of Tyk's
    /// session for everything certgate models.
    pub fn to_json(&self) -> Vec<u8> {
        // Infallible: every map key is a string and every value serializable (NaN becomes null).
        let json = serde_json::to_vec(self).unwrap_or_default();
        go_html_escape(json)
    }

    /// Tyk's expiry check: `expires >= 1` and `now` is past it.
    pub fn is_expired(&self, now_unix: i64) -> bool {
        self.expires >= 1 && now_unix > self.expires
    }

    /// Session-level quota is unlimited (`quota_max <= 0`).
    pub fn quota_unlimited(&self) -> bool {
        self.quota_max <= 0
    }

    /// The limits that apply to `api_id`: the API's own `limit` when non-empty, else the
    /// session-level ones (Tyk `GetQuotaLimitByAPIID` and §5.3).
    pub fn effective_limit(&self, api_id: &str) -> ApiLimit {
        match self.access_rights.get(api_id) {
            Some(access) if !access.limit.is_empty() => access.limit.clone(),
            _ => ApiLimit {
                rate: self.rate,
                per: self.per,
                smoothing: self.smoothing.clone(),
                throttle_interval: self.throttle_interval,
                throttle_retry_limit: self.throttle_retry_limit,
                max_query_depth: self.max_query_depth,
                quota_max: self.quota_max,
                quota_renews: self.quota_renews,
                quota_remaining: self.quota_remaining,
                quota_renewal_rate: self.quota_renewal_rate,
                extra: Map::new(),
            },
        }
    }
}

// === impl ApiLimit ===

impl ApiLimit {
    /// Tyk's `APILimit.IsEmpty`: every number is zero (smoothing is not looked at).
    pub fn is_empty(&self) -> bool {
        self.rate == 0.0
            && self.per == 0.0
            && self.throttle_interval == 0.0
            && self.throttle_retry_limit == 0
            && self.max_query_depth == 0
            && self.quota_max == 0
            && self.quota_renews == 0
            && self.quota_remaining == 0
            && self.quota_renewal_rate == 0
    }

    /// Quota is unlimited (`quota_max <= 0`).
    pub fn quota_unlimited(&self) -> bool {
        self.quota_max <= 0
    }
}

// === Go encoding/json helpers ===

/// Go's zero-value test for `omitzero`/`omitempty`. For the nested structs, equal to the
/// default means nothing at all would be lost, `extra` included (Go would also drop a limit
/// holding only `smoothing`; certgate keeps it).
fn is_zero<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Go leaves a field untouched when the JSON value is `null`; here that means its default.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A Go `time.Time`: `null` or an RFC 3339 string (not even `""` otherwise), kept as given.
fn go_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(String::new());
    };
    parse_rfc3339(&text).map_err(|e| {
        serde::de::Error::custom(format!("date_created {text:?} is not RFC 3339: {e}"))
    })?;
    Ok(text)
}

fn parse_rfc3339(text: &str) -> Result<time::OffsetDateTime, time::error::Parse> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
}

/// Go's `time.Time.IsZero`: January 1, year 1, 00:00:00 UTC (an empty string counts too).
fn is_zero_time(text: &str) -> bool {
    /// Unix time of 0001-01-01T00:00:00Z.
    const GO_ZERO_TIME: i64 = -62_135_596_800;
    text.is_empty()
        || parse_rfc3339(text)
            .is_ok_and(|t| t.unix_timestamp() == GO_ZERO_TIME && t.nanosecond() == 0)
}

/// Writes an `f64` as Go does for the values that occur in sessions: integral values without a
/// fractional part (`1`, not `1.0`).
fn go_float<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    let v = *value;
    // 2^63 bounds the i64 conversion; larger integral floats keep serde's notation.
    if v.fract() == 0.0 && v.abs() < 9.223_372_036_854_775e18 {
        serializer.serialize_i64(v as i64)
    } else {
        serializer.serialize_f64(v)
    }
}

/// [`go_float`] for each element.
fn go_floats<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
    struct GoFloat(f64);
    impl Serialize for GoFloat {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            go_float(&self.0, serializer)
        }
    }
    serializer.collect_seq(values.iter().map(|v| GoFloat(*v)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A session as a current Tyk writes it (zero values omitted, Go field order), plus fields
    /// certgate does not model: at the top level, inside an access definition and its limit.
    const TYK_SESSION: &str = concat!(
        r#"{"allowance":1000,"rate":1000,"per":60,"throttle_interval":-1,"throttle_retry_limit":-1,"#,
        r#""max_query_depth":-1,"date_created":"2024-03-13T03:56:46.568042549Z","expires":1712895619,"#,
        r#""quota_max":-1,"quota_renews":1710302205,"quota_remaining":-1,"quota_renewal_rate":-1,"#,
        r#""access_rights":{"itachi-api":{"api_name":"Itachi api","api_id":"itachi-api","#,
        r#""versions":["Default"],"allowed_urls":[{"url":"^/users/[0-9]+$","methods":["GET","PUT"]}],"#,
        r#""limit":{"rate":10,"per":1.5,"quota_max":100,"quota_renewal_rate":3600,"burst":3},"#,
        r#""allowance_scope":"itachi-api","endpoints":[{"path":"/anything","methods":"#,
        r#"[{"name":"GET","limit":{"rate":5,"per":60}},{"name":"POST","limit":{}}]}],"#,
        r#""mcp_access_rights":{"tools":{"allowed":["search"]}}}},"#,
        r#""org_id":"default","#,
        r#""certificate":"default9881c574b7bd2fc356fdd7e46e6dc1eec91222b8e775c6092772854ab84f80e3","#,
        r#""monitor":{"trigger_limits":[80,60.5]},"meta_data":{"tyk_developer_id":"62b3fb9a1d5e"},"#,
        r#""tags":["edge","edge-eu"],"alias":"portal-developer@example.org","#,
        r#""last_updated":"1710302206","#,
        r#""smoothing":{"enabled":true,"threshold":500,"trigger":0.5,"step":100,"delay":30},"#,
        r#""future_field":{"a":[1,2.5,null]},"another_new":true}"#
    );

    fn session(json: &str) -> SessionState {
        SessionState::from_json(json.as_bytes()).unwrap()
    }

    fn error(json: &str) -> String {
        SessionState::from_json(json.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn zero_values_are_omitted() {
        assert_eq!(SessionState::default().to_json(), b"{}");
        let s = session(r#"{"org_id":"default"}"#);
        assert_eq!(s.to_json(), br#"{"org_id":"default"}"#);

        // An older Tyk wrote every field; zeros, nulls and Go's zero time all disappear.
        let old = session(concat!(
            r#"{"last_check":0,"allowance":0,"rate":0,"per":0,"throttle_interval":0,"#,
            r#""throttle_retry_limit":0,"max_query_depth":0,"date_created":"0001-01-01T00:00:00Z","#,
            r#""expires":0,"quota_max":0,"quota_renews":0,"quota_remaining":0,"#,
            r#""quota_renewal_rate":0,"access_rights":null,"org_id":"default","#,
            r#""oauth_client_id":"","oauth_keys":null,"certificate":"","#,
            r#""basic_auth_data":{"password":"","hash_type":""},"jwt_data":{"secret":""},"#,
            r#""hmac_enabled":false,"enable_http_signature_validation":false,"hmac_string":"","#,
            r#""rsa_certificate_id":"","is_inactive":false,"apply_policy_id":"","#,
            r#""apply_policies":null,"data_expires":0,"monitor":{"trigger_limits":null},"#,
            r#""enable_detailed_recording":false,"meta_data":{},"tags":[],"alias":"","#,
            r#""last_updated":"","id_extractor_deadline":0,"session_lifetime":0,"smoothing":null}"#
        ));
        assert_eq!(old.to_json(), br#"{"org_id":"default"}"#);

        // All-zero nested limits are omitted; an entry's url and methods are always written.
        let s = session(
            r#"{"access_rights":{"a":{"api_id":"a","limit":{"rate":0,"per":0,"quota_max":0},
                "allowed_urls":[{"url":"","methods":null}],"versions":[]}}}"#,
        );
        assert_eq!(
            s.to_json(),
            br#"{"access_rights":{"a":{"api_id":"a","allowed_urls":[{"url":"","methods":[]}]}}}"#
        );
    }

    #[test]
    fn tyk_session_round_trips_with_unknown_fields() {
        let s = session(TYK_SESSION);
        assert_eq!(s.extra["another_new"], json!(true));
        assert_eq!(s.extra["future_field"], json!({"a": [1, 2.5, null]}));
        let api = &s.access_rights["itachi-api"];
        assert!(api.extra.contains_key("mcp_access_rights"));
        assert_eq!(api.limit.extra["burst"], json!(3));
        // Known fields in Go order and unknown ones after them: the bytes come back unchanged.
        assert_eq!(String::from_utf8(s.to_json()).unwrap(), TYK_SESSION);
        assert_eq!(session(std::str::from_utf8(&s.to_json()).unwrap()), s);
    }

    #[test]
    fn round_trip_preserves_content_regardless_of_order() {
        let input = json!({
            "zzz_unknown": [1, {"b": 2}],
            "tags": ["t"],
            "rate": 2.5,
            "org_id": "o",
            "access_rights": {"b": {"api_id": "b", "new_thing": 1}, "a": {"api_id": "a"}},
            "basic_auth_data": {"password": "p", "hash_type": "bcrypt", "salt": "x"},
            "jwt_data": {"secret": "s"},
            "oauth_keys": {"c2": "k2", "c1": "k1"},
            "post_expiry_action": "retain",
            "post_expiry_grace_period": -1,
            "mtls_static_certificate_bindings": ["default00ff"],
        });
        let s = session(&input.to_string());
        let output: Value = serde_json::from_slice(&s.to_json()).unwrap();
        assert_eq!(output, input);
        // Maps come out sorted, like Go's encoder writes them.
        let text = String::from_utf8(s.to_json()).unwrap();
        assert!(text.find(r#""a":{"#) < text.find(r#""b":{"#));
        assert!(text.find(r#""c1""#) < text.find(r#""c2""#));
    }

    #[test]
    fn certificate_session_with_access_rights() {
        let s = session(TYK_SESSION);
        assert_eq!(s.org_id, "default");
        assert!(s.certificate.starts_with("default9881c574"));
        let api = &s.access_rights["itachi-api"];
        assert_eq!(api.api_id, "itachi-api");
        assert_eq!(api.versions, ["Default"]);
        assert_eq!(api.allowed_urls[0].url, "^/users/[0-9]+$");
        assert_eq!(api.allowed_urls[0].methods, ["GET", "PUT"]);
        assert_eq!(api.limit.rate, 10.0);
        assert_eq!(api.limit.per, 1.5);
        assert_eq!(api.limit.quota_max, 100);
        assert_eq!(api.endpoints[0].methods[0].limit.per, 60.0);
        assert_eq!(s.smoothing.as_ref().map(|sm| sm.trigger), Some(0.5));
        assert_eq!(s.monitor.trigger_limits, [80.0, 60.5]);

        // The API's own limit wins; an unknown API falls back to the session's.
        assert_eq!(s.effective_limit("itachi-api").quota_max, 100);
        let fallback = s.effective_limit("other");
        assert_eq!(
            (fallback.rate, fallback.per, fallback.quota_max),
            (1000.0, 60.0, -1)
        );
        assert!(fallback.quota_unlimited());
        assert!(!s.effective_limit("itachi-api").quota_unlimited());
    }

    #[test]
    fn wrong_types_are_rejected_with_position() {
        for (json, needle) in [
            (r#"{"rate":"1"}"#, "expected f64"),
            (r#"{"quota_max":1.5}"#, "expected i64"),
            (r#"{"expires":1e3}"#, "expected i64"),
            (r#"{"expires":9223372036854775808}"#, "expected i64"),
            (r#"{"org_id":5}"#, "expected a string"),
            (r#"{"is_inactive":"true"}"#, "expected a boolean"),
            (r#"{"tags":"a"}"#, "expected a sequence"),
            (r#"{"access_rights":[]}"#, "expected a map"),
            (
                r#"{"access_rights":{"a":{"limit":{"per":"1"}}}}"#,
                "expected f64",
            ),
            (
                r#"{"access_rights":{"a":{"allowed_urls":[{"methods":"GET"}]}}}"#,
                "sequence",
            ),
            (r#"{"meta_data":[]}"#, "expected a map"),
            (r#"{"date_created":"yesterday"}"#, "not RFC 3339"),
            (r#"{"date_created":1}"#, "expected a string"),
            (r#"{"date_created":""}"#, "not RFC 3339"),
            (r#"{"smoothing":{"threshold":"x"}}"#, "expected i64"),
        ] {
            let message = error(json);
            assert!(message.contains(needle), "{json}: {message}");
            assert!(message.contains("line 1 column"), "{json}: {message}");
        }
        for json in ["", "[]", r#""x""#, "{", r#"{"org_id":"a"} x"#, "{\"a\":1,}"] {
            assert!(
                SessionState::from_json(json.as_bytes()).is_err(),
                "{json:?}"
            );
        }
    }

    #[test]
    fn lenient_like_go() {
        // Missing fields, `null` anywhere a field is, and a top-level `null`.
        assert_eq!(session("null"), SessionState::default());
        assert_eq!(session(" {} "), SessionState::default());
        let s = session(r#"{"rate":null,"org_id":null,"access_rights":{"a":{"limit":null}}}"#);
        assert_eq!(s.access_rights["a"], AccessDefinition::default());
        // Integers are fine for floats; the last of duplicate keys wins, at any depth.
        let s = session(
            r#"{"rate":5,"org_id":"a","org_id":"b","monitor":{"trigger_limits":[1],"trigger_limits":[2]}}"#,
        );
        assert_eq!((s.rate, s.org_id.as_str()), (5.0, "b"));
        assert_eq!(s.monitor.trigger_limits, [2.0]);
        // Invalid UTF-8 is replaced, as Go does.
        let s = SessionState::from_json(b"{\"alias\":\"a\xffb\"}").unwrap();
        assert_eq!(s.alias, "a\u{fffd}b");
    }

    #[test]
    fn written_like_go_encoding_json() {
        let s = SessionState {
            rate: 1.0,
            per: 0.25,
            allowance: -3.0,
            alias: "<a & b>\u{2028}é".into(),
            monitor: Monitor {
                trigger_limits: vec![80.0, 0.5],
                ..Monitor::default()
            },
            smoothing: Some(RateLimitSmoothing::default()),
            ..SessionState::default()
        };
        let text = String::from_utf8(s.to_json()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"allowance":-3,"rate":1,"per":0.25,"#,
                r#""monitor":{"trigger_limits":[80,0.5]},"#,
                r#""alias":"\u003ca \u0026 b\u003e\u2028é","#,
                r#""smoothing":{"enabled":false,"threshold":0,"trigger":0,"step":0,"delay":0}}"#
            )
        );
        assert_eq!(session(&text), s);
    }

    #[test]
    fn expiry_and_quota_helpers() {
        let mut s = SessionState::default();
        assert!(!s.is_expired(i64::MAX));
        s.expires = -5;
        assert!(!s.is_expired(i64::MAX));
        s.expires = 1000;
        assert!(!s.is_expired(999));
        assert!(!s.is_expired(1000));
        assert!(s.is_expired(1001));

        assert!(s.quota_unlimited());
        s.quota_max = -1;
        assert!(s.quota_unlimited());
        s.quota_max = 10;
        assert!(!s.quota_unlimited());
    }

    #[test]
    fn api_limit_emptiness_follows_tyk() {
        let mut limit = ApiLimit::default();
        assert!(limit.is_empty());
        // Tyk's IsEmpty ignores smoothing, but certgate still writes it out.
        limit.smoothing = Some(RateLimitSmoothing::default());
        assert!(limit.is_empty());
        assert!(!is_zero(&limit));
        limit.quota_renews = 1;
        assert!(!limit.is_empty());
    }

    /// Found by the `session_json` fuzz target: a large number in a field certgate keeps
    /// as-is drifted by one ULP per decode/encode round (serde_json's default float
    /// parser is not exact; Go's is). A session must read back exactly as written.
    #[test]
    fn numbers_survive_any_number_of_round_trips() {
        let input =
            br#"{"rate":5,"pemax":100333323666666666666,"per":0.1,"x":1.0033332366666664e20}"#;
        let once = SessionState::from_json(input).unwrap().to_json();
        let twice = SessionState::from_json(&once).unwrap().to_json();
        assert_eq!(
            String::from_utf8_lossy(&once),
            String::from_utf8_lossy(&twice)
        );
    }
}
