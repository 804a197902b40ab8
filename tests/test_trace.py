"""trace_events on every backend: the causation tree of an event or a correlation id, with
a limit that counts what it leaves out."""

from __future__ import annotations

import uuid

import pytest

from esctl_lib import Event, EventStore, InvalidEventError, TraceNode, trace_events


class TraceStep(Event, type_name="trace_step"):
    pass


def new_id() -> str:
    return str(uuid.uuid4())


def step(cause: Event | None, correlation: str | None, name: str) -> TraceStep:
    return TraceStep(aggregate_id=new_id(), body={"name": name}, correlation_id=correlation,
                     causation_id=None if cause is None else cause.uuid)


def shape(node: TraceNode) -> object:
    name = node.event.body["name"]
    return (name, [shape(c) for c in node.children]) if node.children else name


@pytest.fixture
def story(store: EventStore) -> dict[str, Event]:
    """command → a, b; a → a1, a2; a1 → a1x; and an unrelated event in between."""
    c = new_id()
    out: dict[str, Event] = {}

    def add(name: str, cause: str | None) -> None:
        out[name] = store.append([step(out.get(cause or ""), c, name)])[0]

    add("command", None)
    add("a", "command")
    store.append([step(None, None, "unrelated")])
    add("b", "command")
    add("a1", "a")
    add("a2", "a")
    add("a1x", "a1")
    return out


TREE = ("command", [("a", [("a1", ["a1x"]), "a2"]), "b"])


def test_an_event_id_traces_from_its_trigger_down(store: EventStore, story: dict[str, Event]) -> None:
    trace = trace_events(store, str(story["a1"].id))
    assert (trace.matched, trace.focus, trace.shown, trace.more) == (
        "event id", story["a1"].uuid, 6, 0)
    assert [shape(r) for r in trace.roots] == [TREE]


def test_an_event_uuid_traces_the_same_tree(store: EventStore, story: dict[str, Event]) -> None:
    trace = trace_events(store, story["b"].uuid.upper())
    assert trace.matched == "event uuid"
    assert [shape(r) for r in trace.roots] == [TREE]


def test_a_correlation_id_traces_its_conversation(store: EventStore,
                                                  story: dict[str, Event]) -> None:
    trace = trace_events(store, story["command"].correlation_id or "")
    assert (trace.matched, trace.focus) == ("correlation id", None)
    assert [shape(r) for r in trace.roots] == [TREE]


def test_children_on_other_correlations_are_followed(store: EventStore) -> None:
    root = store.append([step(None, new_id(), "root")])[0]
    store.append([step(root, new_id(), "elsewhere")])
    assert [shape(r) for r in trace_events(store, root.id or 0).roots] == [
        ("root", ["elsewhere"])]


def test_a_limit_shows_that_many_and_counts_the_rest(store: EventStore,
                                                     story: dict[str, Event]) -> None:
    trace = trace_events(store, story["command"].uuid, limit=3)
    assert (trace.shown, trace.more, trace.more_exact) == (3, 3, True)
    [root] = trace.roots
    assert shape(root) == ("command", ["a", "b"])
    assert root.children[0].hidden == 3  # a1, a2 and a1x hang below a
    assert trace.to_dict()["trees"][0]["children"][0]["hidden"] == 3


def test_a_trigger_whose_cause_is_not_stored_says_so(store: EventStore) -> None:
    missing = new_id()
    event = store.append([TraceStep(aggregate_id=new_id(), body={"name": "x"},
                                    causation_id=missing)])[0]
    trace = trace_events(store, event.uuid)
    assert (trace.missing_cause, [shape(r) for r in trace.roots]) == (missing, ["x"])


def test_a_wide_tree_reads_in_pages(store: EventStore) -> None:
    root = store.append([step(None, None, "root")])[0]
    for i in range(25):
        store.append([step(root, None, f"c{i}")])
    trace = trace_events(store, root.id or 0, page_size=4)
    assert trace.shown == 26
    assert [c.event.body["name"] for c in trace.roots[0].children] == [f"c{i}" for i in range(25)]


@pytest.mark.parametrize("ident", ["999", "11111111-2222-4333-8444-555555555555", "nope"])
def test_an_id_that_matches_nothing_is_refused(store: EventStore, ident: str) -> None:
    store.append([step(None, None, "x")])
    with pytest.raises(InvalidEventError):
        trace_events(store, ident)


def test_the_scanning_defaults_of_the_contract_agree_with_the_backend(
    store: EventStore, story: dict[str, Event]
) -> None:
    from esctl_lib.stores.base import EventStore as Contract

    uuids = [story["command"].uuid, story["a"].uuid]
    correlation = story["command"].correlation_id or ""
    for method, args, kwargs in (
        ("find_events", (), {"ids": [story["b"].id], "uuids": [story["a1x"].uuid]}),
        ("read_by_correlation", (correlation,), {"after": 1, "limit": 3}),
        ("read_caused_by", (uuids,), {"limit": 2}),
    ):
        default = getattr(Contract, method)(store, *args, **kwargs)
        assert [e.uuid for e in default] == [e.uuid for e in getattr(store, method)(*args, **kwargs)]
