//! Session (key) JSON as `POST /tyk/keys` and the store hand it over: decoded as Go would,
//! and what decodes must encode and decode again to the same session.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = certgate::session::SessionState::from_json(data) {
        let json = s.to_json();
        let again = certgate::session::SessionState::from_json(&json)
            .expect("an encoded session decodes");
        assert_eq!(again.to_json(), json, "encoding is stable");
        let _ = s.effective_limit("api");
        let _ = s.is_expired(1_700_000_000);
    }
});
