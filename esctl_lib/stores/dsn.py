"""Store URLs and DSNs: which backend a string names, and the one rule for masking secrets.

A store is named by a URL (``memory://``, ``sqlite:///path.db``, ``postgresql://...``,
``postgres://...``) or by a libpq keyword/value DSN (``host=127.0.0.1 dbname=app
password='a b'``), which names PostgreSQL. :func:`classify` tells them apart without
importing any driver.

:func:`mask_dsn` is what every printed or logged store location goes through. It replaces
with ``***``:

- the password of URL user info (``postgresql://user:***@host/db``);
- secret parameters in a URL query or a keyword/value DSN: ``password``, ``sslpassword``,
  and any parameter whose name contains ``password``, ``secret`` or ``token``
  (``?password=***``, ``password=***``, quoted values included);
- in a keyword/value DSN, any word outside a ``key=value`` pair (libpq refuses it; it is most
  likely the rest of an unquoted password that contains a space).

``passfile`` is shown as it is: it is a path, not a secret (libpq's own messages name it),
and seeing it helps find which file was used. The password inside that file is never read
by esctl, so it is never printed.

:func:`redact_secrets` applies the same rule to free text (driver error messages, log lines), and
also removes the literal secret values of a given DSN wherever they appear, so a driver
message that echoes a fragment of the DSN cannot leak them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal
from urllib.parse import unquote

__all__ = [
    "MASK",
    "Backend",
    "classify",
    "dsn_secrets",
    "mask_dsn",
    "mask_url",
    "redact_secrets",
    "remember_secrets",
]

MASK = "***"
Backend = Literal["memory", "sqlite", "postgresql"]

_SCHEMES: dict[str, Backend] = {
    "memory": "memory",
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
}
_SECRET_WORDS = ("password", "secret", "token")
#: Secrets of the DSNs this process was configured with (see :func:`remember_secrets`).
_KNOWN_SECRETS: set[str] = set()
#: The start of a keyword/value DSN: ``keyword =`` (spaces allowed around ``=``).
_KEYWORD_START = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*=")
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# The patterns below are compiled on first use (re's cache), not at import: a URL store
# never needs the first, and only redacting text needs the others (start-up time).
#: ``keyword = value`` in a keyword/value DSN; value quoted ('a \' b') or bare.
_KEYWORD_PAIR = (
    r"(?s)(?P<key>[A-Za-z_][A-Za-z0-9_]*)(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*(?:'|$)|(?:\\.|[^\s'\\])(?:\\.|[^\s\\])*|(?=\s|$))"
)
#: ``scheme://user:password@`` inside free text (up to the last ``@``: a password may hold one).
_URL_USERINFO = r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)\S*@"
#: ``password=value`` (or ``password = 'value'``) inside free text, in a URL query or a DSN.
_TEXT_SECRET = (
    r"(?is)(?P<key>\b[A-Za-z_]*(?:password|secret|token)[A-Za-z0-9_]*)(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*(?:'|$)|[^\s&'\"]+)"
)


def is_secret_key(key: str) -> bool:
    """Whether a DSN parameter holds a secret (``password``, ``sslpassword``, ``*token*``...)."""
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def is_keyword_dsn(dsn: str) -> bool:
    """Whether ``dsn`` is a libpq keyword/value DSN (``host=... dbname=...``), not a URL."""
    return _URL_START.match(dsn) is None and _KEYWORD_START.match(dsn) is not None


def classify(dsn: str) -> Backend | None:
    """The backend a store URL or DSN names, or None when it names none esctl knows.

    ``memory://``, ``sqlite:///...``, ``postgresql://`` / ``postgres://`` URLs, and
    keyword/value DSNs (PostgreSQL).
    """
    if is_keyword_dsn(dsn):
        return "postgresql"
    scheme, sep, _ = dsn.partition(":")
    if not sep:
        return None
    return _SCHEMES.get(scheme.strip().lower())


def mask_dsn(dsn: str) -> str:
    """``dsn`` with every secret replaced by ``***``: safe to print or log (any form)."""
    if is_keyword_dsn(dsn):
        return _mask_keyword_dsn(dsn)
    if _URL_START.match(dsn) is not None:
        return _mask_url(dsn)
    return redact_secrets(dsn)


#: The historical name (``esctl_lib.mask_url``): the same function.
mask_url = mask_dsn


def dsn_secrets(dsn: str | None) -> tuple[str, ...]:
    """The secret values in ``dsn`` (raw and, for URLs, percent-decoded), longest first."""
    if not dsn:
        return ()
    found: set[str] = set()
    if is_keyword_dsn(dsn):
        for match in re.finditer(_KEYWORD_PAIR, dsn):
            if is_secret_key(match["key"]):
                raw = match["value"]
                found.update((raw, _unquote_keyword(raw), *_unquote_keyword(raw).split()))
        found.update(_stray_words(dsn))
    elif _URL_START.match(dsn) is not None:
        userinfo, _, query = _url_parts(dsn)
        if userinfo is not None and ":" in userinfo:
            raw = userinfo.split(":", 1)[1]
            found.update((raw, unquote(raw)))
        for key, value in _query_pairs(query):
            if is_secret_key(unquote(key)):
                found.update((value, unquote(value)))
    # A secret of one or two characters would mask unrelated text; ``redact``'s patterns
    # still remove it wherever it appears as a password.
    return tuple(sorted((s for s in found if len(s) >= 3), key=len, reverse=True))


def remember_secrets(dsn: str | None) -> None:
    """Have :func:`redact_secrets` remove the secrets of ``dsn`` from any text, from now on in
    this process (called when the configured store is opened and when logging is set up)."""
    _KNOWN_SECRETS.update(dsn_secrets(dsn))


def redact_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with passwords removed: URL user info, ``password=...`` pairs, each of
    ``secrets`` and each secret :func:`remember_secrets` was given, wherever it appears."""
    known = sorted({*secrets, *_KNOWN_SECRETS}, key=len, reverse=True)
    for secret in known:
        if secret:
            text = text.replace(secret, MASK)
    text = re.sub(_URL_USERINFO, rf"\1{MASK}@", text)
    return re.sub(_TEXT_SECRET, lambda m: f"{m['key']}{m['eq']}{MASK}", text)


# -- URLs --------------------------------------------------------------------------------------


def _url_parts(url: str) -> tuple[str | None, str, str]:
    """(user info or None, the part after it up to the query, the query) of ``scheme://...``.

    No validation (an unparseable URL must still be masked): the user info is everything
    before the last ``@`` that comes before the query.
    """
    rest = url.split("://", 1)[1]
    rest, _, _fragment = rest.partition("#")
    before_query, _, query = rest.partition("?")
    at = before_query.rfind("@")
    if at < 0:
        return None, before_query, query
    return before_query[:at], before_query[at + 1:], query


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&") if query else ():
        key, _, value = part.partition("=")
        pairs.append((key, value))
    return pairs


def _mask_url(url: str) -> str:
    scheme = url.split("://", 1)[0]
    if _SCHEMES.get(scheme.lower()) == "sqlite":
        return url  # a file path: no user info (a ':' or '@' in it is part of the name)
    userinfo, host_and_path, query = _url_parts(url)
    _, hash_, fragment = url.partition("#")
    out = f"{scheme}://"
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        out += f"{user}:{MASK}@" if colon else f"{userinfo}@"
    out += host_and_path
    if "?" in url.split("#", 1)[0]:
        parts = query.split("&") if query else []
        out += "?" + "&".join(
            f"{part.partition('=')[0]}={MASK}" if is_secret_key(unquote(part.partition("=")[0]))
            else part
            for part in parts
        )
    if hash_:
        out += "#" + redact_secrets(fragment)
    return out


# -- keyword/value DSNs ------------------------------------------------------------------------


def _mask_keyword_dsn(dsn: str) -> str:
    out, end = [], 0
    for match in re.finditer(_KEYWORD_PAIR, dsn):
        out.append(_mask_stray(dsn[end:match.start()]))
        secret = is_secret_key(match["key"])
        out.append(f"{match['key']}{match['eq']}{MASK}" if secret else match[0])
        end = match.end()
    out.append(_mask_stray(dsn[end:]))
    return redact_secrets("".join(out))


def _stray_words(dsn: str) -> list[str]:
    """Words of a keyword/value DSN outside any ``key=value`` pair: libpq refuses them, and
    they are most likely the rest of an unquoted value with a space (a password's)."""
    words, end = [], 0
    for match in re.finditer(_KEYWORD_PAIR, dsn):
        words += dsn[end:match.start()].split()
        end = match.end()
    return words + dsn[end:].split()


def _mask_stray(text: str) -> str:
    return re.sub(r"\S+", MASK, text)


def _unquote_keyword(value: str) -> str:
    if value.startswith("'"):
        inner = value[1:-1] if value.endswith("'") and len(value) > 1 else value[1:]
        return re.sub(r"\\(.)", r"\1", inner)
    return re.sub(r"\\(.)", r"\1", value)
