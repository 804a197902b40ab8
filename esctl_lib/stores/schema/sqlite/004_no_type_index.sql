-- esctl SQLite schema, version 4: no (type, id) index (issue 15).
--
-- A read filtered on types scans the rowid range from the reader's position with the
-- types as a filter (SQLite's plan for "id > ? AND type IN (...) ORDER BY id"), so it
-- costs at most an unfiltered scan of the same range. Every append then writes one
-- B-tree page less: a one-event commit wrote 4.7 WAL frames with the index and writes
-- 3.6 without it (a plain table with only (aggregate_id, version): 2.4), and the WAL
-- reaches its checkpoint that much later. bench/typed_reads.py measures what filtered
-- reads of a rare type cost.
DROP INDEX IF EXISTS events_type_id;
