//! Certificate Authentication scenarios from Tyk's own tests (S-numbers of
//! `shared/spec/tyk-certificate-auth.md` §9), over real TLS.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

// Not every harness helper is used by this binary.
#[allow(dead_code)]
#[path = "../e2e/support.rs"]
mod support;

mod binding;
mod combined;
mod common;
mod domains;
mod dynamic;
mod key_hardening;
mod keys_api;
mod matrix;
#[path = "../cluster/race_loop.rs"]
mod race_loop;
mod races;
mod revocation;
