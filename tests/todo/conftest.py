"""The todo example is imported as ``todo_app``, the way its eventsourcery.toml names it."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "todo"

if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))
