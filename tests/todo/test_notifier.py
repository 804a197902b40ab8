"""The outbox notifier: one JSON line per email, never the same key twice."""

from __future__ import annotations

from pathlib import Path

from todo_app.notifier import Email, OutboxNotifier

EMAIL = Email(key="k1", to="boss@example.com", subject="Done", body="Buy milk is done")


def test_the_outbox_keeps_every_sent_email(tmp_path: Path) -> None:
    outbox = OutboxNotifier(tmp_path / "outbox.jsonl")
    other = Email(key="k2", to="x@example.com", subject="s", body="b")
    outbox.send(EMAIL)
    outbox.send(other)
    assert outbox.sent() == [EMAIL, other]


def test_sending_the_same_key_again_sends_nothing(tmp_path: Path) -> None:
    outbox = OutboxNotifier(tmp_path / "outbox.jsonl")
    outbox.send(EMAIL)
    outbox.send(EMAIL)
    assert len(outbox.sent()) == 1


def test_a_line_cut_short_by_a_crash_does_not_spoil_the_next_email(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    path.write_text('{"key": "k0", "to": "a@b.c', encoding="utf-8")
    outbox = OutboxNotifier(path)
    outbox.send(EMAIL)
    assert outbox.sent() == [EMAIL]
