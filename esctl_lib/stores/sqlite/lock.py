"""Processor locks on SQLite: an OS file lock (``flock``) next to the database file.

``<db>.locks/<name>.lock`` is locked exclusively by the instance running the processor
and holds its ``pid … on host``; the kernel drops the lock when the process dies.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from esctl_lib.errors import StoreUnavailableError
from esctl_lib.files import make_private_dirs, open_private
from esctl_lib.stores.locks import ProcessorLock, describe_self

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class FileLock(ProcessorLock):
    """An exclusive ``flock`` on a file; the kernel releases it when the process dies."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        import fcntl

        if self.held:
            return True
        try:
            make_private_dirs(self.path.parent)
            fd = open_private(self.path, os.O_RDWR)
        except OSError as e:
            raise self._unavailable("cannot open", e) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException as e:
            os.close(fd)
            if isinstance(e, OSError):
                raise self._unavailable("cannot lock", e) from e
            raise
        try:  # who holds it, for `esctl status` (the lock itself is taken either way)
            os.ftruncate(fd, 0)
            os.pwrite(fd, describe_self().encode(), 0)
        except OSError as e:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise self._unavailable("cannot write", e) from e
        self._fd = fd
        self.held = True
        return True

    def _unavailable(self, what: str, e: OSError) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"processor lock {self.name!r}: {what} {self.path}: {e.strerror or e}")

    def release(self) -> None:
        import fcntl

        fd, self._fd = self._fd, None
        self.held = False
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def holder(self) -> str | None:
        if self.held:
            return describe_self()
        if not file_is_locked(self.path):
            return None
        try:
            text = self.path.read_text(errors="replace").strip()
        except OSError:
            text = ""
        return text or "another process"


def file_is_locked(path: Path) -> bool:
    """Whether some open file description holds an exclusive ``flock`` on ``path``."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock we may have taken
    return False


def lock_file_path(db_path: Path, name: str) -> Path:
    """``<db>.locks/<name>.lock``; names that are not file-safe are hashed."""
    if _SAFE_NAME.match(name) and not name.startswith("."):
        file_name = name
    else:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        file_name = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:60] + "-" + digest
    return db_path.with_name(db_path.name + ".locks") / f"{file_name}.lock"
