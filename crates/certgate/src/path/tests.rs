use std::borrow::Cow;

use super::*;

fn ok(raw: &str) -> String {
    match normalise(raw) {
        Ok(p) => p.into_owned(),
        Err(e) => panic!("{raw:?} refused: {e}"),
    }
}

fn err(raw: &str) -> PathError {
    match normalise(raw) {
        Ok(p) => panic!("{raw:?} accepted as {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn canonical_paths_are_borrowed() {
    for p in [
        "/",
        "/a",
        "/a/",
        "/public/x/y.json",
        "/a/b;c=d",
        "/a/...",
        "/a/.hidden",
        "/a/..x",
        "/a/x..",
        "/%20space",
        "/caf%C3%A9",
        "/emoji/%F0%9F%98%80",
        "/%252e%252e/",
        "/a%3Bb",
        "/a%3F?",
        "/a/%41%3a",
        "/é",
    ] {
        // `%41` is unreserved and gets decoded: not canonical.
        if p.contains("%41") {
            continue;
        }
        match normalise(p) {
            Ok(Cow::Borrowed(b)) => assert_eq!(b, p),
            other => panic!("{p:?}: {other:?}"),
        }
    }
}

#[test]
fn dot_segments_are_removed() {
    let cases = [
        ("/a/./b", "/a/b"),
        ("/a/../b", "/b"),
        ("/a/b/..", "/a/"),
        ("/a/b/../", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/.", "/a/"),
        ("/.", "/"),
        ("/./", "/"),
        ("/a/..", "/"),
        ("/a/b/../../c", "/c"),
        ("/public/../secure/x", "/secure/x"),
        ("/a/./././b", "/a/b"),
        ("/a/b/c/../../d/./e", "/a/d/e"),
    ];
    for (raw, want) in cases {
        assert_eq!(ok(raw), want, "{raw}");
    }
}

#[test]
fn repeated_slashes_are_merged() {
    let cases = [
        ("//", "/"),
        ("///", "/"),
        ("//a", "/a"),
        ("/a//b", "/a/b"),
        ("/a///b//", "/a/b/"),
        ("//secure//x", "/secure/x"),
        // Merged before `..` is applied (as nginx's merge_slashes does).
        ("/a//../b", "/b"),
    ];
    for (raw, want) in cases {
        assert_eq!(ok(raw), want, "{raw}");
    }
}

#[test]
fn unreserved_escapes_are_decoded_once() {
    let cases = [
        ("/a/%2e%2e/b", "/b"),
        ("/a/%2E%2e/b", "/b"),
        ("/a/.%2e/b", "/b"),
        ("/a/%2e./b", "/b"),
        ("/a/%2e/b", "/a/b"),
        ("/%73ecure/x", "/secure/x"),
        ("/%7E%5F%2D%30", "/~_-0"),
        // Reserved and other characters stay escaped, as sent.
        ("/a%20b/%3B", "/a%20b/%3B"),
        // Double encoding stays literal: one decoding only.
        ("/%252e%252e/x", "/%252e%252e/x"),
        ("/a/%2e%2e%252f/b", "/a/..%252f/b"),
        // Escapes keep their case unless decoded.
        ("/%2e/%c3%a9", "/%c3%a9"),
    ];
    for (raw, want) in cases {
        assert_eq!(ok(raw), want, "{raw}");
    }
}

#[test]
fn climbing_above_the_root_is_refused() {
    for raw in [
        "/..",
        "/../",
        "/../a",
        "/a/../..",
        "/a/../../b",
        "/%2e%2e",
        "/%2e%2e/secure",
        "/.%2E/",
        "//../a",
        "/./../a",
    ] {
        assert_eq!(err(raw), PathError::AboveRoot, "{raw}");
    }
}

#[test]
fn separators_nul_and_backslashes_are_refused() {
    for raw in [
        "/a%2fb",
        "/a%2Fb",
        "/..%2f..%2fx",
        "/a%5cb",
        "/a%5Cb",
        "/..%5c",
    ] {
        assert_eq!(err(raw), PathError::EncodedSeparator, "{raw}");
    }
    for raw in ["/a\\b", "/\\..\\x", "\\"] {
        let e = err(raw);
        assert!(
            e == PathError::Backslash || e == PathError::NotAbsolute,
            "{raw}: {e}"
        );
    }
    for raw in [
        "/a%00", "/%00/", "/a\0b", "/a\nb", "/a\rb", "/a\tb", "/a\x7fb",
    ] {
        assert_eq!(err(raw), PathError::ControlCharacter, "{raw:?}");
    }
}

#[test]
fn invalid_escapes_are_refused() {
    for raw in [
        "/%", "/a%", "/a%2", "/%zz", "/%2g", "/%u002e", "/%U002E", "/%%32%65", "/%-1",
    ] {
        assert_eq!(err(raw), PathError::InvalidEscape, "{raw}");
    }
}

#[test]
fn escapes_must_decode_to_utf8() {
    for raw in [
        // Overlong forms of `.`, `/` and `\` (IIS/old Java decoders).
        "/%c0%ae%c0%ae/x",
        "/%C0%AF",
        "/%c1%9c",
        "/%e0%80%ae",
        "/%f0%80%80%ae",
        // Truncated, stray continuation, surrogate, above U+10FFFF.
        "/%c3",
        "/%c3/",
        "/%c3a",
        "/%80",
        "/%ed%a0%80",
        "/%f4%90%80%80",
        "/%ff",
        // Latin-1 bytes.
        "/caf%e9",
    ] {
        assert_eq!(err(raw), PathError::InvalidUtf8, "{raw}");
    }
    assert_eq!(ok("/%e2%82%ac/%f4%8f%bf%bf"), "/%e2%82%ac/%f4%8f%bf%bf");
}

#[test]
fn dot_segments_with_parameters_are_refused() {
    for raw in [
        "/..;/x",
        "/a/..;/b",
        "/a/..;jsessionid=1/b",
        "/a/.;/b",
        "/a/%2e%2e;/b",
        "/a/..%3b/b",
        "/a/..%3B/b",
        "/a/.%2e%3Bx/b",
    ] {
        assert_eq!(err(raw), PathError::DotSegmentParameters, "{raw}");
    }
    // Parameters on ordinary segments are the upstream's business.
    assert_eq!(ok("/a;x/b;y"), "/a;x/b;y");
    assert_eq!(ok("/a/...;x"), "/a/...;x");
}

#[test]
fn relative_forms_are_refused() {
    assert_eq!(err("*"), PathError::NotAbsolute);
    assert_eq!(err("a/b"), PathError::NotAbsolute);
    assert_eq!(err("../a"), PathError::NotAbsolute);
    assert_eq!(ok(""), "/");
}

#[test]
fn normalising_is_idempotent() {
    for raw in [
        "/a/%2e%2e/b//c/./",
        "/%7e/x/../y",
        "//a/b/..",
        "/%252e/x",
        "/a/b/c/./../../d",
    ] {
        let once = ok(raw);
        let twice = normalise(&once).unwrap();
        assert!(matches!(twice, Cow::Borrowed(_)), "{raw}");
        assert_eq!(twice, once);
    }
}

/// Every prefix and every single-byte mutation of a set of hostile paths: never a
/// panic, and an accepted result is canonical (idempotent, no dot or empty segment).
#[test]
fn arbitrary_input_never_panics() {
    let seeds = [
        "/public/%2e%2e/private/secret",
        "/a/..;/b%c3%a9%2F%5c%00",
        "//x/./y/../%zz%u002e",
        "/é/%f0%9f%98%80/..",
    ];
    let alphabet: &[u8] = b"/.%;\\02aefACF";
    for seed in seeds {
        let bytes = seed.as_bytes();
        for end in 0..=bytes.len() {
            check_arbitrary(&bytes[..end]);
        }
        for i in 0..bytes.len() {
            for &c in alphabet {
                let mut m = bytes.to_vec();
                m[i] = c;
                check_arbitrary(&m);
            }
        }
    }
}

fn check_arbitrary(bytes: &[u8]) {
    let Ok(s) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(p) = normalise(s) {
        assert!(p.starts_with('/'), "{s:?} -> {p:?}");
        assert!(!p.contains("//"), "{s:?} -> {p:?}");
        assert!(
            p.split('/').all(|seg| seg != "." && seg != ".."),
            "{s:?} -> {p:?}"
        );
        assert_eq!(normalise(&p).as_deref(), Ok(&*p), "{s:?}");
    }
}

#[test]
fn stripped_rest_must_not_start_with_a_dot_segment() {
    for rest in ["/x", "/", "x", "x/../y", "...", ".x", "..x/y"] {
        assert_eq!(check_stripped(rest), Ok(()), "{rest}");
    }
    for rest in ["..", "../x", ".", "./x"] {
        assert_eq!(
            check_stripped(rest),
            Err(PathError::StrippedDotSegment),
            "{rest}"
        );
    }
    for rest in ["..;/x", ".%3bx"] {
        assert_eq!(
            check_stripped(rest),
            Err(PathError::DotSegmentParameters),
            "{rest}"
        );
    }
}

/// Every string of up to six characters after the leading slash over an alphabet of the interesting ones.
#[test]
fn short_strings_exhaustively() {
    const ALPHABET: [char; 9] = ['/', '.', '%', '2', 'e', ';', '\\', 'a', 'F'];
    let mut buf = String::new();
    fn walk(buf: &mut String, depth: usize) {
        check_arbitrary(buf.as_bytes());
        if depth == 0 {
            return;
        }
        for c in ALPHABET {
            buf.push(c);
            walk(buf, depth - 1);
            buf.pop();
        }
    }
    buf.push('/');
    walk(&mut buf, 6);
}
