"""Aggregates and the repository: folding history, applying changes, saving with a version."""

from __future__ import annotations

import uuid

import pytest

from esctl_lib import (
    Aggregate,
    ConcurrencyError,
    Event,
    EventStore,
    Repository,
    UnknownEventError,
    handles,
)


class AgOpened(Event, type_name="ag_opened"):
    pass


class AgDeposited(Event, type_name="ag_deposited"):
    pass


class AgAudited(Event, type_name="ag_audited"):
    pass


class Account(Aggregate):
    def __init__(self, aggregate_id: object, events: object = ()) -> None:
        self.opened = False
        self.balance = 0
        self.seen: list[str] = []
        super().__init__(aggregate_id, events)  # type: ignore[arg-type]

    @handles(AgOpened)
    def _opened(self, event: Event) -> None:
        self.opened = True

    @handles(AgDeposited)
    def _deposited(self, event: Event) -> None:
        self.balance += event.body["amount"]

    @handles(AgOpened, AgDeposited)
    def _log(self, event: Event) -> None:
        self.seen.append(event.type)

    def open(self) -> None:
        self.apply(AgOpened(aggregate_id=self.id))

    def deposit(self, amount: int) -> None:
        self.apply(AgDeposited(aggregate_id=self.id, body={"amount": amount}))


class AuditedAccount(Account):
    @handles(AgAudited)
    def _audited(self, event: Event) -> None:
        self.seen.append("audit")


def new_id() -> str:
    return str(uuid.uuid4())


def test_an_aggregate_starts_at_version_zero() -> None:
    account = Account(new_id())
    assert account.version == 0 and account.changes == []


def test_apply_runs_handlers_bumps_the_version_and_keeps_the_change() -> None:
    account = Account(new_id())
    account.open()
    account.deposit(5)
    assert account.balance == 5 and account.version == 2
    assert [e.type for e in account.changes] == ["ag_opened", "ag_deposited"]


def test_one_handler_may_serve_several_event_classes() -> None:
    account = Account(new_id())
    account.open()
    account.deposit(1)
    assert account.seen == ["ag_opened", "ag_deposited"]


def test_subclasses_inherit_handlers() -> None:
    account = AuditedAccount(new_id())
    account.open()
    account.apply(AgAudited(aggregate_id=account.id))
    assert account.opened and account.seen == ["ag_opened", "audit"]


def test_an_unknown_event_raises_by_default() -> None:
    account = Account(new_id())
    with pytest.raises(UnknownEventError, match="ag_audited"):
        account.apply(AgAudited(aggregate_id=account.id))


def test_the_unknown_event_policy_can_ignore() -> None:
    class Lenient(Account):
        on_unknown_event = "ignore"

    lenient = Lenient(new_id())
    lenient.apply(AgAudited(aggregate_id=lenient.id))
    assert lenient.version == 1


seen_unknown: list[tuple[Aggregate, str]] = []


def note_unknown(aggregate: Aggregate, event: Event) -> None:
    seen_unknown.append((aggregate, event.type))


def test_a_plain_function_policy_gets_the_aggregate_and_the_event() -> None:
    class Reporting(Account):
        on_unknown_event = note_unknown

    seen_unknown.clear()
    reporting = Reporting(new_id())
    reporting.apply(AgAudited(aggregate_id=reporting.id))
    assert seen_unknown == [(reporting, "ag_audited")]
    assert reporting.version == 1


def test_a_lambda_policy_gets_the_aggregate_and_the_event() -> None:
    calls: list[tuple[str, str]] = []

    class Reporting(Account):
        on_unknown_event = lambda agg, ev: calls.append((agg.id, ev.type))  # noqa: E731

    reporting = Reporting(new_id())
    reporting.apply(AgAudited(aggregate_id=reporting.id))
    assert calls == [(reporting.id, "ag_audited")]


def test_a_staticmethod_policy_gets_the_aggregate_and_the_event() -> None:
    calls: list[tuple[str, str]] = []

    class Reporting(Account):
        on_unknown_event = staticmethod(lambda agg, ev: calls.append((agg.id, ev.type)))  # type: ignore[assignment]

    reporting = Reporting(new_id())
    reporting.apply(AgAudited(aggregate_id=reporting.id))
    assert calls == [(reporting.id, "ag_audited")]


def test_a_method_named_on_unknown_event_gets_the_event() -> None:
    class Reporting(Account):
        def on_unknown_event(self, event: Event) -> None:  # type: ignore[override]
            self.unknown = event.type

    reporting = Reporting(new_id())
    reporting.apply(AgAudited(aggregate_id=reporting.id))
    assert reporting.unknown == "ag_audited"


def test_a_policy_of_an_unknown_word_is_a_clear_error() -> None:
    class Confused(Account):
        on_unknown_event = "skip"  # type: ignore[assignment]

    confused = Confused(new_id())
    with pytest.raises(TypeError, match="must be 'raise', 'ignore' or a callable"):
        confused.apply(AgAudited(aggregate_id=confused.id))


def test_an_event_for_another_aggregate_is_refused() -> None:
    account = Account(new_id())
    with pytest.raises(Exception, match="applied to aggregate"):
        account.apply(AgOpened(aggregate_id=new_id()))


def test_the_repository_saves_and_loads(store: EventStore) -> None:
    repo = Repository(store)
    account = repo.load(Account, new_id())
    account.open()
    account.deposit(10)
    stored = repo.save(account)
    assert [e.version for e in stored] == [1, 2] and account.changes == []
    again = repo.load(Account, account.id)
    assert (again.balance, again.version, again.opened) == (10, 2, True)


def test_saving_nothing_appends_nothing(store: EventStore) -> None:
    assert Repository(store).save(Account(new_id())) == []
    assert store.latest_position() == 0


def test_save_stamps_correlation_and_causation(store: EventStore) -> None:
    repo = Repository(store)
    account = Account(new_id())
    account.open()
    corr, caus = new_id(), new_id()
    repo.save(account, correlation_id=corr, causation_id=caus, metadata={"user": "ada"})
    event = store.read_after(0)[0]
    assert (event.correlation_id, event.causation_id) == (corr, caus)
    assert event.metadata == {"user": "ada"}


def test_a_conflicting_save_raises_and_keeps_the_changes(store: EventStore) -> None:
    repo = Repository(store)
    account = Account(new_id())
    account.open()
    repo.save(account)
    first, second = repo.load(Account, account.id), repo.load(Account, account.id)
    first.deposit(1)
    second.deposit(2)
    repo.save(first)
    with pytest.raises(ConcurrencyError) as caught:
        repo.save(second)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert len(second.changes) == 1
    assert repo.load(Account, account.id).balance == 1


def test_save_can_join_a_transaction(store: EventStore) -> None:
    repo = Repository(store)
    account = Account(new_id())
    account.open()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        repo.save(account, transaction=tx)
        raise RuntimeError("abort")
    assert store.latest_position() == 0
