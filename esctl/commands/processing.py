"""``esctl run``, ``status``, ``replay``, ``reset``, ``errors``, ``skip`` and ``retry``:
processors."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, Any

import typer

from esctl import exit_codes, render
from esctl.context import (
    configured_processor,
    fail,
    handle_errors,
    interrupt_exits_130,
    require_known_processor,
    session,
)
from esctl.exit_codes import FAILURE
from esctl.parser import at_least

YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="The processor's name.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")]


@handle_errors
def run(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(
        metavar="NAME", help="Processors to run (default: every configured one).")]
    = None,
    once: Annotated[bool, typer.Option(
        "--once", help="Process everything up to the current head, then exit.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="With --once: print each processor's position and the events it "
                       "parked afterwards as JSON.")] = False,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", metavar="PORT", callback=at_least(0),
        help="Serve Prometheus metrics on http://HOST:PORT/metrics and esctl status "
             "--check's answer on /healthz (HOST: [metrics] host, default 0.0.0.0; PORT 0: "
             "any free port, logged). Default: [metrics] port, else off.")] = None,
) -> None:
    """Run processors (all, or the named ones).

    Each runs in its own process, restarted if it crashes, until Ctrl-C (exit
    130) or SIGTERM (exit 0 when every processor stopped cleanly); a processor
    whose retry policy is "none" stops at a failing event and stays stopped
    (exit 1 at the end). With --once, in this process until each reaches the
    head; it lists the events it parked and exits 1 when it parked any. Logs to
    stderr (or the [logging] file).

    \b
    Example:
      esctl run --once
      esctl run --metrics-port 9108
    """
    from esctl_lib import parked_events, run_processors

    if as_json and not once:
        raise fail("--json needs --once (a continuous run prints only its log)",
                   exit_codes.USAGE)
    if metrics_port is not None and once:
        raise fail("--metrics-port needs a continuous run (not --once)", exit_codes.USAGE)
    s = session(ctx)
    if metrics_port is not None:
        s.overrides.setdefault("metrics", {})["port"] = metrics_port
    selected = [configured_processor(s, name) for name in names or ()]
    started = time.time()
    with interrupt_exits_130():
        code = run_processors(s.app, names or (), once=once)
    if not once:
        raise typer.Exit(code)
    store = s.store()
    done = selected or list(s.app.processors.values())
    parked = [p for p in parked_events(store, since=started)
              if p.processor in {d.name for d in done}]
    if as_json:
        render.json_out({"exit_code": code, "head": store.latest_position(),
                         "processors": {p.name: store.get_tracker(p.name) for p in done},
                         "parked": [_parked_json(p) for p in parked]})
    for p in parked:
        render.note(f"{p.processor} parked event {p.event_id} ({p.event_type}, aggregate "
                    f"{p.aggregate_id}) after {p.attempts} attempt(s): {p.error}")
    raise typer.Exit(code)


def _parked_json(parked: Any) -> dict[str, Any]:
    return dataclasses.asdict(parked) | {"queued": parked.queued}


@handle_errors
def status(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(
        metavar="NAME", help="Show this processor in detail.")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Print only what is wrong, one line per reason (or \"ok\"); for "
                        "cron, systemd and Kubernetes probes.")] = False,
    max_lag: Annotated[int | None, typer.Option(
        "--max-lag", metavar="EVENTS", callback=at_least(0),
        help="Unhealthy when a processor is more than EVENTS behind (events not yet "
             "readable included).")] = None,
    max_lag_seconds: Annotated[float | None, typer.Option(
        "--max-lag-seconds", metavar="S", callback=at_least(0),
        help="Unhealthy when a processor's oldest unprocessed event is older than S "
             "seconds.")] = None,
    stale_after: Annotated[float | None, typer.Option(
        "--stale-after", metavar="S", callback=at_least(0),
        help="Seconds without a heartbeat after which a live instance counts as dead "
             "(default 15).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
    = False,
) -> None:
    """Show the store and each processor's position, lag, state and health.

    Per processor: position, lag in events and seconds (events not yet
    readable included; beyond 10,000 events the count is an estimate from
    positions, shown "≈ N (estimated)", "lag_estimated" in --json; --max-lag is
    always judged on an exact count), state, parked events and its last error on one line;
    with NAME, everything about one processor (kind, host and pid, heartbeat
    age, the error's traceback, tables, a rebuild in progress). A failing, crashed or
    silent (stale) processor stays unhealthy until it processes successfully
    again. Exits 0 when healthy, 1 when not (for health checks).

    \b
    Example:
      esctl status
      esctl status outstanding_todos
      esctl status --check --max-lag 1000 --max-lag-seconds 60
    """
    from esctl.status import show_status  # also run without Typer: esctl.main.run

    code = show_status(session(ctx), name, check=check, max_lag=max_lag,
                       max_lag_seconds=max_lag_seconds, stale_after=stale_after,
                       as_json=as_json)
    if code:
        raise typer.Exit(code)


@handle_errors
def replay(
    ctx: typer.Context,
    name: NameArgument,
    yes: YesOption = False,
    allow_side_effects: Annotated[bool, typer.Option(
        "--allow-side-effects", help="Replay a reactor although it repeats its side "
                                     "effects.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Rebuild a processor from scratch, online.

    Builds its tables anew beside the live ones, which keep serving reads (and,
    with esctl run up, keep being updated), then swaps them in with its position
    in one transaction when the rebuild reaches the head. A failed or
    interrupted rebuild leaves the live tables and position as they were (esctl
    status shows why it failed). Asks for confirmation on a terminal unless
    --yes; refuses a reactor unless --allow-side-effects.

    \b
    Example:
      esctl replay outstanding_todos --yes
    """
    from esctl_lib import replay_processor

    s = session(ctx)
    processor = configured_processor(s, name)
    store = s.store()
    if not render.confirm(f"Rebuild {name} from scratch in {store.display_url}?", yes=yes):
        raise typer.Exit(FAILURE)
    with interrupt_exits_130(), render.progress(f"rebuild {name}") as progress:
        result = replay_processor(store, processor, allow_side_effects=allow_side_effects,
                                  progress=progress)
    if as_json:
        render.json_out(result.to_dict())
    else:
        render.note(f"rebuilt {name}: {result.handled} events handled, swapped in at "
                    f"position {result.position} ({result.seconds:.1f} s)")


@handle_errors
def reset(
    ctx: typer.Context,
    name: NameArgument,
    to: Annotated[int, typer.Option(
        "--to", metavar="ID", callback=at_least(0),
        help="The new position: 0, or the id of a readable event (compared in stream "
             "order).")] = 0,
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Move a processor's position without processing.

    Its tables are kept (use replay to rebuild them). Refuses while a runner
    holds the processor; asks for confirmation on a terminal unless --yes.

    \b
    Example:
      esctl reset todo_completed_notifier --to 1200 --yes
    """
    from esctl_lib import reset_processor

    s = session(ctx)
    configured_processor(s, name)
    store = s.store()
    if not render.confirm(f"Move {name} to position {to} in {store.display_url}?", yes=yes):
        raise typer.Exit(FAILURE)
    old = reset_processor(store, name, position=to)
    if as_json:
        render.json_out({"processor": name, "from": old, "to": to})
    else:
        render.note(f"moved {name} from position {old} to {to}")


@handle_errors
def errors(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(
        metavar="NAME", help="Only this processor's parked events.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
    = False,
) -> None:
    """List parked events.

    Parked events are those a processor gave up on after max_attempts failures,
    or that were skipped with esctl skip: per event its processor, id, type,
    aggregate, attempts (or "queued" once esctl retry queued it), when it last
    failed and the error.

    \b
    Example:
      esctl errors todo_completed_notifier
    """
    from esctl_lib import parked_events

    s = session(ctx)
    store = s.store()
    if name is not None:
        require_known_processor(s, store, name)
    parked = parked_events(store, name)
    if as_json:
        render.json_out([_parked_json(p) for p in parked])
    else:
        render.parked_table(parked)


@handle_errors
def retry(
    ctx: typer.Context,
    name: NameArgument,
    event_id: Annotated[int | None, typer.Argument(
        metavar="EVENT_ID", help="Only this parked event (default: all of the processor's).")]
    = None,
    as_json: JsonOption = False,
) -> None:
    """Queue parked events for another try.

    The processor retries them in event order when it next runs or idles.

    \b
    Example:
      esctl retry todo_completed_notifier 1234
    """
    from esctl_lib import retry_parked_events

    s = session(ctx)
    store = s.store()
    require_known_processor(s, store, name)
    count = retry_parked_events(store, name, event_id=event_id)
    if as_json:
        render.json_out({"processor": name, "queued": count})
    else:
        render.note(f"queued {count} parked event(s) of {name} for a retry")


@handle_errors
def skip(
    ctx: typer.Context,
    name: NameArgument,
    event_id: Annotated[int, typer.Argument(
        metavar="EVENT_ID", help="The event to skip (its id).", callback=at_least(1))],
    reason: Annotated[str | None, typer.Option(
        "--reason", metavar="TEXT", help="Why, recorded as the parked event's error.")]
    = None,
    as_json: JsonOption = False,
) -> None:
    """Park one event for a processor so that it goes on past it.

    Committed at once, whether or not the processor runs: a running processor
    failing on that event moves on at its next attempt. The event then shows in
    esctl errors; esctl retry queues it again. Refuses (exit 2) an event that
    is not stored, parked already, or processed already.

    \b
    Example:
      esctl skip outstanding_todos 1234 --reason "duplicate todo_added"
    """
    from esctl_lib import skip_event

    s = session(ctx)
    store = s.store()
    require_known_processor(s, store, name)
    parked = skip_event(store, name, event_id, reason=reason)
    if as_json:
        render.json_out(_parked_json(parked))
    else:
        render.note(f"skipped event {event_id} ({parked.event_type}) for {name}: parked")
