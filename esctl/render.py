"""Everything ``esctl`` prints: lines, JSON, Rich tables, progress, prompts and log setup.

Data goes to stdout; messages, progress and logs go to stderr. Colours and progress bars
appear only on a terminal; elsewhere output is plain text and progress is a log line every
few seconds. Rich is imported only when something is drawn, so ``esctl --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from esctl_lib import Event, Settings, StatusReport

PROGRESS_LOG_INTERVAL = 5.0


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: object) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``, ``\\u2028``).

    Everything printed from the store goes through this (type names, aggregate ids, bodies,
    processor names, error texts): a hostile value can neither split a line nor send a
    terminal escape sequence.
    """
    return _UNPRINTABLE.sub(_escape, str(text))


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029]")


def safe_json(text: str) -> str:
    """JSON text with the control characters JSON leaves raw (DEL, C1, U+2028/9) written as
    ``\\u`` escapes: the same value, harmless on a terminal."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def colours_wanted(stream: Any) -> bool:
    """Colours on a terminal, unless ``NO_COLOR`` is set (https://no-color.org)."""
    return is_terminal(stream) and not os.environ.get("NO_COLOR")


def redact(text: str) -> str:
    """``text`` with every password removed (the library's one rule, any DSN form)."""
    from esctl_lib import redact_secrets

    return redact_secrets(text)


def one_line(text: str) -> str:
    """``text`` on one line, passwords redacted, control characters escaped."""
    return printable(redact("; ".join(part.strip() for part in str(text).splitlines()
                                      if part.strip())))


def is_terminal(stream: Any) -> bool:
    """True when ``stream`` is an interactive terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def console(*, stderr: bool = False) -> Console:
    """A Rich console on stdout (or stderr): colours only on a terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    terminal = is_terminal(stream)
    return Console(file=stream, stderr=stderr, highlight=False, soft_wrap=not terminal,
                   width=None if terminal else 100_000, no_color=not colours_wanted(stream))


# -- messages ---------------------------------------------------------------------------


def error(message: str) -> None:
    """One line on stderr: ``esctl: error: ...``."""
    text = one_line(message)
    if colours_wanted(sys.stderr):
        from rich.markup import escape

        console(stderr=True).print(f"[bold red]esctl: error:[/] {escape(text)}")
    else:
        sys.stderr.write(f"esctl: error: {text}\n")


def note(message: str) -> None:
    """A message for the person at the terminal (stderr, so stdout stays data)."""
    sys.stderr.write(printable(redact(message)) + "\n")


def line(text: str) -> None:
    """One line of data on stdout (control characters escaped)."""
    sys.stdout.write(printable(text) + "\n")


def json_out(value: Any) -> None:
    """A JSON document on stdout."""
    sys.stdout.write(safe_json(json.dumps(value, indent=2, ensure_ascii=False, default=str))
                     + "\n")


def confirm(question: str, *, yes: bool) -> bool:
    """Ask on a terminal unless ``yes``; off a terminal there is nobody to ask: proceed."""
    if yes or not is_terminal(sys.stdin):
        return True
    import typer  # here only: esctl status runs without Typer

    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort as e:  # Typer turns Ctrl-C and end-of-input into Abort
        if isinstance(e.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None  # exit 130, as everywhere
        return False


# -- events -----------------------------------------------------------------------------


def _time(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class EventPrinter:
    """Prints events one per line: JSON, or a compact line (coloured on a terminal)."""

    def __init__(self, *, as_json: bool) -> None:
        from esctl_lib import event_json

        self._json = event_json
        self.as_json = as_json
        self._console = console() if colours_wanted(sys.stdout) and not as_json else None

    def __call__(self, event: Event) -> None:
        if self.as_json:
            sys.stdout.write(safe_json(self._json(event)) + "\n")
            return
        body = printable(json.dumps(event.body, ensure_ascii=False, separators=(",", ":"),
                                    default=str))
        head = (f"{event.id:>7} {_time(event.created_at)} {printable(event.aggregate_id)} "
                f"v{event.version}")
        kind = printable(event.type)
        if self._console is None:
            sys.stdout.write(f"{head} {kind} {body}\n")
            return
        from rich.markup import escape

        self._console.print(f"[dim]{escape(head)}[/] [bold cyan]{escape(kind)}[/] {escape(body)}")

    def flush(self) -> None:
        """Push buffered output out (before waiting for more events)."""
        sys.stdout.flush()


# -- tables -----------------------------------------------------------------------------


def _ago(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


_STATE_COLOURS = {"running": "green", "idle": "green", "failing": "bold red",
                  "crashed": "bold red", "parked": "yellow", "standby": "blue"}


def _state(p: Any) -> str:
    from rich.markup import escape

    colour = "bold red" if p.problems else _STATE_COLOURS.get(p.state, "dim")
    return f"[{colour}]{escape(printable(p.state))}[/]"


def _width() -> int | None:
    """The width to draw tables at: ``COLUMNS``, else the terminal's, else 100."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if is_terminal(sys.stdout) else 100


def _status_console() -> Console:
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, width=_width(), soft_wrap=False,
                   no_color=not colours_wanted(sys.stdout), emoji=False)  # ":a:" stays


def _store_lines(report: StatusReport, *, markup: bool = True) -> list[str]:
    """The status's store lines, as Rich markup or (``markup=False``) as the plain text
    Rich would print for them."""
    escape: Callable[[str], str] = str
    if markup:
        from rich.markup import escape

    def styled(style: str, text: str) -> str:
        return f"[{style}]{text}[/]" if markup else text

    lines = [f"store {styled('bold', escape(printable(report.store_url)))} ({report.backend}, "
             f"schema version {report.schema_version}): "
             f"{'≈ ' if report.total_estimated else ''}{report.total_events} events, head "
             f"{report.head}"]
    horizon = report.horizon
    if horizon and horizon.get("pending"):
        waiting = f"{horizon['pending']} committed events are not readable yet"
        lines.append(
            f"{styled('yellow', waiting)}: transaction of pid {horizon.get('pid')} "
            f"({escape(printable(horizon.get('application') or '?'))}, open "
            f"{_ago(horizon.get('age_seconds') or 0)}) is still in progress")
    return lines


def status_table(report: StatusReport) -> None:
    """The store line (with the one store head) and one row per processor, fitting the
    terminal: names whole, each error summarised on one line (``esctl status NAME`` and
    ``--json`` have the full text).

    Off a terminal the same text is written without Rich when it can be (plain narrow
    characters, nothing to colour, the table fits): importing and running Rich was a
    fifth of ``esctl status``'s time. :func:`status_table_plain` says when."""
    plain = status_table_plain(report)
    if plain is not None:
        sys.stdout.write(plain)
        return
    status_table_rich(report)


def status_table_rich(report: StatusReport) -> None:
    """:func:`status_table` drawn by Rich (on a terminal, or when the plain text cannot
    be the same)."""
    from rich.table import Table
    from rich.text import Text

    out = _status_console()
    for text in _store_lines(report):
        out.print(text)
    if not report.processors:
        out.print("no processors configured (\\[app] processors)")
        return
    cells = [_status_cells(p) for p in report.processors]
    widths = {column: max(len(column), *(len(Text.from_markup(c[column], emoji=False).plain)
                                         for c in cells))
              for column in cells[0]}
    shown = _shown_columns(report, widths, out.width)
    table = Table(show_edge=False, pad_edge=False)
    for column in shown:  # every column but the error keeps its width
        table.add_column(column, no_wrap=True, width=widths[column], justify="left" if column in (
            "processor", "kind", "state") else "right")
    table.add_column("last error", no_wrap=True, overflow="ellipsis",
                     max_width=max(10, out.width - sum(widths[c] + 3 for c in shown)))
    for c in cells:
        table.add_row(*(c[column] for column in [*shown, "last error"]))
    out.print(table)
    if any(p.waiting_events for p in report.processors):
        out.print("* includes events not readable yet (an open transaction holds them back)")


def _shown_columns(report: StatusReport, widths: dict[str, int], width: int) -> list[str]:
    shown = [c for c in widths if c != "last error" and (
        c != "parked" or any(p.parked for p in report.processors))]
    if "kind" in shown and width - sum(widths[c] + 3 for c in shown) < _MIN_ERROR_WIDTH:
        shown.remove("kind")  # names and errors matter more (esctl status NAME has it)
    return shown


#: Environment variables that make Rich style text even off a terminal.
_RICH_FORCING = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
_LEFT = ("processor", "kind", "state")


def status_table_plain(report: StatusReport) -> str | None:
    """:func:`status_table`'s text off a terminal, character for character what Rich
    prints there, or None when only Rich can draw it the same (on a terminal; a
    variable that makes Rich style a pipe; a wide or combining character, whose width
    needs Rich's cell table, or a backslash; a table wider than the page)."""
    if is_terminal(sys.stdout) or any(os.environ.get(v) for v in _RICH_FORCING):
        return None
    width = _width() or 100
    lines = _store_lines(report, markup=False)
    out = [wrapped for text in lines for wrapped in _wrap(text, width)]
    if not report.processors:
        return "\n".join([*out, "no processors configured ([app] processors)", ""])
    cells = [_plain_cells(p) for p in report.processors]
    texts = [text for row in cells for text in row.values()] + lines
    if not all(_narrow(text) for text in texts):
        return None
    widths = {column: max(len(column), *(len(c[column]) for c in cells)) for column in cells[0]}
    shown = _shown_columns(report, widths, width)
    fixed = sum(widths[c] + 3 for c in shown)
    error_width = min(widths["last error"], max(10, width - fixed))
    if fixed + error_width > width:
        return None  # Rich would squeeze the columns
    columns = [*shown, "last error"]
    sizes = {**widths, "last error": error_width}

    def row(values: dict[str, str], separator: str) -> str:
        parts = []
        for column in columns:
            text = _ellipsis(values[column], sizes[column])
            parts.append(text.ljust(sizes[column]) if column in _LEFT or column == "last error"
                         else text.rjust(sizes[column]))
        return f" {separator} ".join(parts)

    out.append(row({c: c for c in columns}, "┃"))
    rule = ["━" * (sizes[c] + (1 if i in (0, len(columns) - 1) else 2))
            for i, c in enumerate(columns)]
    out.append("╇".join(rule))
    out += [row(c, "│") for c in cells]
    if any(p.waiting_events for p in report.processors):
        out += _wrap("* includes events not readable yet (an open transaction holds them back)",
                     width)
    return "\n".join([*out, ""])


def _narrow(text: str) -> bool:
    """Plain narrow characters (and no backslash, which Rich's markup escaping doubles at
    the end of a cell)."""
    return text.replace("≈", "").replace("…", "").isascii() and "\\" not in text


def _ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


_WORD = re.compile(r"\s*\S+\s*")


def _wrap(text: str, width: int) -> list[str]:
    """``text`` wrapped at ``width`` as Rich wraps a printed line of narrow characters:
    words (with the spaces after them) kept whole unless longer than a line, each line's
    trailing spaces beyond ``width`` dropped."""
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group()
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width:  # folded across lines
            pieces = [word[i:i + width] for i in range(0, len(word), width)]
            for index, piece in enumerate(pieces):
                if start:
                    breaks.append(start)
                if index == len(pieces) - 1:
                    offset = len(piece)
                else:
                    start += len(piece)
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    bounds = [0, *breaks, len(text)]
    lines = [text[a:b] for a, b in itertools.pairwise(bounds)]
    out = []
    for part in lines:
        if len(part) > width:
            spaces = len(part) - len(part.rstrip())
            part = part[:len(part) - min(spaces, len(part) - width)]
        out.append(part)
    return out or [""]


def _plain_cells(p: Any) -> dict[str, str]:
    lag = f"≈ {p.lag_events:,} (estimated)" if p.lag_estimated else str(p.lag_events)
    lag += "*" if p.waiting_events else ""
    return {"processor": printable(p.name), "kind": p.kind,
            "position": str(p.position), "lag": lag, "age": _ago(p.lag_seconds),
            "state": printable(p.state), "parked": str(p.parked) if p.parked else "-",
            "last error": _summary(p.last_error or _first(p.problems) or "-")}


_MIN_ERROR_WIDTH = 20


def _status_cells(p: Any) -> dict[str, str]:
    from rich.markup import escape

    lag = f"≈ {p.lag_events:,} (estimated)" if p.lag_estimated else str(p.lag_events)
    lag += "*" if p.waiting_events else ""
    return {"processor": escape(printable(p.name)), "kind": p.kind,
            "position": str(p.position), "lag": lag, "age": _ago(p.lag_seconds),
            "state": _state(p), "parked": str(p.parked) if p.parked else "-",
            "last error": escape(_summary(p.last_error or _first(p.problems) or "-"))}


def _first(items: Sequence[str]) -> str | None:
    return items[0] if items else None


def _summary(text: str) -> str:
    """The first non-blank line of ``text``, redacted and escaped."""
    first = next((part for part in str(text).splitlines() if part.strip()), "")
    return printable(redact(first.strip()))


def status_check(report: StatusReport) -> None:
    """``--check``: one line per reason the processors are unhealthy, or ``ok``."""
    problems = report.problems
    for problem in problems:
        line(redact(problem))
    if not problems:
        line(f"ok: {len(report.processors)} processor(s) healthy")


def status_json(report: StatusReport, name: str | None = None) -> Any:
    """The report as JSON; with ``name``, that processor's part with the store's facts."""
    data = report.to_dict()
    if name is None:
        return data
    [processor] = [p for p in data["processors"] if p["name"] == name]
    return {"store": data["store"], "horizon": data["horizon"], **processor}


def status_detail(report: StatusReport, name: str) -> None:
    """Everything about one processor, one field a line; the traceback in full."""
    p = report.processor(name)
    assert p is not None
    age = "-" if p.heartbeat_age is None else f"{p.heartbeat_age:.1f}s ago"
    waiting = f" ({p.waiting_events} not readable yet)" if p.waiting_events else ""
    fields = [
        ("processor", p.name), ("kind", p.kind),
        ("health", "ok" if p.healthy else "UNHEALTHY"),
        ("state", p.state),
        ("host", p.host or "-"), ("pid", str(p.pid) if p.pid else "-"),
        ("heartbeat", age),
        ("position", f"{p.position} (store head {report.head})"),
        ("lag", f"{'≈ ' if p.lag_estimated else ''}{p.lag_events:,} events"
                f"{' (estimated)' if p.lag_estimated else ''}{waiting}, {_ago(p.lag_seconds)}"),
        ("parked", str(p.parked)),
        ("tables", ", ".join(p.tables) or "-"),
        ("rebuild", "-" if p.rebuild is None else str(p.rebuild)),
    ]
    for key, value in fields:
        line(f"{key + ':':<12}{redact(value)}")
    for problem in p.problems:
        line(f"{'problem:':<12}{redact(problem)}")
    line(f"{'last error:':<12}{one_line(p.last_error) if p.last_error else '-'}")
    if p.traceback:
        line("traceback:")
        for text in p.traceback.splitlines():
            line("  " + redact(text))


def parked_table(parked: Sequence[Any]) -> None:
    """Parked events, one row each."""
    from rich.markup import escape
    from rich.table import Table

    out = console()
    if not parked:
        out.print("no parked events")
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("processor", "event", "type", "aggregate", "attempts", "last failed",
                   "error"):
        table.add_column(column)
    for p in parked:
        attempts = "queued" if p.queued else str(p.attempts)
        failed = _time(dt.datetime.fromtimestamp(p.last_failed_at, dt.UTC))
        table.add_row(escape(printable(p.processor)), str(p.event_id),
                      escape(printable(p.event_type)),
                      escape(printable(getattr(p, "aggregate_id", None) or "-")), attempts,
                      failed, escape(one_line(p.error)))
    out.print(table)


def settings_table(settings: Settings) -> None:
    """Every setting, its value (store URL masked) and where it came from."""
    from rich.markup import escape
    from rich.table import Table

    out = console()
    out.print(f"config file: {escape(printable(settings.config_file or '(none found)'))}")
    table = Table(show_edge=False, pad_edge=False)
    for column in ("setting", "value", "from"):
        table.add_column(column)
    for key, value, source in settings_rows(settings):
        table.add_row(escape(key), escape(printable(json.dumps(value))), source)
    out.print(table)


def settings_rows(settings: Settings) -> list[tuple[str, Any, str]]:
    """``(section.key, value, source)`` for every setting; the store URL masked."""
    from esctl_lib import mask_url

    rows = []
    for section in ("store", "app", "processing", "logging", "metrics", "snapshots"):
        values = getattr(settings, section)
        for key in (f.name for f in dataclasses.fields(values)):
            value = getattr(values, key)
            if section == "store" and key == "url" and value:
                value = mask_url(value)
            if isinstance(value, tuple):
                value = list(value)
            rows.append((f"{section}.{key}", value, settings.sources.get(f"{section}.{key}",
                                                                          "default")))
    return rows


# -- progress ---------------------------------------------------------------------------

Progress = Callable[[int, int | None], None]


@contextmanager
def progress(label: str, *, unit: str = "events") -> Iterator[Progress]:
    """A ``progress(done, total)`` callback: a Rich bar on a terminal (stderr), else a log
    line every few seconds and one at the end."""
    if is_terminal(sys.stderr):
        with _bar(label, unit) as draw:
            yield draw
        return
    started = time.monotonic()
    state: dict[str, Any] = {"last": started, "done": 0, "total": None, "start": started}

    def update(done: int, total: int | None) -> None:
        state["done"], state["total"] = done, total
        now = time.monotonic()
        if now - state["last"] >= PROGRESS_LOG_INTERVAL:
            state["last"] = now
            _progress_line(label, unit, done, total, now - state["start"])

    yield update
    _progress_line(label, unit, state["done"], state["total"],
                   time.monotonic() - state["start"], final=True)


def _progress_line(label: str, unit: str, done: Any, total: Any, elapsed: float,
                   *, final: bool = False) -> None:
    of = f"/{total}" if total is not None else ""
    rate = f", {done / elapsed:,.0f} {unit}/s" if elapsed > 0 and done else ""
    sys.stderr.write(f"{label}: {done}{of} {unit}{rate}{' (done)' if final else ''}\n")


@contextmanager
def _bar(label: str, unit: str) -> Iterator[Progress]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    start = time.monotonic()
    with Progress(*columns, console=console(stderr=True)) as bar:
        task = bar.add_task(label, total=None, rate="")

        def draw(done: int, total: int | None) -> None:
            elapsed = time.monotonic() - start
            rate = f"{done / elapsed:,.0f} {unit}/s" if elapsed > 0 else ""
            bar.update(task, completed=done, total=total, rate=rate)

        yield draw


# -- types and traces -------------------------------------------------------------------


def types_list(report: Any) -> None:
    """``esctl types``: one block per type, the body's fields indented under it."""
    out = console()
    from rich.markup import escape

    if not report.types:
        note("no event types are registered (configure [app] events)")
    for info in report.types:
        out.print(f"[bold cyan]{escape(printable(info.name))}[/]  "
                  f"[dim]{escape(printable(info.event_class))}[/]")
        if info.aliases:
            out.print(f"  aliases: {escape(printable(', '.join(info.aliases)))}")
        for name in info.upcasters:
            out.print(f"  upcaster: {escape(printable(name))}")
        if info.body_model is None:
            out.print("  body: any JSON object (untyped)")
            continue
        out.print(f"  body: {escape(printable(info.body_model))}")
        for f in info.fields:
            need = "required" if f.required else f"default {json.dumps(f.default, default=str)}"
            out.print(f"    {escape(printable(f.name))}: {escape(printable(f.type))}  "
                      f"[dim]{escape(printable(need))}[/]")
    for stored, names in report.orphan_upcasters.items():
        out.print(f"[bold]{escape(printable(stored))}[/]  [dim](stored name, no class)[/]")
        for name in names:
            out.print(f"  upcaster: {escape(printable(name))}")


def trace_tree(trace: Any) -> None:
    """``esctl trace``: each tree as a Rich tree, then how many events were left out."""
    from rich.markup import escape
    from rich.tree import Tree

    def label(node: Any) -> str:
        e = node.event
        mark = "[bold yellow]▶ [/]" if e.uuid == trace.focus else ""
        text = (f"{mark}[bold]#{e.id}[/] [bold cyan]{escape(printable(e.type))}[/] "
                f"[dim]{escape(printable(e.aggregate_id))} v{e.version} {_time(e.created_at)} "
                f"uuid {escape(printable(e.uuid))}[/]")
        return text

    def grow(branch: Any, node: Any) -> None:
        for child in node.children:
            grow(branch.add(label(child)), child)
        if node.hidden:
            branch.add(f"[dim]... {node.hidden} more[/]")

    out = console()
    if trace.missing_cause:
        out.print(f"[dim]caused by {escape(printable(trace.missing_cause))}, which is not "
                  "stored[/]")
    for root in trace.roots:
        tree = Tree(label(root), guide_style="dim")
        grow(tree, root)
        out.print(tree)
    if trace.more:
        count = f"{trace.more}" if trace.more_exact else f"at least {trace.more}"
        out.print(f"... {count} more events not shown (raise --limit)")
