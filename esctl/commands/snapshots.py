"""``esctl snapshots``: the aggregate snapshots the store keeps."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from esctl import render
from esctl.context import handle_errors, session

if TYPE_CHECKING:
    from esctl_lib import SnapshotInfo


@handle_errors
def snapshots(
    ctx: typer.Context,
    drop: Annotated[str | None, typer.Option(
        "--drop", metavar="TYPE",
        help="Discard the snapshots of this aggregate type: its \"module:Class\" path as "
             "listed, or its class name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
    = False,
) -> None:
    """List aggregate snapshots, or discard one type's.

    Per aggregate type (its "module:Class" path): how many aggregates have a
    snapshot, when the newest was taken, and their stored size in bytes.
    Snapshots are a cache: after --drop, loads fold the whole history until
    the next save that crosses a multiple of snapshot_every takes a new one.
    A --drop TYPE that names no stored type drops nothing and exits 0.
    Exit codes: 0 done, 1 store unreachable, 3 configuration error.

    \b
    Example:
      esctl snapshots
      esctl snapshots --json
      esctl snapshots --drop TodoList
      esctl snapshots --drop todo_app.aggregates:TodoList
    """
    from esctl_lib import discard_snapshots, list_snapshots

    store = session(ctx).store()
    if drop is not None:
        dropped = discard_snapshots(store, drop)
        if as_json:
            render.json_out({"dropped": dropped})
        elif not dropped:
            render.line(f"no snapshots of {render.printable(drop)}")
        else:
            for kind, count in dropped.items():
                render.line(f"dropped {count} snapshot{'s' if count != 1 else ''} of "
                            f"{render.printable(kind)}")
        return
    infos = list_snapshots(store)
    if as_json:
        render.json_out([dataclasses.asdict(i) for i in infos])
        return
    _table(infos)


def _table(infos: list[SnapshotInfo]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = render.console()
    if not infos:
        out.print("no snapshots")
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("aggregate type", "count", "newest", "bytes"):
        table.add_column(column, justify="right" if column in ("count", "bytes") else "left")
    for info in infos:
        newest = dt.datetime.fromtimestamp(info.newest, dt.UTC)
        table.add_row(escape(render.printable(info.aggregate_type)), str(info.count),
                      newest.isoformat(timespec="seconds"), f"{info.bytes:,}")
    out.print(table)
