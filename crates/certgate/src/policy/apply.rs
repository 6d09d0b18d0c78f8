//! The merge itself: Tyk's `Service.Apply` and its helpers, rule by rule as listed in the
//! module documentation of [`crate::policy`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{parse, Policy, PolicyError, PolicySet};
use crate::session::{
    AccessDefinition, AccessSpec, ApiLimit, Endpoint, EndpointMethod, RateLimit, SessionState,
};

/// The effective session: `session` with its policies applied (Tyk semantics), without an
/// API organisation to check against — as the Gateway API does for keys not tied to an API.
///
/// Policies are looked up in the session's organisation. A session without policies comes back
/// as stored except for the `allowance_scope` of API entries with their own limits (rule 10).
pub fn apply(session: &SessionState, policies: &PolicySet) -> Result<SessionState, PolicyError> {
    Run::new(session, None).apply(session, policies)
}

/// [`apply`] for a request to (or a key created for) an API of organisation `api_org_id`:
/// policies are looked up in the session's organisation, or the API's when the session has
/// none, and every applied policy must belong to the API's organisation.
pub fn apply_for_api(
    session: &SessionState,
    policies: &PolicySet,
    api_org_id: &str,
) -> Result<SessionState, PolicyError> {
    Run::new(session, Some(api_org_id)).apply(session, policies)
}

/// The policy ids a session names (Tyk `SessionState.PolicyIDs`).
pub(super) fn policy_ids(session: &SessionState) -> Vec<String> {
    if !session.apply_policies.is_empty() {
        session.apply_policies.clone()
    } else if !session.apply_policy_id.is_empty() {
        vec![session.apply_policy_id.clone()]
    } else {
        Vec::new()
    }
}

/// Policies embedded in `meta_data.policies` (Tyk `GetCustomPolicies`): used instead of the
/// stored ones when every element reads as a policy.
fn custom_policies(session: &SessionState) -> Option<Vec<Policy>> {
    match session.meta_data.get("policies") {
        Some(Value::Array(items)) => items.iter().map(|v| parse::parse_fields(v).ok()).collect(),
        _ => None,
    }
}

/// A policy by id: among the custom policies when the session has them (first match, no
/// organisation scope, as Tyk's `Store`), else in the set within `org`.
fn find<'p>(
    custom: Option<&'p [Policy]>,
    set: &'p PolicySet,
    org: &str,
    id: &str,
) -> Option<&'p Policy> {
    match custom {
        Some(list) => list.iter().find(|p| p.id == id),
        None => set.get_in_org(org, id).map(|p| &**p),
    }
}

/// Which parts of an API's entry some policy has set.
#[derive(Clone, Copy, Debug, Default)]
struct Applied {
    acl: bool,
    quota: bool,
    rate: bool,
    complexity: bool,
}

/// An API's entry while merging, with the id of the policy that set it (Tyk `Limit.SetBy`).
#[derive(Clone, Debug, Default)]
struct Entry {
    def: AccessDefinition,
    set_by: String,
}

/// One application of policies to one session.
struct Run<'a> {
    /// The session being computed.
    s: SessionState,
    /// The API's organisation, when known.
    api_org: Option<&'a str>,
    /// The organisation policies are looked up in.
    scope_org: String,
    rights: BTreeMap<String, Entry>,
    applied: BTreeMap<String, Applied>,
    did_per_api: bool,
    /// Whether the *last* non-per-API policy was partitioned (Tyk keeps only that).
    did_partition: bool,
}

impl<'a> Run<'a> {
    fn new(session: &SessionState, api_org: Option<&'a str>) -> Self {
        let scope_org = match (session.org_id.is_empty(), api_org) {
            (true, Some(api_org)) => api_org.to_owned(),
            _ => session.org_id.clone(),
        };
        Self {
            s: session.clone(),
            api_org,
            scope_org,
            rights: BTreeMap::new(),
            applied: BTreeMap::new(),
            did_per_api: false,
            did_partition: false,
        }
    }

    fn apply(
        mut self,
        session: &SessionState,
        set: &PolicySet,
    ) -> Result<SessionState, PolicyError> {
        let stored_ids = policy_ids(session);
        self.clear(set, &stored_ids);

        let custom = custom_policies(session);
        let ids = match &custom {
            Some(list) => list.iter().map(|p| p.id.clone()).collect(),
            None => stored_ids,
        };
        // Resolve first: the policies borrow `custom`/`set`, not the run.
        let several = ids.len() > 1;
        let mut unique = BTreeSet::new();
        let mut resolved = Vec::new();
        for id in &ids {
            if !unique.insert(id.as_str()) {
                continue;
            }
            match find(custom.as_deref(), set, &self.scope_org, id) {
                Some(policy) => resolved.push(policy),
                None if several => continue,
                None => return Err(PolicyError::NotFound(id.clone())),
            }
        }

        // With policies, only they decide whether the key is active (TT-15141/TT-16296).
        let mut inactive = ids.is_empty() && self.s.is_inactive;
        let mut policy_tags = Vec::new();
        for policy in resolved {
            if let Some(api_org) = self.api_org {
                if policy.org_id != api_org {
                    return Err(PolicyError::DifferentOrg {
                        policy_id: policy.id.clone(),
                        policy_org: policy.org_id.clone(),
                        api_org: api_org.to_owned(),
                    });
                }
            }
            if policy.partitions.per_api && policy.partitions.enabled() {
                return Err(PolicyError::PerApiWithPartitions(policy.id.clone()));
            }
            if policy.partitions.per_api {
                self.apply_per_api(policy)?;
            } else {
                self.apply_partitions(policy)?;
            }
            inactive |= policy.is_inactive;
            policy_tags.extend(policy.tags.iter().cloned());
            self.merge_metadata(policy);
        }
        self.s.is_inactive = inactive;
        self.s.tags = unique_in_order(self.s.tags.iter().chain(&policy_tags));

        if ids.is_empty() {
            // Keys without policies: an API's own limit gets its own counters.
            for (api_id, access) in &mut self.s.access_rights {
                if !access.limit.is_empty() {
                    access.allowance_scope = api_id.clone();
                }
            }
        }
        let granted = self.finalise();
        if granted == 0 && !ids.is_empty() {
            return Err(PolicyError::NoValidPolicies);
        }
        Ok(self.s)
    }

    /// Tyk `ClearSession`: resets the stored limits every policy will set, so that "most
    /// permissive" compares policies with each other rather than with stale stored values.
    fn clear(&mut self, set: &PolicySet, ids: &[String]) {
        let s = &mut self.s;
        for id in ids {
            // Tyk stops clearing at the first unknown policy.
            let Some(policy) = set.get_in_org(&self.scope_org, id) else {
                return;
            };
            let all = !policy.partitions.enabled();
            if all || policy.partitions.quota {
                s.quota_max = 0;
                s.quota_remaining = 0;
            }
            if all || policy.partitions.rate_limit {
                s.rate = 0.0;
                s.per = 0.0;
                s.smoothing = None;
                s.throttle_retry_limit = 0;
                s.throttle_interval = 0.0;
            }
            if all || policy.partitions.complexity {
                s.max_query_depth = 0;
            }
        }
    }

    /// Tyk `applyPerAPI`.
    fn apply_per_api(&mut self, policy: &Policy) -> Result<(), PolicyError> {
        if self.did_partition {
            return Err(PolicyError::MixedPerApiAndPartitions);
        }
        for (api_id, access) in &policy.access_rights {
            let mut def = access.clone();
            let scope = if def.limit.is_empty() {
                def.limit = policy.api_limit();
                policy.id.clone()
            } else {
                api_id.clone()
            };
            def.allowance_scope = scope.clone();
            if let Some(stored) = self.s.access_rights.get(api_id) {
                if !stored.limit.is_empty() {
                    def.limit.quota_renews = stored.limit.quota_renews;
                }
                def.disable_introspection |= stored.disable_introspection;
            }
            let mut entry = Entry { def, set_by: scope };
            if let Some(current) = self.rights.get(api_id) {
                entry = merge_api_level_limits(entry, current);
            }
            self.rights.insert(api_id.clone(), entry);
            self.applied.insert(
                api_id.clone(),
                Applied {
                    acl: true,
                    quota: true,
                    rate: true,
                    complexity: true,
                },
            );
        }
        if !policy.access_rights.is_empty() {
            self.did_per_api = true;
        }
        Ok(())
    }

    /// Tyk `applyPartitions` (also used for policies without partitions: all parts).
    fn apply_partitions(&mut self, policy: &Policy) -> Result<(), PolicyError> {
        let parts = policy.partitions;
        let partitioned = parts.enabled();
        if partitioned && self.did_per_api {
            return Err(PolicyError::MixedPerApiAndPartitions);
        }
        let (acl, quota, rate, complexity) = (
            !partitioned || parts.acl,
            !partitioned || parts.quota,
            !partitioned || parts.rate_limit,
            !partitioned || parts.complexity,
        );
        for (api_id, access) in &policy.access_rights {
            let previous = self.rights.get(api_id).cloned().unwrap_or_default();
            let mut entry = previous.clone();
            let applied = self.applied.entry(api_id.clone()).or_default();
            let s = &mut self.s;
            if acl {
                applied.acl = true;
                merge_acl(&mut entry.def, access);
                entry.set_by = policy.id.clone();
            }
            let limit = &mut entry.def.limit;
            if quota {
                applied.quota = true;
                if greater(policy.quota_max, limit.quota_max) {
                    limit.quota_max = policy.quota_max;
                    if greater(policy.quota_max, s.quota_max) {
                        s.quota_max = policy.quota_max;
                    }
                }
                if policy.quota_renewal_rate > limit.quota_renewal_rate {
                    limit.quota_renewal_rate = policy.quota_renewal_rate;
                    s.quota_renewal_rate = s.quota_renewal_rate.max(policy.quota_renewal_rate);
                }
            }
            if rate {
                applied.rate = true;
                apply_rate_limits(s, policy, limit);
                if policy.throttle_retry_limit > limit.throttle_retry_limit {
                    limit.throttle_retry_limit = policy.throttle_retry_limit;
                    s.throttle_retry_limit =
                        s.throttle_retry_limit.max(policy.throttle_retry_limit);
                }
                if policy.throttle_interval > limit.throttle_interval {
                    limit.throttle_interval = policy.throttle_interval;
                    s.throttle_interval = s.throttle_interval.max(policy.throttle_interval);
                }
                entry.def.endpoints = merge_endpoints(&access.endpoints, &previous.def.endpoints);
            }
            if complexity {
                applied.complexity = true;
                if greater(policy.max_query_depth, limit.max_query_depth) {
                    limit.max_query_depth = policy.max_query_depth;
                    if greater(policy.max_query_depth, s.max_query_depth) {
                        s.max_query_depth = policy.max_query_depth;
                    }
                }
            }
            // The quota window the key is in is kept.
            if let Some(stored) = s.access_rights.get(api_id) {
                if !stored.limit.is_empty() {
                    limit.quota_renews = stored.limit.quota_renews;
                }
            }
            self.rights.insert(api_id.clone(), entry);
        }

        let s = &mut self.s;
        if policy.access_rights.is_empty() {
            // A "master" policy sets the session root directly.
            if rate {
                s.rate = policy.rate;
                s.per = policy.per;
                s.smoothing = policy.smoothing.clone();
                s.throttle_interval = policy.throttle_interval;
                s.throttle_retry_limit = policy.throttle_retry_limit;
            }
            if complexity {
                s.max_query_depth = policy.max_query_depth;
            }
            if quota {
                s.quota_max = policy.quota_max;
                s.quota_renewal_rate = policy.quota_renewal_rate;
            }
        }
        s.hmac_enabled |= policy.hmac_enabled;
        s.enable_http_signature_validation |= policy.enable_http_signature_validation;
        self.did_partition = partitioned;
        Ok(())
    }

    /// Tags are collected by the caller; the rest of a policy's non-limit settings here.
    fn merge_metadata(&mut self, policy: &Policy) {
        let s = &mut self.s;
        for (key, value) in &policy.meta_data {
            s.meta_data.insert(key.clone(), value.clone());
        }
        if policy.last_updated > s.last_updated {
            s.last_updated = policy.last_updated.clone();
        }
        if !policy.post_expiry_action.is_empty() {
            s.post_expiry_action = policy.post_expiry_action.clone();
        }
        if policy.post_expiry_grace_period != 0 {
            s.post_expiry_grace_period = policy.post_expiry_grace_period;
        }
    }

    /// Drops APIs no policy granted, fills unset parts from the session root, scopes counters
    /// per policy when several granted access, updates the root for the single-API case and
    /// replaces the session's access rights. Returns how many APIs were granted.
    fn finalise(&mut self) -> usize {
        let setters = self
            .rights
            .values()
            .filter(|e| !e.set_by.is_empty())
            .map(|e| e.set_by.as_str())
            .collect::<BTreeSet<_>>();
        let several_policies = setters.len() > 1;
        let s = &self.s;
        let mut granted = BTreeMap::new();
        for (api_id, mut entry) in std::mem::take(&mut self.rights) {
            let applied = self.applied.get(&api_id).copied().unwrap_or_default();
            if !applied.acl {
                continue;
            }
            let limit = &mut entry.def.limit;
            if !applied.rate {
                limit.rate = s.rate;
                limit.per = s.per;
                limit.smoothing = s.smoothing.clone();
                limit.throttle_interval = s.throttle_interval;
                limit.throttle_retry_limit = s.throttle_retry_limit;
                entry.def.endpoints.clear();
            }
            if !applied.complexity {
                limit.max_query_depth = s.max_query_depth;
            }
            if !applied.quota {
                limit.quota_max = s.quota_max;
                limit.quota_renewal_rate = s.quota_renewal_rate;
                limit.quota_renews = s.quota_renews;
            }
            if several_policies && entry.def.allowance_scope.is_empty() {
                entry.def.allowance_scope = entry.set_by;
            }
            granted.insert(api_id, entry.def);
        }

        // Legacy: one API with every limit set by policies defines the session root too.
        let count = |part: fn(&Applied) -> bool| self.applied.values().filter(|a| part(a)).count();
        if (
            count(|a| a.quota),
            count(|a| a.rate),
            count(|a| a.complexity),
        ) == (1, 1, 1)
        {
            let rate_api = self.applied.iter().find(|(_, a)| a.rate).map(|(id, _)| id);
            let source = rate_api
                .and_then(|id| granted.get(id))
                .or_else(|| granted.values().next_back());
            if let Some(access) = source {
                let s = &mut self.s;
                s.rate = access.limit.rate;
                s.per = access.limit.per;
                s.smoothing = access.limit.smoothing.clone();
                s.quota_max = access.limit.quota_max;
                s.quota_renews = access.limit.quota_renews;
                s.quota_renewal_rate = access.limit.quota_renewal_rate;
                s.max_query_depth = access.limit.max_query_depth;
            }
        }

        let granted_count = granted.len();
        if self.applied.values().any(|a| a.acl) {
            self.s.access_rights = granted;
        }
        granted_count
    }
}

/// Tyk `greaterThanInt64`: `-1` (unlimited) is greater than everything.
fn greater(first: i64, second: i64) -> bool {
    first == -1 || (second != -1 && first > second)
}

/// Tyk `RateLimit.Duration` in nanoseconds: time between two allowed requests; `0` when the
/// rate is unset (no limit).
fn interval(rate: f64, per: f64) -> i64 {
    if rate <= 0.0 || per <= 0.0 {
        0
    } else {
        // Go converts the float to an integer Duration, truncating.
        (1e9 * per / rate) as i64
    }
}

/// Tyk `ApplyRateLimits`: the policy's rate replaces the API's and the session's when those are
/// unset or allow fewer requests.
fn apply_rate_limits(s: &mut SessionState, policy: &Policy, limit: &mut ApiLimit) {
    if policy.rate == 0.0 || policy.per == 0.0 {
        return;
    }
    let wanted = interval(policy.rate, policy.per);
    if limit.rate == 0.0 || limit.per == 0.0 || interval(limit.rate, limit.per) > wanted {
        limit.rate = policy.rate;
        limit.per = policy.per;
        limit.smoothing = policy.smoothing.clone();
    }
    if s.rate == 0.0 || s.per == 0.0 || interval(s.rate, s.per) > wanted {
        s.rate = policy.rate;
        s.per = policy.per;
        s.smoothing = policy.smoothing.clone();
    }
}

/// Tyk `applyAPILevelLimits`: two per-API policies on one API; the more permissive rate and
/// quota win, and the scope follows the entry whose limits won.
fn merge_api_level_limits(mut new: Entry, current: &Entry) -> Entry {
    let (p, c) = (&mut new.def.limit, &current.def.limit);
    let mut took_current = false;
    if interval(p.rate, p.per) > interval(c.rate, c.per) {
        p.rate = c.rate;
        p.per = c.per;
        p.smoothing = c.smoothing.clone();
        took_current = true;
    }
    if c.quota_max != p.quota_max && greater(c.quota_max, p.quota_max) {
        p.quota_max = c.quota_max;
        took_current = true;
    }
    if greater(c.quota_renewal_rate, p.quota_renewal_rate) {
        p.quota_renewal_rate = c.quota_renewal_rate;
    }
    if p.quota_max == -1 {
        p.quota_renewal_rate = 0;
    }
    if took_current {
        new.set_by = current.set_by.clone();
        new.def.allowance_scope = current.def.allowance_scope.clone();
    }
    new.def.endpoints = merge_endpoints(&new.def.endpoints, &current.def.endpoints);
    new
}

/// Tyk's ACL merge for one API (ACL part of `applyPartitions`).
fn merge_acl(into: &mut AccessDefinition, from: &AccessDefinition) {
    into.disable_introspection |= from.disable_introspection;
    append_missing(&mut into.versions, &from.versions);
    into.allowed_urls = merge_allowed_urls(&into.allowed_urls, &from.allowed_urls);
    merge_graphql_types(&mut into.restricted_types, &from.restricted_types);
    merge_graphql_types(&mut into.allowed_types, &from.allowed_types);
    merge_field_access(&mut into.field_access_rights, &from.field_access_rights);
    // Settings certgate keeps opaque (MCP, JSON-RPC): the first policy's value stays.
    for (name, value) in &from.extra {
        into.extra
            .entry(name.clone())
            .or_insert_with(|| value.clone());
    }
}

/// Tyk `appendIfMissing`: adds the items `into` does not have yet, in order.
fn append_missing(into: &mut Vec<String>, items: &[String]) {
    for item in items {
        if !into.contains(item) {
            into.push(item.clone());
        }
    }
}

/// The items in order, each once (the first occurrence kept).
fn unique_in_order<'a>(items: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

/// Tyk `MergeAllowedURLs`: one entry per URL (and access conditions), methods united, in the
/// order first seen.
fn merge_allowed_urls(first: &[AccessSpec], second: &[AccessSpec]) -> Vec<AccessSpec> {
    let key = |spec: &AccessSpec| match spec.extra.get("conditions") {
        Some(conditions) if !is_empty_json(conditions) => format!("{}\0{conditions}", spec.url),
        _ => spec.url.clone(),
    };
    let mut merged: Vec<(String, AccessSpec)> = Vec::new();
    for spec in first.iter().chain(second) {
        let k = key(spec);
        match merged.iter_mut().find(|(seen, _)| *seen == k) {
            Some((_, existing)) => append_missing(&mut existing.methods, &spec.methods),
            None => merged.push((k, spec.clone())),
        }
    }
    merged.into_iter().map(|(_, spec)| spec).collect()
}

fn is_empty_json(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// GraphQL `restricted_types` / `allowed_types`: types matched by `name`, their `fields`
/// united; new types appended.
fn merge_graphql_types(into: &mut Vec<Value>, from: &[Value]) {
    if into.is_empty() {
        *into = from.to_vec();
        return;
    }
    let name = |t: &Value| t.get("name").and_then(Value::as_str).map(str::to_owned);
    for new in from {
        let existing =
            name(new).and_then(|n| into.iter_mut().find(|t| name(t).as_deref() == Some(&n)));
        match existing {
            Some(existing) => {
                let new_fields = new
                    .get("fields")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if let Some(obj) = existing.as_object_mut() {
                    let fields = obj
                        .entry("fields")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(fields) = fields {
                        for field in new_fields {
                            if !fields.contains(&field) {
                                fields.push(field);
                            }
                        }
                    }
                }
            }
            None => into.push(new.clone()),
        }
    }
}

/// GraphQL `field_access_rights`: entries matched by `type_name` + `field_name`, the larger
/// `limits.max_query_depth` (`-1` = unlimited) kept; new entries appended.
fn merge_field_access(into: &mut Vec<Value>, from: &[Value]) {
    if into.is_empty() {
        *into = from.to_vec();
        return;
    }
    let key = |v: &Value| (v.get("type_name").cloned(), v.get("field_name").cloned());
    let depth = |v: &Value| {
        v.pointer("/limits/max_query_depth")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    for new in from {
        let mut found = false;
        for existing in into.iter_mut().filter(|e| key(e) == key(new)) {
            found = true;
            if greater(depth(new), depth(existing)) {
                if let Some(obj) = existing.as_object_mut() {
                    let limits = obj
                        .entry("limits")
                        .or_insert_with(|| Value::Object(Default::default()));
                    if let Some(limits) = limits.as_object_mut() {
                        limits.insert("max_query_depth".to_owned(), Value::from(depth(new)));
                    }
                }
            }
        }
        if !found {
            into.push(new.clone());
        }
    }
}

/// Per-endpoint limits keyed `METHOD:path` (Tyk `Endpoints.Map`; later entries win).
fn endpoint_map(endpoints: &[Endpoint]) -> BTreeMap<String, RateLimit> {
    let mut map = BTreeMap::new();
    for endpoint in endpoints {
        for method in &endpoint.methods {
            map.insert(
                format!("{}:{}", method.name, endpoint.path),
                method.limit.clone(),
            );
        }
    }
    map
}

/// Back to endpoints (Tyk `EndpointsMap.Endpoints`): sorted by path, methods by upper-cased
/// name; like Tyk, a path containing `:` does not survive the round trip.
fn endpoints_from_map(map: BTreeMap<String, RateLimit>) -> Vec<Endpoint> {
    let mut by_path: BTreeMap<String, Vec<EndpointMethod>> = BTreeMap::new();
    for (key, limit) in map {
        let mut parts = key.split(':');
        let (Some(method), Some(path), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        by_path
            .entry(path.to_owned())
            .or_default()
            .push(EndpointMethod {
                name: method.to_owned(),
                limit,
                ..EndpointMethod::default()
            });
    }
    by_path
        .into_iter()
        .map(|(path, mut methods)| {
            methods.sort_by_key(|m| m.name.to_uppercase());
            Endpoint {
                path,
                methods,
                ..Endpoint::default()
            }
        })
        .collect()
}

/// Tyk `ApplyEndpointLevelLimits`: per `METHOD:path`, the faster rate wins (the higher rate on
/// equal intervals); endpoints only one side limits are kept.
fn merge_endpoints(policy: &[Endpoint], current: &[Endpoint]) -> Vec<Endpoint> {
    let current = endpoint_map(current);
    if current.is_empty() {
        return policy.to_vec();
    }
    let mut result = endpoint_map(policy);
    if result.is_empty() {
        return endpoints_from_map(current);
    }
    for (key, cur) in current {
        match result.get(&key) {
            None => {
                result.insert(key, cur);
            }
            Some(pol) => {
                let (pd, cd) = (interval(pol.rate, pol.per), interval(cur.rate, cur.per));
                if pd > cd || (pd == cd && cur.rate > pol.rate) {
                    result.insert(key, cur);
                }
            }
        }
    }
    endpoints_from_map(result)
}
