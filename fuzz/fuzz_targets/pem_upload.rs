//! PEM as uploaded to `POST /tyk/certs` and as read back from the store: decoding, DER
//! certificate parsing, private-key decryption. Any input must give Ok or a CertError.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = certgate::certs::validate_upload(data, "fuzz-encoding-secret", 1_700_000_000);
    let _ = certgate::certs::parse_stored("org1abc", data, "fuzz-encoding-secret");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = certgate::certs::leaf_summary(text);
    }
});
