"""load_settings: discovery, precedence, path resolution and errors naming file and key."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from esctl_lib import ConfigError, load_settings


def write(folder: Path, text: str) -> Path:
    path = folder / "eventsourcery.toml"
    path.write_text(text)
    return path


def test_the_config_file_is_found_in_a_parent_folder(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "sqlite:///db/events.db"\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    settings = load_settings(cwd=deep)
    assert settings.config_file == path.resolve()


def test_a_relative_sqlite_path_resolves_against_the_files_folder(tmp_path: Path) -> None:
    write(tmp_path, '[store]\nurl = "sqlite:///db/events.db"\n')
    (tmp_path / "sub").mkdir()
    settings = load_settings(cwd=tmp_path / "sub")
    assert settings.store.url == f"sqlite:///{tmp_path.resolve() / 'db' / 'events.db'}"


def test_app_paths_resolve_against_the_files_folder(tmp_path: Path) -> None:
    write(tmp_path, '[app]\npaths = ["src"]\n')
    (tmp_path / "sub").mkdir()
    settings = load_settings(cwd=tmp_path / "sub")
    assert settings.app.paths == (str(tmp_path.resolve() / "src"),)


def test_the_environment_overrides_the_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, '[store]\nurl = "sqlite:///a.db"\n[processing]\nbatch_size = 5\n')
    monkeypatch.setenv("ESCTL_STORE__URL", "postgresql://u@h/db")
    monkeypatch.setenv("ESCTL_PROCESSING__BATCH_SIZE", "7")
    settings = load_settings(cwd=tmp_path)
    assert (settings.store.url, settings.processing.batch_size) == ("postgresql://u@h/db", 7)


def test_a_list_can_come_from_the_environment_as_json(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCTL_APP__EVENTS", '["a.events", "b.events"]')
    assert load_settings(cwd=tmp_path).app.events == ("a.events", "b.events")


def test_flags_override_the_environment(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCTL_STORE__SCHEMA", "from_env")
    settings = load_settings(cwd=tmp_path, overrides={"store": {"schema": "from_flag"}})
    assert settings.store.schema == "from_flag"
    assert settings.sources["store.schema"] == "flag"


def test_esctl_config_names_the_file_to_read(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('[store]\nurl = "memory://"\n')
    monkeypatch.setenv("ESCTL_CONFIG", str(other))
    assert load_settings(cwd=tmp_path).config_file == other.resolve()


def test_a_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_settings(config_path=tmp_path / "nope.toml", cwd=tmp_path)


def test_an_unknown_key_names_the_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurll = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path)
    assert str(path.resolve()) in str(info.value)
    assert "[store] urll" in str(info.value)


def test_an_unknown_section_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "[stor]\nurl = 'x'\n")
    with pytest.raises(ConfigError, match=r"unknown section \[stor\]"):
        load_settings(cwd=tmp_path)


def test_an_unknown_environment_key_names_the_variable(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESCTL_STORE__URLL", "x")
    with pytest.raises(ConfigError, match="ESCTL_STORE__URLL"):
        load_settings(cwd=tmp_path)


def test_a_value_of_the_wrong_type_names_file_key_and_value(tmp_path: Path) -> None:
    write(tmp_path, '[processing]\nbatch_size = "many"\n')
    with pytest.raises(ConfigError, match=r"\[processing\] batch_size = 'many'"):
        load_settings(cwd=tmp_path)


def test_an_unknown_retry_policy_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, '[processing]\nretry = "sometimes"\n')
    with pytest.raises(ConfigError, match="retry"):
        load_settings(cwd=tmp_path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[store\n")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_settings(cwd=tmp_path)
    assert str(path.resolve()) in str(info.value)


def test_an_error_never_shows_the_store_password(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, '[store]\nurl = 5\n')
    monkeypatch.setenv("ESCTL_STORE__SYNCHRONOUS", "sometimes")
    monkeypatch.setenv("ESCTL_STORE__URL", "postgresql://u:hunter2@h/db")
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path)
    assert "hunter2" not in str(info.value)


def test_without_a_file_the_defaults_apply(tmp_path: Path) -> None:
    settings = load_settings(cwd=tmp_path)
    assert settings.config_file is None
    assert settings.store.url is None
    assert settings.processing.retry == "exponential"


def test_settings_survive_pickling(tmp_path: Path) -> None:
    write(tmp_path, '[store]\nurl = "sqlite:///x.db"\n[app]\nevents = ["a"]\n')
    settings = load_settings(cwd=tmp_path)
    assert pickle.loads(pickle.dumps(settings)) == settings


@pytest.mark.parametrize("url", [
    "postgresql://u@h/db?password=hunter2",
    "host=h dbname=db password=hunter2",
    "host=h dbname=db password='hunter2 too'",
])
def test_a_keyword_or_query_password_never_shows_in_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("ESCTL_STORE__URL", url)
    monkeypatch.setenv("ESCTL_STORE__CONNECT_TIMEOUT", "soon")
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path)
    assert "hunter2" not in str(info.value)


def test_a_whole_store_table_in_an_error_has_its_password_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ESCTL_STORE", '{"url": "postgresql://u:hunter2@h/db", "nope": 1}')
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path)
    assert "hunter2" not in str(info.value)


def test_a_keyword_value_dsn_is_accepted_as_the_store_url(tmp_path: Path) -> None:
    settings = load_settings(cwd=tmp_path, overrides={
        "store": {"url": "host=127.0.0.1 dbname=test user=postgres"}})
    assert settings.store.url == "host=127.0.0.1 dbname=test user=postgres"


def test_the_repr_of_settings_masks_the_store_password(tmp_path: Path) -> None:
    settings = load_settings(cwd=tmp_path, overrides={
        "store": {"url": "host=h password=hunter2"}})
    assert "hunter2" not in repr(settings) and "password=***" in repr(settings)


def test_every_retry_policy_name_has_a_policy() -> None:
    from esctl_lib.config import RETRY_POLICY_NAMES
    from esctl_lib.processing.retry import retry_policy

    assert [type(retry_policy(name)).__name__ for name in RETRY_POLICY_NAMES] == [
        "NoRetry", "ConstantRetry", "ExponentialRetry"]


def test_a_bad_synchronous_mode_names_the_modes(tmp_path: Path) -> None:
    write(tmp_path, '[store]\nsynchronous = "sometimes"\n')
    with pytest.raises(ConfigError, match="use one of FULL, NORMAL, EXTRA, OFF"):
        load_settings(cwd=tmp_path)
