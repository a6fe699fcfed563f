//! How one receive's deliveries are divided into the batches the processor commits. Each batch's rows
//! are held in memory until its commit, so a batch is bounded by the bytes of its envelopes, not only by
//! its count: 1,000 claim-checked envelopes of a megabyte each would otherwise be a gigabyte of rows at
//! once, past any Lambda's memory. (In Lambda, SQS hands over at most 6 MB of message bodies per
//! invocation, but a claim-checked body is only a pointer there, and a compressed one inflates.)

use crate::queue::{Delivery, QueueMessage};

/// What a batch's envelopes may add up to by default: with what decoding them takes, well inside the
/// processor's 512 MB (the template's size) and `splat serve`'s memory budget.
pub const DEFAULT_BATCH_BYTES: u64 = 32 << 20;

/// What these deliveries' envelopes add up to once read (a claim-checked one of an older build, which does
/// not say, as `u64::MAX`).
pub fn envelope_bytes(deliveries: &[Delivery]) -> u64 {
    deliveries
        .iter()
        .map(|d| QueueMessage::envelope_bytes(&d.body).unwrap_or(u64::MAX))
        .fold(0, u64::saturating_add)
}

/// The batches to commit, in order: a message delivered before (a receive count above 1) alone, so that
/// one that fails every time fails only itself; then the others, as few batches as keep each one's
/// envelopes within `budget` bytes. An envelope larger than the budget is a batch of its own, and so is a
/// claim-checked one that does not say its size (an older build's).
pub fn batches(deliveries: Vec<Delivery>, budget: u64) -> Vec<Vec<Delivery>> {
    let (redelivered, fresh): (Vec<Delivery>, Vec<Delivery>) =
        deliveries.into_iter().partition(|d| d.receive_count > 1);
    let mut batches: Vec<Vec<Delivery>> = redelivered.into_iter().map(|d| vec![d]).collect();
    let (mut current, mut bytes) = (Vec::new(), 0u64);
    for delivery in fresh {
        let size = QueueMessage::envelope_bytes(&delivery.body).unwrap_or(budget);
        if !current.is_empty() && bytes.saturating_add(size) > budget {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
        current.push(delivery);
    }
    batches.extend(Some(current).filter(|c| !c.is_empty()));
    batches
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::protocol::ProjectId;
    use crate::queue::EnvelopeRef;

    fn delivery(id: &str, receive_count: u32, envelope: EnvelopeRef) -> Delivery {
        let message = QueueMessage {
            project_id: ProjectId::new(1),
            event_id: None,
            received_at_us: 0,
            envelope,
        };
        Delivery {
            message_id: id.into(),
            receipt: id.into(),
            receive_count,
            body: message.encode(),
            sent_at_ms: None,
        }
    }

    fn inline(id: &str, bytes: usize) -> Delivery {
        delivery(id, 1, EnvelopeRef::Inline(Bytes::from(vec![b'x'; bytes])))
    }

    fn ids(batches: &[Vec<Delivery>]) -> Vec<Vec<&str>> {
        batches
            .iter()
            .map(|b| b.iter().map(|d| d.message_id.as_str()).collect())
            .collect()
    }

    #[test]
    fn envelopes_fill_batches_up_to_the_budget() {
        let found = batches(
            vec![
                inline("a", 400),
                inline("b", 500),
                inline("c", 200),
                // Compressed on the queue: its header's length counts, not the few bytes it takes there.
                inline("d", 100_000),
                inline("e", 10),
            ],
            1_000,
        );
        assert_eq!(
            ids(&found),
            [vec!["a", "b"], vec!["c"], vec!["d"], vec!["e"]]
        );
        let pair = vec![inline("a", 400), inline("b", 500)];
        assert_eq!(envelope_bytes(&pair), 900);
        assert_eq!(ids(&batches(pair, 1 << 20)), [vec!["a", "b"]]);
    }

    #[test]
    fn redeliveries_and_unsized_claim_checks_go_alone() {
        let claimed = |id: &str, bytes| {
            let key = format!("ingest/{id}");
            delivery(id, 1, EnvelopeRef::Blob { key, bytes })
        };
        let mut older = claimed("old", 0);
        // An older build's header: no length.
        older.body =
            b"{\"v\":2,\"project_id\":1,\"received_at_us\":0,\"blob\":\"ingest/old\"}\n".to_vec();
        let again = delivery("again", 2, EnvelopeRef::Inline(Bytes::from_static(b"{}")));
        let found = batches(
            vec![
                inline("a", 10),
                again,
                claimed("big", 600),
                older,
                inline("b", 10),
            ],
            1_000,
        );
        assert_eq!(
            ids(&found),
            [vec!["again"], vec!["a", "big"], vec!["old"], vec!["b"]]
        );
    }
}
