//! Tyk's StripAuth (`strip_auth_data`): after authentication, the credential is removed
//! before the request is proxied — the auth headers, the auth query parameters and the auth
//! cookies of every auth config of the API ([`AuthStrip`]).

use std::borrow::Cow;

use http::HeaderMap;

use crate::apidef::AuthStrip;

/// Removes what `strip` names from `headers` and `query`; returns the query to forward.
/// Every other query pair is kept byte for byte, in order (Tyk re-encodes and sorts the
/// whole query); a query left empty is dropped.
pub fn apply<'q>(
    strip: &AuthStrip,
    headers: &mut HeaderMap,
    query: Option<&'q str>,
) -> Option<Cow<'q, str>> {
    for name in &strip.headers {
        headers.remove(name);
    }
    for name in &strip.cookies {
        crate::proxy::strip_cookie(headers, name);
    }
    let query = query?;
    let stripped = strip_params(query, &strip.params);
    (!stripped.is_empty()).then_some(stripped)
}

/// `query` without the pairs whose decoded name (as the token lookup decodes it) is one
/// of `names`.
fn strip_params<'q>(query: &'q str, names: &[String]) -> Cow<'q, str> {
    let hit = |pair: &str| {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        !key.is_empty() && {
            let key = super::decode_query_component(key);
            names.iter().any(|n| *n == key)
        }
    };
    if names.is_empty() || !query.split('&').any(hit) {
        return Cow::Borrowed(query);
    }
    let kept: Vec<&str> = query.split('&').filter(|p| !hit(p)).collect();
    Cow::Owned(kept.join("&"))
}

#[cfg(test)]
mod tests {
    use http::header::{HeaderValue, AUTHORIZATION, COOKIE};

    use super::*;

    fn strip(params: &[&str], cookies: &[&str]) -> AuthStrip {
        AuthStrip {
            headers: vec![AUTHORIZATION, http::HeaderName::from_static("x-key")],
            params: params.iter().map(|s| s.to_string()).collect(),
            cookies: cookies.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn params_go_and_the_rest_of_the_query_stays_byte_for_byte() {
        let s = strip(&["key", "Authorization"], &[]);
        let mut h = HeaderMap::new();
        let q = |q| apply(&s, &mut HeaderMap::new(), Some(q)).map(Cow::into_owned);
        assert_eq!(
            q("b=%2F2&key=secret&a=1+2&&key&k%65y=x&Authorization=t&z=%zz"),
            Some("b=%2F2&a=1+2&&z=%zz".to_owned())
        );
        assert_eq!(q("key=secret"), None);
        assert_eq!(
            q("keys=1&xkey=2&KEY=3"),
            Some("keys=1&xkey=2&KEY=3".to_owned())
        );
        // Untouched queries are not copied.
        assert!(matches!(
            apply(&s, &mut h, Some("a=1")),
            Some(Cow::Borrowed("a=1"))
        ));
        assert_eq!(apply(&s, &mut h, None), None);
        // A name with a space matches both encodings of it.
        let s = strip(&["my key"], &[]);
        let q = |q| apply(&s, &mut HeaderMap::new(), Some(q)).map(Cow::into_owned);
        assert_eq!(q("my+key=1&my%20key=2&a=b"), Some("a=b".to_owned()));
    }

    #[test]
    fn headers_and_cookies_go_other_cookies_stay() {
        let s = strip(&[], &["Authorization", "sid"]);
        let mut h = HeaderMap::new();
        h.append(AUTHORIZATION, HeaderValue::from_static("a"));
        h.append(AUTHORIZATION, HeaderValue::from_static("b"));
        h.insert("x-key", HeaderValue::from_static("k"));
        h.insert("x-other", HeaderValue::from_static("o"));
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; sid=s; Authorization=t; sidx=2"),
        );
        h.append(COOKIE, HeaderValue::from_static("sid=again"));
        apply(&s, &mut h, None);
        assert!(h.get(AUTHORIZATION).is_none());
        assert!(h.get("x-key").is_none());
        assert_eq!(h["x-other"], "o");
        let cookies: Vec<&str> = h
            .get_all(COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(cookies, ["a=1; sidx=2"]);
    }
}
