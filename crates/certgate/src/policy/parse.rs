//! Reading a policy document (Tyk's `user.Policy` JSON) with Go's `encoding/json` typing:
//! a missing field or `null` is the zero value, numbers must fit the Go type (`int64` fields take
//! integers only), and a value of the wrong JSON type is an error naming the field.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Partitions, Policy, PolicyError};
use crate::session::{AccessDefinition, RateLimitSmoothing};

/// Field names read into [`Policy`]; anything else goes to [`Policy::extra`].
pub(super) const KNOWN_FIELDS: &[&str] = &[
    "_id",
    "id",
    "name",
    "org_id",
    "rate",
    "per",
    "quota_max",
    "quota_renewal_rate",
    "throttle_interval",
    "throttle_retry_limit",
    "max_query_depth",
    "access_rights",
    "hmac_enabled",
    "enable_http_signature_validation",
    "active",
    "is_inactive",
    "tags",
    "key_expires_in",
    "post_expiry_action",
    "post_expiry_grace_period",
    "partitions",
    "last_updated",
    "meta_data",
    "smoothing",
];

/// Parses a policy from a policy file or a Gateway API body, in Tyk's JSON format.
///
/// The id is `id`, or when that is empty the legacy MongoDB `_id` (24 hex digits, also as
/// `{"$oid": …}`); a policy with neither is invalid. Errors name the offending field.
pub fn parse_policy(value: &Value) -> Result<Policy, PolicyError> {
    if !value.is_object() {
        return Err(PolicyError::Invalid {
            id: String::new(),
            reason: format!("a policy must be a JSON object, found {}", describe(value)),
        });
    }
    let policy = parse_fields(value)?;
    if policy.id.is_empty() {
        return Err(PolicyError::Invalid {
            id: String::new(),
            reason: "the policy has neither an `id` nor an `_id`".to_owned(),
        });
    }
    Ok(policy)
}

/// Reads every field; `null` is an empty policy and no id is required (Tyk's custom policies).
pub(super) fn parse_fields(value: &Value) -> Result<Policy, PolicyError> {
    let obj = match value {
        Value::Null => return Ok(Policy::default()),
        Value::Object(obj) => obj,
        other => {
            return Err(PolicyError::Invalid {
                id: String::new(),
                reason: format!("a policy must be a JSON object, found {}", describe(other)),
            })
        }
    };
    // The id first, so every later message can name the policy.
    let mut fields = Fields {
        obj,
        id: match obj.get("id") {
            Some(Value::String(id)) => id.clone(),
            _ => String::new(),
        },
    };
    let id = fields.string("id")?;
    let mid = fields.object_id("_id")?;
    fields.id = if id.is_empty() { mid.clone() } else { id };

    Ok(Policy {
        id: fields.id.clone(),
        mid,
        name: fields.string("name")?,
        org_id: fields.string("org_id")?,
        rate: fields.float("rate")?,
        per: fields.float("per")?,
        quota_max: fields.int("quota_max")?,
        quota_renewal_rate: fields.int("quota_renewal_rate")?,
        throttle_interval: fields.float("throttle_interval")?,
        throttle_retry_limit: fields.int("throttle_retry_limit")?,
        max_query_depth: fields.int("max_query_depth")?,
        access_rights: fields.access_rights()?,
        hmac_enabled: fields.boolean("hmac_enabled")?,
        enable_http_signature_validation: fields.boolean("enable_http_signature_validation")?,
        active: fields.boolean("active")?,
        is_inactive: fields.boolean("is_inactive")?,
        tags: fields.strings("tags")?,
        key_expires_in: fields.int("key_expires_in")?,
        post_expiry_action: fields.string("post_expiry_action")?,
        post_expiry_grace_period: fields.int("post_expiry_grace_period")?,
        partitions: fields.partitions()?,
        last_updated: fields.string("last_updated")?,
        meta_data: fields.map("meta_data")?,
        smoothing: fields.smoothing()?,
        extra: obj
            .iter()
            .filter(|(name, _)| !KNOWN_FIELDS.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    })
}

/// A short description of a JSON value for messages: its type and (abbreviated) text.
pub(super) fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_owned(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let text = value.to_string();
    let text = match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    };
    format!("{kind} {text}")
}

/// Typed access to the fields of one policy object.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    id: String,
}

impl Fields<'_> {
    /// The field's value, `None` when missing or `null` (Go leaves the zero value).
    fn get(&self, name: &str) -> Option<&Value> {
        self.obj.get(name).filter(|value| !value.is_null())
    }

    fn invalid(&self, field: &str, expected: &str, found: &Value) -> PolicyError {
        PolicyError::Invalid {
            id: self.id.clone(),
            reason: format!("`{field}` must be {expected}, found {}", describe(found)),
        }
    }

    fn string(&self, name: &str) -> Result<String, PolicyError> {
        match self.get(name) {
            None => Ok(String::new()),
            Some(Value::String(text)) => Ok(text.clone()),
            Some(other) => Err(self.invalid(name, "a string", other)),
        }
    }

    fn float(&self, name: &str) -> Result<f64, PolicyError> {
        match self.get(name) {
            None => Ok(0.0),
            // Without serde_json's arbitrary precision every number has an f64 value.
            Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(0.0)),
            Some(other) => Err(self.invalid(name, "a number", other)),
        }
    }

    fn int(&self, name: &str) -> Result<i64, PolicyError> {
        match self.get(name) {
            None => Ok(0),
            Some(value) => value
                .as_i64()
                .ok_or_else(|| self.invalid(name, "a 64-bit integer", value)),
        }
    }

    fn boolean(&self, name: &str) -> Result<bool, PolicyError> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(other) => Err(self.invalid(name, "true or false", other)),
        }
    }

    /// A list of strings; a `null` element is `""`, as Go decodes it.
    fn strings(&self, name: &str) -> Result<Vec<String>, PolicyError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Null => Ok(String::new()),
                    Value::String(text) => Ok(text.clone()),
                    other => Err(self.invalid(&format!("{name}[{i}]"), "a string", other)),
                })
                .collect(),
            Some(other) => Err(self.invalid(name, "an array of strings", other)),
        }
    }

    fn map(&self, name: &str) -> Result<Map<String, Value>, PolicyError> {
        match self.get(name) {
            None => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map.clone()),
            Some(other) => Err(self.invalid(name, "an object", other)),
        }
    }

    /// A MongoDB object id: `""`/`null`, 24 hex digits, or `{"$oid": "<24 hex digits>"}`.
    fn object_id(&self, name: &str) -> Result<String, PolicyError> {
        let text = match self.get(name) {
            None => return Ok(String::new()),
            Some(Value::String(text)) => text,
            Some(Value::Object(ext)) => match ext.get("$oid") {
                Some(Value::String(text)) => text,
                _ => return Err(self.invalid(name, "an object id", &Value::Object(ext.clone()))),
            },
            Some(other) => return Err(self.invalid(name, "an object id", other)),
        };
        if text.is_empty() {
            return Ok(String::new());
        }
        if text.len() != 24 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.invalid(
                name,
                "an object id (24 hex digits)",
                &Value::String(text.clone()),
            ));
        }
        Ok(text.to_ascii_lowercase())
    }

    fn access_rights(&self) -> Result<BTreeMap<String, AccessDefinition>, PolicyError> {
        let rights = match self.get("access_rights") {
            None => return Ok(BTreeMap::new()),
            Some(Value::Object(rights)) => rights,
            Some(other) => return Err(self.invalid("access_rights", "an object", other)),
        };
        rights
            .iter()
            .map(|(api_id, access)| {
                let access = match access {
                    Value::Null => AccessDefinition::default(),
                    Value::Object(_) => AccessDefinition::deserialize(access).map_err(|err| {
                        PolicyError::Invalid {
                            id: self.id.clone(),
                            reason: format!("`access_rights.{api_id}`: {err}"),
                        }
                    })?,
                    other => {
                        return Err(self.invalid(
                            &format!("access_rights.{api_id}"),
                            "an object",
                            other,
                        ))
                    }
                };
                Ok((api_id.clone(), access))
            })
            .collect()
    }

    fn partitions(&self) -> Result<Partitions, PolicyError> {
        let parts = match self.get("partitions") {
            None => return Ok(Partitions::default()),
            Some(Value::Object(parts)) => parts,
            Some(other) => return Err(self.invalid("partitions", "an object", other)),
        };
        let flag = |name: &str| match parts.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(other) => Err(self.invalid(&format!("partitions.{name}"), "true or false", other)),
        };
        Ok(Partitions {
            quota: flag("quota")?,
            rate_limit: flag("rate_limit")?,
            complexity: flag("complexity")?,
            acl: flag("acl")?,
            per_api: flag("per_api")?,
        })
    }

    fn smoothing(&self) -> Result<Option<RateLimitSmoothing>, PolicyError> {
        match self.get("smoothing") {
            None => Ok(None),
            Some(value @ Value::Object(_)) => RateLimitSmoothing::deserialize(value)
                .map(Some)
                .map_err(|err| PolicyError::Invalid {
                    id: self.id.clone(),
                    reason: format!("`smoothing`: {err}"),
                }),
            Some(other) => Err(self.invalid("smoothing", "an object", other)),
        }
    }
}
