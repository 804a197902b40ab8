-- esctl PostgreSQL schema, version 2: aggregate snapshots (a cache of folded state).
-- One row per aggregate and aggregate type: the newest snapshot only. "version" is the
-- aggregate version the state covers; "snapshot_version" the aggregate class's
-- snapshot_version when it was taken (a snapshot of another one is never loaded).
CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_id      uuid             NOT NULL,
    aggregate_type    text             NOT NULL,
    version           integer          NOT NULL,
    snapshot_version  integer          NOT NULL,
    state             jsonb            NOT NULL,
    created_at        double precision NOT NULL,
    PRIMARY KEY (aggregate_id, aggregate_type)
);
CREATE INDEX IF NOT EXISTS snapshots_type ON snapshots (aggregate_type);
