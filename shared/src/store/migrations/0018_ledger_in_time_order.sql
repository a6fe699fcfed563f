-- The message ledger keyed by when the queue took the message (SQS's SentTimestamp, the same on every
-- redelivery) before its random id, so that a batch's entries land on the last page or two instead of one
-- page each: on EFS every page a commit changes is written twice (journal and file). Rows from before have
-- no time: 0, and the processor looks there too.
CREATE TABLE processed_messages_by_time (
    sent_ms      INTEGER NOT NULL,
    message_id   TEXT    NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (sent_ms, message_id)
) WITHOUT ROWID;
INSERT INTO processed_messages_by_time (sent_ms, message_id, processed_at)
    SELECT 0, message_id, processed_at FROM processed_messages;
DROP TABLE processed_messages;
ALTER TABLE processed_messages_by_time RENAME TO processed_messages;
CREATE INDEX processed_messages_at ON processed_messages (processed_at);
