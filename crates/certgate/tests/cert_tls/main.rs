//! TLS-level and certificate-store scenarios from Tyk's own tests (S-numbers of
//! `shared/spec/tyk-certificate-auth.md` §9), over real TLS.

#[path = "../e2e/support.rs"]
mod support;
