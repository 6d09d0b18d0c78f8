//! `tyk.conf` as read at start: JSON, then every field checked. Any input must give a
//! configuration or a list of issues, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(root) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = certgate::config::Config::from_json(&root, std::path::Path::new("/nonexistent"));
    }
});
