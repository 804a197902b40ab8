"""Causation and correlation reads (``esctl trace``): ``find_events``, ``read_by_correlation``
and ``read_caused_by`` agree on every backend."""

from __future__ import annotations

from esctl_lib.stores.base import EventStore
from esctl_lib.testing.contract.base import ContractBase, added, new_id
from esctl_lib.testing.contract.events import ConfItemAdded


def _story(store: EventStore) -> dict[str, ConfItemAdded]:
    """A command (correlation c) whose event caused two more on other aggregates, one of
    which caused a fourth; and an unrelated event."""
    c = new_id()
    root = store.append([ConfItemAdded(aggregate_id=new_id(), correlation_id=c)])[0]
    left = store.append([ConfItemAdded(aggregate_id=new_id(), correlation_id=c,
                                       causation_id=root.uuid)])[0]
    store.append([added()])
    right = store.append([ConfItemAdded(aggregate_id=new_id(), correlation_id=c,
                                        causation_id=root.uuid)])[0]
    leaf = store.append([ConfItemAdded(aggregate_id=new_id(), correlation_id=c,
                                       causation_id=left.uuid)])[0]
    return {"root": root, "left": left, "right": right, "leaf": leaf}  # type: ignore[dict-item]


class TraceContract(ContractBase):
    """Reads that follow causation and correlation ids."""

    def test_events_are_found_by_id_and_by_uuid_in_id_order(self, store: EventStore) -> None:
        story = _story(store)
        found = store.find_events(ids=[story["leaf"].id or 0], uuids=[story["root"].uuid.upper()])
        assert [e.id for e in found] == [story["root"].id, story["leaf"].id]
        assert isinstance(found[0], ConfItemAdded)

    def test_finding_nothing_returns_nothing(self, store: EventStore) -> None:
        _story(store)
        assert store.find_events(ids=[999], uuids=[new_id(), "not-a-uuid"]) == []
        assert store.find_events() == []

    def test_events_of_a_correlation_id_read_in_id_order(self, store: EventStore) -> None:
        story = _story(store)
        events = store.read_by_correlation(story["root"].correlation_id or "")
        assert [e.uuid for e in events] == [story[k].uuid for k in ("root", "left", "right",
                                                                     "leaf")]

    def test_a_correlation_id_reads_in_pages(self, store: EventStore) -> None:
        story = _story(store)
        c = story["root"].correlation_id or ""
        first = store.read_by_correlation(c, limit=2)
        rest = store.read_by_correlation(c, after=first[-1].id or 0, limit=10)
        assert [e.uuid for e in [*first, *rest]] == [
            story[k].uuid for k in ("root", "left", "right", "leaf")]

    def test_an_unknown_or_malformed_correlation_id_reads_nothing(
        self, store: EventStore
    ) -> None:
        _story(store)
        assert store.read_by_correlation(new_id()) == []
        assert store.read_by_correlation("nope") == []

    def test_events_caused_by_some_uuids_read_in_id_order(self, store: EventStore) -> None:
        story = _story(store)
        caused = store.read_caused_by([story["root"].uuid, story["left"].uuid])
        assert [e.uuid for e in caused] == [story[k].uuid for k in ("left", "right", "leaf")]
        assert [e.causation_id for e in caused] == [
            story["root"].uuid, story["root"].uuid, story["left"].uuid]

    def test_caused_by_reads_in_pages(self, store: EventStore) -> None:
        story = _story(store)
        uuids = [story["root"].uuid, story["left"].uuid]
        first = store.read_caused_by(uuids, limit=1)
        rest = store.read_caused_by(uuids, after=first[-1].id or 0)
        assert [e.uuid for e in [*first, *rest]] == [
            story[k].uuid for k in ("left", "right", "leaf")]

    def test_caused_by_nothing_reads_nothing(self, store: EventStore) -> None:
        story = _story(store)
        assert store.read_caused_by([]) == []
        assert store.read_caused_by([story["leaf"].uuid, "nope"]) == []

    def test_an_id_beyond_64_bits_finds_nothing(self, store: EventStore) -> None:
        _story(store)
        assert store.find_events(ids=[2**64, -1, 0]) == []
