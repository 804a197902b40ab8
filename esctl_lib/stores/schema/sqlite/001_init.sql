-- esctl SQLite schema, version 1: events, trackers, processor state, parked events.
CREATE TABLE IF NOT EXISTS events (
    id              INTEGER PRIMARY KEY,
    uuid            TEXT    NOT NULL UNIQUE,
    aggregate_id    TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    created_at      TEXT    NOT NULL,
    correlation_id  TEXT,
    causation_id    TEXT,
    metadata        TEXT,
    UNIQUE (aggregate_id, version)
);
CREATE INDEX IF NOT EXISTS events_type_id ON events (type, id);
CREATE INDEX IF NOT EXISTS events_correlation_id ON events (correlation_id);
CREATE INDEX IF NOT EXISTS events_causation_id ON events (causation_id);

CREATE TABLE IF NOT EXISTS trackers (
    name        TEXT    PRIMARY KEY,
    position    INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL
);

CREATE TABLE IF NOT EXISTS processor_state (
    name          TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    pid           INTEGER,
    host          TEXT,
    heartbeat_at  REAL,
    last_error    TEXT,
    position      INTEGER,
    updated_at    REAL
);

CREATE TABLE IF NOT EXISTS parked_events (
    processor        TEXT    NOT NULL,
    event_id         INTEGER NOT NULL,
    event_uuid       TEXT    NOT NULL,
    event_type       TEXT    NOT NULL,
    error            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    first_failed_at  REAL    NOT NULL,
    last_failed_at   REAL    NOT NULL,
    PRIMARY KEY (processor, event_id)
);
