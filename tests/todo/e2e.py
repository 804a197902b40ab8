"""Running the real ``esctl`` console script against a test store, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from esctl_lib import EventStore, open_store
from tests.backends import POSTGRES_DSN, drop_schema, require_postgres
from tests.todo.conftest import ROOT

CONFIG = ROOT / "eventsourcery.toml"
ESCTL = str(Path(sys.executable).with_name("esctl"))


@dataclass
class Deployment:
    """The todo app deployed on one store: how to reach it in-process and from ``esctl``."""

    backend: str
    url: str
    outbox: Path
    schema: str | None = None
    stores: list[EventStore] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The environment a user would export to point ``esctl`` at this store."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ESCTL_")}
        env["ESCTL_STORE__URL"] = self.url
        if self.schema:
            env["ESCTL_STORE__SCHEMA"] = self.schema
        env["TODO_APP_OUTBOX"] = str(self.outbox)
        return env

    def esctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``esctl --config <repo>/eventsourcery.toml ARGS``; fail on a non-zero exit."""
        result = subprocess.run([ESCTL, "--config", str(CONFIG), *args], env=self.env(),
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, f"esctl {' '.join(args)}: {result.stderr}"
        return result

    def open(self) -> EventStore:
        store = open_store(self.url, schema=self.schema)
        self.stores.append(store)
        return store


@contextmanager
def deploy(backend: str, folder: Path) -> Iterator[Deployment]:
    """A fresh store on ``backend`` with the todo app set up (``esctl setup``)."""
    if backend == "sqlite":
        deployment = Deployment(backend, f"sqlite:///{folder / 'todo.db'}", folder / "outbox.jsonl")
    else:
        require_postgres()
        deployment = Deployment(backend, POSTGRES_DSN, folder / "outbox.jsonl",
                                schema=f"todo_{uuid.uuid4().hex[:12]}")
    try:
        deployment.esctl("setup")
        yield deployment
    finally:
        for store in deployment.stores:
            store.close()
        if deployment.schema:
            drop_schema(deployment.schema)
