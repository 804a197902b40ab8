"""The todo example is imported as ``todo_app``, as in tests/todo/."""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "todo"

if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))
