//! End-to-end tests over real sockets: TLS handshakes with run-time PKI, a real
//! upstream, the Gateway API, and the `certgate` binary itself.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod access;
mod admin_apis;
mod admin_keys;
mod admin_patch;
mod admin_policies;
mod admin_replace;
mod binary;
mod edge;
mod endpoints;
mod paths;
mod proxy;
mod reload;
mod robustness;
mod strip_auth;
mod support;
mod tls;
