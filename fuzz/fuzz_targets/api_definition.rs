//! API definitions as the Gateway API and `app_path` receive them: Tyk Classic and Tyk OAS,
//! parsed and validated.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(def) = certgate::apidef::parse_classic(data) {
        let _ = def.validate();
    }
    if let Ok(def) = certgate::apidef::parse_oas(data) {
        let _ = def.validate();
    }
});
