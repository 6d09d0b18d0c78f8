//! Go-compatible encoders, in one place: what Tyk's Go code writes byte for byte (and what
//! certgate must read back the way Go does).
//!
//! - [`GO_STD_BASE64`]: Go's `base64.StdEncoding` (tokens, PEM bodies).
//! - [`json`]: Go's JSON escaping (`json.Encoder`, `json.Marshal`'s HTML escaping) and Tyk's
//!   error-template escaping.
//! - [`pem`]: Go's `encoding/pem` reader and writer.
//! - [`go_quote`] (`%q`) and [`go_html_escape_string`] (`html.EscapeString`).

use std::fmt::Write as _;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;

pub mod json;
pub(crate) mod pem;

/// Go's `base64.StdEncoding`: padded standard alphabet on output; on input padding is
/// required and non-zero trailing bits are tolerated, as Go's decoder does.
pub(crate) const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Go's `%q` for a string: double-quoted, with `"`, `\` and non-printable characters escaped.
pub(crate) fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `html.EscapeString`: `&`, `<`, `>`, `"` and `'` as entities (Tyk's XML error template).
pub(crate) fn go_html_escape_string(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}
