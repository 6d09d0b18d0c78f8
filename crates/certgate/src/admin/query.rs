//! The query string as Go's `r.URL.Query().Get` reads it: the first value of a repeated
//! parameter wins, `+` is a space, and a parameter that does not decode is skipped.
//! axum's own `Query` refused repeated parameters with a plain-text 400 that no Tyk
//! client expects (found by the schemathesis conformance run).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ApiError;

/// Extracts `T` (a struct of `Option<String>` fields) from the query string.
pub(crate) struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let map = first_values(parts.uri.query().unwrap_or(""));
        serde_json::from_value(Value::Object(map))
            .map(Query)
            .map_err(|e| ApiError::bad_request(format!("Malformed query string: {e}")))
    }
}

fn decode(s: &str) -> Option<String> {
    let plus = s.replace('+', " ");
    let b = plus.as_bytes();
    // Go's url.ParseQuery refuses a `%` not followed by two hex digits.
    for (i, _) in plus.match_indices('%') {
        let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
        if !(hex(i + 1) && hex(i + 2)) {
            return None;
        }
    }
    Some(
        percent_encoding::percent_decode_str(&plus)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

fn first_values(query: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (decode(k), decode(v)) else {
            continue;
        };
        map.entry(k).or_insert(Value::String(v));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_and_bad_pairs_are_skipped() {
        let m = first_values("hashed=1&hashed=&a+b=c%20d&bad=%zz&bad=ok&&flag");
        assert_eq!(m["hashed"], "1");
        assert_eq!(m["a b"], "c d");
        assert_eq!(m["bad"], "ok");
        assert_eq!(m["flag"], "");
    }
}
