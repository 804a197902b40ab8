"""Settings read without pydantic (``esctl_lib.config_plain``) equal those pydantic reads,
and anything that needs converting or judging still goes through pydantic."""

from __future__ import annotations

from pathlib import Path

import pytest

from esctl_lib import config
from esctl_lib.errors import ConfigError

FILES = [
    "",
    '[store]\nurl = "sqlite:///x.db"\nconnect_timeout = 3\n',
    '[store]\nurl = "postgresql://u:pw@h/db"\nschema = "s"\nsynchronous = "normal"\n'
    '[app]\npaths = ["src", "/abs"]\nevents = ["a.events"]\nprocessors = ["a:B"]\n'
    '[processing]\nbatch_size = 10\nretry = "constant"\nmax_attempts = 3\n'
    'grace_period = 1.5\n[logging]\nlevel = "DEBUG"\nfile = "log.txt"\n'
    '[metrics]\nport = 9108\nhost = "127.0.0.1"\n',
]
ENVIRONMENTS = [
    {},
    {"ESCTL_STORE__URL": "sqlite:///env.db", "ESCTL_LOGGING__LEVEL": "warning"},
    {"ESCTL_PROCESSING__BATCH_SIZE": "7"},  # a number from text: pydantic's
    {"ESCTL_APP__PATHS": '["p"]'},  # JSON from text: pydantic's
]


def both(tmp_path: Path, text: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
         flags: dict[str, dict[str, object]] | None = None) -> tuple[object, object, bool]:
    (tmp_path / "eventsourcery.toml").write_text(text)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    plain_used = []
    real_plain = config._plain

    def spy(*args: object) -> object:
        found = real_plain(*args)  # type: ignore[arg-type]
        plain_used.append(found is not None)
        return found

    monkeypatch.setattr(config, "_plain", spy)
    fast = config.load_settings(cwd=tmp_path, overrides=flags)
    monkeypatch.setattr(config, "_plain", lambda *args: None)
    slow = config.load_settings(cwd=tmp_path, overrides=flags)
    return fast, slow, plain_used[0]


@pytest.mark.parametrize("text", FILES)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_plain_path_reads_what_pydantic_reads(
        tmp_path: Path, text: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in __import__("os").environ if n.startswith("ESCTL_")]:
        monkeypatch.delenv(name)
    fast, slow, used = both(tmp_path, text, env, monkeypatch,
                            flags={"store": {"schema": "flagged"}})
    assert fast == slow
    assert used == all(k in ("ESCTL_STORE__URL", "ESCTL_LOGGING__LEVEL") for k in env)


@pytest.mark.parametrize("text", [
    '[processing]\nbatch_size = "ten"\n',
    '[processing]\nretry = "sometimes"\n',
    '[metrics]\nport = 1.5\n',
    '[app]\npaths = "not-a-list"\n',
])
def test_a_value_of_another_type_is_judged_by_pydantic(
        tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "eventsourcery.toml").write_text(text)
    monkeypatch.setattr(config, "_validate", _refuse)
    with pytest.raises(ConfigError, match="pydantic decided"):
        config.load_settings(cwd=tmp_path)


def _refuse(*args: object) -> object:
    raise ConfigError("pydantic decided")
