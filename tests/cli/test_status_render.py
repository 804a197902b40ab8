"""``esctl status`` off a terminal writes its table without Rich (start-up time, issue 14
part 5): the plain text must be what Rich prints there, character for character."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from esctl import render
from esctl_lib import ProcessorStatus, StatusReport

NAMES = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=60)
ERRORS = st.one_of(st.none(), st.text(st.characters(min_codepoint=9, max_codepoint=126),
                                      max_size=300))
WORDS = st.text(st.sampled_from("ab /:@.-_ "), min_size=1, max_size=140)


def processor(name: str, *, lag: int = 0, estimated: bool = False, parked: int = 0,
              waiting: int = 0, error: str | None = None, state: str = "stopped",
              seconds: float = 0.0, problems: tuple[str, ...] = ()) -> ProcessorStatus:
    return ProcessorStatus(
        name=name, kind="projector", position=7, head=2_000_000, lag_events=lag,
        lag_seconds=seconds, state=state, pid=None, host=None, heartbeat_at=None,
        last_error=error, parked=parked, waiting_events=waiting, lag_estimated=estimated,
        problems=problems)


def report(processors: list[ProcessorStatus], *, url: str = "sqlite:////tmp/x.db",
           pending: int = 0, estimated: bool = True) -> StatusReport:
    horizon = ({"pending": pending, "pid": 42, "application": "esctl run", "age_seconds": 3.5}
               if pending else None)
    return StatusReport(store_url=url, backend="sqlite", schema_version=3,
                        total_events=2_000_000, head=2_000_000, processors=processors,
                        horizon=horizon, total_estimated=estimated)


@contextlib.contextmanager
def columns(width: int | None) -> Iterator[None]:
    saved = os.environ.get("COLUMNS")
    if width is None:
        os.environ.pop("COLUMNS", None)
    else:
        os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved


def drawn(value: StatusReport, width: int | None) -> tuple[str | None, str]:
    """(the plain text, or None when it declines; what Rich prints), both off a terminal."""
    with columns(width):
        plain = render.status_table_plain(value)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            render.status_table_rich(value)
    return plain, out.getvalue()


def test_the_bench_table_is_drawn_plainly_and_exactly_as_rich_draws_it() -> None:
    value = report([processor("lagging", lag=2_000_000, estimated=True, seconds=86_400.0),
                    processor("current")],
                   url="sqlite:////tmp/esctl-bench-status/events-2000000.db")
    plain, rich = drawn(value, None)
    assert plain is not None
    assert plain == rich
    assert "≈ 2,000,000 (estimated)" in plain
    assert len(plain.splitlines()) == 6  # the store line wraps at 100 columns, as with Rich


def test_a_long_error_is_cut_with_an_ellipsis_as_rich_cuts_it() -> None:
    value = report([processor("failer", error="boom " * 40, state="failing",
                              problems=("failing",), parked=3, waiting=2)], pending=2)
    plain, rich = drawn(value, 80)
    assert plain is not None
    assert "…" in plain
    assert plain == rich


def test_no_processors() -> None:
    plain, rich = drawn(report([]), None)
    assert plain == rich


def test_a_wide_character_is_left_to_rich() -> None:
    plain, rich = drawn(report([processor("注文の集計")]), None)
    assert plain is None
    assert "注文" in rich  # Rich measures it in cells


@settings(max_examples=150, deadline=None)
@given(names=st.lists(NAMES, min_size=1, max_size=4), errors=st.lists(ERRORS, min_size=4,
       max_size=4), lag=st.integers(0, 10**9), estimated=st.booleans(),
       parked=st.integers(0, 30), waiting=st.integers(0, 3), url=WORDS,
       width=st.one_of(st.none(), st.integers(20, 200)))
def test_plain_text_is_what_rich_prints(names: list[str], errors: list[str | None], lag: int,
                                        estimated: bool, parked: int, waiting: int, url: str,
                                        width: int | None) -> None:
    processors = [processor(name, lag=lag, estimated=estimated, parked=parked * (i % 2),
                            waiting=waiting, error=errors[i], seconds=lag / 1000)
                  for i, name in enumerate(names)]
    plain, rich = drawn(report(processors, url=url, pending=waiting), width)
    if plain is not None:
        assert plain == rich
