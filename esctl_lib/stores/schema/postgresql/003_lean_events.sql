-- esctl PostgreSQL schema, version 3: a leaner events table (issue 15).
--
-- body and metadata are json (the text as the store wrote it) instead of jsonb: the store
-- always reads them back as text and parses them in Python, and jsonb's binary form of an
-- event body is about 30 bytes larger than its text (and costs the server a conversion
-- each way). SQL over the events still works with ->, ->> and the json_* functions; a
-- jsonb operator (@>, ?) needs a cast, body::jsonb.
--
-- The (type, tx, id) index is dropped: a read filtered on types scans the stream's own
-- (tx, id) index from the reader's position with the types as a filter, so it costs at
-- most an unfiltered scan of the same range, and every append writes one index entry
-- less (about 50 bytes per event). bench/typed_reads.py measures what that costs.
--
-- What each remaining index is for:
--   events_pkey (id)                 positions: the stream key of a position, own writes
--   events_tx_id (tx, id)            the stream order below the reader horizon (every read)
--   events_uuid_key UNIQUE (uuid)    every event's uuid is unique (DuplicateEventError)
--   events_aggregate_version_key UNIQUE (aggregate_id, version)
--                                    contiguous versions, expected-version appends,
--                                    Repository.load (read_aggregate)
--   events_correlation_id / events_causation_id (partial, NOT NULL only)
--                                    finding a conversation or an event's consequences
-- Events are never updated or deleted and ids and tx grow, so those two indexes fill
-- their pages (fillfactor 100) instead of leaving 10 % free for entries that never come.
-- (Not the uuid index: UUIDv7s are random within a millisecond, and full pages then
-- split in halves: 55 bytes an event instead of 32.)
--
-- The upgrade rewrites the table once (ALTER COLUMN … TYPE), holding an exclusive lock on
-- it meanwhile; ids, tx and every value are kept.
DROP INDEX IF EXISTS events_type_tx_id;
ALTER INDEX events_pkey SET (fillfactor = 100);
ALTER INDEX events_tx_id SET (fillfactor = 100);
ALTER TABLE events
    ALTER COLUMN body TYPE json USING body::json,
    ALTER COLUMN metadata TYPE json USING metadata::json;
