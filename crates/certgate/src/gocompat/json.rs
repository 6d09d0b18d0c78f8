//! Go's JSON escaping: `json.Encoder` for Gateway API bodies, `json.Marshal`'s HTML escaping
//! for stored sessions, and the escaping of Tyk's JSON error template.

use serde::Serialize;

/// Serialises a Gateway API body as Go's `json.Encoder` does: compact, `<>&` escaped
/// (also U+2028/U+2029), one trailing newline.
pub fn go_json<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let s = serde_json::to_string(v).unwrap_or_else(|_| String::from("null"));
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out.into_bytes()
}

/// Go's `json.Marshal` escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings. In JSON text
/// these can only occur inside strings, so a byte-level pass is exact.
pub(crate) fn go_html_escape(json: Vec<u8>) -> Vec<u8> {
    // 0xe2 starts U+2028/U+2029 (and other characters); a cheap over-approximation.
    if !json.iter().any(|b| matches!(b, b'<' | b'>' | b'&' | 0xe2)) {
        return json;
    }
    let mut out = Vec::with_capacity(json.len() + 16);
    let mut i = 0;
    while i < json.len() {
        match json[i..] {
            [b'<', ..] => out.extend_from_slice(b"\\u003c"),
            [b'>', ..] => out.extend_from_slice(b"\\u003e"),
            [b'&', ..] => out.extend_from_slice(b"\\u0026"),
            [0xe2, 0x80, 0xa8, ..] => {
                out.extend_from_slice(b"\\u2028");
                i += 2;
            }
            [0xe2, 0x80, 0xa9, ..] => {
                out.extend_from_slice(b"\\u2029");
                i += 2;
            }
            [b, ..] => out.push(b),
            [] => break,
        }
        i += 1;
    }
    out
}

/// Escapes a message as Tyk's template does: `"`, `\` and control characters only.
pub(crate) fn escape_json_template(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_escapes_like_go() {
        let v = serde_json::json!({"status": "error", "message": "<a> & b"});
        assert_eq!(
            go_json(&v),
            b"{\"status\":\"error\",\"message\":\"\\u003ca\\u003e \\u0026 b\"}\n"
        );
    }
}
