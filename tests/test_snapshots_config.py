"""``[snapshots] every`` in eventsourcery.toml (or ESCTL_SNAPSHOTS__EVERY) overrides
aggregate classes' ``snapshot_every``, through ``Application.repository``."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest

from esctl_lib import ConfigError, load_app, load_settings, open_store
from tests.test_snapshots import Ledger, PlainLedger, fill

LEDGER = "tests.test_snapshots:Ledger"


def write(folder: Path, text: str) -> None:
    (folder / "eventsourcery.toml").write_text(textwrap.dedent(text))


def test_the_file_overrides_by_path_and_by_class_name(tmp_path: Path) -> None:
    write(tmp_path, f"""
        [snapshots]
        every = {{ "{LEDGER}" = 3, PlainLedger = 4 }}
    """)
    settings = load_settings(cwd=tmp_path)
    assert settings.snapshots.every == {LEDGER: 3, "PlainLedger": 4}
    assert pickle.loads(pickle.dumps(settings)) == settings  # runner children get it
    store = open_store("memory://")
    store.setup()
    repo = load_app(settings).repository(store)
    assert (repo.snapshot_interval(Ledger), repo.snapshot_interval(PlainLedger)) == (3, 4)
    agg = fill(repo, PlainLedger, 9)
    snap = store.load_snapshot(agg, PlainLedger.snapshot_type(), 1)
    assert snap is not None and snap.version == 8


def test_the_environment_sets_it_as_json(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCTL_SNAPSHOTS__EVERY", '{"Ledger": 0}')
    settings = load_settings(cwd=tmp_path)
    store = open_store("memory://")
    assert load_app(settings).repository(store).snapshot_interval(Ledger) == 0


def test_no_section_keeps_the_class_attribute(tmp_path: Path) -> None:
    settings = load_settings(cwd=tmp_path)
    assert settings.snapshots.every is None
    assert load_app(settings).repository(open_store("memory://")).snapshot_interval(Ledger) == 10


@pytest.mark.parametrize(("every", "message"), [
    ('{ "Ledger" = -1 }', "must be >= 0"),
    ('{ "tests.test_snapshots:Nope" = 5 }', "has no 'Nope'"),
    ('{ "tests.test_snapshots:fill" = 5 }', "is not an Aggregate subclass"),
    ('{ "Ledger" = "often" }', "[snapshots] every"),
])
def test_bad_values_name_the_file_and_key(tmp_path: Path, every: str, message: str) -> None:
    write(tmp_path, f"[snapshots]\nevery = {every}\n")
    with pytest.raises(ConfigError) as caught:
        load_app(load_settings(cwd=tmp_path))
    assert message in str(caught.value)
    assert "eventsourcery.toml" in str(caught.value)
