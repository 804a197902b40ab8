"""Files the library creates are private: readable by their owner only (0600 for files,
0700 for folders), whatever the umask, as PostgreSQL keeps its data directory.

That covers the SQLite database (and so its ``-wal`` and ``-shm``, which SQLite creates
with the database file's mode), the processor lock files and their folder, the
``[logging] file``, export files and temporary files. A file or folder that already
exists keeps its mode: the library never changes a user's choice.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each 0700. Raises OSError."""
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue
        os.chmod(path, FOLDER_MODE)  # the umask may have taken the owner's rights


def open_private(path: Path | str, flags: int) -> int:
    """``os.open(path, flags | O_CREAT)``; a file it creates is 0600. Raises OSError."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return os.open(path, flags & ~os.O_EXCL)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd
