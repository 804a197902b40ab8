"""esctl init, config and setup."""

from __future__ import annotations

import json
from pathlib import Path

from esctl_lib import load_settings, open_tables
from tests.cli.conftest import Backend, Cli, one_error_line, write_config


def test_init_writes_a_config_that_loads(bare_cli: Cli, project: Path) -> None:
    result = bare_cli("init", "--url", "sqlite:///data/app.db")
    assert result.exit_code == 0
    settings = load_settings(cwd=project)
    assert settings.store.url == f"sqlite:///{project.resolve() / 'data' / 'app.db'}"


def test_init_keeps_an_existing_config(bare_cli: Cli, project: Path) -> None:
    (project / "eventsourcery.toml").write_text("# mine\n")
    result = bare_cli("init")
    assert result.exit_code == 3
    assert "already exists" in one_error_line(result)
    assert (project / "eventsourcery.toml").read_text() == "# mine\n"


def test_init_with_force_overwrites(bare_cli: Cli, project: Path) -> None:
    (project / "eventsourcery.toml").write_text("# mine\n")
    assert bare_cli("init", "--force").exit_code == 0
    assert "[store]" in (project / "eventsourcery.toml").read_text()


def test_config_shows_where_each_value_came_from(bare_cli: Cli, project: Path) -> None:
    (project / "eventsourcery.toml").write_text('[store]\nurl = "sqlite:///a.db"\n')
    result = bare_cli("config", "--json", env={"ESCTL_PROCESSING__BATCH_SIZE": "9"})
    data = json.loads(result.stdout)["settings"]
    assert data["store.url"]["from"] == "file"
    assert data["processing.batch_size"] == {"value": 9, "from": "env"}


def test_config_masks_the_store_password(bare_cli: Cli) -> None:
    result = bare_cli("config", env={"ESCTL_STORE__URL": "postgresql://u:hunter2@h/db"})
    assert result.exit_code == 0
    assert "hunter2" not in result.output
    assert "u:***@h" in result.output


def test_the_store_url_flag_overrides_the_environment(bare_cli: Cli) -> None:
    result = bare_cli("--store-url", "sqlite:///flag.db", "config", "--json",
                      env={"ESCTL_STORE__URL": "sqlite:///env.db"})
    data = json.loads(result.stdout)["settings"]
    assert data["store.url"]["value"].endswith("/flag.db")
    assert data["store.url"]["from"] == "flag"


def test_no_config_and_no_store_is_a_configuration_error(bare_cli: Cli) -> None:
    result = bare_cli("tail")
    assert result.exit_code == 3
    assert "no eventsourcery.toml" in one_error_line(result)


def test_an_unknown_key_exits_3_naming_file_and_key(bare_cli: Cli, project: Path) -> None:
    (project / "eventsourcery.toml").write_text('[store]\nurl = "sqlite:///a.db"\ncolour = 1\n')
    result = bare_cli("tail")
    assert result.exit_code == 3
    line = one_error_line(result)
    assert "eventsourcery.toml" in line
    assert "colour" in line


def test_setup_creates_the_schema_and_projector_tables(blank: Backend, project: Path) -> None:
    write_config(project, processors=("cliapp.processors:ItemList",))
    result = Cli(blank.env())("setup")
    assert result.exit_code == 0, result.output
    assert "cli_items" in result.stdout
    store = blank.open()
    assert store.schema_version() >= 1
    with open_tables(store) as tx:
        assert tx.select("cli_items") == []


def test_setup_twice_changes_nothing(blank: Backend, project: Path) -> None:
    write_config(project, processors=("cliapp.processors:ItemList",))
    cli = Cli(blank.env())
    cli("setup")
    result = cli("setup")
    assert result.exit_code == 0
    assert "up to date" in result.stdout


def test_setup_works_with_only_a_store(blank: Backend, bare_cli: Cli) -> None:
    result = bare_cli("setup", "--json", env=blank.env())
    assert result.exit_code == 0
    assert json.loads(result.stdout)["done"]
    assert blank.open().schema_version() >= 1


def test_a_missing_app_module_names_file_key_and_value(cli: Cli, project: Path) -> None:
    write_config(project, processors=("cliapp.nowhere:Thing",))
    result = cli("setup")
    assert result.exit_code == 3
    line = one_error_line(result)
    assert "eventsourcery.toml: [app] processors" in line
    assert "cliapp.nowhere:Thing" in line


def test_a_name_that_is_not_a_processor_is_a_configuration_error(cli: Cli,
                                                                 project: Path) -> None:
    write_config(project, processors=("cliapp.processors:NOT_A_PROCESSOR",))
    result = cli("status")
    assert result.exit_code == 3
    assert "is not a processor" in one_error_line(result)


def test_a_missing_attribute_is_a_configuration_error(cli: Cli, project: Path) -> None:
    write_config(project, processors=("cliapp.processors:Missing",))
    result = cli("status")
    assert result.exit_code == 3
    assert "has no 'Missing'" in one_error_line(result)


def test_every_option_the_init_template_mentions_is_a_known_key(tmp_path: Path) -> None:
    import re

    from esctl_lib import config_template

    text = config_template("sqlite:///x.db")
    uncommented = re.sub(r"(?m)^# (\w+ = )", r"\1", text)
    (tmp_path / "eventsourcery.toml").write_text(uncommented)
    settings = load_settings(cwd=tmp_path)
    assert settings.processing.max_attempts == 10
    assert settings.app.on_error == "myapp.hooks:report_error"
