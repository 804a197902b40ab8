"""Backend option values that configuration checks without importing the backend (a
PostgreSQL command need not load the SQLite store to validate ``[store] synchronous``)."""

#: SQLite's ``PRAGMA synchronous`` modes esctl accepts (``[store] synchronous``).
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA", "OFF")
