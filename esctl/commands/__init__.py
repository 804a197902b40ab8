"""The ``esctl`` commands, one module per area; each command is thin: parse, call one
``esctl_lib`` function, render."""
