-- esctl SQLite schema, version 3: a leaner events table.
--
-- uuids (uuid, aggregate_id, correlation_id, causation_id) are stored as their 16 bytes
-- (a BLOB) instead of 36 characters of text, in the table and in the two unique indexes
-- that hold them; the store still reads and returns canonical lower-case strings. The
-- correlation_id and causation_id indexes are partial: most events have neither, and an
-- index of NULLs costs a write per event and finds nothing. What each index is for:
--   uuid UNIQUE                   every event's uuid is unique (DuplicateEventError)
--   UNIQUE (aggregate_id, version) contiguous versions, expected-version appends,
--                                 Repository.load (read_aggregate)
--   events_type_id (type, id)     reads filtered on types (processors with handlers)
--   events_correlation_id / events_causation_id (partial)
--                                 finding a conversation or an event's consequences
-- SQLite cannot change a column's type, so the table is rebuilt; ids are kept.
-- esctl_uuid_blob() is a function the store registers while it applies this file.
CREATE TABLE events_lean (
    id              INTEGER PRIMARY KEY,
    uuid            BLOB    NOT NULL UNIQUE,
    aggregate_id    BLOB    NOT NULL,
    type            TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    created_at      TEXT    NOT NULL,
    correlation_id  BLOB,
    causation_id    BLOB,
    metadata        TEXT,
    UNIQUE (aggregate_id, version)
);
INSERT INTO events_lean (id, uuid, aggregate_id, type, body, version, created_at,
                         correlation_id, causation_id, metadata)
    SELECT id, esctl_uuid_blob(uuid), esctl_uuid_blob(aggregate_id), type, body, version,
           created_at, esctl_uuid_blob(correlation_id), esctl_uuid_blob(causation_id),
           metadata
    FROM events ORDER BY id;
DROP TABLE events;
ALTER TABLE events_lean RENAME TO events;
CREATE INDEX events_type_id ON events (type, id);
CREATE INDEX events_correlation_id ON events (correlation_id)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX events_causation_id ON events (causation_id)
    WHERE causation_id IS NOT NULL;
