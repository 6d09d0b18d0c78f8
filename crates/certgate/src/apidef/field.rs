//! Typed reads out of a `serde_json::Value`, with errors that name the field.
//!
//! Both flavours are parsed over `Value` rather than through `#[derive(Deserialize)]` structs so
//! that unknown fields survive untouched in the stored JSON, and so that a wrong type is reported
//! as `proxy.listen_path must be a string` instead of a serde position. `null` counts as absent,
//! as it does for Go's `encoding/json` decoding into Tyk's structs.

use serde_json::{Map, Value};

use super::ApiDefError;

/// Parses request or file bytes as JSON, keeping serde's position in the error.
pub(super) fn parse_json(bytes: &[u8]) -> Result<Value, ApiDefError> {
    serde_json::from_slice(bytes).map_err(|e| ApiDefError::InvalidJson {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    })
}

/// One JSON object and its dotted path in the document (`""` for the document root).
#[derive(Clone, Copy)]
pub(super) struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

/// An owned path plus the object it names; `Fields` borrows from it.
pub(super) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    /// The document root, which must be an object.
    pub(super) fn root(value: &'a Value) -> Result<Self, ApiDefError> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                path: String::new(),
            }),
            _ => Err(ApiDefError::WrongType {
                field: "API definition".to_owned(),
                expected: "a JSON object",
            }),
        }
    }

    /// The value at `path`, which must be an object.
    pub(super) fn at(value: &'a Value, path: String) -> Result<Self, ApiDefError> {
        match value {
            Value::Object(map) => Ok(Self { map, path }),
            _ => Err(ApiDefError::WrongType {
                field: path,
                expected: "an object",
            }),
        }
    }

    /// Borrows this object for reading.
    pub(super) fn fields(&self) -> Fields<'_> {
        Fields {
            map: self.map,
            path: &self.path,
        }
    }
}

impl<'a> Fields<'a> {
    /// The dotted path of `key` inside this object.
    pub(super) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The path of this object as Tyk's schema validator prints it (`(root)` for the root).
    fn parent_name(&self) -> String {
        if self.path.is_empty() {
            "(root)".to_owned()
        } else {
            self.path.to_owned()
        }
    }

    /// The raw value under `key`, `None` when absent or `null`.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Whether `key` is present and not `null`.
    pub(super) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The keys of this object, in document order.
    pub(super) fn keys(&self) -> impl Iterator<Item = &'a String> {
        self.map.keys()
    }

    fn wrong(&self, key: &str, expected: &'static str) -> ApiDefError {
        ApiDefError::WrongType {
            field: self.path_of(key),
            expected,
        }
    }

    fn missing(&self, key: &str) -> ApiDefError {
        ApiDefError::MissingField {
            parent: self.parent_name(),
            name: key.to_owned(),
        }
    }

    /// An optional string.
    pub(super) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ApiDefError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    /// A string, `""` when absent.
    pub(super) fn string(&self, key: &str) -> Result<String, ApiDefError> {
        Ok(self.opt_str(key)?.unwrap_or_default().to_owned())
    }

    /// A string that must be present.
    pub(super) fn req_str(&self, key: &str) -> Result<&'a str, ApiDefError> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional boolean.
    pub(super) fn opt_bool(&self, key: &str) -> Result<Option<bool>, ApiDefError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(key, "a boolean")),
        }
    }

    /// A boolean, `false` when absent.
    pub(super) fn bool(&self, key: &str) -> Result<bool, ApiDefError> {
        Ok(self.opt_bool(key)?.unwrap_or(false))
    }

    /// A boolean that must be present.
    pub(super) fn req_bool(&self, key: &str) -> Result<bool, ApiDefError> {
        self.opt_bool(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional integer; fractions and values outside `i64` are type errors (as in Go).
    pub(super) fn opt_i64(&self, key: &str) -> Result<Option<i64>, ApiDefError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "an integer")),
        }
    }

    /// A number, `0` when absent.
    pub(super) fn f64(&self, key: &str) -> Result<f64, ApiDefError> {
        match self.get(key) {
            None => Ok(0.0),
            Some(v) => v.as_f64().ok_or_else(|| self.wrong(key, "a number")),
        }
    }

    /// An optional nested object.
    pub(super) fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, ApiDefError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj {
                map,
                path: self.path_of(key),
            })),
            Some(_) => Err(self.wrong(key, "an object")),
        }
    }

    /// A nested object that must be present.
    pub(super) fn req_obj(&self, key: &str) -> Result<Obj<'a>, ApiDefError> {
        self.opt_obj(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional array (of anything).
    pub(super) fn opt_array(&self, key: &str) -> Result<Option<&'a [Value]>, ApiDefError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(self.wrong(key, "an array")),
        }
    }

    /// An array of strings, empty when absent.
    pub(super) fn str_list(&self, key: &str) -> Result<Vec<String>, ApiDefError> {
        let Some(items) = self.opt_array(key)? else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(self.wrong(key, "an array of strings")),
            })
            .collect()
    }

    /// An optional duration in Go's `time.ParseDuration` syntax (`"1h30m"`, `"1.5s"`), in seconds.
    pub(super) fn opt_duration(&self, key: &str) -> Result<Option<f64>, ApiDefError> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(text) => parse_go_duration(text)
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a duration such as \"1h30m\"")),
        }
    }
}

/// Parses Go's duration syntax (as Tyk's `ReadableDuration` does) into seconds.
///
/// `""` and `"0"` are zero; otherwise one or more `<decimal><unit>` groups with units `ns`,
/// `us`, `µs`, `ms`, `s`, `m`, `h`, optionally signed. Returns `None` on anything else.
pub(super) fn parse_go_duration(text: &str) -> Option<f64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest.is_empty() {
        // Tyk treats an empty value as zero; a bare sign is not a duration.
        return (text.is_empty()).then_some(0.0);
    }
    if rest == "0" {
        return Some(0.0);
    }
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = next;
    }
    Some(if negative { -total } else { total })
}
