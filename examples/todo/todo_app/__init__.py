"""The todo application: esctl's reference example, a port of EventSourcery's todo app.

Modules, in the order a reader meets them:

- :mod:`todo_app.events`      what happened (immutable facts)
- :mod:`todo_app.aggregates`  the ``Todo`` aggregate and its rules
- :mod:`todo_app.commands`    command objects (validated input) and their handler
- :mod:`todo_app.projections` read models, each with a query function
- :mod:`todo_app.reactors`    side effects that emit new events
- :mod:`todo_app.notifier`    the replaceable email sender (log or outbox file)
- :mod:`todo_app.cli`         a small command-line front (``python examples/todo/todo.py``)
"""
