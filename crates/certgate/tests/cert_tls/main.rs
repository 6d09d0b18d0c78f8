//! TLS-level and certificate-store scenarios from Tyk's own tests (S-numbers of
//! `shared/spec/tyk-certificate-auth.md` §9), over real TLS.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

// The shared harness serves several binaries; this one uses part of it.
#[allow(dead_code)]
#[path = "../e2e/support.rs"]
mod support;

mod announce;
mod control_api;
mod curl;
mod guide;
mod helpers;
mod misdirected;
mod server_certs;
mod static_http;
mod static_tls;
mod store_api;
mod validity;
