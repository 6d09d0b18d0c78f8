//! After authentication (issue: policies, rate limits, quotas): each refusal, policy
//! changes without touching sessions, counters that survive a restart, and the
//! cluster-wide guarantees on one real Redis.

#[allow(dead_code)]
#[path = "../e2e/support.rs"]
mod support;

mod cluster;
mod single;
