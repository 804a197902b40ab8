"""``esctl init``: write a commented ``eventsourcery.toml`` for a new project."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from esctl_lib.config import CONFIG_FILE_NAME
from esctl_lib.errors import ConfigError

DEFAULT_STORE_URL = "sqlite:///.esctl/events.db"

_TEMPLATE = """\
# esctl configuration. Values here are overridden by environment variables
# (ESCTL_<SECTION>__<KEY>, e.g. ESCTL_STORE__URL) and by command-line flags.
# Relative paths resolve against this file's folder.

[store]
# sqlite:///relative/path.db, sqlite:////absolute/path.db, postgresql://user@host:5432/db
# or a keyword/value DSN such as "host=db.example dbname=app user=app"
# (keep passwords out of this file: set ESCTL_STORE__URL or use ~/.pgpass; esctl never
# prints a password, in any of these forms)
url = {url}
# schema = "myapp"                     # PostgreSQL only: put every table in this schema
# synchronous = "FULL"                 # SQLite only: FULL (durable) | NORMAL | EXTRA | OFF
# connect_timeout = 10                 # PostgreSQL only: seconds to wait for a connection

[app]
# paths = ["src"]                      # prepended to sys.path, relative to this file
# events = ["myapp.events"]            # modules whose Event subclasses are registered
# aggregates = ["myapp.aggregates:Order"]
# processors = ["myapp.projections:OrderSummary", "myapp.reactors:OrderMailer"]
# startup_hook = "myapp.hooks:after_start"  # called with the processor in each process
# on_error = "myapp.hooks:report_error"      # called with (exception, processor name)

[processing]
# batch_size = 1000                    # events per batch (one transaction for projectors)
# retry = "exponential"                # none | constant | exponential
# max_attempts = 10                    # then park the event and move on (default: retry for ever)
# grace_period = 30                    # seconds to finish a batch on shutdown

[logging]
# level = "info"                       # debug | info | warning | error | critical
# file = "logs/esctl.log"              # log to this file instead of stderr
"""


def config_template(store_url: str = DEFAULT_STORE_URL) -> str:
    """The text ``esctl init`` writes."""
    return _TEMPLATE.format(url=json.dumps(store_url))


def init_config(
    folder: str | Path, *, store_url: str = DEFAULT_STORE_URL, force: bool = False
) -> Path:
    """Write ``eventsourcery.toml`` into ``folder`` atomically; returns its path.

    An existing file is kept (:class:`ConfigError`) unless ``force``.
    """
    path = Path(folder).resolve() / CONFIG_FILE_NAME
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite it)")
    if not path.parent.is_dir():
        raise ConfigError(f"folder {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(config_template(store_url))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise ConfigError(f"cannot write {path}: {e.strerror or e}") from e
        raise
    return path
