//! Tyk's key names ("tokens") and key hashing, bit-for-bit.
//!
//! A session is stored under a key name derived by Tyk's `generateToken`: either the legacy
//! `org + keyID`, or the standard base64 of `{"org":"<org>","id":"<keyID>","h":"<alg>"}`. When
//! `hash_keys` is on, the storage key is a hash of that name, with the algorithm named by the
//! token's own `h` field. certgate must derive exactly the same names and hashes as Tyk so that
//! keys, certificates and stored sessions are interchangeable (spec §2.3–§2.5).
//!
//! Everything here works on untrusted input (tokens come from request headers) and never panics.

use std::borrow::Cow;

use aws_lc_rs::digest;
use base64::Engine as _;

use crate::gocompat::GO_STD_BASE64;

/// Every base64-JSON token starts with this (`{"` encodes to `ey`).
pub const B64_JSON_PREFIX: &str = "ey";

/// `hash_key_function` used in a token when the configured one is not recognised.
const DEFAULT_TOKEN_HASH: &str = "murmur64";

/// Length of a Mongo ObjectId in hex, which Tyk treats as an org id prefix of legacy tokens.
const MONGO_ID_LEN: usize = 24;

/// Tyk's `generateToken(org, keyID, alg)`: the key name a session is stored under.
///
/// `org` is stripped from the start of `key_id`; an empty (remaining) `key_id` becomes a random
/// UUIDv4 without dashes. With an empty `hash_key_function` the result is the legacy
/// `org + keyID`; otherwise it is the standard base64 (with padding) of
/// `{"org":"<org>","id":"<keyID>","h":"<alg>"}`, values inserted verbatim (no JSON escaping, as
/// Tyk does) and an unrecognised algorithm written as `murmur64`.
pub fn generate_token(org: &str, key_id: &str, hash_key_function: &str) -> String {
    let key_id = key_id.strip_prefix(org).unwrap_or(key_id);
    let random;
    let key_id = if key_id.is_empty() {
        random = uuid::Uuid::new_v4().simple().to_string();
        random.as_str()
    } else {
        key_id
    };
    if hash_key_function.is_empty() {
        return format!("{org}{key_id}");
    }
    let alg = match HashAlgorithm::from_name(hash_key_function) {
        Some(_) => hash_key_function,
        None => DEFAULT_TOKEN_HASH,
    };
    GO_STD_BASE64.encode(format!(r#"{{"org":"{org}","id":"{key_id}","h":"{alg}"}}"#))
}

/// Tyk's `TokenOrg`: the org a token belongs to, or `""` when it cannot be told.
///
/// A base64-JSON token yields its `org` field; otherwise a token longer than 24 characters whose
/// first 24 characters are hex (a Mongo ObjectId org) yields those 24 characters.
pub fn token_org(token: &str) -> String {
    if let Some(org) = token_field(token, "org") {
        return org;
    }
    match token.get(..MONGO_ID_LEN) {
        Some(prefix)
            if token.len() > MONGO_ID_LEN && prefix.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            prefix.to_owned()
        }
        _ => String::new(),
    }
}

/// Tyk's `TokenHashAlgo`: the `h` field of a base64-JSON token, else `""`.
pub fn token_hash_algo(token: &str) -> String {
    token_field(token, "h").unwrap_or_default()
}

/// Tyk's `TokenID`: the `id` field of a base64-JSON token, else `""`.
pub fn token_id(token: &str) -> String {
    token_field(token, "id").unwrap_or_default()
}

/// Tyk's `HashStr`: the lowercase hex hash of `s`.
///
/// The algorithm is `alg` when given and non-empty, else the token's own `h` field. `sha256`,
/// `murmur64` (MurmurHash3 x64_128, first half) and `murmur128` (both halves) are standard;
/// `murmur32`, an empty name and any unknown name use Tyk's legacy 32-bit murmur.
pub fn hash_str(s: &str, alg: Option<&str>) -> String {
    let from_token;
    let alg = match alg {
        Some(a) if !a.is_empty() => a,
        _ => {
            from_token = token_hash_algo(s);
            from_token.as_str()
        }
    };
    let bytes = s.as_bytes();
    match HashAlgorithm::from_name(alg).unwrap_or(HashAlgorithm::Murmur32) {
        HashAlgorithm::Sha256 => sha256_hex(bytes),
        HashAlgorithm::Murmur32 => format!("{:08x}", murmur32_legacy(bytes)),
        HashAlgorithm::Murmur64 => format!("{:016x}", murmur3_x64_128(bytes).0),
        HashAlgorithm::Murmur128 => {
            let (h1, h2) = murmur3_x64_128(bytes);
            format!("{h1:016x}{h2:016x}")
        }
    }
}

/// Tyk's `HashKey`: [`hash_str`] of `s` when key hashing is enabled, else `s` itself.
pub fn hash_key(s: &str, enabled: bool) -> Cow<'_, str> {
    if enabled {
        Cow::Owned(hash_str(s, None))
    } else {
        Cow::Borrowed(s)
    }
}

/// The prefix of session keys in the store.
pub const SESSION_PREFIX: &str = "apikey-";

/// The store key for a token (`apikey-<token>` or `apikey-<hash>`): the one place a
/// session's store key is derived.
pub fn session_store_key(cfg: &crate::config::Config, token: &str) -> String {
    session_store_key_of(&hash_key(token, cfg.hash_keys))
}

/// The store key for a key name already hashed as the configuration asks
/// ([`hash_key`]), e.g. the hash a client or a cluster notification gives.
pub fn session_store_key_of(name: &str) -> String {
    let mut k = String::with_capacity(SESSION_PREFIX.len() + name.len());
    k.push_str(SESSION_PREFIX);
    k.push_str(name);
    k
}

/// Lowercase hex SHA-256 of `bytes` (certificate ids, `sha256` key hashes).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

/// The hash functions Tyk accepts as `hash_key_function`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HashAlgorithm {
    Murmur32,
    Murmur64,
    Murmur128,
    Sha256,
}

impl HashAlgorithm {
    /// Exact (case-sensitive) names, as Tyk's `hashFunction` matches them.
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "murmur32" => Some(Self::Murmur32),
            "murmur64" => Some(Self::Murmur64),
            "murmur128" => Some(Self::Murmur128),
            "sha256" => Some(Self::Sha256),
            _ => None,
        }
    }
}

/// MurmurHash3 x64_128 with seed 0, as `(h1, h2)`.
fn murmur3_x64_128(mut bytes: &[u8]) -> (u64, u64) {
    // Reading from a slice cannot fail, so the error arm is never taken.
    let v = murmur3::murmur3_x64_128(&mut bytes, 0).unwrap_or(0);
    // The crate returns `(h2 << 64) | h1`; the casts keep the low and high halves.
    (v as u64, (v >> 64) as u64)
}

/// Tyk's legacy 32-bit murmur: the MurmurHash3 x86_32 block loop with seed 0, returning the
/// running state. Trailing 1–3 bytes, the length and the final avalanche are ignored (§2.4).
fn murmur32_legacy(bytes: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    bytes.chunks_exact(4).fold(0u32, |h, block| {
        let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]])
            .wrapping_mul(C1)
            .rotate_left(15)
            .wrapping_mul(C2);
        (h ^ k)
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64)
    })
}

/// A string field of a base64-JSON token, read the way Tyk does: Go's standard base64 decoding,
/// then `jsonparser.GetString` on the top-level object. `None` when any step fails.
fn token_field(token: &str, key: &str) -> Option<String> {
    if !token.starts_with(B64_JSON_PREFIX) {
        return None;
    }
    // Go's decoder skips CR and LF anywhere in the input.
    let input: Cow<'_, str> = if token.contains(['\r', '\n']) {
        Cow::Owned(token.replace(['\r', '\n'], ""))
    } else {
        Cow::Borrowed(token)
    };
    let json = GO_STD_BASE64.decode(input.as_bytes()).ok()?;
    let raw = jsonparser::get_string(&json, key)?;
    // Go strings may hold any bytes; the closest Rust equivalent replaces invalid UTF-8.
    Some(String::from_utf8_lossy(&raw).into_owned())
}

/// Just enough of `github.com/buger/jsonparser` (v1.1.1) to read a top-level string field the
/// way Tyk does. It is deliberately lenient: tokens embed org and id verbatim, so a token's JSON
/// may be malformed (e.g. a quote inside the id) and still yield the fields Tyk would read.
mod jsonparser {
    /// `GetString(data, key)` for a top-level key: the unescaped bytes of its string value.
    pub(super) fn get_string(data: &[u8], key: &str) -> Option<Vec<u8>> {
        let mut i = search_key(data, key.as_bytes())?;
        i += skip_whitespace(data.get(i..)?)?;
        if data.get(i) != Some(&b'"') {
            return None; // not a string value
        }
        let start = i + 1;
        let (len, escaped) = string_end(data.get(start..)?)?;
        let raw = data.get(start..start + len - 1)?;
        if escaped {
            unescape(raw)
        } else {
            Some(raw.to_vec())
        }
    }

    /// Offset just past the colon following `key` at nesting level 1, as jsonparser's
    /// `searchKeys` finds it: nested objects and arrays are skipped, not searched.
    fn search_key(data: &[u8], key: &[u8]) -> Option<usize> {
        // Signed like Go's `int`: stray closing braces make it negative, hiding later keys.
        let mut level = 0isize;
        let mut last_matched = true;
        let mut i = 0;
        while i < data.len() {
            match data[i] {
                b'"' => {
                    i += 1;
                    let key_begin = i;
                    let (len, escaped) = string_end(&data[i..])?;
                    i += len;
                    let key_end = i - 1;
                    i += skip_whitespace(&data[i..])?;
                    if data[i] == b':' {
                        if level < 1 {
                            return None;
                        }
                        let raw = &data[key_begin..key_end];
                        let found = if escaped {
                            unescape(raw)? == key
                        } else {
                            raw == key
                        };
                        if level > 1 {
                            // jsonparser gives up on keys deeper than the requested path.
                            return None;
                        }
                        if found {
                            return Some(i + 1);
                        }
                        last_matched = false;
                    } else {
                        i -= 1;
                    }
                }
                b'{' => {
                    if last_matched {
                        level += 1;
                    } else {
                        i += block_end(&data[i..], b'{', b'}')? - 1;
                    }
                }
                b'}' => level -= 1,
                b'[' => i += block_end(&data[i..], b'[', b']')? - 1,
                b':' => return None, // malformed
                _ => {}
            }
            i += 1;
        }
        None
    }

    /// Offset of the first byte that is not JSON whitespace.
    fn skip_whitespace(data: &[u8]) -> Option<usize> {
        data.iter()
            .position(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
    }

    /// Length up to and including the closing quote of a string whose opening quote precedes
    /// `data`, and whether it contains a backslash. A quote after an odd run of backslashes is
    /// escaped.
    fn string_end(data: &[u8]) -> Option<(usize, bool)> {
        let mut escaped = false;
        let mut backslashes = 0usize;
        for (i, &c) in data.iter().enumerate() {
            if c == b'\\' {
                escaped = true;
                backslashes += 1;
                continue;
            }
            if c == b'"' && backslashes.is_multiple_of(2) {
                return Some((i + 1, escaped));
            }
            backslashes = 0;
        }
        None
    }

    /// Length of the object or array starting at `data[0]`, strings skipped.
    fn block_end(data: &[u8], open: u8, close: u8) -> Option<usize> {
        let mut level = 0usize;
        let mut i = 0;
        while i < data.len() {
            match data[i] {
                b'"' => i += string_end(&data[i + 1..])?.0,
                c if c == open => level += 1,
                c if c == close => {
                    level = level.checked_sub(1)?;
                    if level == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }

    /// JSON string unescaping; `None` on an invalid escape or an unpaired surrogate.
    fn unescape(raw: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            if raw[i] != b'\\' {
                out.push(raw[i]);
                i += 1;
                continue;
            }
            let simple = match *raw.get(i + 1)? {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'u' => {
                    let (c, len) = unicode_escape(&raw[i..])?;
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    i += len;
                    continue;
                }
                _ => return None,
            };
            out.push(simple);
            i += 2;
        }
        Some(out)
    }

    /// Decodes `\uXXXX` (or a `\uXXXX\uXXXX` surrogate pair) at the start of `raw`.
    fn unicode_escape(raw: &[u8]) -> Option<(char, usize)> {
        let hex4 = |at: usize| -> Option<u32> {
            if raw.get(at..at + 2)? != b"\\u" {
                return None;
            }
            let digits = raw.get(at + 2..at + 6)?;
            if !digits.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
        };
        let first = hex4(0)?;
        if !(0xd800..0xe000).contains(&first) {
            return Some((char::from_u32(first)?, 6));
        }
        let second = hex4(6)?;
        if !(0xd800..0xdc00).contains(&first) || !(0xdc00..0xe000).contains(&second) {
            return None;
        }
        let c = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
        Some((char::from_u32(c)?, 12))
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    const ORG: &str = "default";
    const CERT_SHA: &str = "9881c574b7bd2fc356fdd7e46e6dc1eec91222b8e775c6092772854ab84f80e3";
    const CERT_ID: &str = "default9881c574b7bd2fc356fdd7e46e6dc1eec91222b8e775c6092772854ab84f80e3";

    /// §2.5: (hash_key_function, token, Redis key when hash_keys is on).
    const WORKED_EXAMPLE: [(&str, &str, &str); 4] = [
        (
            "murmur64",
            "eyJvcmciOiJkZWZhdWx0IiwiaWQiOiI5ODgxYzU3NGI3YmQyZmMzNTZmZGQ3ZTQ2ZTZkYzFlZWM5MTIyMmI4ZTc3NWM2MDkyNzcyODU0YWI4NGY4MGUzIiwiaCI6Im11cm11cjY0In0=",
            "apikey-9b214a29c4de7b53",
        ),
        (
            "murmur128",
            "eyJvcmciOiJkZWZhdWx0IiwiaWQiOiI5ODgxYzU3NGI3YmQyZmMzNTZmZGQ3ZTQ2ZTZkYzFlZWM5MTIyMmI4ZTc3NWM2MDkyNzcyODU0YWI4NGY4MGUzIiwiaCI6Im11cm11cjEyOCJ9",
            "apikey-f17e3775a7239e419235f43c4cc35dba",
        ),
        (
            "sha256",
            "eyJvcmciOiJkZWZhdWx0IiwiaWQiOiI5ODgxYzU3NGI3YmQyZmMzNTZmZGQ3ZTQ2ZTZkYzFlZWM5MTIyMmI4ZTc3NWM2MDkyNzcyODU0YWI4NGY4MGUzIiwiaCI6InNoYTI1NiJ9",
            "apikey-682433ef04a7fa8e6dee994731eb3a469425a091fb2cd4d11a368730773d792b",
        ),
        ("", CERT_ID, "apikey-d34c6298"),
    ];

    #[test]
    fn worked_example_tokens() {
        for (alg, token, _) in WORKED_EXAMPLE {
            // Both the certificate id (org-prefixed) and the bare hash derive the same token.
            assert_eq!(generate_token(ORG, CERT_ID, alg), token, "alg {alg:?}");
            assert_eq!(generate_token(ORG, CERT_SHA, alg), token, "alg {alg:?}");
        }
    }

    #[test]
    fn worked_example_redis_keys() {
        for (alg, token, redis_key) in WORKED_EXAMPLE {
            assert_eq!(
                format!("apikey-{}", hash_key(token, true)),
                redis_key,
                "alg {alg:?}"
            );
            assert_eq!(hash_key(token, false), token);
        }
    }

    #[test]
    fn worked_example_decoded_token() {
        let decoded = STANDARD.decode(WORKED_EXAMPLE[0].1).unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            format!(r#"{{"org":"default","id":"{CERT_SHA}","h":"murmur64"}}"#)
        );
    }

    #[test]
    fn worked_example_token_helpers() {
        for (alg, token, _) in WORKED_EXAMPLE.iter().take(3) {
            assert_eq!(token_org(token), ORG);
            assert_eq!(token_id(token), CERT_SHA);
            assert_eq!(token_hash_algo(token), *alg);
        }
        let legacy = WORKED_EXAMPLE[3].1;
        assert_eq!(token_org(legacy), "");
        assert_eq!(token_id(legacy), "");
        assert_eq!(token_hash_algo(legacy), "");
    }

    #[test]
    fn murmur_reference_vectors() {
        assert_eq!(hash_str("hello", Some("murmur64")), "cbd8a7b341bd9b02");
        assert_eq!(
            hash_str("hello", Some("murmur128")),
            "cbd8a7b341bd9b025b1e906a48ae1d19"
        );
    }

    #[test]
    fn murmur32_is_the_legacy_variant() {
        assert_eq!(hash_str("hello", Some("murmur32")), "ef13efcd");
        assert_eq!(hash_str("hello, world", Some("murmur32")), "98b32401");
        assert_eq!(hash_str("", Some("murmur32")), "00000000");
        // Trailing bytes are ignored: "hello" hashes like "hell".
        assert_eq!(hash_str("hell", Some("murmur32")), "ef13efcd");
        // Standard MurmurHash3 x86_32 differs (§2.4, §2.5).
        let standard = murmur3::murmur3_32(&mut CERT_ID.as_bytes(), 0).unwrap();
        assert_eq!(format!("{standard:08x}"), "b23265f9");
        assert_eq!(hash_str(CERT_ID, Some("murmur32")), "d34c6298");
    }

    #[test]
    fn hash_algorithm_selection() {
        // Empty and unknown names fall back to the legacy 32-bit murmur.
        assert_eq!(hash_str("hello", Some("")), "ef13efcd");
        assert_eq!(hash_str("hello", Some("md5")), "ef13efcd");
        assert_eq!(hash_str("hello", Some("SHA256")), "ef13efcd");
        assert_eq!(hash_str("hello", None), "ef13efcd");
        assert_eq!(
            hash_str("hello", Some("sha256")),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        // An explicit algorithm wins over the token's own `h`.
        let token = WORKED_EXAMPLE[2].1; // h = sha256
        assert_eq!(hash_str(token, Some("murmur64")).len(), 16);
        assert_eq!(hash_str(token, None).len(), 64);
    }

    #[test]
    fn sha256_hex_matches_known_digest() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn generate_token_legacy_and_random() {
        assert_eq!(generate_token("org1", "org1abc", ""), "org1abc");
        assert_eq!(generate_token("org1", "abc", ""), "org1abc");
        assert_eq!(generate_token("", "abc", ""), "abc");
        // Only a prefix is stripped.
        assert_eq!(generate_token("org1", "xorg1", ""), "org1xorg1");

        let random = generate_token("org1", "", "");
        assert_eq!(random.len(), 4 + 32);
        assert!(random.starts_with("org1"));
        assert!(random[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        // A key id equal to the org is empty after stripping, hence random too.
        let also_random = generate_token("org1", "org1", "");
        assert_eq!(also_random.len(), 36);
        assert_ne!(also_random, random);

        let b64 = generate_token("org1", "", "sha256");
        assert_eq!(token_org(&b64), "org1");
        assert_eq!(token_id(&b64).len(), 32);
        assert_eq!(token_hash_algo(&b64), "sha256");
    }

    #[test]
    fn generate_token_unknown_algorithm_becomes_murmur64() {
        let token = generate_token("o", "k", "md5");
        assert_eq!(token_hash_algo(&token), "murmur64");
        assert_eq!(token, generate_token("o", "k", "murmur64"));
    }

    #[test]
    fn generate_token_inserts_values_verbatim() {
        let token = generate_token("o", r#"a"b\c"#, "murmur32");
        let decoded = STANDARD.decode(&token).unwrap();
        assert_eq!(decoded, br#"{"org":"o","id":"a"b\c","h":"murmur32"}"#);
    }

    #[test]
    fn token_org_mongo_id_rule() {
        let org = "5e9d9544a1dcd60001d0ed20";
        assert_eq!(token_org(&format!("{org}abc")), org);
        // Exactly 24 characters is not enough; the prefix must be hex.
        assert_eq!(token_org(org), "");
        assert_eq!(token_org("5e9d9544a1dcd60001d0ed2zabc"), "");
        assert_eq!(
            token_org("5E9D9544A1DCD60001D0ED20abc"),
            "5E9D9544A1DCD60001D0ED20"
        );
        // A multi-byte character straddling byte 24 must not panic.
        assert_eq!(token_org("5e9d9544a1dcd60001d0ed2é"), "");
        assert_eq!(token_org(""), "");
    }

    #[test]
    fn token_fields_follow_tyk_lenient_parsing() {
        let enc = |s: &str| STANDARD.encode(s);
        // Whitespace and other fields are fine; a nested `org` is not the top-level one.
        let t = enc(r#"{ "x": {"org":"inner"}, "org" : "outer", "h":"sha256" }"#);
        assert_eq!(token_org(&t), "outer");
        assert_eq!(token_hash_algo(&t), "sha256");
        // Escapes in values are decoded.
        assert_eq!(token_id(&enc(r#"{"id":"a\"b\u00e9"}"#)), "a\"b\u{e9}");
        // Non-string values, invalid escapes and missing fields give nothing.
        assert_eq!(token_org(&enc(r#"{"org":5}"#)), "");
        assert_eq!(token_id(&enc(r#"{"id":"a\x"}"#)), "");
        assert_eq!(token_hash_algo(&enc(r#"{"org":"o"}"#)), "");
        // A backslash in a verbatim id does not hide the fields after it (Tyk reads them too).
        let t = generate_token("o", r"a\x", "sha256");
        assert_eq!(token_hash_algo(&t), "sha256");
        assert_eq!(token_id(&t), "");
        // Go's decoder ignores line breaks and requires padding.
        let wrapped = format!("{}\n{}", &t[..8], &t[8..]);
        assert_eq!(token_org(&wrapped), "o");
        assert_eq!(token_org(t.trim_end_matches('=')), "");
    }

    #[test]
    fn hostile_tokens_do_not_panic() {
        let mut inputs: Vec<Vec<u8>> = vec![
            b"ey".to_vec(),
            b"ey==".to_vec(),
            b"eyJ".to_vec(),
            b"ey!!!!".to_vec(),
            b"eyJvcmciOiJkZWZhdWx0".to_vec(),
            "eyé".as_bytes().to_vec(),
        ];
        // Base64 of broken JSON; `{"` makes it a base64-JSON token (`ey...`).
        for json in [
            &b"{\""[..],
            b"{\"org\"",
            b"{\"org\":",
            b"{\"org\":\"",
            b"{\"org\":\"\\",
            b"{\"org\":\"\\u",
            b"{\"org\":\"\\u+123\"}",
            b"{\"org\":\"\\ud800\"}",
            b"{\"org\":\"\\ud800\\u0041\"}",
            b"{\"org\":\"\xff\xfe\"}",
            b"{\"a\":[[[[\"org\":\"x\"",
            b"{\"a\":{{{{\"org\":\"x\"",
            b"{\"a\":{\"b\":[1,{\"org\":\"x\"}]},\"org\":\"y\"}",
            b"{\"\xff\xff\xff\xff",
            b"{\"org\"   ",
            b"{\"}}}}\":1}}}}{\"org\":\"x\"}",
        ] {
            inputs.push(STANDARD.encode(json).into_bytes());
        }
        let mut deep = b"{\"a\":".to_vec();
        deep.extend(std::iter::repeat_n(b'{', 200_000));
        inputs.push(STANDARD.encode(&deep).into_bytes());
        let mut slashes = b"{\"org\":\"".to_vec();
        slashes.extend(std::iter::repeat_n(b'\\', 200_001));
        inputs.push(STANDARD.encode(&slashes).into_bytes());
        inputs.push(format!("ey{}", "A".repeat(1_000_002)).into_bytes());
        for input in inputs {
            let token = String::from_utf8(input).unwrap();
            let _ = token_org(&token);
            let _ = token_id(&token);
            let _ = token_hash_algo(&token);
            let _ = hash_str(&token, None);
        }
        assert_eq!(
            token_org(&STANDARD.encode(b"{\"org\":\"\\ud83d\\ude00\"}")),
            "\u{1f600}"
        );
        assert_eq!(
            token_org(&STANDARD.encode(b"{\"org\":\"\xff\"}")),
            "\u{fffd}"
        );
        assert_eq!(token_org(&STANDARD.encode(b"{\"org\":\"\\u+123\"}")), "");
        assert_eq!(
            token_org(&STANDARD.encode(b"{\"a\":[\"org\"],\"org\":\"c\"}")),
            "c"
        );
        assert_eq!(token_org(&STANDARD.encode(b"{\"org\":\"\\ud800\"}")), "");
        assert_eq!(
            token_org(&STANDARD.encode(b"{\"a\\\"\":\"b\",\"org\":\"c\"}")),
            "c"
        );
    }

    #[test]
    fn hash_str_huge_input() {
        let big = "x".repeat(1 << 20);
        for alg in ["murmur32", "murmur64", "murmur128", "sha256"] {
            assert!(!hash_str(&big, Some(alg)).is_empty());
        }
    }
}
