"""``esctl tail``, ``esctl events`` and ``esctl append``: the stream, read and written by hand."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from esctl import render
from esctl.context import fail, handle_errors, session
from esctl.exit_codes import USAGE
from esctl.parser import at_least

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line, with "
                                                         "every event field.")]


@handle_errors
def tail(
    ctx: typer.Context,
    types: Annotated[list[str] | None, typer.Option(
        "--type", "-t", metavar="TYPE", help="Only events of this type (repeat for several).")] = None,
    aggregate: Annotated[str | None, typer.Option(
        "--aggregate", "-a", metavar="ID", help="Only events of this aggregate id.")] = None,
    after: Annotated[int | None, typer.Option(
        "--from", metavar="ID", help="Start after this position (event id), e.g. a processor's position "
                       "from esctl status.", callback=at_least(0))] = None,
    last: Annotated[int | None, typer.Option(
        "--last", "-n", metavar="N", help="Start with the last N matching events.",
        callback=at_least(0))] = None,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing new events as they are committed, until "
                               "Ctrl-C.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Print events in global order.

    From the beginning, after a position (--from), or the last N (--last);
    --follow keeps printing new events as they are committed, until Ctrl-C
    (exit 130). A --type that is neither registered by [app] events nor stored
    is refused (exit 2), so --follow never waits for a typo.

    \b
    Example:
      esctl tail --type todo_added --last 20 --follow
    """
    from esctl_lib import tail_events

    if after is not None and last is not None:
        raise fail("give --from or --last, not both", USAGE)
    s = session(ctx)
    store = s.store(as_stored=True)
    printer = render.EventPrinter(as_json=as_json)
    events = tail_events(store, types=types, aggregate_id=aggregate, after=after, last=last,
                         follow=follow, known_types=lambda: s.registry)
    try:
        for event in events:
            printer(event)
            if follow:
                printer.flush()
    finally:
        printer.flush()  # what was printed before a Ctrl-C (exit 130) stays printed


@handle_errors
def events(
    ctx: typer.Context,
    aggregate_id: Annotated[str, typer.Argument(metavar="AGGREGATE_ID", help="The aggregate's id (a UUID).")],
    as_json: JsonOption = False,
) -> None:
    """Print one aggregate's history in version order.

    \b
    Example:
      esctl events 5b6e0c2e-8a4f-4d3e-9b9e-3f1f2a6c7d10 --json
    """
    from esctl_lib import aggregate_events

    printer = render.EventPrinter(as_json=as_json)
    for event in aggregate_events(session(ctx).store(as_stored=True), aggregate_id):
        printer(event)


def _read_body(value: str) -> str:
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise fail(f"cannot read body file {path}: {getattr(e, 'strerror', None) or e}",
                       USAGE) from None
    return value


@handle_errors
def append(
    ctx: typer.Context,
    type_name: Annotated[str, typer.Argument(metavar="TYPE", help="The event type name.")],
    aggregate: Annotated[str, typer.Option("--aggregate", "-a", metavar="ID",
                                           help="The aggregate id (a UUID).")],
    body: Annotated[str, typer.Option(
        "--body", "-b", metavar="JSON|@FILE|-",
        help="The body: a JSON object, @file.json, or - for stdin.")] = "{}",
    expected_version: Annotated[int | None, typer.Option(
        "--expected-version", metavar="N", help="Fail (exit 4) unless the aggregate is at this version.",
        callback=at_least(0))] = None,
    correlation_id: Annotated[str | None, typer.Option(
        "--correlation-id", metavar="UUID", help="Correlation id (a UUID).")] = None,
    causation_id: Annotated[str | None, typer.Option(
        "--causation-id", metavar="UUID", help="Causation id (a UUID).")] = None,
    allow_unknown_type: Annotated[bool, typer.Option(
        "--allow-unknown-type", help="Append a type no configured event module "
                                     "registers.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the stored event as "
                                                         "JSON.")] = False,
) -> None:
    """Append one event by hand.

    Prints the event as stored (id, version). The type must be registered by a
    module in [app] events (or --allow-unknown-type); the body must be a JSON
    object, and a typed body must fit its model (esctl types lists the types
    and their fields). Bad input writes nothing (exit 2).

    \b
    Example:
      esctl append todo_added --aggregate 5b6e0c2e-8a4f-4d3e-9b9e-3f1f2a6c7d10 \\
        --body '{"title": "Buy milk"}' --expected-version 0
    """
    from esctl_lib import append_one

    s = session(ctx)
    text = _read_body(body)
    stored = append_one(s.store(), type_name, aggregate_id=aggregate, body=text,
                        registry=s.registry, allow_unknown_type=allow_unknown_type,
                        expected_version=expected_version, correlation_id=correlation_id,
                        causation_id=causation_id)
    if as_json:
        from esctl_lib import event_record

        render.json_out(event_record(stored))
    else:
        render.line(f"appended {stored.type} as event {stored.id}, version {stored.version} "
                    f"of aggregate {stored.aggregate_id}")
