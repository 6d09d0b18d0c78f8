//! The request path, made canonical once: routing, versions, `allowed_urls` and the
//! upstream path are all built from [`normalise`]'s result, never from the raw path.
//!
//! Steps (RFC 3986 §6.2.2 and §5.2.4):
//! 1. percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, so
//!    `%2e%2e` is `..` and `%73ecure` is `secure`; every other escape stays as sent
//!    (one decoding only: `%252e` stays `%252e`);
//! 2. repeated slashes are merged (`//` is `/`);
//! 3. dot segments are removed (`/a/./b/../c` is `/a/c`); a trailing `.` or `..` leaves
//!    a trailing slash.
//!
//! Refused (the caller answers 400), because an upstream or a filter could read them
//! another way than the router does: an encoded `/` or `\` (`%2F`, `%5C`), a literal
//! `\`, NUL or another control character, an invalid escape (`%zz`, `%u002e`, a
//! trailing `%`), escapes that do not decode to UTF-8 (overlong forms such as
//! `%c0%ae`), a dot segment carrying path parameters (`..;x`, `.%3B`, Tomcat-style),
//! and a `..` that would climb above the root.
//!
//! The function is pure, never panics, and does not allocate when the path is
//! already canonical (the common case).

use std::borrow::Cow;

/// Why a request path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (`*`, authority form, empty).
    #[error("Malformed request path: it must start with /")]
    NotAbsolute,
    /// `%` not followed by two hexadecimal digits.
    #[error("Malformed request path: invalid percent-encoding")]
    InvalidEscape,
    /// `%2F` or `%5C`: a separator that the router would not see.
    #[error("Malformed request path: encoded / or \\")]
    EncodedSeparator,
    /// A literal backslash, which some upstreams read as `/`.
    #[error("Malformed request path: backslash")]
    Backslash,
    /// NUL (`%00`) or a literal control character.
    #[error("Malformed request path: NUL or control character")]
    ControlCharacter,
    /// Percent-encoded bytes that are not UTF-8 (overlong forms included).
    #[error("Malformed request path: encoded bytes are not UTF-8")]
    InvalidUtf8,
    /// `.` or `..` followed by path parameters (`..;x`).
    #[error("Malformed request path: dot segment with parameters")]
    DotSegmentParameters,
    /// `..` above the root.
    #[error("Malformed request path: it climbs above the root")]
    AboveRoot,
    /// What is left after stripping a listen path begins with a dot segment.
    #[error("Malformed request path: dot segment after the listen path")]
    StrippedDotSegment,
}

/// The canonical form of `raw` (a request path without query), or why it is refused.
/// Borrows `raw` when it is already canonical.
pub fn normalise(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if raw.is_empty() {
        // An absolute-form target without a path ("http://host") means "/".
        return Ok(Cow::Borrowed("/"));
    }
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decode = scan(raw.as_bytes())?;
    if !decode && !needs_resolving(raw)? {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded: Cow<'_, str> = if decode {
        Cow::Owned(decode_unreserved(raw))
    } else {
        Cow::Borrowed(raw)
    };
    resolve(&decoded).map(Cow::Owned)
}

/// Checks the path left when a listen path is stripped. A listen path without a
/// trailing slash also matches inside a segment (`/public` matches `/public../x`), and
/// the rest (`../x`) is joined to the target's path with a `/`: a dot segment there
/// would walk out of the target's path on the upstream (`/base/../x`). `rest` comes
/// from a canonical path, so only its first segment needs looking at.
pub fn check_stripped(rest: &str) -> Result<(), PathError> {
    if rest.starts_with('/') {
        return Ok(());
    }
    let first = rest.split('/').next().unwrap_or("");
    match classify(first)? {
        Seg::Dot | Seg::DotDot => Err(PathError::StrippedDotSegment),
        Seg::Empty | Seg::Plain => Ok(()),
    }
}

/// Validates every byte and escape; true when an unreserved character is encoded.
fn scan(b: &[u8]) -> Result<bool, PathError> {
    let mut decode = false;
    let mut utf8 = Utf8::default();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let v = match (b.get(i + 1), b.get(i + 2)) {
                (Some(&h), Some(&l)) => match (hex(h), hex(l)) {
                    (Some(h), Some(l)) => (h << 4) | l,
                    _ => return Err(PathError::InvalidEscape),
                },
                _ => return Err(PathError::InvalidEscape),
            };
            match v {
                0 => return Err(PathError::ControlCharacter),
                b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                _ if is_unreserved(v) => decode = true,
                _ => {}
            }
            utf8.push(v)?;
            i += 3;
            continue;
        }
        utf8.end()?;
        match c {
            b'\\' => return Err(PathError::Backslash),
            0..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
            _ => {}
        }
        i += 1;
    }
    utf8.end()?;
    Ok(decode)
}

/// True when `p` (escapes already validated, none of them unreserved) has an empty
/// inner segment or a dot segment.
fn needs_resolving(p: &str) -> Result<bool, PathError> {
    let mut segs = p[1..].split('/').peekable();
    let mut changes = false;
    while let Some(s) = segs.next() {
        match classify(s)? {
            Seg::Empty if segs.peek().is_none() => {}
            Seg::Plain => {}
            Seg::Empty | Seg::Dot | Seg::DotDot => changes = true,
        }
    }
    Ok(changes)
}

enum Seg {
    Empty,
    Dot,
    DotDot,
    Plain,
}

fn classify(s: &str) -> Result<Seg, PathError> {
    Ok(match s {
        "" => Seg::Empty,
        "." => Seg::Dot,
        ".." => Seg::DotDot,
        _ if s.starts_with('.') => {
            // `..;x`, `.;x`, `..%3Bx`: a dot segment to servers that drop path parameters.
            let end = param_start(s).unwrap_or(s.len());
            if matches!(&s[..end], "." | "..") {
                return Err(PathError::DotSegmentParameters);
            }
            Seg::Plain
        }
        _ => Seg::Plain,
    })
}

/// Where the path parameters of a segment begin (`;`, or its escape `%3B`).
fn param_start(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len()).find(|&i| {
        b[i] == b';'
            || (b[i] == b'%'
                && b.get(i + 1) == Some(&b'3')
                && matches!(b.get(i + 2), Some(b'b' | b'B')))
    })
}

/// Removes empty and dot segments (the path starts with `/`, escapes are validated).
fn resolve(p: &str) -> Result<String, PathError> {
    let mut out = String::with_capacity(p.len());
    let mut segs = p[1..].split('/').peekable();
    let mut trailing = false;
    while let Some(s) = segs.next() {
        let last = segs.peek().is_none();
        match classify(s)? {
            Seg::Empty | Seg::Dot => trailing = last,
            Seg::DotDot => {
                let Some(cut) = out.rfind('/') else {
                    return Err(PathError::AboveRoot);
                };
                out.truncate(cut);
                trailing = last;
            }
            Seg::Plain => {
                out.push('/');
                out.push_str(s);
                trailing = false;
            }
        }
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Decodes the escapes of unreserved characters; other escapes are copied as sent.
fn decode_unreserved(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let v = match (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(h), Some(l)) => (h << 4) | l,
                // Unreachable after `scan`; copied as sent.
                _ => {
                    i += 1;
                    continue;
                }
            };
            if is_unreserved(v) {
                out.push_str(&p[copied..i]);
                out.push(char::from(v));
                copied = i + 3;
            }
            i += 3;
            continue;
        }
        i += 1;
    }
    out.push_str(&p[copied..]);
    out
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// Streaming UTF-8 check of a run of percent-encoded bytes (RFC 3629 table: no
/// overlong forms, no surrogates, nothing above U+10FFFF).
#[derive(Default)]
struct Utf8 {
    /// Continuation bytes still expected.
    need: u8,
    /// Range of the next continuation byte.
    lo: u8,
    hi: u8,
}

impl Utf8 {
    fn push(&mut self, v: u8) -> Result<(), PathError> {
        if self.need > 0 {
            if v < self.lo || v > self.hi {
                return Err(PathError::InvalidUtf8);
            }
            self.need -= 1;
            (self.lo, self.hi) = (0x80, 0xbf);
            return Ok(());
        }
        (self.need, self.lo, self.hi) = match v {
            0x00..=0x7f => (0, 0, 0),
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return Err(PathError::InvalidUtf8),
        };
        Ok(())
    }

    /// The run of escapes ends: no character may be left incomplete.
    fn end(&mut self) -> Result<(), PathError> {
        if self.need > 0 {
            return Err(PathError::InvalidUtf8);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
