"""Run the todo example's command-line front: ``python examples/todo/todo.py --help``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from todo_app.cli import main

sys.exit(main())
