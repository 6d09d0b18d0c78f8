//! After authentication (issue: policies, rate limits, quotas): each refusal, policy
//! changes without touching sessions, counters that survive a restart, and the
//! cluster-wide guarantees on one real Redis.
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

#[allow(dead_code)]
#[path = "../e2e/support.rs"]
mod support;

mod cluster;
mod single;
