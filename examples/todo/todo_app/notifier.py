"""How the todo app "sends" email: a small, replaceable notifier. No network.

:class:`LogNotifier` writes each email to the log; :class:`OutboxNotifier` appends it as
one JSON line to a file, skipping an email whose ``key`` is already there, so a reactor
that runs an event again does not send it twice. A real app would put an SMTP or HTTP
client behind the same :class:`Notifier` protocol.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

OUTBOX_ENV = "TODO_APP_OUTBOX"
"""Environment variable naming the outbox file; without it, emails go to the log."""


@dataclass(frozen=True, slots=True)
class Email:
    """One email. ``key`` identifies it, so sending it twice can be noticed."""

    key: str
    to: str
    subject: str
    body: str


class Notifier(Protocol):
    """Something that delivers emails."""

    def send(self, email: Email) -> None:
        """Deliver ``email``; may be called again with the same key after a crash."""


class LogNotifier:
    """Writes each email to the log at INFO level."""

    def send(self, email: Email) -> None:
        """Log the email."""
        log.info("email to %s: %s", email.to, email.subject)


class OutboxNotifier:
    """Appends each email as a JSON line to ``path``, once per key."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def send(self, email: Email) -> None:
        """Append the email unless one with the same key is already in the outbox."""
        if any(sent.key == email.key for sent in self.sent()):
            log.info("email %s already in the outbox; not sending it again", email.key)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(email), ensure_ascii=False) + "\n"
        if not self._ends_cleanly():
            line = "\n" + line  # a crash cut the last line short: start a fresh one
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def _ends_cleanly(self) -> bool:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return True
        with self.path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def sent(self) -> list[Email]:
        """Every email in the outbox, oldest first (an unfinished last line is ignored)."""
        if not self.path.exists():
            return []
        emails = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                emails.append(Email(**json.loads(line)))
            except (ValueError, TypeError):
                continue
        return emails


def notifier_from_env() -> Notifier:
    """An :class:`OutboxNotifier` when ``TODO_APP_OUTBOX`` names a file, else a :class:`LogNotifier`."""
    path = os.environ.get(OUTBOX_ENV)
    return OutboxNotifier(path) if path else LogNotifier()
