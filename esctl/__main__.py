"""``python -m esctl``: the same as the ``esctl`` command."""

try:
    from esctl.main import run
except KeyboardInterrupt:  # Ctrl-C while starting up: the documented exit, no traceback
    raise SystemExit(130) from None

run()
