//! Transaction rows built directly, for tests and benches that fill the database through the processor's
//! commit path without sending envelopes.

use splat::model::{HttpFacts, SpanRecord, TransactionRecord};
use splat::protocol::ProjectId;
use splat::store::TransactionRow;

/// A classic transaction `n` of `name` in `environment` that ended at `end_us` after `duration_us`, with
/// ids derived from `n` and no figures or spans; callers fill in what they measure.
pub fn stored_transaction(
    project: ProjectId,
    n: u64,
    name: &str,
    environment: &str,
    end_us: i64,
    duration_us: i64,
) -> TransactionRow {
    TransactionRow {
        project_id: project,
        event_id: Some(format!("{n:032x}")),
        record: TransactionRecord {
            root: SpanRecord {
                trace_id: format!("{n:032x}"),
                span_id: format!("{n:016x}"),
                parent_span_id: None,
                segment_id: None,
                is_segment: true,
                name: None,
                op: Some("http.server".into()),
                status: Some("ok".into()),
                start_us: Some(end_us - duration_us),
                end_us: Some(end_us),
                data: None,
                db_system: None,
            },
            name: name.to_owned(),
            environment: Some(environment.to_owned()),
            release: None,
            platform: None,
            sdk_name: None,
            server_name: None,
            http: HttpFacts::default(),
            measured_db_ms: None,
            measured_view_ms: None,
            sql_breadcrumbs: Vec::new(),
        },
        end_us,
        received_at_us: end_us,
        source: "transaction",
        payload: None,
        perf: Default::default(),
        spans: Vec::new(),
    }
}
