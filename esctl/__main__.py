"""``python -m esctl``: the same as the ``esctl`` command."""

from esctl.main import run

run()
