//! Quotas per key and per project: items accepted per clock minute, per data category (see
//! [`DataCategory`]). Off unless a quota is set (`splat key limit`, `splat project limit`, or the
//! project's settings page).
//!
//! As Relay does, an envelope is judged item by item: the items of a category over its quota are dropped
//! and the rest accepted (`200`, with `X-Sentry-Rate-Limits` naming what was dropped); when nothing is
//! left, the answer is `429` with `Retry-After` and the same header. Attachments go with their event: a
//! dropped event drops them too. Client reports are never limited. The header reads
//! `retry_after:category;category:scope:reason_code`, one entry per scope, so SDKs stop sending exactly
//! those categories until the minute is over.
//!
//! A fixed one-minute window per process: in AWS each ingest instance counts on its own, so a quota is
//! approximate there (at most one quota per warm instance).

use std::collections::HashMap;
use std::sync::Mutex;

use super::BadStoreRequest;
use crate::protocol::{DataCategory, Envelope, ItemType, ProjectId, PublicKey};
use crate::store::{Quota, QuotaScope};

/// Windows kept before stale ones (an earlier minute) are swept; only configured quotas of known keys
/// ever get one, so this is far above what a real installation reaches.
const SWEEP_ABOVE: usize = 10_000;

/// What a counter belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Owner {
    Key(PublicKey),
    Project(ProjectId),
}

#[derive(Default)]
pub struct RateLimiter {
    /// Per owner and category: the minute counted and how many items it accepted.
    windows: Mutex<HashMap<(Owner, DataCategory), (i64, u64)>>,
}

/// Categories refused, per scope, until `retry_after_secs` from now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub categories: Vec<DataCategory>,
    pub scope: QuotaScope,
    pub retry_after_secs: u64,
}

/// Every limit an envelope ran into; empty when it was accepted whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits(pub Vec<RateLimit>);

impl RateLimits {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_limited(&self, category: DataCategory) -> bool {
        self.0.iter().any(|l| l.categories.contains(&category))
    }

    /// The `Retry-After` for a request refused whole: the longest wait.
    pub fn retry_after_secs(&self) -> u64 {
        self.0
            .iter()
            .map(|l| l.retry_after_secs)
            .max()
            .unwrap_or(60)
    }

    /// `X-Sentry-Rate-Limits` as Relay formats it: `60:error;transaction:key:key_quota, 60:span:project:project_quota`.
    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|l| {
                let categories: Vec<&str> = l.categories.iter().map(|c| c.name()).collect();
                let scope = l.scope.name();
                format!(
                    "{}:{}:{scope}:{scope}_quota",
                    l.retry_after_secs,
                    categories.join(";")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn add(&mut self, category: DataCategory, scope: QuotaScope, retry_after_secs: u64) {
        match self.0.iter_mut().find(|l| l.scope == scope) {
            Some(limit) => {
                if !limit.categories.contains(&category) {
                    limit.categories.push(category);
                    limit.categories.sort();
                }
            }
            None => self.0.push(RateLimit {
                categories: vec![category],
                scope,
                retry_after_secs,
            }),
        }
    }
}

impl RateLimiter {
    /// Counts `wanted` (items per category) against the key's and its project's `quotas` at `now_secs`.
    /// A category is accepted whole or refused whole; refused ones are returned and not counted.
    pub fn check(
        &self,
        key: &PublicKey,
        project: ProjectId,
        quotas: &[Quota],
        wanted: &[(DataCategory, u64)],
        now_secs: i64,
    ) -> RateLimits {
        let mut limits = RateLimits::default();
        if quotas.is_empty() {
            return limits;
        }
        let minute = now_secs.div_euclid(60);
        let retry_after = (60 - now_secs.rem_euclid(60)) as u64;
        let owner = |scope| match scope {
            QuotaScope::Key => Owner::Key(key.clone()),
            QuotaScope::Project => Owner::Project(project),
        };
        let mut windows = self.windows.lock().expect("poisoned");
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, (m, _)| *m == minute);
        }
        for &(category, n) in wanted {
            // Each quota on this category, with what its window counted this minute.
            let applicable: Vec<(&Quota, (Owner, DataCategory), u64)> = quotas
                .iter()
                .filter(|q| q.category == category)
                .map(|q| {
                    let slot = (owner(q.scope), category);
                    let counted = match windows.get(&slot) {
                        Some((m, count)) if *m == minute => *count,
                        _ => 0,
                    };
                    (q, slot, counted)
                })
                .collect();
            if let Some((q, _, _)) = applicable
                .iter()
                .find(|(q, _, counted)| counted.saturating_add(n) > q.per_minute)
            {
                limits.add(category, q.scope, retry_after);
                continue;
            }
            for (_, slot, counted) in applicable {
                windows.insert(slot, (minute, counted + n));
            }
        }
        limits
    }
}

/// The rate-limit step of ingest: counts the envelope against the key's and project's quotas and drops
/// what is over. `Err` (a 429) when nothing that counts is left; otherwise the limits met, for the
/// `200`'s `X-Sentry-Rate-Limits`.
pub fn enforce(
    limiter: &RateLimiter,
    key: &PublicKey,
    project: ProjectId,
    quotas: &[Quota],
    envelope: &mut Envelope,
    now_secs: i64,
) -> Result<RateLimits, BadStoreRequest> {
    let limits = limiter.check(key, project, quotas, &quantities(envelope), now_secs);
    if limits.is_empty() {
        return Ok(limits);
    }
    drop_limited(envelope, &limits);
    if quantities(envelope).is_empty() {
        return Err(BadStoreRequest::RateLimited(limits));
    }
    Ok(limits)
}

/// Items per category in an envelope, in the order they first appear.
pub fn quantities(envelope: &Envelope) -> Vec<(DataCategory, u64)> {
    let mut out: Vec<(DataCategory, u64)> = Vec::new();
    for (category, n) in envelope.items.iter().flat_map(DataCategory::counts) {
        match out.iter_mut().find(|(c, _)| *c == category) {
            Some((_, total)) => *total += n,
            None => out.push((category, n)),
        }
    }
    out
}

/// Drops the items `limits` refuses (and the attachments of a refused event, as Relay does); returns how
/// many were dropped.
pub fn drop_limited(envelope: &mut Envelope, limits: &RateLimits) -> usize {
    let event_dropped = envelope.items.iter().any(|item| {
        item.ty().creates_event()
            && DataCategory::of_item_type(item.ty()).is_some_and(|c| limits.is_limited(c))
    });
    let before = envelope.items.len();
    envelope.items.retain(|item| {
        let limited = DataCategory::counts(item).any(|(c, _)| limits.is_limited(c));
        !(limited || (event_dropped && *item.ty() == ItemType::Attachment))
    });
    before - envelope.items.len()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn quota(scope: QuotaScope, category: DataCategory, per_minute: u64) -> Quota {
        Quota {
            scope,
            category,
            per_minute,
        }
    }

    #[test]
    fn each_category_has_its_own_window_per_scope_and_resets_each_minute() {
        let rl = RateLimiter::default();
        let (k1, k2, p) = (
            PublicKey::generate(),
            PublicKey::generate(),
            ProjectId::new(1),
        );
        let quotas = [
            quota(QuotaScope::Key, DataCategory::Error, 2),
            quota(QuotaScope::Project, DataCategory::Span, 3),
        ];
        let err = [(DataCategory::Error, 1)];
        assert!(rl.check(&k1, p, &quotas, &err, 120).is_empty());
        assert!(rl.check(&k1, p, &quotas, &err, 121).is_empty());
        let over = rl.check(&k1, p, &quotas, &err, 150);
        assert_eq!(over.header(), "30:error:key:key_quota");
        assert!(
            rl.check(&k2, p, &quotas, &err, 150).is_empty(),
            "another key has its own"
        );
        assert!(rl
            .check(&k1, p, &quotas, &[(DataCategory::Transaction, 100)], 150)
            .is_empty());
        // Spans are counted for the project, whichever key sends them.
        assert!(rl
            .check(&k1, p, &quotas, &[(DataCategory::Span, 2)], 150)
            .is_empty());
        let spans = rl.check(&k2, p, &quotas, &[(DataCategory::Span, 2)], 151);
        assert_eq!(spans.header(), "29:span:project:project_quota");
        assert!(rl
            .check(&k2, p, &quotas, &[(DataCategory::Span, 1)], 152)
            .is_empty());
        assert!(
            rl.check(&k1, p, &quotas, &err, 180).is_empty(),
            "next minute"
        );
    }

    #[test]
    fn refusals_group_categories_per_scope() {
        let rl = RateLimiter::default();
        let (k, p) = (PublicKey::generate(), ProjectId::new(1));
        let quotas = [
            quota(QuotaScope::Key, DataCategory::Transaction, 0),
            quota(QuotaScope::Key, DataCategory::Error, 0),
            quota(QuotaScope::Project, DataCategory::Monitor, 0),
        ];
        let wanted = [
            (DataCategory::Transaction, 1),
            (DataCategory::Error, 1),
            (DataCategory::Monitor, 1),
            (DataCategory::Session, 1),
        ];
        let limits = rl.check(&k, p, &quotas, &wanted, 0);
        assert_eq!(
            limits.header(),
            "60:error;transaction:key:key_quota, 60:monitor:project:project_quota"
        );
        assert!(!limits.is_limited(DataCategory::Session));
        assert_eq!(limits.retry_after_secs(), 60);
    }

    #[test]
    fn a_key_quota_and_a_project_quota_both_apply() {
        let rl = RateLimiter::default();
        let (k, p) = (PublicKey::generate(), ProjectId::new(1));
        let quotas = [
            quota(QuotaScope::Key, DataCategory::Error, 10),
            quota(QuotaScope::Project, DataCategory::Error, 1),
        ];
        let err = [(DataCategory::Error, 1)];
        assert!(rl.check(&k, p, &quotas, &err, 0).is_empty());
        assert_eq!(
            rl.check(&k, p, &quotas, &err, 0).header(),
            "60:error:project:project_quota"
        );
    }

    #[test]
    fn limited_items_are_dropped_with_their_attachments_and_the_rest_kept() {
        let body = "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n\
            {\"type\":\"event\"}\n{}\n\
            {\"type\":\"attachment\",\"filename\":\"a.txt\"}\nabc\n\
            {\"type\":\"span\",\"item_count\":3}\n{}\n\
            {\"type\":\"client_report\"}\n{}\n\
            {\"type\":\"session\"}\n{}\n";
        let mut envelope = Envelope::parse(Bytes::from(body)).unwrap();
        assert_eq!(
            quantities(&envelope),
            vec![
                (DataCategory::Error, 1),
                (DataCategory::Attachment, 1),
                (DataCategory::Span, 3),
                (DataCategory::Session, 1),
            ]
        );
        let mut limits = RateLimits::default();
        limits.add(DataCategory::Error, QuotaScope::Key, 60);
        assert_eq!(drop_limited(&mut envelope, &limits), 2);
        let left: Vec<&str> = envelope.items.iter().map(|i| i.ty().as_str()).collect();
        assert_eq!(left, ["span", "client_report", "session"]);
    }

    #[test]
    fn a_log_byte_quota_drops_log_items_by_their_size() {
        let rl = RateLimiter::default();
        let (k, p) = (PublicKey::generate(), ProjectId::new(1));
        let quotas = [quota(QuotaScope::Project, DataCategory::LogByte, 100)];
        let body = |size: usize| {
            let payload = format!("{{\"items\":[{}]}}", " ".repeat(size - 12));
            format!(
                "{{}}\n{{\"type\":\"log\",\"item_count\":2,\"length\":{size}}}\n{payload}\n{{\"type\":\"event\"}}\n{{}}\n"
            )
        };
        let mut small = Envelope::parse(Bytes::from(body(60))).unwrap();
        assert!(enforce(&rl, &k, p, &quotas, &mut small, 0)
            .unwrap()
            .is_empty());
        let mut over = Envelope::parse(Bytes::from(body(60))).unwrap();
        let limits = enforce(&rl, &k, p, &quotas, &mut over, 1).unwrap();
        assert_eq!(limits.header(), "59:log_byte:project:project_quota");
        let left: Vec<&str> = over.items.iter().map(|i| i.ty().as_str()).collect();
        assert_eq!(left, ["event"], "the log item is dropped, the event kept");
    }
}
