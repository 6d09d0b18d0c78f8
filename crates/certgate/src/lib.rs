//! certgate: a Tyk-compatible API gateway whose headline is Certificate Authentication.
//!
//! # Layout
//! - [`config`]: `tyk.conf` parsing, `TYK_GW_*` overrides, validation (all errors at once).
//! - [`apidef`]: Tyk Classic and Tyk OAS API definitions, parsed into one internal form.
//! - [`tokens`]: Tyk's token derivation (`generateToken`) and key hashing.
//! - [`session`]: the session (key) object, round-tripping Tyk's JSON.
//! - [`policy`]: security policies and the effective session (policies applied).
//! - [`store`]: the storage interface and its embedded (persistent) implementation.
//! - [`tls`]: server certificates, per-ClientHello client-certificate policy, peer info.
//! - [`path`]: the request path made canonical once (dot segments, escapes).
//! - [`router`]: listen paths, `/{api_id}/` mounts and custom domains.
//! - [`pipeline`]: the data plane's phases after routing, in Tyk's order (token,
//!   certificate, access, limits), each in its own file.
//! - [`proxy`]: pooled upstream forwarding.
//! - [`control`]: the control plane's entry point: Gateway API, dashboard or `/hello`.
//! - [`admin`]: the Gateway API's handlers (`/tyk/...`); [`reply`]: their answers' shapes.
//! - [`dashboard`]: the built-in dashboard and its API.
//! - [`conn`]: one connection's facts (listener, TLS, client certificate).
//! - [`server`]: listeners, connection handling, the request pipeline, reload and shutdown.
//! - [`errors`]: turning errors into Tyk-compatible HTTP responses, in one place.
//! - [`gocompat`]: Go-compatible encoders (base64, JSON escaping, PEM), in one place.
#![forbid(unsafe_code)]

pub mod admin;
pub mod apidef;
pub mod app;
pub mod audit;
pub mod body;
pub mod certs;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod control;
pub mod dashboard;
pub mod demo;
pub mod errors;
pub mod gateway;
pub mod gocompat;
pub mod limits;
pub mod path;
pub mod pipeline;
pub mod pki;
pub mod policy;
pub mod proxy;
pub mod reply;
pub mod router;
pub mod server;
pub mod session;
pub mod store;
pub mod tls;
pub mod tokens;
