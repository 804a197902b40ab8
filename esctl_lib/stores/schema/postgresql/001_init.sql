-- esctl PostgreSQL schema, version 1: events, trackers, processor state, parked events.
-- Applied with search_path set to the store's schema, so every name lands in it.

-- Events. "tx" is the writing transaction: the stream is ordered by (tx, id) and read
-- only below the oldest transaction still in progress, so no reader ever skips an event
-- that commits late (see esctl_lib/stores/postgres.py).
CREATE TABLE IF NOT EXISTS events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx              xid8        NOT NULL DEFAULT pg_current_xact_id(),
    uuid            uuid        NOT NULL,
    aggregate_id    uuid        NOT NULL,
    type            text        NOT NULL,
    body            jsonb       NOT NULL,
    version         integer     NOT NULL,
    created_at      timestamptz NOT NULL,
    correlation_id  uuid,
    causation_id    uuid,
    metadata        jsonb,
    CONSTRAINT events_uuid_key UNIQUE (uuid),
    CONSTRAINT events_aggregate_version_key UNIQUE (aggregate_id, version)
);
CREATE INDEX IF NOT EXISTS events_tx_id ON events (tx, id);
CREATE INDEX IF NOT EXISTS events_type_tx_id ON events (type, tx, id);
CREATE INDEX IF NOT EXISTS events_correlation_id ON events (correlation_id)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_causation_id ON events (causation_id)
    WHERE causation_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS trackers (
    name        text             PRIMARY KEY,
    position    bigint           NOT NULL DEFAULT 0,
    updated_at  double precision
);

CREATE TABLE IF NOT EXISTS processor_state (
    name          text PRIMARY KEY,
    state         text NOT NULL,
    pid           integer,
    host          text,
    heartbeat_at  double precision,
    last_error    text,
    position      bigint,
    updated_at    double precision
);

CREATE TABLE IF NOT EXISTS parked_events (
    processor        text             NOT NULL,
    event_id         bigint           NOT NULL,
    event_uuid       text             NOT NULL,
    event_type       text             NOT NULL,
    error            text             NOT NULL,
    attempts         integer          NOT NULL,
    first_failed_at  double precision NOT NULL,
    last_failed_at   double precision NOT NULL,
    PRIMARY KEY (processor, event_id)
);
