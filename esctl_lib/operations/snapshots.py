"""``esctl snapshots``: list the aggregate snapshots a store keeps, and discard them."""

from __future__ import annotations

from esctl_lib.errors import SchemaError
from esctl_lib.stores.base import EventStore, SnapshotInfo


def list_snapshots(store: EventStore) -> list[SnapshotInfo]:
    """The store's snapshots per aggregate type: count, newest (Unix time), bytes.
    :class:`SchemaError` when the store is not set up (a store at schema 1 has none)."""
    if store.schema_version() == 0:
        raise SchemaError("the store is not set up; run `esctl setup`")
    return store.snapshots()


def matching_types(infos: list[SnapshotInfo], aggregate_type: str) -> list[str]:
    """The stored types ``aggregate_type`` names: itself (``"module:QualName"``), or every
    type whose class name (the part after ``:``, or its last dotted part) it is."""
    names = [i.aggregate_type for i in infos]
    if aggregate_type in names:
        return [aggregate_type]
    return [n for n in names
            if n.rpartition(":")[2] == aggregate_type
            or n.rpartition(":")[2].rpartition(".")[2] == aggregate_type]


def discard_snapshots(store: EventStore, aggregate_type: str) -> dict[str, int]:
    """Drop the snapshots of the types ``aggregate_type`` names (see :func:`matching_types`);
    returns how many were dropped per type (empty when it names none). Loads then fold the
    whole history until the next save that crosses a multiple takes a new snapshot."""
    return {t: store.drop_snapshots(t)
            for t in matching_types(list_snapshots(store), aggregate_type)}
