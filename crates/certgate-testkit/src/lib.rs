//! certgate's test harness, kept out of the library: it is a dev-dependency of
//! `certgate` (unit tests, integration tests and examples) and depends on nothing of it.
//!
//! - [`testredis`]: real Redis servers and clusters started on free loopback ports.

pub mod testredis;
