"""Store URLs and DSNs: the backend each names, and secrets masked in every form."""

from __future__ import annotations

import pytest

from esctl_lib import mask_url
from esctl_lib.stores.dsn import classify, dsn_secrets, mask_dsn, redact_secrets


@pytest.mark.parametrize(("dsn", "backend"), [
    ("memory://", "memory"),
    ("sqlite:///events.db", "sqlite"),
    ("SQLite:////abs/events.db", "sqlite"),
    ("postgresql://u@h/db", "postgresql"),
    ("postgres://u@h/db", "postgresql"),
    ("host=127.0.0.1 dbname=test", "postgresql"),
    ("  dbname = test  user=postgres", "postgresql"),
    ("mysql://u@h/db", None),
    ("events.db", None),
    ("", None),
])
def test_each_form_names_its_backend(dsn: str, backend: str | None) -> None:
    assert classify(dsn) == backend


@pytest.mark.parametrize(("dsn", "masked"), [
    ("postgresql://bob:s3cret@db.example:5432/app", "postgresql://bob:***@db.example:5432/app"),
    ("postgresql://bob:p%40ss@h/db", "postgresql://bob:***@h/db"),
    ("postgresql://bob:p@ss@h/db", "postgresql://bob:***@h/db"),
    ("postgresql://bob@h/db?password=s3cret", "postgresql://bob@h/db?password=***"),
    ("postgresql://h/db?sslmode=require&sslpassword=k3y&application_name=x",
     "postgresql://h/db?sslmode=require&sslpassword=***&application_name=x"),
    ("postgresql://h/db?PASSWORD=s3cret", "postgresql://h/db?PASSWORD=***"),
    ("postgresql://h/db?passfile=/home/bob/.pgpass", "postgresql://h/db?passfile=/home/bob/.pgpass"),
    ("postgresql://bob:s3cret@[::1/db", "postgresql://bob:***@[::1/db"),
    ("host=127.0.0.1 password=s3cret dbname=app", "host=127.0.0.1 password=*** dbname=app"),
    ("host=h password = 's3 cret' dbname=app", "host=h password = *** dbname=app"),
    (r"host=h password='it\'s secret' user=bob", "host=h password=*** user=bob"),
    (r"host=h password=a\ b user=bob", "host=h password=*** user=bob"),
    ("host=h password='unterminated secret", "host=h password=***"),
    ("host=h password=unquoted s3cret dbname=app", "host=h password=*** *** dbname=app"),
    ("host=h sslpassword=k3y passfile=/tmp/pgpass", "host=h sslpassword=*** passfile=/tmp/pgpass"),
    ("sqlite:///a.db", "sqlite:///a.db"),
    ("memory://", "memory://"),
    ("postgresql://bob@h/db", "postgresql://bob@h/db"),
])
def test_every_secret_is_masked(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked


def test_the_public_mask_url_is_the_same_function() -> None:
    assert mask_url is mask_dsn


@pytest.mark.parametrize("dsn", [
    "postgresql://bob:s3cret@h/db",
    "postgresql://bob@h/db?password=s3cret",
    "host=h password=s3cret",
    "host=h password='s3cret'",
])
def test_the_secrets_of_a_dsn_are_found(dsn: str) -> None:
    assert "s3cret" in dsn_secrets(dsn)


def test_free_text_loses_the_secrets_of_the_dsn_and_any_password_pair() -> None:
    text = ('missing "=" after "s3cret" in connection info string; '
            "see postgresql://u:other@h/db and password=third")
    out = redact_secrets(text, dsn_secrets("host=h password=x s3cret"))
    assert "s3cret" not in out and "other" not in out and "third" not in out


def test_an_unknown_form_is_still_redact_secretsed() -> None:
    assert "s3cret" not in mask_dsn("not a dsn but password=s3cret")


def test_a_password_holding_an_at_sign_is_redacted_whole_in_free_text() -> None:
    out = redact_secrets("cannot reach postgresql://bob:p@ss@h/db: refused")
    assert out == "cannot reach postgresql://bob:***@h/db: refused"
