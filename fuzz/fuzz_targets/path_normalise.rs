//! The request-path normaliser: any path must give a canonical path or an error, never a
//! panic; a canonical path normalises to itself, and it never climbs above the root or
//! keeps a dot segment, an escaped separator or a NUL.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = certgate::path::normalise(raw) {
        let again = certgate::path::normalise(&p).expect("a canonical path is accepted");
        assert_eq!(again, p, "normalising is idempotent");
        assert!(!p.split('/').any(|s| s == ".." || s == "."), "no dot segment left: {p:?}");
        assert!(!p.contains("//"), "no repeated slash: {p:?}");
        let lower = p.to_ascii_lowercase();
        assert!(!lower.contains("%2f") && !lower.contains("%5c") && !p.contains('\0'));
    }
});
